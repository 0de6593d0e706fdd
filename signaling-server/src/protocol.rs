//! The signaling protocol: the messages a client and the server exchange, shared by the server,
//! the native client and the browser (wasm) client.
//!
//! This module depends on serde and serde_json only, so it compiles for
//! `wasm32-unknown-unknown` without the `server` feature.
//!
//! # Framing
//!
//! One JSON object per WebSocket text frame, tagged by a `"type"` field. Binary frames are not
//! part of the protocol. A client sends [`ClientMessage`]s, the server sends [`ServerMessage`]s.
//!
//! # Flow
//!
//! 1. The client opens a WebSocket and sends [`ClientMessage::Register`] with the protocol
//!    version, the identity it claims and a token proving it (see [`crate::token`]).
//! 2. The server answers [`ServerMessage::Registered`], or an [`ServerMessage::Error`] whose
//!    [`ErrorCode`] says why not.
//! 3. The client sends [`ClientMessage::Signal`]s addressed to other identities; the server
//!    forwards each one as a [`ServerMessage::Signal`] stamped with the sender's registered
//!    identity in `from`. A client has no way to choose `from`.
//! 4. If the same identity registers again on another connection, the old connection gets
//!    [`ServerMessage::Replaced`] and is closed.
//!
//! # Invariants
//!
//! - Every [`Identity`] and [`ConnectionId`] in a parsed message has been validated (length and
//!   charset); an invalid one makes the whole message fail to parse.
//! - Client messages are parsed strictly (unknown fields are an error), so a client cannot slip
//!   a `from` field through; server messages are parsed leniently on the client side (unknown
//!   fields ignored, unknown error codes become [`ErrorCode::Other`]) so newer servers can add
//!   information without breaking older clients.
//! - Signals between one sender and one receiver are delivered in the order they were sent, as
//!   long as both stay connected. Delivery is not guaranteed: the peer may go away, or its queue
//!   may be full ([`ErrorCode::PeerBusy`]). Peers must tolerate lost and duplicated signals, as
//!   WebRTC's offer/answer and trickle ICE do.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A client states its version in
/// [`ClientMessage::Register`]; the server refuses others with
/// [`ErrorCode::UnsupportedProtocol`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Maximum length of an [`Identity`] in bytes.
pub const MAX_IDENTITY_LEN: usize = 128;

/// Maximum length of the kind part of an [`Identity`] (before the first `:`), in bytes.
pub const MAX_IDENTITY_KIND_LEN: usize = 16;

/// Maximum length of a [`ConnectionId`] in bytes.
pub const MAX_CONNECTION_ID_LEN: usize = 64;

/// Why a string is not a valid [`Identity`] or [`ConnectionId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidId {
    /// The string is empty.
    Empty,
    /// The string is longer than its maximum length (given).
    TooLong(usize),
    /// An identity has no `:` separating kind and data, or an empty kind or data.
    NoKind,
    /// The kind of an identity is not 1 to 16 lowercase ASCII letters or digits.
    BadKind,
    /// The string contains a character outside the allowed set.
    BadChar,
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong(max) => write!(f, "is longer than {max} bytes"),
            Self::NoKind => f.write_str("is not of the form kind:data"),
            Self::BadKind => f.write_str("has a kind that is not 1-16 characters of [a-z0-9]"),
            Self::BadChar => f.write_str("contains a character that is not allowed"),
        }
    }
}

impl core::error::Error for InvalidId {}

/// An identity a client registers under and peers address each other by: an opaque string of
/// the form `kind:data`, like `str:alice` or `steamid:76561197960287930`.
///
/// Valid identities are at most [`MAX_IDENTITY_LEN`] bytes of UTF-8 without control characters
/// (spaces and non-ASCII letters are fine, as in `str:Locke Lamora`); the kind is 1 to
/// [`MAX_IDENTITY_KIND_LEN`] characters of `[a-z0-9]`, and the data after the first `:` is not
/// empty. These are the rules of the text form of `lanewire_core`'s identity (`str:`, `gen:`,
/// `ip:`, `id:`), so every valid core identity can register. No control characters means no
/// line breaks or escape sequences in logs. Identities compare byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Identity(String);

impl Identity {
    /// Validates `s` as an identity.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        validate_identity(&s)?;
        Ok(Self(s))
    }

    /// The identity as a string, `kind:data`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `:`.
    pub fn kind(&self) -> &str {
        // Validation guarantees a ':' is present.
        self.0.split_once(':').map_or("", |(kind, _)| kind)
    }
}

fn validate_identity(s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::Empty);
    }
    if s.len() > MAX_IDENTITY_LEN {
        return Err(InvalidId::TooLong(MAX_IDENTITY_LEN));
    }
    if s.chars().any(char::is_control) {
        return Err(InvalidId::BadChar);
    }
    let Some((kind, data)) = s.split_once(':') else {
        return Err(InvalidId::NoKind);
    };
    if kind.is_empty() || data.is_empty() {
        return Err(InvalidId::NoKind);
    }
    if kind.len() > MAX_IDENTITY_KIND_LEN
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(InvalidId::BadKind);
    }
    Ok(())
}

impl TryFrom<String> for Identity {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl core::str::FromStr for Identity {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<Identity> for String {
    fn from(id: Identity) -> String {
        id.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A correlation id for one connection attempt, chosen by the initiator and carried by every
/// signal of that attempt in both directions, so concurrent attempts between the same two
/// peers can be told apart.
///
/// 1 to [`MAX_CONNECTION_ID_LEN`] bytes of `[A-Za-z0-9._:-]`. A string rather than a number so
/// that 64-bit ids survive JavaScript (whose numbers are exact only to 2^53): write a `u64` in
/// decimal or hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionId(String);

impl ConnectionId {
    /// Validates `s` as a connection id.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        if s.is_empty() {
            return Err(InvalidId::Empty);
        }
        if s.len() > MAX_CONNECTION_ID_LEN {
            return Err(InvalidId::TooLong(MAX_CONNECTION_ID_LEN));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) {
            return Err(InvalidId::BadChar);
        }
        Ok(Self(s))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<u64> for ConnectionId {
    /// The decimal form of `n`.
    fn from(n: u64) -> Self {
        Self(n.to_string())
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl core::str::FromStr for ConnectionId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<ConnectionId> for String {
    fn from(id: ConnectionId) -> String {
        id.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Bind this connection to `identity`. Must be the first message, sent within the server's
    /// registration timeout.
    Register {
        /// The protocol version the client speaks ([`PROTOCOL_VERSION`]).
        protocol: u32,
        /// The identity to register.
        identity: Identity,
        /// A token for `identity` from [`crate::token::issue`]. Required unless the server runs
        /// in dev-insecure mode, which ignores it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Forward `payload` to the client registered as `to`.
    Signal {
        /// The recipient.
        to: Identity,
        /// The connection attempt this signal belongs to.
        connection: ConnectionId,
        /// What to forward.
        payload: Payload,
    },
}

/// What one peer signals to another about a connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Payload {
    /// An SDP offer opening a connection to the recipient's virtual port `port`.
    Offer {
        /// The SDP text.
        sdp: String,
        /// The virtual port on the recipient the initiator connects to (GNS's
        /// `nRemoteVirtualPort`).
        port: u32,
    },
    /// An SDP answer accepting an offer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate (the fields of `RTCIceCandidateInit`). An empty `candidate`
    /// signals the end of candidates.
    Candidate {
        /// The `candidate:` attribute line.
        candidate: String,
        /// The media stream identification tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// The index of the media description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u16>,
    },
    /// The recipient refuses the connection attempt (nobody listens on the port, the
    /// application declined it...).
    Reject {
        /// Why, for logs and debugging.
        reason: String,
    },
    /// The sender abandons or ends the connection attempt.
    Bye,
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The connection is now registered as `identity`.
    Registered {
        /// The registered identity.
        identity: Identity,
        /// The protocol version the server speaks.
        protocol: u32,
        /// The largest text frame the server accepts, in bytes.
        max_frame_bytes: u64,
        /// ICE servers with credentials minted for this client (time-limited TURN
        /// credentials), to use in addition to the client's own configuration. Absent (empty)
        /// when the server mints none; older servers never send it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<IceServer>,
    },
    /// A signal from another client.
    Signal {
        /// The sender's registered identity, stamped by the server.
        from: Identity,
        /// The connection attempt the signal belongs to.
        connection: ConnectionId,
        /// What the sender signalled.
        payload: Payload,
    },
    /// Something the client sent was refused, or the connection is about to close.
    Error(ErrorFrame),
    /// Another connection registered this connection's identity; the server closes this one
    /// right after this message.
    Replaced {
        /// The identity that was taken over.
        identity: Identity,
    },
}

/// An ICE server a client may use, with its credentials: the fields of WebRTC's
/// `RTCIceServer`. The server sends these in [`ServerMessage::Registered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:host:port?transport=udp`, `turns:host:5349`, `stun:host:port`...
    pub urls: Vec<String>,
    /// The TURN user name (for coturn's `use-auth-secret`: `<expiry unix time>:<identity>`).
    #[serde(default)]
    pub username: String,
    /// The TURN password.
    #[serde(default)]
    pub credential: String,
}

/// The body of [`ServerMessage::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Machine-readable reason.
    pub code: ErrorCode,
    /// Human-readable detail, for logs.
    pub message: String,
    /// The recipient of the refused signal ([`ErrorCode::UnknownPeer`],
    /// [`ErrorCode::PeerBusy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Identity>,
    /// The connection id of the refused signal, so the attempt can fail fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionId>,
    /// For [`ErrorCode::RateLimited`]: how long until the next message will be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// For [`ErrorCode::UnsupportedProtocol`]: the version the server speaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
}

impl ErrorFrame {
    /// An error frame with only a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            to: None,
            connection: None,
            retry_after_ms: None,
            protocol: None,
        }
    }
}

/// The stable machine-readable codes of [`ErrorFrame`]. On the wire, the snake_case name.
///
/// "Closes" below means the server closes the WebSocket right after the error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a valid client message: not JSON, an unknown `type`, a missing or
    /// unknown field, an invalid identity, or a binary frame.
    Malformed,
    /// `register` named a protocol version the server does not speak.
    UnsupportedProtocol,
    /// A `signal` before `register`.
    NotRegistered,
    /// A second `register` on a connection that is already registered.
    AlreadyRegistered,
    /// The token is missing, forged, malformed, or for another identity.
    BadToken,
    /// The token's expiry has passed.
    TokenExpired,
    /// Nobody is registered under the `to` identity; the signal was dropped.
    UnknownPeer,
    /// The recipient's outgoing queue is full (it reads too slowly); the signal was dropped.
    PeerBusy,
    /// A frame (or fragmented message) larger than the server's limit. Closes.
    FrameTooLarge,
    /// The client sends faster than its rate limit; messages over it are dropped.
    RateLimited,
    /// The server has its maximum number of clients. Closes.
    ServerFull,
    /// No `register` within the registration timeout. Closes.
    RegistrationTimeout,
    /// Nothing received (not even a pong) within the idle timeout. Closes.
    IdleTimeout,
    /// The server is shutting down. Closes.
    ShuttingDown,
    /// A code this version of the crate does not know (sent by a newer server).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Every code the server sends, in a stable order (everything but [`ErrorCode::Other`]).
    pub const ALL: [ErrorCode; 14] = [
        Self::Malformed,
        Self::UnsupportedProtocol,
        Self::NotRegistered,
        Self::AlreadyRegistered,
        Self::BadToken,
        Self::TokenExpired,
        Self::UnknownPeer,
        Self::PeerBusy,
        Self::FrameTooLarge,
        Self::RateLimited,
        Self::ServerFull,
        Self::RegistrationTimeout,
        Self::IdleTimeout,
        Self::ShuttingDown,
    ];

    /// The wire name, like `"unknown_peer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedProtocol => "unsupported_protocol",
            Self::NotRegistered => "not_registered",
            Self::AlreadyRegistered => "already_registered",
            Self::BadToken => "bad_token",
            Self::TokenExpired => "token_expired",
            Self::UnknownPeer => "unknown_peer",
            Self::PeerBusy => "peer_busy",
            Self::FrameTooLarge => "frame_too_large",
            Self::RateLimited => "rate_limited",
            Self::ServerFull => "server_full",
            Self::RegistrationTimeout => "registration_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::ShuttingDown => "shutting_down",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ClientMessage {
    /// Parses one text frame.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON text frame for this message.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

impl ServerMessage {
    /// Parses one text frame.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The JSON text frame for this message.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing these types cannot fail: they hold only strings, integers, options and
    // enums, no maps with non-string keys and no fallible Serialize impls.
    serde_json::to_string(value).expect("protocol messages always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::new(s).expect("valid identity")
    }

    #[test]
    fn identity_validation() {
        for ok in ["str:alice", "str:Locke Lamora", "ip:[::1]:5", "id:42", "a:b", "str:a:b é"] {
            assert!(Identity::new(ok).is_ok(), "{ok}");
        }
        let long = format!("str:{}", "x".repeat(MAX_IDENTITY_LEN - 4));
        assert!(Identity::new(long.clone()).is_ok());
        assert_eq!(Identity::new(format!("{long}x")), Err(InvalidId::TooLong(128)));
        assert_eq!(Identity::new(""), Err(InvalidId::Empty));
        assert_eq!(Identity::new("alice"), Err(InvalidId::NoKind));
        assert_eq!(Identity::new(":alice"), Err(InvalidId::NoKind));
        assert_eq!(Identity::new("str:"), Err(InvalidId::NoKind));
        assert_eq!(Identity::new("Str:alice"), Err(InvalidId::BadKind));
        assert_eq!(Identity::new("abcdefghijklmnopq:x"), Err(InvalidId::BadKind));
        assert_eq!(Identity::new("str:a\nb"), Err(InvalidId::BadChar));
        assert_eq!(Identity::new("str:a\u{1b}[31m"), Err(InvalidId::BadChar));
        assert_eq!(Identity::new("invalid"), Err(InvalidId::NoKind));
        assert_eq!(id("ip:[::1]:5").kind(), "ip");
    }

    #[test]
    fn connection_id_validation() {
        assert!(ConnectionId::new("c-1.a_b:2").is_ok());
        assert_eq!(ConnectionId::from(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(ConnectionId::new(""), Err(InvalidId::Empty));
        assert_eq!(ConnectionId::new("a b"), Err(InvalidId::BadChar));
        assert_eq!(ConnectionId::new("x".repeat(65)), Err(InvalidId::TooLong(64)));
    }

    #[test]
    fn client_messages_parse_from_literal_json() {
        let reg = r#"{"type":"register","protocol":1,"identity":"str:alice","token":"t"}"#;
        assert_eq!(
            ClientMessage::from_json(reg).expect("register"),
            ClientMessage::Register {
                protocol: 1,
                identity: id("str:alice"),
                token: Some("t".into())
            }
        );
        let offer = r#"{"type":"signal","to":"str:bob","connection":"7",
            "payload":{"type":"offer","sdp":"v=0","port":3}}"#;
        assert_eq!(
            ClientMessage::from_json(offer).expect("offer"),
            ClientMessage::Signal {
                to: id("str:bob"),
                connection: ConnectionId::from(7),
                payload: Payload::Offer { sdp: "v=0".into(), port: 3 },
            }
        );
        let cand = r#"{"type":"signal","to":"str:bob","connection":"7",
            "payload":{"type":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "sdp_mid":"0","sdp_mline_index":0}}"#;
        assert!(ClientMessage::from_json(cand).is_ok());
        let bye = r#"{"type":"signal","to":"str:bob","connection":"7","payload":{"type":"bye"}}"#;
        assert!(ClientMessage::from_json(bye).is_ok());
    }

    #[test]
    fn client_messages_round_trip() {
        let payloads = [
            Payload::Offer { sdp: "v=0\r\n".into(), port: 0 },
            Payload::Answer { sdp: "v=0\r\n".into() },
            Payload::Candidate { candidate: String::new(), sdp_mid: None, sdp_mline_index: None },
            Payload::Reject { reason: "no listener".into() },
            Payload::Bye,
        ];
        for payload in payloads {
            let msg = ClientMessage::Signal {
                to: id("str:bob"),
                connection: ConnectionId::from(1),
                payload,
            };
            assert_eq!(ClientMessage::from_json(&msg.to_json()).expect("round trip"), msg);
        }
        let bye = ClientMessage::Signal {
            to: id("str:bob"),
            connection: ConnectionId::from(1),
            payload: Payload::Bye,
        };
        assert_eq!(
            bye.to_json(),
            r#"{"type":"signal","to":"str:bob","connection":"1","payload":{"type":"bye"}}"#
        );
    }

    #[test]
    fn client_cannot_set_from() {
        let forged = r#"{"type":"signal","from":"str:carol","to":"str:bob","connection":"1",
            "payload":{"type":"bye"}}"#;
        let err = ClientMessage::from_json(forged).expect_err("from is not a client field");
        assert!(err.to_string().contains("from"), "{err}");
    }

    #[test]
    fn invalid_ids_fail_the_message() {
        let bad_to = r#"{"type":"signal","to":"bob","connection":"1","payload":{"type":"bye"}}"#;
        assert!(ClientMessage::from_json(bad_to).is_err());
        let bad_conn =
            r#"{"type":"signal","to":"str:bob","connection":"a b","payload":{"type":"bye"}}"#;
        assert!(ClientMessage::from_json(bad_conn).is_err());
        assert!(ClientMessage::from_json(r#"{"type":"hello"}"#).is_err());
        assert!(ClientMessage::from_json("[1,2]").is_err());
    }

    #[test]
    fn server_messages() {
        let err = ServerMessage::Error(ErrorFrame {
            to: Some(id("str:bob")),
            connection: Some(ConnectionId::from(9)),
            ..ErrorFrame::new(ErrorCode::UnknownPeer, "nobody")
        });
        assert_eq!(
            err.to_json(),
            r#"{"type":"error","code":"unknown_peer","message":"nobody","to":"str:bob","connection":"9"}"#
        );
        assert_eq!(ServerMessage::from_json(&err.to_json()).expect("round trip"), err);
        // A newer server's code and extra fields still parse.
        let newer = r#"{"type":"error","code":"quota_exceeded","message":"m","extra":1}"#;
        match ServerMessage::from_json(newer).expect("lenient") {
            ServerMessage::Error(frame) => assert_eq!(frame.code, ErrorCode::Other),
            other => panic!("unexpected {other:?}"),
        }
        let reg =
            r#"{"type":"registered","identity":"str:a","protocol":1,"max_frame_bytes":65536}"#;
        match ServerMessage::from_json(reg) {
            Ok(msg @ ServerMessage::Registered { .. }) => {
                // Without minted servers the field is neither required nor written.
                assert_eq!(msg.to_json(), reg);
            }
            other => panic!("{other:?}"),
        }
        let with_turn = ServerMessage::Registered {
            identity: id("str:a"),
            protocol: 1,
            max_frame_bytes: 65536,
            ice_servers: alloc::vec![IceServer {
                urls: alloc::vec!["turn:127.0.0.1:3478".into()],
                username: "1700000000:str:a".into(),
                credential: "c3VjaA==".into(),
            }],
        };
        assert_eq!(
            with_turn.to_json(),
            r#"{"type":"registered","identity":"str:a","protocol":1,"max_frame_bytes":65536,"ice_servers":[{"urls":["turn:127.0.0.1:3478"],"username":"1700000000:str:a","credential":"c3VjaA=="}]}"#
        );
        assert_eq!(ServerMessage::from_json(&with_turn.to_json()).expect("round trip"), with_turn);
    }

    #[test]
    fn error_code_names_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_string(&code).expect("code"), format!("\"{code}\""));
        }
    }
}
