//! `cargo xtask test`: the whole check suite CI runs, one timed step after another.

use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::counts::{self, Counts};
use crate::setup::{self, Needs, WASM_TARGET};
use crate::util::{self, cargo, fmt_duration, timed};

/// Help for `cargo xtask test`.
pub(crate) const HELP: &str = "\
cargo xtask test: run setup, then every check CI runs, stopping at the first failure

USAGE: cargo xtask test [--quick] [--no-wasm] [--no-browser]

Steps, in order (each printed as a header with its wall time):
  fmt     cargo fmt --all --check
  clippy  cargo clippy --workspace --all-targets --all-features -- -D warnings
  test    cargo test --workspace --all-features --no-fail-fast
  wasm    cargo test -p lanewire-core --all-features --target wasm32-unknown-unknown --no-fail-fast
          (runner: wasm-bindgen-test-runner, tests run in Node.js)
  doc     cargo doc --workspace --no-deps  (RUSTDOCFLAGS=-D warnings)
  clippy-wasm  cargo clippy -p lanewire-web --target wasm32-unknown-unknown --all-targets
  npm-build    npm run build: the npm package in pkg/ (wasm-bindgen + wasm-opt -Oz)
  browser      wasm-bindgen-test of lanewire-web in headless Chromium, next to a signaling
               server, inside `unshare --net` (only lo)
  npm-test     node:test of the built package (exports, errors, tsc --noEmit), in a namespace
  e2e          Playwright: a page importing the packed package, in a namespace
  size         pkg/lanewire_bg.wasm raw and gzipped (-9): prints the distance to the 60 KB goal,
               fails above the gate (SIZE_GATE_GZIP in xtask/src/web.rs)

OPTIONS:
  --quick    only fmt and the native tests (skips clippy, wasm and doc)
  --no-wasm  skip the wasm32 step and the web steps (and installing their tools)
  --no-browser  skip the steps that start a browser (browser, e2e)
  -h, --help this text

Ends with a table of the steps and, as the last line, `N passed, N failed, N skipped` summed
over every `test result:` line of the cargo test runs and every node:test summary (a test run
that fails without reporting a failed test, e.g. a crash or a build error, counts as 1
failed). A test that cannot run here because a tool or a permission it needs is missing
(coturn, nftables, root for network namespaces, ...) prints `LANEWIRE-SKIP: <test>: <reason>`
and is counted as skipped, not passed; with CI=true in the environment it fails instead.
The environment (CARGO_TARGET_DIR, RUSTFLAGS, CI, ...) is passed through unchanged.";

/// One step of the suite.
pub(crate) struct Step {
    name: &'static str,
    /// `None` when the step does not run, with the reason.
    skip: Option<&'static str>,
    /// Whether its output holds test counts.
    counts: bool,
    /// Commands run first (builds outside a network namespace); the step fails if one does.
    prepare: Vec<Command>,
    cmd: Command,
}

impl Step {
    /// A step running `cmd`.
    pub(crate) fn new(
        name: &'static str,
        skip: Option<&'static str>,
        counts: bool,
        cmd: Command,
    ) -> Step {
        Step { name, skip, counts, prepare: Vec::new(), cmd }
    }

    /// Runs `cmd` before the step's command.
    pub(crate) fn prepare(mut self, cmd: Command) -> Step {
        self.prepare.push(cmd);
        self
    }
}

/// How a step ended.
enum Outcome {
    Passed(Duration),
    Failed(Duration),
    Skipped(&'static str),
    NotReached,
}

/// `cargo xtask test`.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let (mut quick, mut no_wasm, mut no_browser) = (false, false, false);
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--no-wasm" => no_wasm = true,
            "--no-browser" => no_browser = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("xtask test: unexpected argument `{arg}`\n\n{HELP}");
                return ExitCode::from(2);
            }
        }
    }
    let root = util::workspace_root();
    let wasm_skip = if quick {
        Some("--quick")
    } else if no_wasm {
        Some("--no-wasm")
    } else {
        None
    };
    let web = wasm_skip.is_none() && setup::needs_browser(&root);
    let needs = Needs { wasm: wasm_skip.is_none(), browser: web && !no_browser, npm: web };
    if let Err(e) = setup::ensure(needs) {
        eprintln!("\nxtask test: setup failed: {e}");
        return ExitCode::FAILURE;
    }
    let mut all = steps(quick.then_some("--quick"), wasm_skip);
    if setup::web_enabled(&root) {
        all.extend(crate::web::steps(wasm_skip, no_browser.then_some("--no-browser")));
    }
    run_steps(all)
}

fn steps(quick: Option<&'static str>, wasm_skip: Option<&'static str>) -> Vec<Step> {
    let mut wasm = cargo(["test", "-p", "lanewire-core", "--all-features", "--target"]);
    wasm.args([WASM_TARGET, "--no-fail-fast"]);
    wasm.env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner");
    let mut doc = cargo(["doc", "--workspace", "--no-deps"]);
    let rustdocflags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    doc.env("RUSTDOCFLAGS", format!("{rustdocflags} -D warnings").trim_start());
    vec![
        Step::new("fmt", None, false, cargo(["fmt", "--all", "--check"])),
        Step::new(
            "clippy",
            quick,
            false,
            cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::new(
            "test",
            None,
            true,
            cargo(["test", "--workspace", "--all-features", "--no-fail-fast"]),
        ),
        Step::new("wasm", wasm_skip, true, wasm),
        // The core without its default features (`crypto`, `hash-maps`), as the browser
        // package builds it: clean under clippy, and its unit tests (the null-cipher-only
        // handshake and the linear maps among them) pass.
        Step::new(
            "clippy-nocrypto",
            quick,
            false,
            cargo([
                "clippy",
                "-p",
                "lanewire-core",
                "--no-default-features",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::new(
            "test-nocrypto",
            None,
            true,
            cargo(["test", "-p", "lanewire-core", "--no-default-features", "--lib"]),
        ),
        Step::new("doc", quick, false, doc),
    ]
}

fn run_steps(steps: Vec<Step>) -> ExitCode {
    let mut total = Counts::default();
    let mut outcomes = Vec::new();
    let mut failure = None;
    let count = steps.len();
    for (i, mut step) in steps.into_iter().enumerate() {
        if let Some(reason) = step.skip {
            outcomes.push((step.name, Outcome::Skipped(reason)));
            continue;
        }
        if failure.is_some() {
            outcomes.push((step.name, Outcome::NotReached));
            continue;
        }
        util::header(&format!("[{}/{count}] {}: {}", i + 1, step.name, util::display(&step.cmd)));
        let (result, took) = timed(|| {
            for prep in &mut step.prepare {
                util::run(prep)?;
            }
            run_step(&mut step.cmd, step.counts)
        });
        let ok = match result {
            Ok((ok, mut counts)) => {
                if step.counts && !ok && counts.failed == 0 {
                    // A crashed or killed test binary, or a build error, prints no failed
                    // count: count the run as one failure so the closing line cannot read clean.
                    println!(
                        "<== {}: failed without reporting a failed test; counted as 1",
                        step.name
                    );
                    counts.failed = 1;
                }
                total += counts;
                if step.counts {
                    let ran = if counts.runs == 0 { " (no `test result:` line found)" } else { "" };
                    println!("<== {}: {counts}{ran}", step.name);
                }
                if !ok {
                    let cmd = util::display(&step.cmd);
                    failure = Some(format!("step `{}` failed: `{cmd}` exited non-zero", step.name));
                }
                ok
            }
            Err(e) => {
                failure = Some(format!("step `{}` failed: {e}", step.name));
                false
            }
        };
        let verdict = if ok { "passed" } else { "FAILED" };
        println!("<== {} {verdict} in {}", step.name, fmt_duration(took));
        outcomes.push((step.name, if ok { Outcome::Passed(took) } else { Outcome::Failed(took) }));
    }
    if let Some(msg) = &failure {
        eprintln!("\nxtask test: {msg}");
    }
    summary(&outcomes);
    println!("{total}");
    if failure.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Runs one step; `Ok((success, counts))`, or `Err` when it could not even start.
fn run_step(cmd: &mut Command, with_counts: bool) -> Result<(bool, Counts), String> {
    if with_counts {
        let out = util::run_captured(cmd)?;
        Ok((out.status.success(), counts::parse(&out.stdout)))
    } else {
        let status = cmd.status().map_err(|e| format!("could not start: {e}"))?;
        Ok((status.success(), Counts::default()))
    }
}

fn summary(outcomes: &[(&str, Outcome)]) {
    println!("\n{:<12} {:>8}  result", "step", "time");
    let mut total = Duration::ZERO;
    for (name, outcome) in outcomes {
        let (time, result) = match outcome {
            Outcome::Passed(d) => (fmt_duration(*d), "pass".to_owned()),
            Outcome::Failed(d) => (fmt_duration(*d), "FAIL".to_owned()),
            Outcome::Skipped(why) => ("-".to_owned(), format!("skipped ({why})")),
            Outcome::NotReached => ("-".to_owned(), "not run (earlier failure)".to_owned()),
        };
        if let Outcome::Passed(d) | Outcome::Failed(d) = outcome {
            total += *d;
        }
        println!("{name:<12} {time:>8}  {result}");
    }
    println!("{:<12} {:>8}", "total", fmt_duration(total));
}
