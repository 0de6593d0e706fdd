//! Helpers of the P2P behaviour tests: the real `lanewire-signaling` binary on 127.0.0.1,
//! peers registered at it with ICE bound to loopback, coturn, and bounded waits.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lanewire::{ConnectionHandle, ConnectionState, SignalingConfig, Sockets, StatusChanged};

// The same file as `common::skip`, on purpose: one helper for every test of the crate, also
// in the test binaries that use both `common` and `p2p_common`.
#[path = "../common/skip.rs"]
#[allow(clippy::duplicate_mod)]
mod skip;
#[allow(unused_imports)] // each test binary uses what it needs
pub use skip::{in_ci, skip};

/// Every wait is bounded by this unless it says otherwise.
pub const WAIT: Duration = Duration::from_secs(15);

/// The signaling server binary, built on first use if `cargo test -p lanewire` did not build
/// it (it is another package's binary).
pub fn signaling_binary() -> PathBuf {
    // target/<profile>/deps/<test-binary> -> target/<profile>/lanewire-signaling
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>").to_path_buf();
    let bin = dir.join("lanewire-signaling");
    if !bin.exists() {
        let profile_release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "lanewire-signaling", "--bin", "lanewire-signaling"]);
        if profile_release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the signaling server");
        assert!(status.success(), "building lanewire-signaling failed");
    }
    assert!(bin.exists(), "no signaling binary at {}", bin.display());
    bin
}

/// A running signaling server process; killed on drop.
pub struct SignalingServer {
    child: Child,
    pub addr: SocketAddr,
}

impl SignalingServer {
    /// Starts the real binary on `127.0.0.1:0` in dev-insecure mode.
    pub fn start() -> SignalingServer {
        Self::start_on("127.0.0.1:0".parse().unwrap())
    }

    /// Starts it on `bind` (to restart a killed server on the same port).
    pub fn start_on(bind: SocketAddr) -> SignalingServer {
        Self::start_with(bind, &[])
    }

    /// Starts it on `bind` with `extra` flags (for example `--turn-secret`).
    pub fn start_with(bind: SocketAddr, extra: &[&str]) -> SignalingServer {
        let mut cmd = Command::new(signaling_binary());
        cmd.args(["--dev-insecure", "--bind", &bind.to_string(), "--log", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env_remove("RUST_LOG");
        let mut child = cmd.spawn().expect("spawn lanewire-signaling");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("the signaling server prints its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        SignalingServer { child, addr }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Kills the process (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SignalingServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The signaling config of a test peer: ICE on loopback only.
pub fn sig_config(url: &str, identity: &str) -> SignalingConfig {
    SignalingConfig::new(url, identity).loopback_only()
}

/// A `Sockets` registered as `identity`.
pub fn peer(url: &str, identity: &str) -> Sockets {
    let s = Sockets::new().expect("sockets");
    s.connect_signaling(sig_config(url, identity)).expect("register at the signaling server");
    s
}

/// Waits for an event matching `f`; other events are dropped.
pub fn wait_event(
    s: &Sockets,
    timeout: Duration,
    mut f: impl FnMut(&StatusChanged) -> bool,
) -> StatusChanged {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no matching event within {timeout:?}");
        if let Some(ev) = s.wait_event(left)
            && f(&ev)
        {
            return ev;
        }
    }
}

/// Waits for the next incoming connection and accepts it.
pub fn accept_one(s: &Sockets, timeout: Duration) -> ConnectionHandle {
    let ev = wait_event(s, timeout, |e| e.is_incoming());
    s.accept(ev.conn).expect("accept");
    ev.conn
}

/// Waits until `conn` is in `state`, or panics with its info.
pub fn wait_state(s: &Sockets, conn: ConnectionHandle, state: ConnectionState, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = s.connection_info(conn).map(|i| i.state);
        if now == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connection {conn} is {now:?}, not {state:?}, after {timeout:?}: {:?}",
            s.connection_info(conn)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `conn` has ended; returns its state.
pub fn wait_ended(
    s: &Sockets,
    conn: ConnectionHandle,
    timeout: Duration,
) -> lanewire::ConnectionInfo {
    let deadline = Instant::now() + timeout;
    loop {
        let info = s.connection_info(conn).expect("the handle stays valid until closed");
        if info.state.is_ended() {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "connection {conn} still {:?} after {timeout:?}",
            info.state
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `client` connects to `server_identity` on `port` where `server` listens; returns (client
/// conn, server conn), both connected.
pub fn connect_p2p(
    server: &Sockets,
    client: &Sockets,
    server_identity: &str,
    port: u32,
    config: lanewire::Config,
) -> (ConnectionHandle, ConnectionHandle) {
    let c = client.connect_p2p(server_identity, port, config).expect("connect_p2p");
    let s = accept_one(server, WAIT);
    wait_state(client, c, ConnectionState::Connected, WAIT);
    wait_state(server, s, ConnectionState::Connected, WAIT);
    (c, s)
}

/// A coturn process on 127.0.0.1 with one long-term-credential user; killed on drop.
pub struct Coturn {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    /// One coturn at a time per test binary: two starting together on loaded machines were
    /// seen to miss the readiness deadline.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static COTURN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub const TURN_USER: &str = "lanewire";
pub const TURN_PASS: &str = "relay-secret";

impl Coturn {
    /// Starts `turnserver` for `test` with a fixed user. When coturn is not installed and
    /// cannot be installed here, reports `test` as skipped ([`skip`]: a failure under CI) and
    /// returns `None`. Installs it with apt-get when running as root with apt.
    pub fn start(test: &str) -> Option<Coturn> {
        Self::start_auth(
            test,
            &["--lt-cred-mech".to_owned(), format!("--user={TURN_USER}:{TURN_PASS}")],
        )
    }

    /// Like [`Coturn::start`], with time-limited credentials (the TURN REST scheme the
    /// signaling server mints with `--turn-secret`) checked against `secret` instead of the
    /// fixed user.
    pub fn start_with_secret(test: &str, secret: &str) -> Option<Coturn> {
        Self::start_auth(
            test,
            &["--use-auth-secret".to_owned(), format!("--static-auth-secret={secret}")],
        )
    }

    fn start_auth(test: &str, auth: &[String]) -> Option<Coturn> {
        let bin = match find_turnserver() {
            Ok(bin) => bin,
            Err(reason) => {
                skip(test, &reason);
                return None;
            }
        };
        let guard = COTURN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let port = free_udp_port();
        let dir =
            std::env::temp_dir().join(format!("lanewire-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("coturn scratch dir");
        let log = dir.join("turn.log");
        let mut child = Command::new(bin)
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--listening-ip=127.0.0.1"])
            .args(["--relay-ip=127.0.0.1", "--allow-loopback-peers"])
            .args(auth)
            .arg(format!("--listening-port={port}"))
            .args(["--min-port=49152", "--max-port=65535", "--realm=lanewire.test"])
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .arg(format!("--log-file={}", log.display()))
            .args(["--simple-log", "--no-stdout-log", "--no-software-attribute", "--no-rfc5780"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn turnserver");
        // Ready when it answers a STUN binding request on its port.
        let deadline = Instant::now() + WAIT;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let request: [u8; 20] =
            [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        loop {
            let _ = sock.send_to(&request, ("127.0.0.1", port));
            let mut buf = [0u8; 512];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && n >= 20
                && buf[0..2] == [0x01, 0x01]
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("turnserver exited with {status}: {log}");
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("turnserver did not answer on 127.0.0.1:{port} in {WAIT:?}: {log}");
            }
        }
        Some(Coturn { child, port, dir, _one_at_a_time: guard })
    }

    /// `host:port` for `P2PTurnServerList`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// coturn's `turnserver`, installed with apt-get if need be; or why there is none.
fn find_turnserver() -> Result<PathBuf, String> {
    let which = || {
        ["/usr/bin/turnserver", "/usr/local/bin/turnserver"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = which() {
        return Ok(p);
    }
    let apt = PathBuf::from("/usr/bin/apt-get");
    if apt.exists() {
        eprintln!("coturn is not installed: trying `apt-get install -y coturn`");
        let ok = Command::new(apt)
            .args(["install", "-y", "-q", "coturn"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok && let Some(p) = which() {
            return Ok(p);
        }
    }
    Err("coturn's turnserver is not installed and apt-get could not install it; run \
         `apt-get install -y coturn` (or `cargo xtask setup`) to run the TURN tests"
        .to_owned())
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}
