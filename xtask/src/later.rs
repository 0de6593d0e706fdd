//! Tasks whose subject does not exist yet: they say where they arrive and fail, honestly.

/// Help for `cargo xtask demo`.
pub(crate) const DEMO_HELP: &str = "\
cargo xtask demo: build and serve the cross-platform demo page

USAGE: cargo xtask demo

Not available yet: arrives with the demo page (issue \"Cross-platform demo page\").";

/// Help for `cargo xtask fuzz`.
pub(crate) const FUZZ_HELP: &str = "\
cargo xtask fuzz: run the fuzz targets

USAGE: cargo xtask fuzz [--seconds N]

  --seconds N  how long to fuzz each target

Not available yet: the fuzz targets arrive with the security issue.";

/// `cargo xtask demo`.
pub(crate) fn demo(args: &[String]) -> Result<(), String> {
    if let Some(arg) = args.first() {
        return Err(format!("unexpected argument `{arg}`\n\n{DEMO_HELP}"));
    }
    Err("the demo does not exist yet: it arrives with the demo page \
         (issue \"Cross-platform demo page\")"
        .to_owned())
}

/// `cargo xtask fuzz`.
pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    match args {
        [] => {}
        [flag, n] if flag == "--seconds" && n.parse::<u64>().is_ok() => {}
        _ => return Err(format!("unexpected arguments {args:?}\n\n{FUZZ_HELP}")),
    }
    Err("no fuzz targets exist yet: they arrive with the security issue".to_owned())
}
