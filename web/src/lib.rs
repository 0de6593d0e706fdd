//! # lanewire-web
//!
//! Lanewire in the browser: the same sans-IO protocol core as the native library, driven by
//! browser events, over WebRTC data channels.
//!
//! - **Transport.** Each connection has its own `RTCPeerConnection` with one unordered data
//!   channel (`maxRetransmits: 0`) that carries the core's packets as UDP would. DTLS encrypts
//!   the channel, so the core negotiates its null cipher there and reports
//!   `transport_encrypted`.
//! - **Rendezvous.** A WebSocket to `lanewire-signaling` (the shared message types of
//!   `lanewire_signaling::protocol`): register an identity, then offers (with the virtual
//!   port), answers and ICE candidates travel by identity. A peer that is not registered,
//!   refuses, or cannot be reached ends the connection with a P2P end reason.
//! - **Time.** `performance.now()` is the core's clock; one `setTimeout` follows the core's
//!   `poll_timeout`.
//!
//! Rust code uses `Lanewire`; JavaScript uses the npm package `lanewire`, generated from
//! the `js` module with wasm-bindgen. On targets other than `wasm32` this crate is empty.
//!
//! ```no_run
//! # #[cfg(target_arch = "wasm32")]
//! # async fn demo() -> Result<(), lanewire_web::Error> {
//! use lanewire_web::{Lanewire, Options, SendFlags, Config};
//! let lw = Lanewire::connect(Options::new("ws://127.0.0.1:8787/ws", "str:alice")).await?;
//! let conn = lw.connect_p2p("str:bob", 0, Config::new())?;
//! lw.on_status(|ev| println!("{:?} -> {:?}", ev.old, ev.info.state));
//! lw.send(conn, b"hello", SendFlags::RELIABLE)?; // queued until connected
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
// Without feature `std` (the npm package) nothing links `std`: see Cargo.toml and README.md,
// "Size".
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// Without `std` (the npm package): Talc as the global allocator, smaller than `std`'s
/// dlmalloc.
#[cfg(all(not(feature = "std"), target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Without `std` (the npm package): a panic, which is a bug, is reported on `console.error`
/// with its location (and its message when it has no arguments to format), then the module
/// traps (`unreachable`), as `panic = "abort"` does with `std`.
#[cfg(all(not(feature = "std"), target_arch = "wasm32"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    sys::report_panic(info);
    core::arch::wasm32::unreachable()
}

/// `alloc`'s types that `std`'s prelude would bring.
#[cfg(target_arch = "wasm32")]
mod prelude {
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::String;
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

#[cfg(target_arch = "wasm32")]
mod codec;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
mod peer;
#[cfg(target_arch = "wasm32")]
mod signaling;
#[cfg(target_arch = "wasm32")]
mod sys;
#[cfg(target_arch = "wasm32")]
mod types;

#[cfg(target_arch = "wasm32")]
pub use driver::{Lanewire, PeerKey};
#[cfg(target_arch = "wasm32")]
pub use error::{Error, ErrorCode};
#[cfg(target_arch = "wasm32")]
pub use lanewire_core::config::{ConfigKey, ConfigValue};
#[cfg(target_arch = "wasm32")]
pub use lanewire_core::{
    Config, ConnectionHandle, ConnectionState, EndReason, ListenSocketHandle, MAX_MESSAGE_SIZE,
    Message, PollGroupHandle, QuickStatus, SendFlags,
};
#[cfg(target_arch = "wasm32")]
pub use peer::TransportStats;
#[cfg(target_arch = "wasm32")]
pub use types::{ConnectionInfo, IceServer, Options, StatusEvent};
