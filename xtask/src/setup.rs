//! `cargo xtask setup`: installs what the tests need, idempotently, saying what it does.

use std::path::Path;
use std::process::Command;

use crate::util::{self, probe, timed};

/// Help for `cargo xtask setup`.
pub(crate) const HELP: &str = "\
cargo xtask setup: install what the tests need (idempotent; prints each action)

USAGE: cargo xtask setup

Installs, when missing:
  - the wasm32-unknown-unknown Rust target (rustup target add)
  - wasm-bindgen-cli at exactly the version of `wasm-bindgen` in Cargo.lock
    (cargo install --locked, retried unlocked if that fails; skipped when wasm-bindgen-test-runner already has that version)
  - Chromium and chromedriver from apt, only when a browser test exists (a web/ or www/
    directory at the workspace root)
  - the npm dev dependencies of package.json (`npm ci`: binaryen's wasm-opt, TypeScript,
    playwright-core without its browser download), when node_modules is missing or older
    than package-lock.json
  - nftables, coturn, iproute2 and redis-server from apt, when missing";

/// The Rust target the core is tested on in Node.js and in browsers.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Where Debian's Chromium keeps the real browser binary (the `/usr/bin` one is a wrapper).
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// Debian's chromium-driver.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// What a run needs installed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Needs {
    /// The wasm32 target and the wasm-bindgen test runner.
    pub(crate) wasm: bool,
    /// Chromium and chromedriver, for browser tests.
    pub(crate) browser: bool,
    /// Node.js and the npm dev dependencies, for the npm package.
    pub(crate) npm: bool,
}

impl Needs {
    /// Everything the full test suite of this checkout needs.
    pub(crate) fn all(root: &Path) -> Needs {
        let web = needs_browser(root);
        Needs { wasm: true, browser: web, npm: web && root.join("package.json").is_file() }
    }
}

/// Browser tests live with the web crate: they run once `web` is a member of the workspace
/// (a `web/` directory alone, work in progress, does not switch them on).
pub(crate) fn needs_browser(root: &Path) -> bool {
    web_enabled(root)
}

/// True when `web/` exists and the root manifest lists it as a workspace member.
pub(crate) fn web_enabled(root: &Path) -> bool {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let members = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .is_some_and(|l| l.contains("\"web\""));
    root.join("web").is_dir() && members
}

/// `cargo xtask setup`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`\n\n{HELP}"));
    }
    ensure(Needs::all(&util::workspace_root()))
}

/// Installs whatever of `needs` is missing.
pub(crate) fn ensure(needs: Needs) -> Result<(), String> {
    let root = util::workspace_root();
    util::header("setup");
    if needs.wasm {
        ensure_wasm_target()?;
        ensure_wasm_bindgen_cli(&root)?;
    }
    if needs.browser {
        ensure_chromium()?;
    } else {
        println!("setup: browser: not needed (no web/ or www/ directory)");
    }
    if needs.npm {
        ensure_npm_packages(&root)?;
    }
    ensure_system_tools()?;
    Ok(())
}

/// Debian packages the native tests use when present: nftables (real packet loss between two
/// network namespaces), coturn (the TURN relay of the P2P tests), iproute2 (`ip`, `tc`) and
/// redis-server (the signaling server's scale-out tests start private instances of it).
const SYSTEM_TOOLS: &[(&str, &str)] = &[
    ("nft", "nftables"),
    ("turnserver", "coturn"),
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("redis-server", "redis-server"),
];

/// Installs the missing ones with apt-get (once, together).
fn ensure_system_tools() -> Result<(), String> {
    let on_path = |bin: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            || ["/usr/sbin", "/sbin", "/usr/bin"].iter().any(|d| Path::new(d).join(bin).is_file())
    };
    let mut missing: Vec<&str> =
        SYSTEM_TOOLS.iter().filter(|(bin, _)| !on_path(bin)).map(|(_, pkg)| *pkg).collect();
    missing.dedup();
    if missing.is_empty() {
        println!("setup: nftables, coturn, iproute2, redis-server: already installed");
        return Ok(());
    }
    println!("setup: installing {} with apt-get", missing.join(", "));
    let apt = || {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    util::run(apt().arg("update"))?;
    util::run(apt().args(["install", "-y"]).args(&missing))
}

/// `npm ci` when node_modules is missing or older than package-lock.json.
fn ensure_npm_packages(root: &Path) -> Result<(), String> {
    let Some(version) = probe("node", &["--version"]) else {
        return Err("Node.js not found: install Node.js 18 or later (apt-get install nodejs npm)"
            .to_owned());
    };
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (modified(&lock), modified(&installed)) {
        (Some(l), Some(i)) => i >= l,
        _ => false,
    };
    if fresh {
        println!("setup: npm packages (node {version}): already installed");
        return Ok(());
    }
    println!("setup: npm packages (node {version}): npm ci");
    let mut cmd = Command::new("npm");
    // playwright-core drives the system Chromium; it must not download a browser.
    cmd.args(["ci", "--no-audit", "--no-fund"])
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(root);
    util::run(&mut cmd)
}

fn ensure_wasm_target() -> Result<(), String> {
    let Some(installed) = probe("rustup", &["target", "list", "--installed"]) else {
        println!("setup: rustup not found; assuming the {WASM_TARGET} standard library is present");
        return Ok(());
    };
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        println!("setup: {WASM_TARGET} target: already installed");
        return Ok(());
    }
    println!("setup: {WASM_TARGET} target: installing");
    util::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn ensure_wasm_bindgen_cli(root: &Path) -> Result<(), String> {
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .map_err(|e| format!("reading {}: {e}", lock_path.display()))?;
    let Some(want) = locked_version(&lock, "wasm-bindgen")? else {
        println!("setup: wasm-bindgen-cli: not needed (no wasm-bindgen in Cargo.lock)");
        return Ok(());
    };
    // Prints e.g. `wasm-bindgen-test-runner 0.2.130`.
    let have = probe("wasm-bindgen-test-runner", &["--version"])
        .and_then(|v| v.split_whitespace().last().map(str::to_owned));
    match have {
        Some(have) if have == want => {
            println!("setup: wasm-bindgen-cli {want}: already installed");
            return Ok(());
        }
        Some(have) => println!("setup: wasm-bindgen-cli: have {have}, Cargo.lock wants {want}"),
        None => println!("setup: wasm-bindgen-cli: not installed, Cargo.lock wants {want}"),
    }
    println!("setup: installing wasm-bindgen-cli {want} (compiles from source; takes minutes)");
    let install = |locked: bool| {
        let mut cmd = Command::new("cargo");
        cmd.arg("install");
        if locked {
            cmd.arg("--locked");
        }
        util::run(cmd.args(["wasm-bindgen-cli", "--version", &want]))
    };
    let (result, took) = timed(|| {
        install(true).or_else(|e| {
            // The CLI's own lockfile can name a crate version the registry (or a mirror of
            // it) does not serve; resolving afresh within semver still gives the same CLI.
            println!("setup: {e}; retrying without --locked");
            install(false)
        })
    });
    result?;
    println!("setup: wasm-bindgen-cli {want} installed in {}", util::fmt_duration(took));
    Ok(())
}

/// Installs Debian's Chromium and chromedriver when either binary is missing.
fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        println!("setup: chromium: already installed ({CHROMIUM})");
        return Ok(());
    }
    println!("setup: chromium: installing chromium and chromium-driver with apt-get");
    let apt = || {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    util::run(apt().arg("update"))?;
    util::run(apt().args(["install", "-y", "chromium", "chromium-driver"]))
}

/// The version of package `name` in a Cargo.lock; an error when several versions are locked
/// (the CLI must match exactly one).
pub(crate) fn locked_version(lock: &str, name: &str) -> Result<Option<String>, String> {
    let mut versions = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        if field("name").as_deref() == Some(name) {
            versions.extend(field("version"));
        }
    }
    match versions.len() {
        0 => Ok(None),
        1 => Ok(versions.pop()),
        _ => Err(format!("Cargo.lock has several versions of {name}: {}", versions.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_locked_version() {
        let lock = r#"
version = 4

[[package]]
name = "wasm-bindgen-test"
version = "0.3.80"

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]
"#;
        assert_eq!(locked_version(lock, "wasm-bindgen").unwrap().as_deref(), Some("0.2.130"));
        assert_eq!(locked_version(lock, "serde").unwrap(), None);
        let twice = format!("{lock}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.99\"\n");
        assert!(locked_version(&twice, "wasm-bindgen").is_err());
    }
}
