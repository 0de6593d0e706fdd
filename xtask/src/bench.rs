//! `cargo xtask bench` and `cargo xtask soak`: the long-running measurements.

use crate::counts;
use crate::util::{self, cargo};

/// Help for `cargo xtask bench`.
pub(crate) const BENCH_HELP: &str = "\
cargo xtask bench: run the benchmarks

USAGE: cargo xtask bench [core|native|all]   (default: core)

  core    cargo bench -p lanewire-core --features sim --bench core
  native  cargo bench -p lanewire --bench native: Lanewire against ENet, QUIC and raw UDP
          (W1-W6), and, with feature webrtc, the data-channel benchmark
  all     every benchmark that exists";

/// Help for `cargo xtask soak`.
pub(crate) const SOAK_HELP: &str = "\
cargo xtask soak: run the long soak tests

USAGE: cargo xtask soak

Runs: cargo test -p lanewire-core --features sim --release -- --ignored soak
      cargo test -p lanewire --release --test soak_udp -- --ignored soak

Long soaks are tests marked #[ignore] whose names contain `soak`, so `cargo test` skips them
and this command runs only them, optimised: the core's over the simulator, and the native
crate's over real UDP on 127.0.0.1 (LANEWIRE_SOAK_MINUTES per link, default 10).";

/// `cargo xtask bench`.
pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let which = match args {
        [] => "core",
        [one] if ["core", "native", "all"].contains(&one.as_str()) => one.as_str(),
        _ => return Err(format!("unexpected arguments {args:?}\n\n{BENCH_HELP}")),
    };
    if which != "native" {
        bench_core()?;
    }
    if which != "core" {
        bench_native()?;
    }
    Ok(())
}

fn bench_native() -> Result<(), String> {
    util::run(&mut cargo(["bench", "-p", "lanewire", "--bench", "native"]))?;
    let manifest = std::fs::read_to_string(util::workspace_root().join("native/Cargo.toml"))
        .unwrap_or_default();
    if manifest.contains("name = \"p2p\"") {
        util::run(&mut cargo([
            "bench",
            "-p",
            "lanewire",
            "--features",
            "webrtc",
            "--bench",
            "p2p",
        ]))?;
    }
    Ok(())
}

fn bench_core() -> Result<(), String> {
    let core = util::workspace_root().join("core");
    let manifest = std::fs::read_to_string(core.join("Cargo.toml")).unwrap_or_default();
    let declared = manifest.split("[[bench]]").skip(1).any(|b| {
        b.lines().any(|l| {
            l.split_once('=').is_some_and(|(k, v)| k.trim() == "name" && v.trim() == "\"core\"")
        })
    });
    let exists = declared
        || core.join("benches/core.rs").is_file()
        || core.join("benches/core/main.rs").is_file();
    if !exists {
        return Err("lanewire-core has no `core` bench target yet \
                    (expected core/benches/core.rs or a [[bench]] named \"core\")"
            .to_owned());
    }
    util::header("bench core");
    util::run(&mut cargo(["bench", "-p", "lanewire-core", "--features", "sim", "--bench", "core"]))
}

/// `cargo xtask soak`.
pub(crate) fn soak(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`\n\n{SOAK_HELP}"));
    }
    let mut total = String::new();
    for args in [
        &[
            "test",
            "-p",
            "lanewire-core",
            "--features",
            "sim",
            "--release",
            "--",
            "--ignored",
            "soak",
        ][..],
        &[
            "test",
            "-p",
            "lanewire",
            "--release",
            "--test",
            "soak_udp",
            "--",
            "--ignored",
            "soak",
            "--nocapture",
        ][..],
    ] {
        let mut cmd = cargo(args.iter().copied());
        util::header(&format!("soak: {}", util::display(&cmd)));
        let out = util::run_captured(&mut cmd)?;
        util::check(&cmd, out.status)?;
        total.push_str(&out.stdout);
    }
    let counts = counts::parse(&total);
    if counts.passed + counts.failed == 0 {
        println!("\nxtask soak: no soak tests exist yet, nothing ran");
    }
    println!("{counts}");
    Ok(())
}
