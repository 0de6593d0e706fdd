//! # lanewire-core
//!
//! The sans-IO protocol core of Lanewire. It never touches a socket, a thread or a clock:
//! every input carries `now`, datagrams come in as byte slices, and what must be sent, what
//! happened and when to wake up come out of `poll_*` calls.
#![forbid(unsafe_code)]
// No `std`: the browser build links no `std`, so that its panics do not carry `std`'s
// formatting machinery (see web/README.md, "Size"). Unit tests and the simulator use `std`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
#[cfg(any(test, feature = "sim"))]
extern crate std;

pub mod config;
mod conn;
pub mod crypto;
pub mod endpoint;
pub mod handshake;
pub mod identity;
pub mod link;
mod map;
pub mod rng;
#[cfg(feature = "sim")]
pub mod sim;
mod siphash;
/// `alloc`'s types that `std`'s prelude would bring.
mod prelude {
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}
mod slab;
pub mod text;
pub mod time;
pub mod types;
pub mod wire;

pub use config::{Config, ConfigKey, ConfigValue, ConnectionConfig};
#[cfg(feature = "newreno")]
pub use conn::cc::NewReno;
pub use conn::cc::{AckSample, Bbr, CongestionController, FixedRate, LossSample, RateSample};
pub use conn::{MAX_MESSAGE_SIZE, MAX_UNRELIABLE_SIZE};
pub use endpoint::{
    DATA_CHANNEL_DATAGRAM, Endpoint, EndpointStats, MAX_DATAGRAM, OutgoingMessage, SymmetricClaim,
};
pub use rng::Rng;
pub use time::Instant;
pub use types::*;
