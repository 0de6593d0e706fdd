//! The real `lanewire-signaling` binary: it prints its address first, serves, mints tokens the
//! server accepts, refuses to start without a secret, and exits cleanly on SIGTERM.

#![cfg(feature = "server")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use lanewire_signaling::cli::SECRET_ENV;
use lanewire_signaling::token;

const BIN: &str = env!("CARGO_BIN_EXE_lanewire-signaling");

/// Kills the child if a test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], secret: Option<&str>) -> (Running, SocketAddr) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove(SECRET_ENV).env_remove("RUST_LOG");
    if let Some(s) = secret {
        cmd.env(SECRET_ENV, s);
    }
    let mut child = Running(cmd.spawn().expect("spawn the binary"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("first stdout line in time");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("an address");
    (child, addr)
}

/// Runs the binary to completion with a deadline.
fn run(args: &[&str], secret: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).env_remove(SECRET_ENV);
    if let Some(s) = secret {
        cmd.env(SECRET_ENV, s);
    }
    let mut child = Running(
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the binary"),
    );
    let status = wait_exit(&mut child.0);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.0.stdout.take().expect("stdout").read_to_end(&mut stdout).expect("read stdout");
    child.0.stderr.take().expect("stderr").read_to_end(&mut stderr).expect("read stderr");
    Output { status, stdout, stderr }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    for _ in 0..(WAIT.as_millis() / 20) {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the binary did not exit in time");
}

#[tokio::test]
async fn binary_serves_on_an_ephemeral_port_and_stops_on_sigterm() {
    let (mut child, addr) = spawn(&["--dev-insecure", "--bind", "127.0.0.1:0"], None);
    assert_ne!(addr.port(), 0);
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut bob = Client::dev(addr, "str:bob").await;
    alice.send(&offer("str:bob", 1)).await;
    assert_eq!(bob.expect_signal().await.0, "str:alice");

    #[cfg(unix)]
    {
        let pid = child.0.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(killed.success());
        bob.expect_error(lanewire_signaling::protocol::ErrorCode::ShuttingDown).await;
        assert!(wait_exit(&mut child.0).success());
        let mut stderr = String::new();
        child.0.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
        assert!(stderr.contains("DEV-INSECURE"), "no loud warning in:\n{stderr}");
    }
}

#[tokio::test]
async fn binary_token_subcommand_mints_tokens_the_server_accepts() {
    let secret = "binary-test-secret-0123456789";
    let out = run(
        &["token", "--secret-env", SECRET_ENV, "--identity", "str:alice", "--ttl", "600"],
        Some(secret),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let minted = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
    assert_eq!(
        token::verify(secret.as_bytes(), &minted, unix_now()).expect("valid").as_str(),
        "str:alice"
    );

    // The server started with the same secret (from the environment) accepts it.
    let (_child, addr) = spawn(&["--bind=127.0.0.1:0"], Some(secret));
    let mut alice = Client::connect(addr).await;
    alice.send(&register_msg("str:alice", Some(minted))).await;
    alice.expect_registered("str:alice").await;
}

#[test]
fn binary_refuses_to_start_without_a_secret() {
    let out = run(&["--bind", "127.0.0.1:0"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no token secret"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = run(&["--bind", "127.0.0.1:0"], Some("too short"));
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn binary_takes_every_option_from_the_environment() {
    let mut cmd = Command::new(BIN);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove(SECRET_ENV).env_remove("RUST_LOG");
    cmd.env("LANEWIRE_SIGNALING_BIND", "127.0.0.1:0")
        .env("LANEWIRE_SIGNALING_DEV_INSECURE", "true")
        .env("LANEWIRE_SIGNALING_MAX_CONNECTIONS_PER_IP", "1")
        .env("LANEWIRE_SIGNALING_CAP_LOOPBACK", "true")
        .env("LANEWIRE_SIGNALING_MAX_FRAME_BYTES", "2048")
        .env("LANEWIRE_SIGNALING_LOG_FORMAT", "json");
    let mut child = Running(cmd.spawn().expect("spawn the binary"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("first stdout line in time");
    let addr: SocketAddr =
        line.trim().strip_prefix("listening on ").expect("address line").parse().expect("addr");
    let mut alice = Client::dev(addr, "str:alice").await;
    // max frame 2048 from the environment: a 3000-byte frame closes the connection.
    assert_eq!(http_get(addr, "/healthz").await.0, 429, "per-IP cap 1 from the environment");
    alice.send_text(&"x".repeat(3000)).await;
    alice.expect_error(lanewire_signaling::protocol::ErrorCode::FrameTooLarge).await;
    drop(alice);
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut stderr = String::new();
    child.0.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    assert!(
        stderr.lines().any(|l| l.starts_with('{')),
        "JSON logs from the environment:\n{stderr}"
    );
}

#[test]
fn binary_help_lists_flags_and_their_environment_variables() {
    let out = run(&["--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in
        ["--redis-url", "LANEWIRE_SIGNALING_REDIS_URL", "--max-connections-per-ip", "--turn-url"]
    {
        assert!(help.contains(word), "no {word} in\n{help}");
    }
    let out = run(&["--bogus"], None);
    assert_eq!(out.status.code(), Some(2));
}
