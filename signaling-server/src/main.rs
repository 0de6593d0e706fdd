//! The `lanewire-signaling` binary; see `lanewire-signaling --help` and the crate README.

fn main() -> std::process::ExitCode {
    lanewire_signaling::cli::main()
}
