//! The browser and npm steps of `cargo xtask test`, and two hidden helpers they run:
//!
//! - `__netns [--signaling ADDR] -- CMD...` runs CMD inside the network namespace it was
//!   started in by `unshare --net` (only `lo`, brought up here), optionally next to a
//!   `lanewire-signaling --dev-insecure` on ADDR, and exits with CMD's status. Browsers never
//!   touch the host network this way.
//! - `__wasm-size FILE` prints a .wasm file's size raw and gzipped (-9), how far it is from the
//!   size goal, and fails above the size gate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::setup::WASM_TARGET;
use crate::test::Step;
use crate::util::{self, cargo};

/// Where the browser tests find the signaling server: a fixed port is safe because each run
/// has a namespace of its own, and it lets the test binary be built (with the URL compiled
/// in) outside the namespace, where the registry is reachable.
const SIGNALING_ADDR: &str = "127.0.0.1:27087";

/// The size goal of the browser issue for the gzipped .wasm (matchbox's browser client is
/// 75.7 KB measured the same way: wasm-opt -Oz, gzip -9). Not reached yet (94.4 KB):
/// the size step prints how far off it is.
const SIZE_GOAL_GZIP: u64 = 60_000;

/// What the size step fails above: the size reached, plus a little room, so that growth is
/// a decision rather than an accident. Lower it as the module shrinks toward the goal.
/// Raised from 89,500 to 95,500 for the adaptive transport (flow control, congestion control,
/// reordering and loss detection, key and path state: 87,288 -> 94,441 bytes); the budget of
/// 87,288 is exceeded, see web/README.md, Size.
const SIZE_GATE_GZIP: u64 = 95_500;

/// The packaged module.
const PKG_WASM: &str = "pkg/lanewire_bg.wasm";

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d))
}

/// `unshare --net <this xtask> __netns [--signaling ADDR] -- program args...`
fn in_netns(signaling: bool, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.arg("--net").arg("--");
    cmd.arg(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("xtask")));
    cmd.arg("__netns");
    if signaling {
        cmd.args(["--signaling", SIGNALING_ADDR]);
    }
    cmd.arg("--").arg(program).args(args);
    cmd.current_dir(util::workspace_root());
    util::as_plain_build(&mut cmd);
    cmd
}

/// The web steps, in order: clippy for wasm32, the npm build, the wasm-bindgen tests in
/// Chromium, node:test + tsc on the package, Playwright, and the size check.
pub(crate) fn steps(skip: Option<&'static str>, no_browser: Option<&'static str>) -> Vec<Step> {
    let root = util::workspace_root();
    let browser_skip = skip.or(no_browser);
    let url = format!("ws://{SIGNALING_ADDR}/ws");

    let clippy = cargo([
        "clippy",
        "-p",
        "lanewire-web",
        "--target",
        WASM_TARGET,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);

    let mut npm_build = Command::new("npm");
    npm_build.args(["run", "build"]).current_dir(&root);
    util::as_plain_build(&mut npm_build);

    let mut size = Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into()));
    size.arg("__wasm-size").arg(root.join(PKG_WASM));

    // wasm-bindgen-test in headless Chromium, next to a signaling server.
    let browser_env = |cmd: &mut Command| {
        cmd.env("LANEWIRE_TEST_SIGNALING_URL", &url)
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner")
            .env("CHROMEDRIVER", "/usr/bin/chromedriver")
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
            .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", root.join("web/webdriver.json"));
    };
    let mut build_tests = cargo(["test", "-p", "lanewire-web", "--target", WASM_TARGET]);
    build_tests.args(["--tests", "--no-run"]);
    browser_env(&mut build_tests);
    let mut browser = in_netns(
        true,
        "cargo",
        &[
            "test",
            "--offline",
            "-p",
            "lanewire-web",
            "--target",
            WASM_TARGET,
            "--tests",
            "--",
            "--nocapture",
        ],
    );
    browser_env(&mut browser);

    let node_tests = in_netns(false, "node", &["--test", "--test-reporter=tap", "web/tests/node/"]);

    // Playwright pages, and the browser <-> native and demo tests, which also run native
    // examples (WebRTC feature) and this xtask (the demo stack).
    let mut e2e = in_netns(false, "node", &["--test", "--test-reporter=tap", "web/tests/e2e/"]);
    e2e.env("LANEWIRE_SIGNALING_BIN", target_dir(&root).join("debug/lanewire-signaling"))
        .env("LANEWIRE_EXAMPLES_DIR", target_dir(&root).join("debug/examples"))
        .env("LANEWIRE_XTASK_BIN", std::env::current_exe().unwrap_or_else(|_| "xtask".into()));

    vec![
        // The npm package's configuration too: no `std`, its own allocator and panic handler.
        Step::new("clippy-wasm", skip, false, clippy).prepare(cargo([
            "clippy",
            "-p",
            "lanewire-web",
            "--target",
            WASM_TARGET,
            "--lib",
            "--no-default-features",
            "--",
            "-D",
            "warnings",
        ])),
        Step::new("npm-build", skip, false, npm_build),
        Step::new("browser", browser_skip, true, browser)
            .prepare(cargo(["build", "-p", "lanewire-signaling"]))
            .prepare(build_tests),
        Step::new("npm-test", skip, true, node_tests),
        Step::new("e2e", browser_skip, true, e2e)
            .prepare(cargo(["build", "-p", "lanewire-signaling"]))
            .prepare(cargo(["build", "-p", "lanewire", "--all-features", "--examples"])),
        // Last, so a module over budget still gets every test run and counted.
        Step::new("size", skip, false, size),
    ]
}

/// `__netns [--signaling ADDR] -- CMD...`: see the module docs.
pub(crate) fn netns(args: &[String]) -> ExitCode {
    let (signaling, cmd) = match args {
        [flag, addr, dash, cmd @ ..] if flag == "--signaling" && dash == "--" => {
            (Some(addr.as_str()), cmd)
        }
        [dash, cmd @ ..] if dash == "--" => (None, cmd),
        _ => {
            eprintln!("usage: xtask __netns [--signaling ADDR] -- CMD...");
            return ExitCode::from(2);
        }
    };
    let Some((program, rest)) = cmd.split_first() else {
        eprintln!("xtask __netns: no command");
        return ExitCode::from(2);
    };
    if let Err(e) = util::run(Command::new("ip").args(["link", "set", "lo", "up"])) {
        eprintln!("xtask __netns: {e} (run under `unshare --net`, as root)");
        return ExitCode::FAILURE;
    }
    let mut server = None;
    if let Some(addr) = signaling {
        let bin = target_dir(&util::workspace_root()).join("debug/lanewire-signaling");
        let child = Command::new(&bin)
            .args(["--bind", addr, "--dev-insecure", "--log", "warn"])
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("xtask __netns: could not start {}: {e}", bin.display());
                return ExitCode::FAILURE;
            }
        };
        // The server's first stdout line says it listens; EOF means it failed to start.
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        let _ = BufReader::new(stdout).read_line(&mut first);
        if !first.starts_with("listening on") {
            eprintln!("xtask __netns: signaling server did not start (said {first:?})");
            let _ = child.kill();
            return ExitCode::FAILURE;
        }
        println!("xtask __netns: signaling server {}", first.trim());
        server = Some(child);
    }
    let status = Command::new(program).args(rest).status();
    if let Some(mut s) = server {
        let _ = s.kill();
        let _ = s.wait();
    }
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("xtask __netns: could not start `{program}`: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `__wasm-size FILE`: see the module docs.
pub(crate) fn wasm_size(args: &[String]) -> ExitCode {
    let [file] = args else {
        eprintln!("usage: xtask __wasm-size FILE");
        return ExitCode::from(2);
    };
    let raw = match std::fs::metadata(file) {
        Ok(m) => m.len(),
        Err(e) => {
            eprintln!("xtask __wasm-size: {file}: {e} (run `npm run build`)");
            return ExitCode::FAILURE;
        }
    };
    let gz = Command::new("gzip").args(["-9", "-c", file]).output();
    let gzip = match gz {
        Ok(o) if o.status.success() => o.stdout.len() as u64,
        _ => {
            eprintln!("xtask __wasm-size: gzip -9 failed on {file}");
            return ExitCode::FAILURE;
        }
    };
    let kb = |n: u64| n as f64 / 1000.0;
    println!(
        "wasm size: {raw} bytes raw ({:.1} KB), {gzip} bytes gzipped -9 ({:.1} KB)",
        kb(raw),
        kb(gzip)
    );
    if gzip > SIZE_GOAL_GZIP {
        println!(
            "wasm size: {:.1} KB over the {:.1} KB goal (see web/README.md, Size); gate {:.1} KB",
            kb(gzip - SIZE_GOAL_GZIP),
            kb(SIZE_GOAL_GZIP),
            kb(SIZE_GATE_GZIP)
        );
    } else {
        println!("wasm size: within the {:.1} KB goal", kb(SIZE_GOAL_GZIP));
    }
    if gzip > SIZE_GATE_GZIP {
        eprintln!(
            "xtask __wasm-size: {file} is {:.1} KB gzipped, over the {:.1} KB gate",
            kb(gzip),
            kb(SIZE_GATE_GZIP)
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
