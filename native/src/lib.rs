//! # lanewire
//!
//! Message-oriented connections for native games over UDP: reliable and unreliable messages
//! up to 512 KiB, lanes, poll groups, status events and the reference's config values (fake
//! loss and lag included), with the semantics of Valve's GameNetworkingSockets.
//!
//! A [`Sockets`] instance is one protocol endpoint (the sans-IO `lanewire-core`) driven by
//! one IO thread that owns the UDP sockets and timers. The handle is cheap to clone and
//! usable from every thread; calls lock the endpoint briefly and never wait for the network,
//! except the `*_timeout` calls, which wait up to the time given.
//!
//! ```no_run
//! use std::time::Duration;
//! use lanewire::{Config, SendFlags, Sockets};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Server.
//! let server = Sockets::new()?;
//! let listen = server.listen_ip("[::]:27020".parse()?, Config::new())?;
//!
//! // Client (normally another process).
//! let client = Sockets::new()?;
//! let conn = client.connect_ip("127.0.0.1:27020".parse()?, Config::new())?;
//! client.send(conn, b"hello", SendFlags::RELIABLE)?; // queued until connected
//!
//! // The server accepts incoming connections from its status events.
//! let mut peer = None;
//! while peer.is_none() {
//!     if let Some(ev) = server.wait_event(Duration::from_secs(5)) {
//!         if ev.is_incoming() {
//!             server.accept(ev.conn)?;
//!             peer = Some(ev.conn);
//!         }
//!     }
//! }
//! let msgs = server.receive_timeout(peer.unwrap(), 16, Duration::from_secs(5))?;
//! assert_eq!(msgs[0].data(), b"hello");
//! # let _ = listen;
//! # Ok(()) }
//! ```
//!
//! # Threads and IO
//!
//! The IO thread waits on readiness (epoll on Linux, through mio) until a socket is readable
//! or the core's next timeout; it never spins when idle. On Linux it receives with
//! `recvmmsg` and GRO and sends runs of packets to one peer with GSO (through `quinn-udp`);
//! elsewhere it falls back to one datagram per system call. Sends with
//! [`SendFlags::NO_NAGLE`], flushes, accepts and closes put their datagrams on the wire from
//! the caller's thread before returning; other sends wait for the Nagle time or a full packet
//! and leave from the IO thread in batches.
//!
//! # Addresses
//!
//! Listen sockets take IPv4, IPv6 or both (`[::]` is dual-stack). Addresses are normalised:
//! an IPv4 peer of a dual-stack socket shows as `a.b.c.d:port`, never as `[::ffff:a.b.c.d]`.
//! Outgoing connections share one UDP socket per address family.
#![forbid(unsafe_code)]

mod io_thread;
#[cfg(feature = "webrtc")]
mod p2p;
mod pair;
mod sockets;
mod state;
mod types;
mod udp;

pub use lanewire_core::config::{ConfigError, ConfigInfo, ConfigScope, ConfigType};
pub use lanewire_core::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, ConnectionState, EndReason, EndpointStats,
    HandleError, LaneStatus, ListenSocketHandle, MAX_MESSAGE_SIZE, MAX_UNRELIABLE_SIZE,
    OutgoingMessage, PollGroupHandle, QuickStatus, SendError, SendFlags,
};
#[cfg(feature = "webrtc")]
pub use p2p::{MAX_VIRTUAL_PORT, P2pConnectionInfo, P2pError, P2pStats, SignalingConfig};
pub use sockets::{Sockets, SocketsStats};
pub use types::{ConnectionInfo, Message, MessageNumber, SocketError, StatusChanged};
