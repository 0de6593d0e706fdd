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

/// With the `talc` feature (the npm package): Talc instead of dlmalloc, about 2.8 KB less of
/// gzipped .wasm.
#[cfg(all(feature = "talc", target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

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
