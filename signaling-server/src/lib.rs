//! Lanewire's signaling server: the rendezvous where peers find each other by identity and
//! exchange the WebRTC offers, answers and ICE candidates that open a peer-to-peer connection.
//!
//! The crate has three parts:
//!
//! - [`protocol`]: the JSON messages a client and the server exchange over a WebSocket, shared
//!   by this server, the native client and the browser client. Always available.
//! - [`token`]: HMAC-SHA256 tokens that prove a client may register an identity. Always
//!   available.
//! - The server ([`Server`], [`Config`], [`Limits`]; feature `server`, on by default): a tokio
//!   WebSocket server with per-client limits, `/healthz`, `/metrics`, optional static files, and
//!   the `lanewire-signaling` binary; [`turn`] mints the time-limited TURN credentials it hands
//!   out; with feature `redis`, instances join through Redis (`ClusterConfig`).
//!
//! Without the `server` feature the crate depends only on serde, serde_json, hmac, sha2 and
//! data-encoding, and builds for `wasm32-unknown-unknown`.
//!
//! # Embedding the server
//!
//! ```no_run
//! # async fn demo() -> Result<(), lanewire_signaling::ServerError> {
//! use lanewire_signaling::{Auth, Config, Server};
//!
//! let config = Config::new("127.0.0.1:0".parse().unwrap(), Auth::DevInsecure);
//! let server = Server::bind(config).await?;
//! println!("ws://{}/", server.local_addr());
//! // ... run the demo ...
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
// Without the server, `no_std` (with `alloc`): the browser client links no `std`.
#![cfg_attr(not(any(feature = "server", test)), no_std)]

extern crate alloc;

pub mod protocol;
pub mod token;

#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "redis")]
mod cluster;
#[cfg(feature = "server")]
mod config;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
mod iplimit;
#[cfg(feature = "server")]
mod metrics;
#[cfg(feature = "server")]
mod rate;
#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod session;
#[cfg(feature = "server")]
pub mod turn;

#[cfg(feature = "redis")]
pub use cluster::ClusterConfig;
#[cfg(feature = "server")]
pub use config::{Auth, Config, Limits, MIN_SECRET_LEN, TurnConfig};
#[cfg(feature = "server")]
pub use metrics::MetricsSnapshot;
#[cfg(feature = "server")]
pub use server::{RunningServer, Server, ServerError};
