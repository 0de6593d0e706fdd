//! # lanewire-core
//!
//! The sans-IO protocol core of Lanewire. It never touches a socket, a thread or a clock:
//! every input carries `now`, datagrams come in as byte slices, and what must be sent, what
//! happened and when to wake up come out of `poll_*` calls.
#![forbid(unsafe_code)]

pub mod rng;
pub mod time;

pub use rng::Rng;
pub use time::Instant;
pub mod wire;
