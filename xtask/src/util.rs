//! Running commands: printing them, timing them, and capturing their output while it streams.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (the parent of the xtask crate), found at run time so a moved clone works.
pub(crate) fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the process too; the compile-time value is the
    // fallback for a binary started by hand.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// A `cargo` command run from the workspace root, inheriting the whole environment
/// (`CARGO_TARGET_DIR`, `RUSTFLAGS`, `RUSTUP_TOOLCHAIN`, ...).
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("cargo");
    cmd.args(args).current_dir(workspace_root());
    as_plain_build(&mut cmd);
    cmd
}

/// Removes what `cargo run` (the `cargo xtask` alias) sets for this process from `cmd`'s
/// environment. Build scripts such as ring's declare `rerun-if-env-changed=CARGO_PKG_NAME`
/// (and `CARGO_MANIFEST_DIR`...), so a nested `cargo build` that inherits xtask's values
/// would rebuild them, and the next plain `cargo build` would rebuild them back.
pub(crate) fn as_plain_build(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_PKG_")
            || matches!(
                k.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// The command as a person would type it, with the variables it sets in front.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push(cmd.get_program().to_string_lossy().into_owned());
    parts.extend(cmd.get_args().map(|a| {
        let a = a.to_string_lossy();
        if a.contains(' ') { format!("'{a}'") } else { a.into_owned() }
    }));
    parts.join(" ")
}

/// Runs a command with inherited stdio; an error says which command failed and how.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    println!("$ {}", display(cmd));
    let status = cmd.status().map_err(|e| spawn_error(cmd, &e))?;
    check(cmd, status)
}

/// What a command run by [`run_captured`] left behind.
pub(crate) struct Captured {
    /// How the command ended.
    pub(crate) status: ExitStatus,
    /// Everything it wrote to stdout (also streamed to ours as it came).
    pub(crate) stdout: String,
}

/// Runs a command, streaming its stdout to ours while keeping a copy; stderr is inherited so
/// cargo's progress output stays as it is.
pub(crate) fn run_captured(cmd: &mut Command) -> Result<Captured, String> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().map_err(|e| spawn_error(cmd, &e))?;
    let mut pipe = child.stdout.take().expect("stdout is piped");
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let out = io::stdout();
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                let mut out = out.lock();
                // A closed terminal must not stop the child half-way: ignore write errors.
                let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading output of `{}`: {e}", display(cmd))),
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for `{}`: {e}", display(cmd)))?;
    Ok(Captured { status, stdout: String::from_utf8_lossy(&kept).into_owned() })
}

/// Runs a command quietly and returns its trimmed stdout, or `None` when it cannot be
/// started or fails (used to probe installed tools).
pub(crate) fn probe(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Turns a non-zero exit status into an error naming the command.
pub(crate) fn check(cmd: &Command, status: ExitStatus) -> Result<(), String> {
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", display(cmd))) }
}

fn spawn_error(cmd: &Command, e: &io::Error) -> String {
    format!("could not start `{}`: {e}", display(cmd))
}

/// Measures how long `f` takes.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// `4.2s` below a minute, `3m07s` above.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// A section header, so a long log can be scanned by step.
pub(crate) fn header(title: &str) {
    println!("\n==> {title}");
}
