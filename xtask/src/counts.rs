//! Summing the test counts that libtest, wasm-bindgen-test-runner and node:test print, with
//! skipped tests counted as skipped, never as passed.

use std::fmt;
use std::ops::AddAssign;

/// The line a Rust test prints (to its real stdout, past libtest's capture) when it returns
/// early without testing anything because a tool or a permission it needs is missing:
/// `LANEWIRE-SKIP: <test>: <reason>`. libtest counts such a test as passed; [`parse`] moves it
/// to skipped. The tests' helpers that print it (`native/tests/common/skip.rs`) fail instead
/// when `CI` is `true`.
pub(crate) const SKIP_MARKER: &str = "LANEWIRE-SKIP:";

/// Passed, failed and skipped tests, summed over any number of runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Tests that passed (skipped ones excluded).
    pub(crate) passed: u64,
    /// Tests that failed.
    pub(crate) failed: u64,
    /// Tests that did not run what they test: a [`SKIP_MARKER`] line each (libtest), or
    /// node:test's `# skipped N`.
    pub(crate) skipped: u64,
    /// How many `test result:` lines were found.
    pub(crate) runs: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.runs += other.runs;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// Sums every `test result: ok. 3 passed; 0 failed; ...` line in `output`, and the `# pass N`
/// / `# fail N` / `# skipped N` summary lines of node:test's TAP reporter; then moves one
/// libtest pass to skipped for each [`SKIP_MARKER`] in `output` (node:test already counts its
/// skipped tests apart from the passed ones).
///
/// Both libtest and wasm-bindgen-test-runner print the `test result:` line. Colour codes are stripped, the
/// line may be prefixed (a runner or CI may add one), and the fields are found by name, not
/// position, so a reordered or extended line still counts.
pub(crate) fn parse(output: &str) -> Counts {
    let mut counts = Counts::default();
    let mut markers = 0;
    for line in output.lines() {
        let line = strip_ansi(line);
        // Parallel tests may write a marker into the middle of another line: count each one.
        markers += line.matches(SKIP_MARKER).count() as u64;
        if let Some(tap) = tap_summary(&line) {
            counts += tap;
            continue;
        }
        let Some(at) = line.find("test result:") else { continue };
        let mut found = Counts { runs: 1, ..Counts::default() };
        let mut any = false;
        for field in line[at + "test result:".len()..].split([';', ',', '.']) {
            let mut words = field.split_whitespace();
            let (Some(n), Some(what), None) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => found.passed += n,
                "failed" => found.failed += n,
                _ => continue,
            }
            any = true;
        }
        if any {
            counts += found;
        }
    }
    // A skipping test printed its marker and then passed: it is skipped, not passed.
    let moved = markers.min(counts.passed);
    counts.passed -= moved;
    counts.skipped += markers;
    counts
}

/// node:test's TAP summary: `# pass 5` (one run), `# fail 1` or `# skipped 2`, exactly as the
/// reporter prints them at the end of a run (a test's own `# pass` diagnostics are indented).
fn tap_summary(line: &str) -> Option<Counts> {
    let line = line.trim_end();
    let (what, n) = line.strip_prefix("# ")?.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let none = Counts::default();
    match what {
        "pass" => Some(Counts { passed: n, runs: 1, ..none }),
        "fail" => Some(Counts { failed: n, ..none }),
        "skipped" => Some(Counts { skipped: n, ..none }),
        _ => None,
    }
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_libtest_lines() {
        let out = "running 2 tests\ntest a ... ok\n\
            test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
            \ntest result: FAILED. 5 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 1.20s\n\
            test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        assert_eq!(parse(out), Counts { passed: 7, failed: 1, skipped: 0, runs: 3 });
    }

    #[test]
    fn sums_node_test_tap_summaries() {
        let out = "TAP version 13\n# Subtest: exports\nok 1 - exports\n  # pass 99\n1..7\n\
            # tests 7\n# suites 0\n# pass 6\n# fail 1\n# cancelled 0\n# skipped 0\n";
        assert_eq!(parse(out), Counts { passed: 6, failed: 1, skipped: 0, runs: 1 });
    }

    #[test]
    fn node_test_skips_are_skipped() {
        let out = "ok 1 - relay # SKIP coturn is missing\n# tests 3\n# pass 1\n# fail 0\n\
            # cancelled 0\n# skipped 2\n# todo 0\n";
        assert_eq!(parse(out), Counts { passed: 1, failed: 0, skipped: 2, runs: 1 });
    }

    #[test]
    fn skip_markers_move_libtest_passes_to_skipped() {
        // Two tests skipped (one marker written into libtest's own line by a parallel test),
        // one passed for real, in a run libtest reports as 3 passed.
        let out = "running 3 tests\n\
            LANEWIRE-SKIP: relay_only_through_coturn: coturn's turnserver is missing\n\
            test a ... LANEWIRE-SKIP: wrong_password: coturn's turnserver is missing\n\
            ok\ntest b ... ok\ntest c ... ok\n\
            test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(parse(out), Counts { passed: 1, failed: 0, skipped: 2, runs: 1 });
        assert_eq!(parse(out).to_string(), "1 passed, 0 failed, 2 skipped");
    }

    #[test]
    fn tolerates_colour_prefixes_and_noise() {
        let out = "\u{1b}[0m\u{1b}[1mtest result: \u{1b}[32mok\u{1b}[0m. 4 passed; 0 failed; 0 ignored\n\
            some test printed test result: but no numbers\n\
            [wasm] test result: ok. 3 passed; 0 failed; 0 ignored; 0 filtered out; finished in 0.01s\r\n\
            test foo ... 12 passed\n";
        assert_eq!(parse(out), Counts { passed: 7, failed: 0, skipped: 0, runs: 2 });
    }
}
