//! `cargo xtask fuzz`: runs each cargo-fuzz target of `fuzz/` for a bounded time and reports
//! executions and crashes.
//!
//! cargo-fuzz passes nightly-only flags (`-Zsanitizer`, `-Cpasses=sancov-module`); the project
//! pins a stable toolchain, so the runs set `RUSTC_BOOTSTRAP=1`, which lets a stable compiler
//! accept them. Targets are built in release mode with debug assertions and overflow checks
//! (an overflow on network input is a finding) and, by default, without a sanitizer: the core
//! is `forbid(unsafe_code)`, so AddressSanitizer mostly re-checks what the compiler proved, at a
//! 3-8x cost in executions. `--asan` turns it back on.
//!
//! libFuzzer reads the committed seeds in `fuzz/corpus/<target>` and writes what it finds to
//! `fuzz/work/<target>` (ignored by git), so the seed corpus stays small and reviewed. Each
//! run's full log is kept in `fuzz/work/<target>.log`; crash inputs land in
//! `fuzz/artifacts/<target>/`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::{self, cargo};

/// Help for `cargo xtask fuzz`.
pub(crate) const HELP: &str = "\
cargo xtask fuzz: run the fuzz targets for a bounded time

USAGE: cargo xtask fuzz [--seconds N] [--asan] [TARGET...]

  --seconds N  how long to fuzz each target (default 60)
  --asan       build with AddressSanitizer (3-8x fewer executions; default: no sanitizer)
  TARGET       packet_decode, frame_decode, handshake, endpoint_recv (default: all)

Installs cargo-fuzz if missing, builds the targets (RUSTC_BOOTSTRAP=1 on the stable toolchain),
runs each with the seeds in fuzz/corpus/<target>, and prints executions and crashes per target.
Fails if any target crashed; the input is in fuzz/artifacts/<target>/, replay it with
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -O -a -s none <target> <file>

Regenerate the seed corpus with
  cargo run --release --manifest-path fuzz/Cargo.toml --example gen_corpus";

/// The targets and the largest input each gets (`-max_len`): a datagram for the decoders, a
/// crypto blob plus header for the handshake, a few dozen datagrams for the endpoint.
const TARGETS: &[(&str, usize)] = &[
    ("packet_decode", 1500),
    ("frame_decode", 1300),
    ("handshake", 512),
    ("endpoint_recv", 16384),
];

/// Seconds libFuzzer may spend on one input before calling it a hang.
const HANG_SECS: u32 = 20;

/// What one run reported.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    executions: u64,
    exec_per_sec: u64,
    new_units: u64,
    corpus: u64,
    crash_inputs: Vec<String>,
    failed: bool,
}

/// `cargo xtask fuzz`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut asan = false;
    let mut targets: Vec<(&str, usize)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--seconds needs a positive number\n\n{HELP}"))?;
            }
            "--asan" => asan = true,
            name => match TARGETS.iter().find(|(t, _)| *t == name) {
                Some(t) => targets.push(*t),
                None => return Err(format!("unknown target or option `{name}`\n\n{HELP}")),
            },
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let root = util::workspace_root();
    if !root.join("fuzz/Cargo.toml").is_file() {
        return Err(format!("no fuzz crate at {}", root.join("fuzz").display()));
    }
    ensure_cargo_fuzz()?;
    let sanitizer = if asan { "address" } else { "none" };
    util::header(&format!("build fuzz targets (sanitizer: {sanitizer})"));
    let mut build = fuzz_command("build", sanitizer);
    // `cargo fuzz build` takes one target or none (all of them).
    if let [(one, _)] = targets[..] {
        build.arg(one);
    }
    let (built, took) = util::timed(|| util::run(&mut build));
    built?;
    println!("built in {}", util::fmt_duration(took));

    let mut results = Vec::new();
    for &(target, max_len) in &targets {
        util::header(&format!("fuzz {target} for {seconds}s"));
        let work = root.join("fuzz/work").join(target);
        std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
        let mut cmd = fuzz_command("run", sanitizer);
        cmd.arg(target).arg(format!("fuzz/work/{target}")).arg(format!("fuzz/corpus/{target}"));
        cmd.arg("--").args([
            format!("-max_total_time={seconds}"),
            format!("-max_len={max_len}"),
            format!("-timeout={HANG_SECS}"),
            "-print_final_stats=1".to_owned(),
        ]);
        let log = root.join("fuzz/work").join(format!("{target}.log"));
        let out = run_fuzzer(&mut cmd, &log)?;
        results.push((target, out));
    }

    println!(
        "\n{:<15} {:>8} {:>14} {:>10} {:>8} {:>8}",
        "target", "seconds", "executions", "exec/s", "corpus", "crashes"
    );
    let mut crashed = Vec::new();
    for (target, o) in &results {
        let crashes = if o.failed { o.crash_inputs.len().max(1) } else { 0 };
        println!(
            "{target:<15} {seconds:>8} {:>14} {:>10} {:>8} {crashes:>8}",
            group(o.executions),
            group(o.exec_per_sec),
            o.corpus
        );
        if o.failed {
            crashed.push(*target);
        }
    }
    for (target, o) in &results {
        for input in &o.crash_inputs {
            println!("  {target}: crash input {input}");
        }
    }
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets failed: {} (logs in fuzz/work/<target>.log)", crashed.join(", ")))
    }
}

/// Installs cargo-fuzz unless `cargo fuzz` already works.
fn ensure_cargo_fuzz() -> Result<(), String> {
    if let Some(v) = util::probe("cargo", &["fuzz", "--version"]) {
        println!("using {v}");
        return Ok(());
    }
    util::header("install cargo-fuzz (a few minutes, once)");
    util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// `cargo fuzz <sub>` from the workspace root, for the fuzz crate in `fuzz/`, in release mode
/// with debug assertions, on the stable toolchain.
fn fuzz_command(sub: &str, sanitizer: &str) -> Command {
    let mut cmd = cargo(["fuzz", sub, "--fuzz-dir", "fuzz", "-O", "-a", "-s", sanitizer]);
    // Builds with and without the sanitizer keep separate target dirs, so switching does not
    // rebuild everything.
    cmd.args(["--target-dir", &format!("fuzz/target/sanitizer-{sanitizer}")]);
    cmd.env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Runs a fuzzer, keeping its whole output in `log` and echoing the lines worth seeing.
fn run_fuzzer(cmd: &mut Command, log: &Path) -> Result<Outcome, String> {
    println!("$ {}", util::display(cmd));
    let mut file =
        std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    // libFuzzer writes to stderr; cargo-fuzz's own messages (failing input, how to reproduce)
    // go to stdout. Merge both, in order of arrival per stream.
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{}`: {e}", util::display(cmd)))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let readers = [
        std::thread::spawn(move || forward(stdout, &tx)),
        std::thread::spawn(move || forward(stderr, &tx2)),
    ];
    let mut text = String::new();
    for line in rx {
        let _ = writeln!(file, "{line}");
        if worth_echoing(&line) {
            println!("  {line}");
        }
        text.push_str(&line);
        text.push('\n');
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().map_err(|e| format!("waiting for the fuzzer: {e}"))?;
    let mut out = parse(&text);
    out.failed |= !status.success();
    Ok(out)
}

fn forward(stream: impl std::io::Read, tx: &std::sync::mpsc::Sender<String>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if tx.send(line).is_err() {
            break;
        }
    }
}

/// Progress and trouble, not the stream of new-coverage lines or the dictionary.
fn worth_echoing(line: &str) -> bool {
    if line.starts_with('#') {
        return line.contains("pulse") || line.contains("DONE") || line.contains("INITED");
    }
    let l = line.trim_start();
    // Without a sanitizer libFuzzer warns that the sanitizer hooks are missing: expected.
    let noise = ["\"", "NEW_FUNC", "INFO:", "WARNING: Failed to find function"];
    !(l.is_empty() || noise.iter().any(|n| l.starts_with(n)))
}

/// Reads the numbers out of libFuzzer's output: the final stats when it printed them, else the
/// last progress line.
fn parse(text: &str) -> Outcome {
    let mut o = Outcome::default();
    for line in text.lines() {
        let stat = |name: &str| line.strip_prefix(name).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = stat("stat::number_of_executed_units:") {
            o.executions = n;
        } else if let Some(n) = stat("stat::average_exec_per_sec:") {
            o.exec_per_sec = n;
        } else if let Some(n) = stat("stat::new_units_added:") {
            o.new_units = n;
        } else if let Some(rest) = line.strip_prefix('#') {
            // "#123456\tDONE   cov: 345 ft: 437 corp: 82/4159b lim: 4096 exec/s: 77240 rss: 296Mb"
            let mut words = rest.split_whitespace();
            let count = words.next().and_then(|n| n.parse::<u64>().ok());
            let words: Vec<&str> = words.collect();
            if let Some(n) = count {
                o.executions = o.executions.max(n);
            }
            for pair in words.windows(2) {
                match pair[0] {
                    "corp:" => {
                        if let Some(c) = pair[1].split('/').next().and_then(|c| c.parse().ok()) {
                            o.corpus = c;
                        }
                    }
                    "exec/s:" if o.exec_per_sec == 0 => {
                        o.exec_per_sec = pair[1].parse().unwrap_or(0);
                    }
                    _ => {}
                }
            }
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            o.crash_inputs.push(path.trim().to_owned());
            o.failed = true;
        }
        if line.contains("ERROR: libFuzzer") || line.contains("panicked at") {
            o.failed = true;
        }
    }
    o
}

/// `12345678` as `12,345,678`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_final_stats_and_crashes() {
        let ok = "#1048576\tpulse  cov: 345 ft: 437 corp: 80/4000b lim: 4096 exec/s: 70000 rss: 29Mb\n\
                  #1235847\tDONE   cov: 345 ft: 437 corp: 82/4159b lim: 4096 exec/s: 77240 rss: 296Mb\n\
                  Done 1235847 runs in 16 second(s)\n\
                  stat::number_of_executed_units: 1235847\n\
                  stat::average_exec_per_sec:     77240\n\
                  stat::new_units_added:          314\n";
        let o = parse(ok);
        assert_eq!(
            (o.executions, o.exec_per_sec, o.new_units, o.corpus),
            (1235847, 77240, 314, 82)
        );
        assert!(!o.failed && o.crash_inputs.is_empty());

        let crash = "#5000\tpulse  corp: 3/10b exec/s: 900 rss: 30Mb\n\
                     thread '<unnamed>' panicked at fuzz_targets/x.rs:3:5:\n\
                     ==123== ERROR: libFuzzer: deadly signal\n\
                     artifact_prefix='fuzz/artifacts/x/'; Test unit written to fuzz/artifacts/x/crash-abc\n";
        let o = parse(crash);
        assert!(o.failed);
        assert_eq!(o.executions, 5000);
        assert_eq!(o.crash_inputs, vec!["fuzz/artifacts/x/crash-abc".to_owned()]);
        assert_eq!(group(12_345_678), "12,345,678");
        assert_eq!(group(999), "999");
    }
}
