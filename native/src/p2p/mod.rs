//! P2P connections by identity and virtual port over WebRTC data channels (feature `webrtc`):
//! the reference's `CreateListenSocketP2P` / `ConnectP2P`, with a signaling client for
//! `lanewire-signaling`.
//!
//! # How a WebRTC peer looks to the core
//!
//! The core endpoint is the same `Endpoint<SocketAddr>` that drives UDP. Each WebRTC peer
//! connection (one per Lanewire connection) gets a synthetic address in the IPv6 discard
//! prefix `100::/64` (RFC 6666, which no real peer has), `[100::7277:0:K]:1` for peer key
//! `K`, as in-memory socket pairs do; each virtual port `P` is the local socket
//! `LocalId(2^31 + P)`, a range no UDP socket uses. The transmit path sends datagrams the
//! core addresses to a synthetic address into that peer's data channel instead of a UDP
//! socket, and messages from the data channel enter the endpoint with `from` set to it. The
//! core's own handshake (cookie, connect request, connect OK) then runs over the data
//! channel; every virtual port is declared `set_transport_encrypted`, so the core negotiates
//! its null cipher there because DTLS already encrypts.
//!
//! # The convention browser and native peers share
//!
//! - One `RTCPeerConnection` per Lanewire connection, with one data channel created by both
//!   sides at once: label `lanewire`, negotiated out of band with id 0, unordered,
//!   `maxRetransmits: 0`. It behaves like UDP; the core's reliability applies unchanged.
//! - The connecting side sends `offer` (with the virtual port it connects to in `port`); the
//!   listening side answers with `answer`, or `reject` if nobody listens on that port. ICE
//!   candidates trickle as `candidate` messages, each side's only after its description went
//!   out. `bye` abandons an attempt. Every signal carries the initiator's attempt id
//!   (16 hex digits) in `connection`.
//! - Signals may be lost or repeated: until the data channel opens, the connecting side
//!   repeats its offer and candidates (with backoff), the listening side answers a repeated
//!   offer by repeating its answer and candidates, and duplicates are ignored.
//!
//! # Threads
//!
//! The webrtc crate needs an async runtime: [`Sockets::connect_signaling`] starts a tokio
//! runtime owned by the `Sockets` instance (two worker threads named `lanewire-p2p`), which
//! runs the signaling client, every peer connection and a maintenance tick. Those tasks touch
//! the endpoint only through the same state lock and transmit path as API calls, so the
//! drive contract is unchanged. UDP connections never touch the runtime.

mod hub;
mod ice;
mod peer;
mod signaling;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use lanewire_core::config::ConfigError;
use lanewire_core::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, ConnectionInfo, Instant, ListenSocketHandle,
    LocalId, SymmetricClaim,
};
use lanewire_signaling::protocol::{ConnectionId, Identity, Payload};
use tokio::sync::mpsc;

use crate::Sockets;
use crate::state::{ListenEntry, State};

pub(crate) use hub::Hub;

/// Local sockets of virtual ports: `LocalId(P2P_LOCAL_BASE + port)`. UDP sockets are numbered
/// from 0 and never get near it.
const P2P_LOCAL_BASE: u32 = 1 << 31;

/// The largest virtual port (the reference's ports are non-negative `int`s).
pub const MAX_VIRTUAL_PORT: u32 = P2P_LOCAL_BASE - 1;

/// Marks synthetic WebRTC addresses inside the discard prefix (`100::7277:0:0:0/80`, "rw").
const ADDR_TAG: u16 = 0x7277;

/// The local socket of virtual port `port`.
pub(crate) fn local_of_port(port: u32) -> LocalId {
    LocalId(P2P_LOCAL_BASE | port)
}

/// True for the local socket of a virtual port.
pub(crate) fn is_p2p_local(local: LocalId) -> bool {
    local.0 & P2P_LOCAL_BASE != 0
}

/// The synthetic address of peer connection `key`.
fn peer_addr(key: u32) -> SocketAddr {
    let ip = Ipv6Addr::new(0x100, 0, 0, 0, ADDR_TAG, 0, (key >> 16) as u16, key as u16);
    SocketAddr::V6(SocketAddrV6::new(ip, 1, 0, 0))
}

/// Configuration of the signaling connection and of the WebRTC transport, given to
/// [`Sockets::connect_signaling`].
#[derive(Clone, PartialEq)]
pub struct SignalingConfig {
    /// The server's WebSocket URL, like `ws://127.0.0.1:8787/ws`, or `wss://` through TLS
    /// (rustls; the server's certificate must chain to a Mozilla root, as in browsers, or to
    /// one of [`SignalingConfig::extra_root_certs`]).
    pub url: String,
    /// The identity to register, `kind:data` (`str:alice`, `id:42`...).
    pub identity: String,
    /// A token for `identity` (see `lanewire_signaling::token`); `None` for a server in
    /// dev-insecure mode.
    pub token: Option<String>,
    /// How long [`Sockets::connect_signaling`] waits for the server to accept the
    /// registration.
    pub timeout: Duration,
    /// Local addresses the WebRTC transport binds its ICE UDP sockets to. The default
    /// `0.0.0.0:0` means every non-loopback IPv4 interface; tests on one machine use
    /// `127.0.0.1:0` (with [`SignalingConfig::loopback_candidates`]).
    pub ice_bind: Vec<SocketAddr>,
    /// Offer loopback host candidates (off by default: no remote peer can use them).
    pub loopback_candidates: bool,
    /// Certificates (DER) trusted for `wss://` besides the Mozilla root set: a private CA's,
    /// or a test server's self-signed one.
    pub extra_root_certs: Vec<Vec<u8>>,
    /// Test hook: the percentage (0-100) of outgoing peer signals dropped on purpose, to
    /// rehearse a lossy signaling path.
    pub fake_signal_loss_percent: u8,
    /// Test hook: the percentage (0-100) of outgoing peer signals sent twice.
    pub fake_signal_dup_percent: u8,
}

impl SignalingConfig {
    /// A configuration with the defaults: no token, 5 s registration timeout, ICE on every
    /// non-loopback IPv4 interface.
    pub fn new(url: impl Into<String>, identity: impl Into<String>) -> SignalingConfig {
        SignalingConfig {
            url: url.into(),
            identity: identity.into(),
            token: None,
            timeout: Duration::from_secs(5),
            ice_bind: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            loopback_candidates: false,
            extra_root_certs: Vec::new(),
            fake_signal_loss_percent: 0,
            fake_signal_dup_percent: 0,
        }
    }

    /// Sets the token.
    pub fn with_token(mut self, token: impl Into<String>) -> SignalingConfig {
        self.token = Some(token.into());
        self
    }

    /// Binds ICE to `127.0.0.1:0` only and offers loopback candidates: two peers on one
    /// machine, no other network (tests, benchmarks).
    pub fn loopback_only(mut self) -> SignalingConfig {
        self.ice_bind = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        self.loopback_candidates = true;
        self
    }
}

impl fmt::Debug for SignalingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalingConfig")
            .field("url", &self.url)
            .field("identity", &self.identity)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("ice_bind", &self.ice_bind)
            .field("loopback_candidates", &self.loopback_candidates)
            .finish_non_exhaustive()
    }
}

/// Why a P2P call failed. Failures of the connection itself (unknown peer, rejected, no
/// route) are status events with an end reason, not errors of the call.
#[derive(Debug)]
pub enum P2pError {
    /// `connect_p2p` before [`Sockets::connect_signaling`].
    NoSignaling,
    /// `connect_signaling` on an instance that already has a signaling connection.
    AlreadyConnected,
    /// The identity is not `kind:data` (with the reason).
    InvalidIdentity(String),
    /// Connecting to this instance's own identity.
    OwnIdentity,
    /// The virtual port is above [`MAX_VIRTUAL_PORT`].
    InvalidPort(u32),
    /// Already listening on this virtual port.
    AlreadyListening(u32),
    /// A symmetric `connect_p2p` (`SymmetricConnect` 1) found a live symmetric connection
    /// to the same identity and virtual port already (given): there is at most one.
    Duplicate(ConnectionHandle),
    /// A config value was refused (wrong type, range or scope).
    Config(ConfigError),
    /// The signaling server refused the registration (`bad_token`, `token_expired`...), with
    /// its code and message.
    Refused(String),
    /// The signaling server did not accept the registration within the timeout, or could not
    /// be reached (with the last error).
    Unreachable(String),
    /// The async runtime could not start.
    Io(std::io::Error),
    /// `wss://`: an [`SignalingConfig::extra_root_certs`] entry is not a usable certificate.
    Tls(String),
}

impl fmt::Display for P2pError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            P2pError::NoSignaling => f.write_str("no signaling connection: call connect_signaling"),
            P2pError::AlreadyConnected => f.write_str("signaling is already connected"),
            P2pError::InvalidIdentity(e) => write!(f, "invalid identity: {e}"),
            P2pError::OwnIdentity => f.write_str("cannot connect to this instance's own identity"),
            P2pError::InvalidPort(p) => write!(f, "virtual port {p} is above {MAX_VIRTUAL_PORT}"),
            P2pError::AlreadyListening(p) => write!(f, "already listening on virtual port {p}"),
            P2pError::Duplicate(c) => {
                write!(f, "a symmetric connection to this peer and port exists already ({c:?})")
            }
            P2pError::Config(e) => write!(f, "{e}"),
            P2pError::Refused(e) => write!(f, "signaling server refused the registration: {e}"),
            P2pError::Unreachable(e) => write!(f, "signaling server unreachable: {e}"),
            P2pError::Io(e) => write!(f, "cannot start the WebRTC runtime: {e}"),
            P2pError::Tls(e) => write!(f, "TLS set-up for wss:// failed: {e}"),
        }
    }
}

impl std::error::Error for P2pError {}

impl From<ConfigError> for P2pError {
    fn from(e: ConfigError) -> Self {
        P2pError::Config(e)
    }
}

/// What a P2P connection is: the peer's identity and virtual port and the route ICE chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pConnectionInfo {
    /// The peer's identity, as the signaling server vouches for it.
    pub identity: String,
    /// The virtual port the connection was made to (the peer's for outgoing connections,
    /// ours for incoming ones).
    pub virtual_port: u32,
    /// The local virtual port it uses here.
    pub local_virtual_port: u32,
    /// True if this side connected.
    pub outgoing: bool,
    /// The data channel is open.
    pub open: bool,
    /// The route goes through a TURN relay (either side's candidate is a relay candidate).
    pub relayed: bool,
    /// The selected ICE pair, like `udp 127.0.0.1:50000 (host) -> 127.0.0.1:50001 (host)`,
    /// once the data channel is open.
    pub route: Option<String>,
}

/// Counters of the WebRTC transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2pStats {
    /// Datagrams for a peer connection that no longer exists.
    pub no_route: u64,
    /// Datagrams dropped while the data channel was opening (queue overflow).
    pub dropped_opening: u64,
    /// Datagrams dropped because the data channel's send buffer stayed full for a second.
    pub dropped_buffer_full: u64,
    /// Times a data channel was full and its connection stopped sending until it drained.
    pub channel_full: u64,
    /// Datagrams the data channel refused (closing, or another send error).
    pub send_errors: u64,
    /// Peer connections created (both directions).
    pub peers_created: u64,
    /// Peer connections freed.
    pub peers_freed: u64,
    /// Signaling (re)connections that registered.
    pub signaling_registrations: u64,
    /// Symmetric connect: offers ignored because our own crossing attempt is the one kept.
    pub symmetric_kept: u64,
    /// Symmetric connect: our outgoing connections that gave way to the peer's crossing
    /// attempt (and became its server side).
    pub symmetric_merged: u64,
}

/// Input for a peer task.
#[derive(Debug)]
pub(crate) enum PeerInput {
    /// A signal from the peer.
    Signal(Payload),
    /// The server refused a signal to the peer (`unknown_peer`, `peer_busy`).
    SignalError(String),
}

/// One peer connection as the synchronous side knows it (guarded by the state lock).
#[derive(Debug)]
pub(crate) struct PeerEntry {
    pub(crate) identity: Identity,
    pub(crate) attempt: ConnectionId,
    pub(crate) outgoing: bool,
    /// See [`P2pConnectionInfo::virtual_port`].
    pub(crate) port: u32,
    pub(crate) local_port: u32,
    pub(crate) addr: SocketAddr,
    pub(crate) conn: Option<ConnectionHandle>,
    /// Datagrams to the data channel (the writer task).
    out: mpsc::UnboundedSender<Vec<u8>>,
    /// Signals to the peer task. Dropping it ends the task, which closes the peer connection.
    pub(crate) input: mpsc::UnboundedSender<PeerInput>,
    pub(crate) open: bool,
    pub(crate) relayed: bool,
    pub(crate) route: Option<String>,
    /// The transport failed or closed: nothing more will pass.
    pub(crate) dead: bool,
    /// The peer knows the attempt is over (it told us, or we sent it a bye).
    pub(crate) told: bool,
    pub(crate) created: Instant,
    pub(crate) closed_at: Option<Instant>,
    pub(crate) last_send: Instant,
    /// An outgoing symmetric connection's config (`SymmetricConnect` 1): if the peer's own
    /// attempt arrives while this one is still opening, the one to keep is decided by identity
    /// order, and the side that gives way takes the peer's offer with this config.
    pub(crate) symmetric: Option<Config>,
}

impl PeerEntry {
    /// A peer connection that has not opened yet, with no Lanewire connection so far, and the
    /// receiving ends of its channels: datagrams for the writer task, signals for the peer
    /// task.
    #[allow(clippy::type_complexity)]
    fn new(
        identity: Identity,
        attempt: ConnectionId,
        outgoing: bool,
        port: u32,
        local_port: u32,
        addr: SocketAddr,
        now: Instant,
    ) -> (PeerEntry, mpsc::UnboundedReceiver<Vec<u8>>, mpsc::UnboundedReceiver<PeerInput>) {
        let (out, out_rx) = mpsc::unbounded_channel();
        let (input, in_rx) = mpsc::unbounded_channel();
        let entry = PeerEntry {
            identity,
            attempt,
            outgoing,
            port,
            local_port,
            addr,
            conn: None,
            out,
            input,
            open: false,
            relayed: false,
            route: None,
            dead: false,
            told: false,
            created: now,
            closed_at: None,
            last_send: now,
            symmetric: None,
        };
        (entry, out_rx, in_rx)
    }
}

/// The WebRTC side of the driver's state, inside [`State`] so the transmit path can route
/// under the lock it already holds.
#[derive(Debug, Default)]
pub(crate) struct P2pState {
    pub(crate) peers: HashMap<u32, PeerEntry>,
    by_addr: HashMap<SocketAddr, u32>,
    pub(crate) attempts: HashMap<(Identity, ConnectionId), u32>,
    next_key: u32,
    pub(crate) stats: P2pStats,
}

impl P2pState {
    fn new_key(&mut self) -> u32 {
        self.next_key = self.next_key.wrapping_add(1).max(1);
        self.next_key
    }

    /// Sends a datagram the core addressed to a synthetic address into its data channel.
    pub(crate) fn transmit(&mut self, now: Instant, to: SocketAddr, data: &[u8]) {
        let Some(p) = self.by_addr.get(&to).and_then(|k| self.peers.get_mut(k)) else {
            self.stats.no_route += 1;
            return;
        };
        if p.dead || p.out.send(data.to_vec()).is_err() {
            self.stats.no_route += 1;
            return;
        }
        p.last_send = now;
    }

    pub(crate) fn by_addr(&self, addr: &SocketAddr) -> Option<&PeerEntry> {
        self.by_addr.get(addr).and_then(|k| self.peers.get(k))
    }

    fn insert(&mut self, key: u32, p: PeerEntry) {
        self.by_addr.insert(p.addr, key);
        self.attempts.insert((p.identity.clone(), p.attempt.clone()), key);
        self.peers.insert(key, p);
        self.stats.peers_created += 1;
    }

    /// Forgets a peer: its tasks end and its peer connection closes.
    pub(crate) fn remove(&mut self, key: u32) -> Option<PeerEntry> {
        let p = self.peers.remove(&key)?;
        self.by_addr.remove(&p.addr);
        if self.attempts.get(&(p.identity.clone(), p.attempt.clone())) == Some(&key) {
            self.attempts.remove(&(p.identity.clone(), p.attempt.clone()));
        }
        self.stats.peers_freed += 1;
        Some(p)
    }

    /// Fills in what the core cannot know about a P2P connection: the identity the
    /// signaling server vouches for (unless a certificate proved one) and the route.
    pub(crate) fn patch_info(&self, info: &mut ConnectionInfo<SocketAddr>) {
        if let Some(p) = self.by_addr(&info.remote) {
            if !info.authenticated {
                info.remote_identity = Some(p.identity.to_string());
            }
            info.relayed = p.relayed;
            info.transport_encrypted = true;
        }
    }
}

/// Hook of [`State::collect_events`]: a new incoming connection on a virtual port belongs to
/// the peer connection it came through; every P2P event gets the peer's identity and route.
pub(crate) fn on_event(
    st: &mut State,
    conn: ConnectionHandle,
    mut info: ConnectionInfo<SocketAddr>,
) -> ConnectionInfo<SocketAddr> {
    let Some(&key) = st.p2p.by_addr.get(&info.remote) else { return info };
    if let Some(p) = st.p2p.peers.get_mut(&key)
        && p.conn.is_none()
    {
        p.conn = Some(conn);
        let _ = st.ep.set_transport_info(conn, true, p.relayed);
    }
    st.p2p.patch_info(&mut info);
    info
}

/// A symmetric `connect_p2p` to (`to`, `local_port`): the connection it turns out to be, if
/// the peer is already connecting to us (see [`Sockets::connect_p2p`]), `None` to go on with
/// a new attempt, or [`P2pError::Duplicate`].
fn symmetric_match(
    st: &mut State,
    now: Instant,
    to: &Identity,
    local_port: u32,
    config: &Config,
) -> Result<Option<ConnectionHandle>, P2pError> {
    let State { ep, p2p, .. } = st;
    for p in p2p.peers.values_mut() {
        if p.identity != *to || p.local_port != local_port || p.dead {
            continue;
        }
        let local = local_of_port(local_port);
        match ep.symmetric_claim(now, local, p.addr, p.conn, !p.outgoing, config)? {
            SymmetricClaim::Nothing => {}
            SymmetricClaim::Accepted(c) => return Ok(Some(c)),
            SymmetricClaim::Duplicate(c) => return Err(P2pError::Duplicate(c)),
            // The peer's offer is here and its channel is opening: become that connection.
            SymmetricClaim::Merged(c) => {
                let _ = ep.set_transport_info(c, true, p.relayed);
                p.conn = Some(c);
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// `TimeoutInitial` for a connection being created (see [`resolve`]).
fn timeout_initial(layers: &[&Config], st: &State) -> Duration {
    match resolve(layers, st, ConfigKey::TimeoutInitial) {
        ConfigValue::Int32(ms) => Duration::from_millis(ms.max(0) as u64),
        _ => Duration::from_secs(10),
    }
}

/// Reads a string config value for a connection being created: its own override, the listen
/// socket's, then the global value.
fn resolve(layers: &[&Config], st: &State, key: ConfigKey) -> ConfigValue {
    layers.iter().find_map(|c| c.get(key)).cloned().unwrap_or_else(|| st.ep.config_value(key))
}

impl Sockets {
    fn hub(&self) -> Option<Arc<Hub>> {
        self.inner.p2p.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connects to the signaling server and registers `config.identity`, waiting up to
    /// `config.timeout` for the server to accept it. Starts the WebRTC runtime.
    ///
    /// Once registered, the client stays connected: if the server goes away it reconnects
    /// (with backoff, up to 5 s apart) and registers again; established P2P connections do
    /// not depend on it. Errors: [`P2pError::Refused`] (bad or expired token, another
    /// protocol version), [`P2pError::Unreachable`], [`P2pError::InvalidIdentity`],
    /// [`P2pError::AlreadyConnected`].
    pub fn connect_signaling(&self, config: SignalingConfig) -> Result<(), P2pError> {
        let identity = Identity::new(config.identity.clone())
            .map_err(|e| P2pError::InvalidIdentity(format!("{:?} {e}", config.identity)))?;
        let hub = {
            let mut slot = self.inner.p2p.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                return Err(P2pError::AlreadyConnected);
            }
            let hub = Arc::new(Hub::start(self.inner.shared.clone(), identity, config.clone())?);
            *slot = Some(hub.clone());
            hub
        };
        let r = hub.wait_registered(config.timeout);
        if r.is_err() {
            // Nothing keeps running after a failed start: the caller may try again.
            let mut slot = self.inner.p2p.lock().unwrap_or_else(|p| p.into_inner());
            if slot.as_ref().is_some_and(|h| Arc::ptr_eq(h, &hub)) {
                *slot = None;
            }
        }
        r
    }

    /// True while the signaling connection is registered (new P2P connections need it;
    /// established ones do not).
    pub fn is_signaling_connected(&self) -> bool {
        self.hub().is_some_and(|h| h.is_registered())
    }

    /// The identity registered with [`Sockets::connect_signaling`].
    pub fn p2p_identity(&self) -> Option<String> {
        self.hub().map(|h| h.ctx.identity.to_string())
    }

    /// Listens for P2P connections to virtual port `virtual_port` (the reference's
    /// `CreateListenSocketP2P`); `config` is inherited by the connections it accepts.
    /// Incoming connections arrive as status events exactly like UDP ones: accept or close
    /// them. Close it with [`Sockets::close_listen_socket`].
    ///
    /// May be called before [`Sockets::connect_signaling`]; offers arrive once registered.
    pub fn listen_p2p(
        &self,
        virtual_port: u32,
        config: Config,
    ) -> Result<ListenSocketHandle, P2pError> {
        if virtual_port > MAX_VIRTUAL_PORT {
            return Err(P2pError::InvalidPort(virtual_port));
        }
        config.check_connection_scope()?;
        let local = local_of_port(virtual_port);
        let mut st = self.inner.shared.lock();
        if st.listen.values().any(|l| l.local == local) {
            return Err(P2pError::AlreadyListening(virtual_port));
        }
        st.ep.set_transport_encrypted(local, true);
        st.ep.set_transport_max_datagram(local, Some(lanewire_core::DATA_CHANNEL_DATAGRAM));
        let h = st
            .ep
            .create_listen_socket(local, config.clone())
            .map_err(|_| P2pError::AlreadyListening(virtual_port))?;
        st.listen.insert(h, ListenEntry { local, config, hidden: false });
        Ok(h)
    }

    /// Connects to the peer registered as `identity` on its virtual port `virtual_port` (the
    /// reference's `ConnectP2P`), through the signaling server, then WebRTC. Returns at once;
    /// progress arrives as status events, as for [`Sockets::connect_ip`], and reliable
    /// messages sent meanwhile wait for the connection.
    ///
    /// The connection fails (`ProblemDetectedLocally`) within `TimeoutInitial` if it cannot
    /// be made: [`EndReason::MISC_P2P_RENDEZVOUS`](crate::EndReason::MISC_P2P_RENDEZVOUS)
    /// when the peer is not registered, refuses (nobody listens on the port), abandons, or
    /// the signaling server is unreachable; [`EndReason::MISC_P2P_NAT_FIREWALL`](crate::EndReason::MISC_P2P_NAT_FIREWALL)
    /// when ICE finds no route (no candidates, wrong TURN credentials, ICE failed). The
    /// debug text says which.
    ///
    /// ICE uses the connection's config values: `P2PStunServerList`, `P2PTurnServerList` /
    /// `P2PTurnUserList` / `P2PTurnPassList` and `P2PTransportIceEnable` (1 alone: relay
    /// only). `LocalVirtualPort` sets the local virtual port (default: the same as the
    /// remote one).
    ///
    /// # Symmetric connect
    ///
    /// With `SymmetricConnect` 1 (in `config` or global), two peers that may both connect to
    /// each other end up with exactly one connection per identity and virtual port, as in
    /// the reference:
    /// - If the peer's connection to this port is already waiting to be accepted, this call
    ///   accepts it and returns its handle (the incoming-connection status event may already
    ///   be queued: `accept` on it then fails with `InvalidState`, the reference's
    ///   `DuplicateRequest`). If its offer is here but its channel is still opening, the
    ///   returned handle becomes that connection.
    /// - If both peers connect at the same moment, the attempt of the peer whose identity
    ///   sorts first (byte order) is kept; the other side's outgoing connection turns into
    ///   the server side of it. Both applications see their own handle go `Connecting` →
    ///   `Connected` and no incoming connection; messages sent meanwhile are kept.
    /// - A live symmetric connection to the same identity and port makes the call fail with
    ///   [`P2pError::Duplicate`].
    /// - Symmetric connections do not linger on close. A listen socket is optional: an
    ///   incoming offer that matches an outgoing symmetric connection is taken without one.
    pub fn connect_p2p(
        &self,
        identity: &str,
        virtual_port: u32,
        config: Config,
    ) -> Result<ConnectionHandle, P2pError> {
        let to = Identity::new(identity)
            .map_err(|e| P2pError::InvalidIdentity(format!("{identity:?} {e}")))?;
        if virtual_port > MAX_VIRTUAL_PORT {
            return Err(P2pError::InvalidPort(virtual_port));
        }
        config.check_connection_scope()?;
        let hub = self.hub().ok_or(P2pError::NoSignaling)?;
        if to == hub.ctx.identity {
            return Err(P2pError::OwnIdentity);
        }
        let local_port = match config.get(ConfigKey::LocalVirtualPort) {
            Some(ConfigValue::Int32(p)) if *p >= 0 => *p as u32,
            _ => virtual_port,
        };
        let shared = &self.inner.shared;
        let conn = {
            let mut st = shared.lock();
            let now = st.now();
            let local = local_of_port(local_port);
            st.ep.set_transport_encrypted(local, true);
            st.ep.set_transport_max_datagram(local, Some(lanewire_core::DATA_CHANNEL_DATAGRAM));
            let symmetric = matches!(
                resolve(&[&config], &st, ConfigKey::SymmetricConnect),
                ConfigValue::Int32(v) if v != 0
            );
            if symmetric
                && let Some(conn) = symmetric_match(&mut st, now, &to, local_port, &config)?
            {
                if st.collect_events(now) {
                    shared.notify(&st);
                }
                st.wake_if_needed(&shared.waker);
                return Ok(conn);
            }
            let key = st.p2p.new_key();
            let addr = peer_addr(key);
            let conn = st.ep.connect(now, local, addr, config.clone())?;
            let layers = [&config];
            let ice = ice::IceSettings::resolve(&layers, &st);
            let timeout_initial = timeout_initial(&layers, &st);
            let attempt = hub.new_attempt_id();
            let (mut entry, out_rx, in_rx) = PeerEntry::new(
                to.clone(),
                attempt.clone(),
                true,
                virtual_port,
                local_port,
                addr,
                now,
            );
            entry.conn = Some(conn);
            entry.symmetric = symmetric.then(|| config.clone());
            st.p2p.insert(key, entry);
            let params = peer::PeerParams {
                key,
                identity: to,
                attempt,
                outgoing: true,
                port: virtual_port,
                local,
                addr,
                ice,
                timeout: Some(timeout_initial),
                offer: None,
            };
            hub.spawn_peer(params, in_rx, out_rx);
            if st.collect_events(now) {
                shared.notify(&st);
            }
            st.wake_if_needed(&shared.waker);
            conn
        };
        // The handshake's first datagram goes to the peer's queue until its channel opens.
        shared.transmit(false);
        Ok(conn)
    }

    /// The P2P side of a connection (peer identity, virtual ports, route), or `None` for a
    /// UDP connection or an invalid handle.
    pub fn p2p_connection_info(&self, conn: ConnectionHandle) -> Option<P2pConnectionInfo> {
        let st = self.inner.shared.lock();
        let info = st.ep.connection_info(conn)?;
        let p = st.p2p.by_addr(&info.remote)?;
        Some(P2pConnectionInfo {
            identity: p.identity.to_string(),
            virtual_port: p.port,
            local_virtual_port: p.local_port,
            outgoing: p.outgoing,
            open: p.open,
            relayed: p.relayed,
            route: p.route.clone(),
        })
    }

    /// The WebRTC transport's counters.
    pub fn p2p_stats(&self) -> P2pStats {
        self.inner.shared.lock().p2p.stats
    }
}
