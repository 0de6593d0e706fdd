//! `cargo xtask demo`: the cross-platform demo in one command.
//!
//! Builds what is missing or stale (the npm package in `pkg/`, the signaling server, the
//! native `demo_client` example), copies `www/` and the package into `target/demo-site/`,
//! starts `lanewire-signaling --dev-insecure` on 127.0.0.1 serving that directory, starts the
//! native host (`demo_client --host`, identity `str:demo-host`) and any extra native bots,
//! prints the URL, and runs until Ctrl-C.
//!
//! Shutting down: a terminal's Ctrl-C reaches the whole foreground process group, so the
//! signaling server (which handles SIGINT) and the clients stop with this process. The
//! clients also get a pipe on stdin that only this process holds (`demo_client --stdin`):
//! however this process ends, their input ends and they leave. When a child exits on its
//! own, or starting fails half-way, the children started so far are killed by pid.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::setup::{self, Needs};
use crate::util::{self, cargo};

/// Help for `cargo xtask demo`.
pub(crate) const HELP: &str = "\
cargo xtask demo: build and serve the cross-platform demo (browser tabs + native clients)

USAGE: cargo xtask demo [--port N] [--no-native] [--bots N] [--loopback] [--no-build]

Starts, on 127.0.0.1 only:
  - lanewire-signaling in dev-insecure mode (no tokens: a local demo, never expose it),
    serving the page (www/) and the npm package (pkg/) on the same port as its WebSocket
  - the native host: `demo_client --host` (identity str:demo-host, virtual port 0), which
    every participant connects to (a star), with its own dot
and prints the URL. Open it in two tabs, then add native players from another terminal:
  cargo run -p lanewire --features webrtc --example demo_client -- --name bot --signaling ws://127.0.0.1:8080/ws
Ctrl-C stops everything.

OPTIONS:
  --port N      HTTP + WebSocket port (default 8080; 0 picks a free one)
  --no-native   do not start the native host (some other process must host as str:demo-host)
  --bots N      also start N native bots (default 0)
  --loopback    native ICE on 127.0.0.1 only (default: every interface, loopback included)
  --no-build    use what is built (pkg/, target/debug/...) without building";

/// Options of `cargo xtask demo`.
struct Opts {
    port: u16,
    native: bool,
    bots: u32,
    loopback: bool,
    build: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts { port: 8080, native: true, bots: 0, loopback: false, build: true };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value\n\n{HELP}"));
        match a.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--bots" => o.bots = value()?.parse().map_err(|e| format!("--bots: {e}"))?,
            "--no-native" => o.native = false,
            "--loopback" => o.loopback = true,
            "--no-build" => o.build = false,
            other => return Err(format!("unexpected argument `{other}`\n\n{HELP}")),
        }
    }
    Ok(o)
}

/// The processes started so far; dropping it kills them (by pid) and reaps them.
#[derive(Default)]
struct Children(Vec<(String, Child, Option<ChildStdin>)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child, stdin) in &mut self.0 {
            drop(stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d))
}

/// `cargo xtask demo`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    let started = Instant::now();
    let root = util::workspace_root();
    let target = target_dir(&root);
    if opts.build {
        build(&root)?;
    }
    let signaling_bin = std::env::var_os("LANEWIRE_SIGNALING_BIN")
        .map_or_else(|| target.join("debug/lanewire-signaling"), PathBuf::from);
    let examples = std::env::var_os("LANEWIRE_EXAMPLES_DIR")
        .map_or_else(|| target.join("debug/examples"), PathBuf::from);
    let client_bin = examples.join("demo_client");
    for (bin, how) in [
        (&signaling_bin, "cargo build -p lanewire-signaling"),
        (&client_bin, "cargo build -p lanewire --features webrtc --example demo_client"),
    ] {
        if !bin.is_file() {
            return Err(format!("{} is missing: run `{how}` (or drop --no-build)", bin.display()));
        }
    }
    let site = target.join("demo-site");
    assemble_site(&root, &site)?;

    let mut children = Children::default();
    // The signaling server prints `listening on ADDR` first (EOF: it could not start).
    let mut server = Command::new(&signaling_bin)
        .args(["--bind", &format!("127.0.0.1:{}", opts.port), "--dev-insecure", "--static"])
        .arg(&site)
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", signaling_bin.display()))?;
    let stdout = server.stdout.take().expect("stdout is piped");
    println!("demo: started lanewire-signaling (pid {})", server.id());
    children.0.push(("lanewire-signaling".into(), server, None));
    let mut first = String::new();
    let _ = BufReader::new(stdout).read_line(&mut first);
    let Some(addr) = first.strip_prefix("listening on ").map(|a| a.trim().to_owned()) else {
        return Err(format!(
            "the signaling server did not start (said {first:?}); is port {} free? \
             (--port N, or --port 0 for any)",
            opts.port
        ));
    };
    let ws = format!("ws://{addr}/ws");

    if opts.native {
        let mut args = vec!["--host".to_owned(), "--signaling".to_owned(), ws.clone()];
        if opts.loopback {
            args.push("--loopback".into());
        }
        start_client(&mut children, &client_bin, "host", &args)?;
    }
    for i in 1..=opts.bots {
        let name = format!("bot-{i}");
        let mut args =
            vec!["--name".to_owned(), name.clone(), "--signaling".to_owned(), ws.clone()];
        if opts.loopback {
            args.push("--loopback".into());
        }
        start_client(&mut children, &client_bin, &name, &args)?;
    }

    let url = format!("http://{addr}/");
    println!();
    println!("demo: ready in {:.2} s", started.elapsed().as_secs_f64());
    println!("demo: open {url} in two browser tabs (add ?name=alice to pick a name)");
    println!(
        "demo: more native players: cargo run -p lanewire --features webrtc --example \
         demo_client -- --name bot --signaling {ws}"
    );
    println!(
        "demo: signaling in DEV-INSECURE mode (no tokens, anyone can claim any identity): \
         127.0.0.1 only"
    );
    println!("demo: Ctrl-C stops everything");
    println!();

    // Until Ctrl-C (which stops this process and its children together), watch the children:
    // if one ends, stop the others.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        for (name, child, _) in &mut children.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} (pid {}) exited ({status}): stopping", child.id()));
            }
        }
    }
}

/// Starts `demo_client` with `args`, prefixes its output lines with `[name]`, and waits for
/// its `ready` line (it registered at the signaling server).
fn start_client(
    children: &mut Children,
    bin: &Path,
    name: &str,
    args: &[String],
) -> Result<(), String> {
    let mut child = Command::new(bin)
        .args(args)
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", bin.display()))?;
    println!("demo: started demo_client {} (pid {})", args.join(" "), child.id());
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdin = child.stdin.take();
    children.0.push((format!("demo_client {name}"), child, stdin));
    let (tx, rx) = mpsc::channel();
    let prefix = format!("[{name}]");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("ready") {
                let _ = tx.send(());
            }
            println!("{prefix} {line}");
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => Ok(()),
        Err(_) => Err(format!("demo_client {name} did not register within 20 s")),
    }
}

/// Builds the package (when stale), the signaling server and the native client.
fn build(root: &Path) -> Result<(), String> {
    util::header("demo: build");
    let wasm = root.join("pkg/lanewire_bg.wasm");
    let sources = [
        "web/src",
        "core/src",
        "web/Cargo.toml",
        "core/Cargo.toml",
        "Cargo.lock",
        "web/build.mjs",
        "package.json",
    ];
    let newest = sources.iter().filter_map(|s| newest_mtime(&root.join(s))).max();
    let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
    match (built, newest) {
        (Some(b), Some(n)) if b >= n => println!("demo: pkg/ is up to date"),
        _ => {
            setup::ensure(Needs { wasm: true, browser: false, npm: true })?;
            let mut npm = Command::new("npm");
            npm.args(["run", "build"]).current_dir(root);
            util::run(util::as_plain_build(&mut npm))?;
        }
    }
    util::run(&mut cargo(["build", "-p", "lanewire-signaling"]))?;
    util::run(&mut cargo([
        "build",
        "-p",
        "lanewire",
        "--features",
        "webrtc",
        "--example",
        "demo_client",
    ]))
}

/// The newest modification time of a file, or of any file under a directory.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.flatten().filter_map(|e| newest_mtime(&e.path())).max()
}

/// `site/`: everything in `www/`, and the package's published files in `site/pkg/`.
fn assemble_site(root: &Path, site: &Path) -> Result<(), String> {
    let pkg = root.join("pkg");
    if !pkg.join("lanewire_bg.wasm").is_file() {
        return Err("pkg/ holds no build: run `npm run build` (or drop --no-build)".into());
    }
    let _ = std::fs::remove_dir_all(site);
    copy_dir(&root.join("www"), site)?;
    let out = site.join("pkg");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for f in ["lanewire.js", "lanewire_bg.wasm"] {
        std::fs::copy(pkg.join(f), out.join(f)).map_err(|e| format!("copying pkg/{f}: {e}"))?;
    }
    copy_dir(&pkg.join("snippets"), &out.join("snippets"))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
        }
    }
    Ok(())
}
