//! Public types shared by the endpoint and connections: handles, flags, states, end reasons,
//! messages, connection info and status, and the error enums of each operation.

use crate::prelude::*;
use core::fmt;
use core::time::Duration;

use crate::time::Instant;

macro_rules! handle {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            pub(crate) index: u32,
            pub(crate) generation: u32,
        }
        impl $name {
            /// A stable number for logs and for packing into foreign handles (JS, C).
            pub fn to_bits(self) -> u64 {
                (u64::from(self.generation) << 32) | u64::from(self.index)
            }
            /// The inverse of [`Self::to_bits`]. A made-up value is merely an invalid handle.
            pub fn from_bits(bits: u64) -> Self {
                Self { index: bits as u32, generation: (bits >> 32) as u32 }
            }
        }
        impl $crate::text::Text for $name {
            fn push_to(&self, out: &mut String) {
                out.push('#');
                $crate::text::push_u64(out, u64::from(self.index));
                out.push('.');
                $crate::text::push_u64(out, u64::from(self.generation));
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&$crate::text!(self))
            }
        }
    };
}

handle!(
    /// A connection. Cheap to copy; stale handles (closed connections) are detected, never
    /// confused with a newer connection in the same slot.
    ConnectionHandle
);
handle!(
    /// A listen socket.
    ListenSocketHandle
);
handle!(
    /// A poll group.
    PollGroupHandle
);

/// A driver-chosen number for the local socket or transport a datagram used (the UDP socket's
/// index, a WebRTC virtual port...). The core hands it back on every [`Transmit`] so the driver
/// knows which socket to send from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct LocalId(pub u32);

/// Send flags, combinable with `|`. See the constants for the reference's combinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SendFlags(pub u32);

impl SendFlags {
    /// May be lost or reordered; never corrupted or truncated. Nagle applies.
    pub const UNRELIABLE: SendFlags = SendFlags(0);
    /// Send now: do not wait for the Nagle timer, and flush what is already waiting.
    pub const NO_NAGLE: SendFlags = SendFlags(1);
    /// Unreliable only: if the message cannot go out very soon, drop it and return
    /// [`SendError::Ignored`] (voice data).
    pub const NO_DELAY: SendFlags = SendFlags(4);
    /// Delivered exactly once, in order within its lane. Nagle applies.
    pub const RELIABLE: SendFlags = SendFlags(8);
    /// `UNRELIABLE | NO_NAGLE`.
    pub const UNRELIABLE_NO_NAGLE: SendFlags = SendFlags(1);
    /// `UNRELIABLE | NO_DELAY | NO_NAGLE`.
    pub const UNRELIABLE_NO_DELAY: SendFlags = SendFlags(5);
    /// `RELIABLE | NO_NAGLE`.
    pub const RELIABLE_NO_NAGLE: SendFlags = SendFlags(9);

    /// True if the reliable bit is set.
    pub fn is_reliable(self) -> bool {
        self.0 & 8 != 0
    }
    /// True if the no-Nagle bit is set.
    pub fn no_nagle(self) -> bool {
        self.0 & 1 != 0
    }
    /// True if the no-delay bit is set.
    pub fn no_delay(self) -> bool {
        self.0 & 4 != 0
    }
}

impl core::ops::BitOr for SendFlags {
    type Output = SendFlags;
    fn bitor(self, o: SendFlags) -> SendFlags {
        SendFlags(self.0 | o.0)
    }
}

/// The state of a connection as the application sees it.
///
/// | state | what the application may do |
/// | --- | --- |
/// | `None` | nothing: the handle is invalid or closed |
/// | `Connecting` | client: wait (reliable sends queue, unreliable are dropped, `NO_DELAY` sends are `Ignored`); server: [`accept`](crate::Endpoint::accept) or close |
/// | `FindingRoute` | P2P: accepted, the route is being found; as `Connecting` |
/// | `Connected` | send, receive, close with or without linger |
/// | `ClosedByPeer` | read what is left, then close to free the handle; sends fail with `NoConnection` |
/// | `ProblemDetectedLocally` | as `ClosedByPeer`; the end reason says what went wrong |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// No connection (invalid handle, or freed).
    None,
    /// Handshake in progress, or waiting for the application to accept.
    Connecting,
    /// P2P: accepted, route not established yet.
    FindingRoute,
    /// Data flows.
    Connected,
    /// The peer closed the connection.
    ClosedByPeer,
    /// A timeout or protocol, crypto or certificate failure.
    ProblemDetectedLocally,
}

impl ConnectionState {
    /// The variant's name, as `{:?}` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionState::None => "None",
            ConnectionState::Connecting => "Connecting",
            ConnectionState::FindingRoute => "FindingRoute",
            ConnectionState::Connected => "Connected",
            ConnectionState::ClosedByPeer => "ClosedByPeer",
            ConnectionState::ProblemDetectedLocally => "ProblemDetectedLocally",
        }
    }

    /// True in `ClosedByPeer` and `ProblemDetectedLocally`.
    pub fn is_ended(self) -> bool {
        matches!(self, ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally)
    }
}

/// Why a connection ended: a numeric code in the reference's ranges plus, in
/// [`ConnectionInfo::end_debug`], a debug string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EndReason(pub u32);

impl EndReason {
    /// No reason (the connection has not ended).
    pub const INVALID: EndReason = EndReason(0);
    /// Start of the application range: normal closes (1000-1999).
    pub const APP_MIN: EndReason = EndReason(1000);
    /// Generic application close.
    pub const APP_GENERIC: EndReason = EndReason(1000);
    /// End of the application range; substituted for illegal codes passed to close.
    pub const APP_MAX: EndReason = EndReason(1999);
    /// Start of the application-exception range (2000-2999).
    pub const APP_EXCEPTION_MIN: EndReason = EndReason(2000);
    /// Generic application exception.
    pub const APP_EXCEPTION_GENERIC: EndReason = EndReason(2000);
    /// End of the application-exception range.
    pub const APP_EXCEPTION_MAX: EndReason = EndReason(2999);
    /// Start of the local-problem range (3000-3999).
    pub const LOCAL_MIN: EndReason = EndReason(3000);
    /// End of the local-problem range.
    pub const LOCAL_MAX: EndReason = EndReason(3999);
    /// Start of the remote-problem range (4000-4999).
    pub const REMOTE_MIN: EndReason = EndReason(4000);
    /// The peer stopped answering.
    pub const REMOTE_TIMEOUT: EndReason = EndReason(4001);
    /// Crypto failed (no common cipher, bad key share or signature).
    pub const REMOTE_BAD_CRYPT: EndReason = EndReason(4002);
    /// The peer's certificate was refused.
    pub const REMOTE_BAD_CERT: EndReason = EndReason(4003);
    /// The peer speaks another protocol version.
    pub const REMOTE_BAD_PROTOCOL_VERSION: EndReason = EndReason(4006);
    /// End of the remote-problem range.
    pub const REMOTE_MAX: EndReason = EndReason(4999);
    /// Start of the miscellaneous range (5000-5999).
    pub const MISC_MIN: EndReason = EndReason(5000);
    /// Generic failure.
    pub const MISC_GENERIC: EndReason = EndReason(5001);
    /// Internal error or protocol violation by the peer.
    pub const MISC_INTERNAL_ERROR: EndReason = EndReason(5002);
    /// Timed out connecting, or the connection dropped.
    pub const MISC_TIMEOUT: EndReason = EndReason(5003);
    /// P2P rendezvous failed (signaling or ICE).
    pub const MISC_P2P_RENDEZVOUS: EndReason = EndReason(5008);
    /// P2P: no route through NATs and firewalls.
    pub const MISC_P2P_NAT_FIREWALL: EndReason = EndReason(5009);
    /// The peer says it has no such connection.
    pub const MISC_PEER_SENT_NO_CONNECTION: EndReason = EndReason(5010);
    /// End of the miscellaneous range.
    pub const MISC_MAX: EndReason = EndReason(5999);

    /// True for codes an application may pass to close (1000-2999).
    pub fn is_app(self) -> bool {
        (1000..=2999).contains(&self.0)
    }
}

impl crate::text::Text for EndReason {
    fn push_to(&self, out: &mut String) {
        let range = match self.0 {
            0 => "invalid",
            1000..=1999 => "app",
            2000..=2999 => "app exception",
            3000..=3999 => "local",
            4000..=4999 => "remote",
            5000..=5999 => "misc",
            _ => "unknown",
        };
        crate::text::push_u64(out, u64::from(self.0));
        out.push_str(" (");
        out.push_str(range);
        out.push(')');
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text!(self))
    }
}

/// A received message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The connection it arrived on.
    pub conn: ConnectionHandle,
    /// The connection's user data when the message was received (updated if changed while
    /// the message was queued, as GNS does).
    pub user_data: i64,
    /// The message number in its lane (1, 2, 3... shared by reliable and unreliable messages).
    pub number: u64,
    /// The lane.
    pub lane: u16,
    /// True if sent reliably.
    pub reliable: bool,
    /// When it was complete.
    pub received_at: Instant,
    /// The payload, exactly as sent.
    pub data: Box<[u8]>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("conn", &self.conn)
            .field("number", &self.number)
            .field("lane", &self.lane)
            .field("reliable", &self.reliable)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Snapshot of a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo<A> {
    /// State.
    pub state: ConnectionState,
    /// The peer's transport address.
    pub remote: A,
    /// The listen socket that accepted it (server side), if any.
    pub listen_socket: Option<ListenSocketHandle>,
    /// User data.
    pub user_data: i64,
    /// Why it ended ([`EndReason::INVALID`] while alive).
    pub end_reason: EndReason,
    /// Debug text that came with the end reason.
    pub end_debug: String,
    /// Human-readable description (name, direction, address).
    pub description: String,
    /// The application's name for it.
    pub name: String,
    /// The core encrypts every packet with its own AEAD.
    pub encrypted: bool,
    /// The transport already encrypts (WebRTC's DTLS), so the core does not.
    pub transport_encrypted: bool,
    /// The peer proved its identity with a certificate signed by a trusted CA.
    pub authenticated: bool,
    /// The peer's identity, as proved or as claimed (`None` when it claimed none).
    pub remote_identity: Option<String>,
    /// The route goes through a relay (TURN).
    pub relayed: bool,
}

/// Per-lane part of [`QuickStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LaneStatus {
    /// Unreliable bytes queued, not yet sent.
    pub pending_unreliable: usize,
    /// Reliable bytes queued, not yet sent (including retransmissions).
    pub pending_reliable: usize,
    /// Reliable bytes sent and not yet acknowledged.
    pub sent_unacked_reliable: usize,
    /// Estimated time until what is queued now is sent, given the rate and the lane's share.
    pub queue_time: Duration,
}

/// Cheap, frequently readable status of a connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuickStatus {
    /// State.
    pub state: Option<ConnectionState>,
    /// Smoothed round-trip time in milliseconds (-1 before the first sample).
    pub ping_ms: i32,
    /// Fraction of the peer's packets that arrived, 0..1 (-1 unknown).
    pub quality_local: f32,
    /// Fraction of our packets the peer says arrived, 0..1 (-1 unknown).
    pub quality_remote: f32,
    /// Packets sent per second.
    pub out_packets_per_sec: f32,
    /// Bytes sent per second.
    pub out_bytes_per_sec: f32,
    /// Packets received per second.
    pub in_packets_per_sec: f32,
    /// Bytes received per second.
    pub in_bytes_per_sec: f32,
    /// The rate the pacer sends at, bytes per second.
    pub send_rate_bytes_per_sec: u64,
    /// The congestion controller's estimate of the path's bandwidth, bytes per second (0
    /// before it has one, and always with `CongestionControl` 2).
    pub bandwidth_estimate_bytes_per_sec: u64,
    /// Bytes the congestion controller allows in flight (`u64::MAX`: no limit).
    pub congestion_window: u64,
    /// Unreliable bytes queued.
    pub pending_unreliable: usize,
    /// Reliable bytes queued (including retransmissions).
    pub pending_reliable: usize,
    /// Reliable bytes in flight.
    pub sent_unacked_reliable: usize,
    /// Estimated time until what is queued now is sent.
    pub queue_time: Duration,
    /// Packets sent on this connection so far.
    pub packets_sent: u64,
    /// Of those, packets declared lost (by ack gaps or timeout).
    pub packets_lost: u64,
    /// Reliable bytes sent again after a loss.
    pub bytes_retransmitted: u64,
    /// Per lane.
    pub lanes: Vec<LaneStatus>,
}

/// A datagram for the driver to send: the bytes are in the buffer passed to
/// [`Endpoint::poll_transmit`](crate::Endpoint::poll_transmit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<A> {
    /// The local socket to send from.
    pub local: LocalId,
    /// Where to.
    pub to: A,
    /// Bytes written at the start of the buffer.
    pub len: usize,
}

/// Why a send failed. Losing the connection is an event, not an error; these are about the
/// call itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The handle does not name a live connection (never valid, or closed by the app).
    InvalidHandle,
    /// The connection has ended (closed by the peer or failed): read what is left, then close.
    NoConnection,
    /// The message is larger than [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE).
    MessageTooBig,
    /// The send buffer is full ([`ConfigKey::SendBufferSize`](crate::ConfigKey)); try again later.
    /// Reliable data is never dropped silently.
    LimitExceeded,
    /// `NO_DELAY` message that could not go out soon: dropped, as asked.
    Ignored,
    /// The lane does not exist (configure lanes first).
    InvalidLane,
}

impl SendError {
    /// What went wrong, as `Display` prints it.
    pub fn message(self) -> &'static str {
        match self {
            SendError::InvalidHandle => "invalid connection handle",
            SendError::NoConnection => "connection has ended",
            SendError::MessageTooBig => "message larger than 512 KiB",
            SendError::LimitExceeded => "send buffer full",
            SendError::Ignored => "no-delay message dropped: connection not ready",
            SendError::InvalidLane => "no such lane",
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for SendError {}

/// Why an operation on a handle failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// The handle does not name a live object.
    InvalidHandle,
    /// The object is in the wrong state for this call (e.g. accepting an outgoing connection).
    InvalidState,
    /// Bad argument (e.g. lane count or priorities).
    InvalidParam,
}

impl HandleError {
    /// What went wrong, as `Display` prints it.
    pub fn message(self) -> &'static str {
        match self {
            HandleError::InvalidHandle => "invalid handle",
            HandleError::InvalidState => "invalid state for this call",
            HandleError::InvalidParam => "invalid parameter",
        }
    }
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for HandleError {}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<A> {
    /// A connection changed state. A new incoming connection arrives as `None → Connecting`
    /// with `info.listen_socket` set: accept it or close it.
    StatusChanged {
        /// The connection.
        conn: ConnectionHandle,
        /// Previous state.
        old: ConnectionState,
        /// Everything about it now.
        info: ConnectionInfo<A>,
    },
}
