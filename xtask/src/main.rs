//! `cargo xtask`: one entry point for every developer task.
//!
//! A plain binary whose one dependency is `lanewire-core` (for `cert`, with default features
//! only: the crypto crates, no simulator). Each area is a module: [`setup`] installs tools,
//! [`mod@test`] runs the CI suite, [`mod@bench`] runs benchmarks and soaks, [`fuzz`] runs the
//! fuzz targets, [`cert`] makes CA keys and certificates, [`demo`] builds and serves the
//! cross-platform demo, and [`util`] runs commands.

mod bench;
mod cert;
mod counts;
mod demo;
mod fuzz;
mod setup;
mod test;
mod util;
mod web;

use std::process::ExitCode;

const HELP: &str = "\
cargo xtask: Lanewire's developer tasks

USAGE: cargo xtask <COMMAND> [OPTIONS]    (cargo xtask <COMMAND> --help for details)

COMMANDS:
  setup   install what the tests need (wasm32 target, wasm-bindgen-cli, browser when needed)
  test    setup, then fmt, clippy, native tests, wasm32 tests in Node.js, docs (what CI runs)
  bench   run the benchmarks: core, native or all
  soak    run the long #[ignore] soak tests in release mode
  demo    build and serve the demo: page, signaling server and a native client on localhost
  fuzz    run each fuzz target for a bounded time (cargo-fuzz, on the stable toolchain)
  cert    make an application CA key, issue and verify identity certificates";

/// A subcommand that reports failure as a message.
type Task = fn(&[String]) -> Result<(), String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{HELP}");
        return ExitCode::from(2);
    };
    let wants_help = rest.iter().any(|a| a == "-h" || a == "--help");
    let (task, help): (Task, &str) = match command.as_str() {
        "-h" | "--help" | "help" => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        "test" => return test::main(rest),
        // Hidden helpers of the web steps of `test` (see web.rs).
        "__netns" => return web::netns(rest),
        "__wasm-size" => return web::wasm_size(rest),
        "setup" => (setup::main, setup::HELP),
        "bench" => (bench::bench, bench::BENCH_HELP),
        "soak" => (bench::soak, bench::SOAK_HELP),
        "demo" => (demo::main, demo::HELP),
        "fuzz" => (fuzz::main, fuzz::HELP),
        "cert" => (cert::main, cert::HELP),
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    if wants_help {
        println!("{help}");
        return ExitCode::SUCCESS;
    }
    match task(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: {e}");
            ExitCode::FAILURE
        }
    }
}
