//! The native crate's own types: received messages with a wall-clock receive time, status
//! events, and the error of the calls that open sockets.

use core::fmt;
use std::io;
use std::net::SocketAddr;

use lanewire_core::config::ConfigError;
use lanewire_core::{ConnectionHandle, ConnectionState, SendFlags};

/// A message number: 1, 2, 3... per lane, shared by reliable and unreliable messages.
pub type MessageNumber = u64;

/// Everything about a connection (state, remote address, end reason, names, flags).
pub type ConnectionInfo = lanewire_core::ConnectionInfo<SocketAddr>;

/// A received message.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The connection it arrived on.
    pub conn: ConnectionHandle,
    /// The connection's user data (as it is when the message is received from the queue).
    pub user_data: i64,
    /// Its number in its lane.
    pub number: MessageNumber,
    /// The lane it was sent on.
    pub lane: u16,
    /// [`SendFlags::RELIABLE`] or [`SendFlags::UNRELIABLE`]: how it travelled. (Unreliable
    /// messages above 16 KiB travel reliably, as in the reference.)
    pub flags: SendFlags,
    /// When the last piece of it arrived.
    pub received_at: std::time::Instant,
    /// The payload, exactly as sent.
    pub data: Box<[u8]>,
}

impl Message {
    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// True if it travelled reliably.
    pub fn is_reliable(&self) -> bool {
        self.flags.is_reliable()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("conn", &self.conn)
            .field("number", &self.number)
            .field("lane", &self.lane)
            .field("reliable", &self.is_reliable())
            .field("len", &self.data.len())
            .finish()
    }
}

/// A connection changed state. A new incoming connection arrives as `None -> Connecting` with
/// `info.listen_socket` set: accept it or close it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChanged {
    /// The connection.
    pub conn: ConnectionHandle,
    /// The state it left.
    pub old: ConnectionState,
    /// Everything about it now (`info.state` is the new state).
    pub info: ConnectionInfo,
}

impl StatusChanged {
    /// True for a new incoming connection that waits to be accepted or closed.
    pub fn is_incoming(&self) -> bool {
        self.old == ConnectionState::None
            && self.info.state == ConnectionState::Connecting
            && self.info.listen_socket.is_some()
    }
}

/// Why creating a listen socket, a connection or a socket pair failed.
#[derive(Debug)]
pub enum SocketError {
    /// The operating system refused (address in use, no such address, no IPv6...).
    Io(io::Error),
    /// A config value was refused (wrong type, out of range, or a global key at connection
    /// scope).
    Config(ConfigError),
    /// The address cannot be connected to (port 0 or an unspecified IP).
    InvalidAddress(SocketAddr),
    /// A socket pair did not connect within its time limit.
    TimedOut,
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Io(e) => write!(f, "socket error: {e}"),
            SocketError::Config(e) => write!(f, "{e}"),
            SocketError::InvalidAddress(a) => write!(f, "cannot connect to {a}"),
            SocketError::TimedOut => f.write_str("socket pair did not connect in time"),
        }
    }
}

impl std::error::Error for SocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SocketError::Io(e) => Some(e),
            SocketError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SocketError {
    fn from(e: io::Error) -> Self {
        SocketError::Io(e)
    }
}

impl From<ConfigError> for SocketError {
    fn from(e: ConfigError) -> Self {
        SocketError::Config(e)
    }
}
