//! Skipping a test honestly: a test that cannot run here because a tool or a permission it
//! needs is missing says so on a line `cargo xtask test` counts as skipped (not passed), and
//! fails instead under CI, where `cargo xtask setup` has installed everything.
//!
//! Shared by `common` and `p2p_common` (`#[path]`), so every test of the crate skips the same
//! way.

use std::io::Write;

/// The marker `cargo xtask test` looks for (`xtask/src/counts.rs`, `SKIP_MARKER`).
pub const SKIP_MARKER: &str = "LANEWIRE-SKIP:";

/// True when the environment says this is CI (`CI=true` or `CI=1`), where a missing tool is
/// an installation bug to fail on, not a reason to skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports `test` as skipped because of `reason` (what is missing and how to get it), or
/// panics with that reason under CI. The caller returns right after.
///
/// The marker line goes straight to the process's stdout, past libtest's capture of a passing
/// test's output, so `cargo xtask test` sees it: `LANEWIRE-SKIP: <test>: <reason>`.
pub fn skip(test: &str, reason: &str) {
    assert!(
        !in_ci(),
        "{test}: {reason}; with CI=true a missing tool or permission is a failure, not a skip \
         (`cargo xtask setup` installs the tools)"
    );
    let line = format!("{SKIP_MARKER} {test}: {reason}\n");
    // One write of a whole line, so parallel tests cannot split it.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
}
