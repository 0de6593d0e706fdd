//! The plain data of the Rust API: connect options, status events and connection info.

use crate::prelude::*;
use core::time::Duration;

use lanewire_core::{Config, ConnectionHandle, ConnectionState, EndReason, ListenSocketHandle};

/// How to reach the signaling server and who to be there.
#[derive(Debug, Clone)]
pub struct Options {
    /// The signaling server's WebSocket URL, like `wss://example.com/ws`.
    pub signaling_url: String,
    /// The identity to register, `kind:data` (`str:alice`); peers connect to it.
    pub identity: String,
    /// A token proving the identity (`lws1.…`); servers in dev-insecure mode ignore it.
    pub token: Option<String>,
    /// STUN and TURN servers for every peer connection. Empty: host candidates only (same
    /// machine or LAN).
    pub ice_servers: Vec<IceServer>,
    /// Global config values (fake loss and lag, send rates, timeouts...).
    pub config: Config,
    /// How long to wait for the signaling server to accept the registration.
    pub timeout: Duration,
}

impl Options {
    /// Options with no token, no ICE servers, default config and a 10 s registration timeout.
    pub fn new(signaling_url: impl Into<String>, identity: impl Into<String>) -> Options {
        Options {
            signaling_url: signaling_url.into(),
            identity: identity.into(),
            token: None,
            ice_servers: Vec::new(),
            config: Config::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One STUN or TURN server, as `RTCIceServer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`...
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// Everything about a connection: the core's view plus who the peer is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    /// State.
    pub state: ConnectionState,
    /// The peer's identity as the signaling server stamped it (it verified the peer's token),
    /// bound to the data channel by the DTLS fingerprints the offer and answer carried.
    /// `None` once the transport is gone.
    pub peer_identity: Option<String>,
    /// The virtual port the connection was made to (the peer's for outgoing connections, ours
    /// for incoming ones).
    pub virtual_port: u32,
    /// The listen socket that accepted it (incoming connections).
    pub listen_socket: Option<ListenSocketHandle>,
    /// User data.
    pub user_data: i64,
    /// Why it ended ([`EndReason::INVALID`] while alive).
    pub end_reason: EndReason,
    /// Debug text that came with the end reason.
    pub end_debug: String,
    /// Human-readable description.
    pub description: String,
    /// The application's name for it.
    pub name: String,
    /// The core's own AEAD protects packets (false on WebRTC, where DTLS does).
    pub encrypted: bool,
    /// The transport encrypts (always true here: DTLS).
    pub transport_encrypted: bool,
    /// The peer proved a certified identity in the core's handshake.
    pub authenticated: bool,
    /// The route goes through a TURN relay.
    pub relayed: bool,
}

/// A connection changed state. A new incoming connection arrives as `None → Connecting` with
/// `info.listen_socket` set: accept it or close it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    /// The connection.
    pub conn: ConnectionHandle,
    /// The previous state.
    pub old: ConnectionState,
    /// Everything about it now.
    pub info: ConnectionInfo,
}
