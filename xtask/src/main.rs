//! `cargo xtask`: one entry point for every developer task.
fn main() {
    eprintln!("xtask: not yet written");
    std::process::exit(2);
}
