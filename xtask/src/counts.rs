//! Summing the test counts that libtest and wasm-bindgen-test-runner print.

use std::fmt;
use std::ops::AddAssign;

/// Passed and failed tests, summed over any number of runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Tests that passed.
    pub(crate) passed: u64,
    /// Tests that failed.
    pub(crate) failed: u64,
    /// How many `test result:` lines were found.
    pub(crate) runs: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.runs += other.runs;
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// Sums every `test result: ok. 3 passed; 0 failed; ...` line in `output`, and the `# pass N`
/// / `# fail N` summary lines of node:test's TAP reporter.
///
/// Both libtest and wasm-bindgen-test-runner print the `test result:` line. Colour codes are stripped, the
/// line may be prefixed (a runner or CI may add one), and the fields are found by name, not
/// position, so a reordered or extended line still counts.
pub(crate) fn parse(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines() {
        let line = strip_ansi(line);
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
    counts
}

/// node:test's TAP summary: `# pass 5` (one run) or `# fail 1`, exactly as the reporter
/// prints them at the end of a run (a test's own `# pass` diagnostics are indented).
fn tap_summary(line: &str) -> Option<Counts> {
    let line = line.trim_end();
    let (what, n) = line.strip_prefix("# ")?.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    match what {
        "pass" => Some(Counts { passed: n, failed: 0, runs: 1 }),
        "fail" => Some(Counts { passed: 0, failed: n, runs: 0 }),
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
        assert_eq!(parse(out), Counts { passed: 7, failed: 1, runs: 3 });
    }

    #[test]
    fn sums_node_test_tap_summaries() {
        let out = "TAP version 13\n# Subtest: exports\nok 1 - exports\n  # pass 99\n1..7\n\
            # tests 7\n# suites 0\n# pass 6\n# fail 1\n# cancelled 0\n# skipped 0\n";
        assert_eq!(parse(out), Counts { passed: 6, failed: 1, runs: 1 });
    }

    #[test]
    fn tolerates_colour_prefixes_and_noise() {
        let out = "\u{1b}[0m\u{1b}[1mtest result: \u{1b}[32mok\u{1b}[0m. 4 passed; 0 failed; 0 ignored\n\
            some test printed test result: but no numbers\n\
            [wasm] test result: ok. 3 passed; 0 failed; 0 ignored; 0 filtered out; finished in 0.01s\r\n\
            test foo ... 12 passed\n";
        assert_eq!(parse(out), Counts { passed: 7, failed: 0, runs: 2 });
    }
}
