//! Tasks whose subject does not exist yet: they say where they arrive and fail, honestly.

/// Help for `cargo xtask demo`.
pub(crate) const DEMO_HELP: &str = "\
cargo xtask demo: build and serve the cross-platform demo page

USAGE: cargo xtask demo

Not available yet: arrives with the demo page (issue \"Cross-platform demo page\").";

/// `cargo xtask demo`.
pub(crate) fn demo(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`\n\n{DEMO_HELP}"));
    }
    Err("the demo does not exist yet: it arrives with the demo page \
         (issue \"Cross-platform demo page\")"
        .to_owned())
}
