//! The endpoint: every listen socket, connection and poll group of one Lanewire instance, and
//! the drive contract that moves datagrams and time through them.
//!
//! # The drive contract
//!
//! Methods fall in four groups:
//! - getters (`connection_info`, `quick_status`, ...), which change nothing;
//! - `handle_*`: [`Endpoint::handle_datagram`] for each datagram that arrives and
//!   [`Endpoint::handle_timeout`] when the time from [`Endpoint::poll_timeout`] comes;
//! - commands (`connect`, `send`, `close`, `set_config`, ...);
//! - `poll_*`: [`Endpoint::poll_transmit`] (datagrams to send), [`Endpoint::poll_event`]
//!   (status changes) and [`Endpoint::poll_timeout`] (when to call `handle_timeout`).
//!
//! After any `handle_*` call or command, drain `poll_transmit` until it returns `None`, drain
//! `poll_event`, then sleep until `poll_timeout` or the next datagram. Time never goes
//! backwards: each `now` is at least the previous one.
//!
//! ```no_run
//! use lanewire_core::{Config, Endpoint, Instant, LocalId};
//! # fn clock() -> Instant { Instant::ZERO }
//! # fn recv() -> Option<(std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send_to(_: std::net::SocketAddr, _: &[u8]) {}
//! # fn sleep_until(_: Option<Instant>) {}
//! let mut ep: Endpoint<std::net::SocketAddr> = Endpoint::new(Config::new(), [7; 32]);
//! let mut buf = vec![0u8; lanewire_core::MAX_DATAGRAM];
//! loop {
//!     let now = clock();
//!     while let Some((from, mut data)) = recv() {
//!         ep.handle_datagram(now, LocalId(0), from, &mut data);
//!     }
//!     ep.handle_timeout(now);
//!     while let Some(t) = ep.poll_transmit(now, &mut buf) {
//!         send_to(t.to, &buf[..t.len]);
//!     }
//!     while let Some(event) = ep.poll_event() {
//!         println!("{event:?}");
//!     }
//!     sleep_until(ep.poll_timeout());
//! }
//! ```

use crate::prelude::*;
use crate::text;
use crate::text::Text;
use alloc::collections::{BinaryHeap, VecDeque};
use core::cmp::Reverse;
use core::fmt::Debug;
use core::hash::{Hash, Hasher};
use core::time::Duration;

use crate::config::{self, Config, ConfigError, ConfigKey, ConfigValue, ConnectionConfig};
use crate::conn::{Connection, HandshakeCtx, PacketOutcome, Phase, Role};
use crate::crypto::{SessionKeys, TrustStore};
use crate::handshake::{ClientHandshake, Credentials, Failure, PeerAuth, Policy, server_answer};
use crate::identity::Identity;
use crate::link::Link;
use crate::map::Map;
use crate::rng::Rng;
use crate::siphash::{SipHasher24, SipKeys};
use crate::slab::Slab;
use crate::time::Instant;
use crate::types::*;
use crate::wire::{self, ControlRepr, DataHeaderRepr, DataPacket};

/// The largest datagram the core sends or accepts; size receive buffers to it.
pub const MAX_DATAGRAM: usize = 1500;
/// The packet size for WebRTC data channels (see [`Endpoint::set_transport_max_datagram`]):
/// SCTP sizes its own packets below the path MTU and fragments larger messages, so Lanewire
/// does not probe there; 1300 is the reference's packet size.
pub const DATA_CHANNEL_DATAGRAM: usize = 1300;
/// Queued control replies (challenge replies, no-connection notices). Beyond it replies are
/// dropped and counted: a flood of handshakes cannot grow memory.
const MAX_CONTROL_QUEUE: usize = 4096;
/// Cookies are valid this many coarse ticks (of 2^20 µs ≈ 1.05 s) after issue: 4 s, as GNS.
const COOKIE_TICKS: u64 = 4;
/// Incoming connections not yet accepted, per endpoint. Each costs a connection's state, so a
/// client that proved its address can still not make the server hold unbounded memory.
const MAX_HALF_OPEN: usize = 4096;
/// "No connection" replies per second (a token bucket), so unknown-id floods get few answers.
const NO_CONNECTION_REPLIES_PER_SEC: f64 = 100.0;

/// Counters of what the endpoint dropped and why. Bad input never panics; it lands here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed in.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
    /// Data packets for unknown connection ids.
    pub unknown_connection: u64,
    /// Connect requests with invalid or expired cookies.
    pub bad_cookie: u64,
    /// Handshake packets for a local socket with no listen socket.
    pub no_listener: u64,
    /// Handshake packets with an unsupported protocol version.
    pub bad_version: u64,
    /// Control packets that did not match the connection they named.
    pub unexpected_control: u64,
    /// Data packets a connection dropped (duplicates, undecryptable, malformed).
    pub dropped_by_connection: u64,
    /// Data packets not taken whole, and so not acked (the peer resends them): data beyond the
    /// flow-control credit granted, a receive queue the application leaves flooded, or a
    /// connection that is closing.
    pub refused_by_connection: u64,
    /// Replies dropped because the control queue was full or rate-limited.
    pub replies_dropped: u64,
    /// Connect requests refused because too many connections await acceptance.
    pub half_open_refused: u64,
    /// Handshakes refused for crypto or certificate reasons.
    pub handshake_failed: u64,
}

/// What a symmetric connect makes of one transport path to the peer (see
/// [`Endpoint::symmetric_claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymmetricClaim {
    /// Nothing on this path: look at the others, or start a new attempt.
    Nothing,
    /// The peer's connection was waiting to be accepted: it is accepted now, and is the
    /// connection the application asked for.
    Accepted(ConnectionHandle),
    /// The peer's attempt is under way on this path: this new outgoing connection becomes
    /// it (see [`Endpoint::merge_incoming`]).
    Merged(ConnectionHandle),
    /// A live connection uses this path already: at most one per peer.
    Duplicate(ConnectionHandle),
}

impl SymmetricClaim {
    /// The rule both peers apply when their symmetric connection attempts cross (each got the
    /// other's offer while its own was still opening): the attempt of the identity that sorts
    /// first, by UTF-8 bytes, is kept. True if ours (`ours` sorts before `theirs`) is kept
    /// and the peer's offer is to be ignored; false if ours gives way
    /// ([`Endpoint::merge_incoming`]). Both sides compare the same two strings, so exactly one
    /// keeps its attempt.
    pub fn keeps_own_attempt(ours: &str, theirs: &str) -> bool {
        ours.as_bytes() < theirs.as_bytes()
    }
}

#[derive(Debug)]
struct ListenSocket {
    local: LocalId,
    config: Config,
}

#[derive(Debug, Default)]
struct PollGroup {
    queue: VecDeque<ConnectionHandle>,
}

/// All connections, listen sockets and poll groups of one Lanewire instance, generic over the
/// transport's remote address type `A` (`SocketAddr` for UDP, a peer id for WebRTC). `A`
/// implements [`Text`] (the core has it for socket addresses and integers): connection
/// descriptions name the peer with it, without `core::fmt` (see [`mod@crate::text`]).
#[derive(Debug)]
pub struct Endpoint<A> {
    config: Config,
    rng: Rng,
    cookie_key: (u64, u64),
    conns: Slab<Connection<A>>,
    /// Our connection id → slab index.
    by_id: Map<u32, u32>,
    /// (peer address, peer's connection id) → slab index: for server-side connections from
    /// the handshake, for client-side ones once the server's id is known.
    by_remote: Map<(A, u32), u32>,
    /// Symmetric connect: (local socket, peer address) → slab index of the outgoing
    /// connection that the peer's connection attempt from there becomes.
    merges: Map<(LocalId, A), u32>,
    listen: Slab<ListenSocket>,
    listen_by_local: Map<LocalId, ListenSocketHandle>,
    groups: Slab<PollGroup>,
    events: VecDeque<Event<A>>,
    control_out: VecDeque<(LocalId, A, Vec<u8>)>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    dirty: VecDeque<u32>,
    send_link: Option<Link<(LocalId, A, Vec<u8>)>>,
    recv_link: Option<Link<(LocalId, A, Vec<u8>)>>,
    no_conn_tokens: f64,
    last_now: Instant,
    stats: EndpointStats,
    credentials: Credentials,
    trust: TrustStore,
    unix_ref: Option<(Instant, u64)>,
    transport_encrypted: Vec<LocalId>,
    /// Local sockets whose transport fragments itself, with its datagram limit.
    transport_max_datagram: Vec<(LocalId, usize)>,
}

impl<A: Clone + Eq + Hash + Debug + Text> Endpoint<A> {
    /// A new endpoint with global config `config`, its randomness keyed by `seed` (32 bytes of
    /// OS entropy in production, a fixed value in tests).
    pub fn new(config: Config, seed: [u8; 32]) -> Self {
        let mut rng = Rng::from_seed(seed);
        let cookie_key = (rng.u64(), rng.u64());
        // The maps' hash key: derived from the cookie key, so the RNG's stream (and every
        // seeded test) is as before.
        let keys =
            SipKeys(cookie_key.0.rotate_left(17) ^ 0x6d61_7073, cookie_key.1.rotate_left(29));
        let mut ep = Endpoint {
            config: Config::new(),
            rng,
            cookie_key,
            conns: Slab::default(),
            by_id: Map::with_hasher(keys.clone()),
            by_remote: Map::with_hasher(keys.clone()),
            merges: Map::with_hasher(keys.clone()),
            listen: Slab::default(),
            listen_by_local: Map::with_hasher(keys.clone()),
            groups: Slab::default(),
            events: VecDeque::new(),
            control_out: VecDeque::new(),
            timers: BinaryHeap::new(),
            dirty: VecDeque::new(),
            send_link: None,
            recv_link: None,
            no_conn_tokens: NO_CONNECTION_REPLIES_PER_SEC,
            last_now: Instant::ZERO,
            stats: EndpointStats::default(),
            credentials: Credentials::default(),
            trust: TrustStore::new(),
            unix_ref: None,
            transport_encrypted: Default::default(),
            transport_max_datagram: Default::default(),
        };
        for (k, v) in config.iter() {
            // Values in a Config were validated when set.
            let _ = ep.config.set(k, v.clone());
        }
        ep.rebuild_conditioner();
        ep
    }

    // ------------------------------------------------------------------ config

    /// Sets a global config value. Fake-network values take effect at once; connection values
    /// apply to every connection that has not overridden them.
    pub fn set_config(&mut self, key: ConfigKey, value: ConfigValue) -> Result<(), ConfigError> {
        self.config.set(key, value)?;
        self.after_global_config_change();
        Ok(())
    }

    /// Removes a global override (back to the default).
    pub fn unset_config(&mut self, key: ConfigKey) {
        self.config.unset(key);
        self.after_global_config_change();
    }

    /// The effective global value of `key`.
    pub fn config_value(&self, key: ConfigKey) -> ConfigValue {
        config::resolve(&[&self.config], key)
    }

    fn after_global_config_change(&mut self) {
        self.rebuild_conditioner();
        let idx: Vec<u32> = self.conns.iter().map(|(i, _)| i).collect();
        for i in idx {
            self.reresolve(i);
        }
    }

    fn reresolve(&mut self, i: u32) {
        let listen_cfg = self
            .conns
            .by_index(i)
            .and_then(|c| c.listen_socket)
            .and_then(|h| self.listen.get(h.index, h.generation))
            .map(|l| l.config.clone())
            .unwrap_or_default();
        let global = &self.config;
        if let Some(c) = self.conns.by_index_mut(i) {
            let cfg = ConnectionConfig::resolve(&[&c.overrides, &listen_cfg, global]);
            c.reconfigure(self.last_now, cfg);
        }
        self.touch(i);
    }

    fn rebuild_conditioner(&mut self) {
        for send in [true, false] {
            let lc = config::conditioner_config(&self.config, send);
            let slot = if send { &mut self.send_link } else { &mut self.recv_link };
            if lc.is_ideal() {
                if slot.as_ref().is_none_or(|l| l.in_flight() == 0) {
                    *slot = None;
                } else if let Some(l) = slot {
                    l.set_config(lc);
                }
            } else {
                match slot {
                    Some(l) => l.set_config(lc),
                    None => *slot = Some(Link::new(lc, self.rng.fork())),
                }
            }
        }
    }

    /// Sets a config value on one connection (connection-scope keys only).
    pub fn set_connection_config(
        &mut self,
        conn: ConnectionHandle,
        key: ConfigKey,
        value: ConfigValue,
    ) -> Result<(), ConfigError> {
        if key.info().scope == config::ConfigScope::Global {
            return Err(ConfigError::WrongScope(key));
        }
        let c = self
            .conns
            .get_mut(conn.index, conn.generation)
            .filter(|c| !c.app_closed)
            .ok_or(ConfigError::InvalidHandle)?;
        c.overrides.set(key, value)?;
        if key == ConfigKey::ConnectionUserData
            && let Some(ConfigValue::Int64(v)) = c.overrides.get(key)
        {
            c.user_data = *v;
        }
        self.reresolve(conn.index);
        Ok(())
    }

    /// A connection's effective value of `key`.
    pub fn connection_config_value(
        &self,
        conn: ConnectionHandle,
        key: ConfigKey,
    ) -> Option<ConfigValue> {
        let c = self.conn(conn)?;
        let listen_cfg =
            c.listen_socket.and_then(|h| self.listen.get(h.index, h.generation)).map(|l| &l.config);
        let empty = Config::new();
        Some(config::resolve(&[&c.overrides, listen_cfg.unwrap_or(&empty), &self.config], key))
    }

    // ------------------------------------------------------------------ identity

    /// Sets who this endpoint is: a claimed identity, or a certified one (an identity key and
    /// the certificate an application CA issued for it). Applies to new connections.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    /// Sets the CAs whose certificates this endpoint believes (`crypto` feature).
    #[cfg(feature = "crypto")]
    pub fn set_trust_store(&mut self, trust: TrustStore) {
        self.trust = trust;
    }

    /// Tells the core the wall-clock time (unix seconds) at `now`, for certificate validity.
    /// Without it, certificates are refused (the core cannot tell whether they expired).
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.unix_ref = Some((now, unix_secs));
    }

    fn unix_now(&self, now: Instant) -> Option<u64> {
        self.unix_ref.map(|(at, secs)| secs + (now - at).as_secs())
    }

    /// Declares that the transport behind local socket `local` already encrypts and
    /// authenticates its datagrams (WebRTC's DTLS): connections there skip the core's AEAD
    /// (unless the peer insists) and report `transport_encrypted`.
    pub fn set_transport_encrypted(&mut self, local: LocalId, encrypted: bool) {
        // A list: it is read when a connection starts, and holds a few local sockets.
        self.transport_encrypted.retain(|&l| l != local);
        if encrypted {
            self.transport_encrypted.push(local);
        }
    }

    /// Lowers connection `conn`'s key-update interval and key limit (packets per key), so that
    /// tests can watch key updates happen; `interval == u64::MAX` makes it never update, not
    /// even in answer to the peer (an old or broken peer). For the simulator's tests only: the
    /// real values are 3/4 of and all of the cipher's packet limit.
    #[cfg(feature = "sim")]
    pub fn set_key_limits(
        &mut self,
        conn: ConnectionHandle,
        interval: u64,
        limit: u64,
    ) -> Result<(), HandleError> {
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.set_key_limits(interval, limit);
        Ok(())
    }

    /// Declares that the transport behind local socket `local` carries messages of at most
    /// `limit` bytes and fragments them itself (a WebRTC data channel: SCTP sizes its own
    /// packets): connections there send packets of that size (at most `MtuPacketSize`) and do
    /// no path MTU discovery. `None` undoes it. Applies to connections made from then on.
    pub fn set_transport_max_datagram(&mut self, local: LocalId, limit: Option<usize>) {
        self.transport_max_datagram.retain(|&(l, _)| l != local);
        if let Some(limit) = limit {
            self.transport_max_datagram.push((local, limit.clamp(200, MAX_DATAGRAM)));
        }
    }

    fn transport_limit(&self, local: LocalId) -> Option<usize> {
        self.transport_max_datagram.iter().find(|&&(l, _)| l == local).map(|&(_, n)| n)
    }

    // ------------------------------------------------------------------ listen / connect

    /// Listens for incoming connections on local socket `local`, with `config` inherited by
    /// the connections it accepts. One listen socket per local socket.
    pub fn create_listen_socket(
        &mut self,
        local: LocalId,
        config: Config,
    ) -> Result<ListenSocketHandle, HandleError> {
        config.check_connection_scope().map_err(|_| HandleError::InvalidParam)?;
        if self.listen_by_local.contains_key(&local) {
            return Err(HandleError::InvalidState);
        }
        let (index, generation) = self.listen.insert_with(|_, _| ListenSocket { local, config });
        let h = ListenSocketHandle { index, generation };
        self.listen_by_local.insert(local, h);
        Ok(h)
    }

    /// Closes a listen socket. Connections it accepted are closed too (without linger), as in
    /// the reference.
    pub fn close_listen_socket(
        &mut self,
        now: Instant,
        h: ListenSocketHandle,
    ) -> Result<(), HandleError> {
        let ls = self.listen.get(h.index, h.generation).ok_or(HandleError::InvalidHandle)?;
        self.listen_by_local.remove(&ls.local);
        self.listen.remove(h.index);
        let children: Vec<ConnectionHandle> = self
            .conns
            .iter()
            .filter(|(_, c)| c.listen_socket == Some(h) && !c.app_closed)
            .map(|(_, c)| c.handle)
            .collect();
        for c in children {
            let _ = self.close(now, c, EndReason::APP_GENERIC, "Listen socket closed", false);
        }
        Ok(())
    }

    /// The local socket a listen socket uses.
    pub fn listen_socket_local(&self, h: ListenSocketHandle) -> Option<LocalId> {
        self.listen.get(h.index, h.generation).map(|l| l.local)
    }

    fn fresh_conn_id(&mut self) -> u32 {
        loop {
            let id = self.rng.u32();
            if id != 0 && !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Starts connecting to `remote` from local socket `local`. Progress arrives as status
    /// events; the handle is usable at once (reliable sends queue until connected).
    pub fn connect(
        &mut self,
        now: Instant,
        local: LocalId,
        remote: A,
        config: Config,
    ) -> Result<ConnectionHandle, ConfigError> {
        self.connect_inner(now, local, remote, None, config)
    }

    /// Connects and insists that the peer is `identity`: its certificate (or, where
    /// unauthenticated peers are allowed, its claim) must name it, or the connection fails
    /// with [`EndReason::REMOTE_BAD_CERT`].
    pub fn connect_to_identity(
        &mut self,
        now: Instant,
        local: LocalId,
        remote: A,
        identity: Identity,
        config: Config,
    ) -> Result<ConnectionHandle, ConfigError> {
        self.connect_inner(now, local, remote, Some(identity), config)
    }

    fn connect_inner(
        &mut self,
        now: Instant,
        local: LocalId,
        remote: A,
        expected: Option<Identity>,
        config: Config,
    ) -> Result<ConnectionHandle, ConfigError> {
        config.check_connection_scope()?;
        self.advance(now);
        let cfg = ConnectionConfig::resolve(&[&config, &self.config]);
        let id = self.fresh_conn_id();
        let (index, generation) = self.conns.insert_with(|index, generation| {
            Connection::new(
                now,
                ConnectionHandle { index, generation },
                local,
                remote,
                Role::Client,
                id,
                0,
                None,
                config,
                cfg,
            )
        });
        self.by_id.insert(id, index);
        let h = ConnectionHandle { index, generation };
        let ctx = HandshakeCtx { trust: &self.trust, unix_now: self.unix_now(now) };
        let transport_encrypted = self.transport_encrypted.contains(&local);
        let limit = self.transport_limit(local);
        if let Some(c) = self.conns.by_index_mut(index) {
            c.transport_encrypted = transport_encrypted;
            if let Some(limit) = limit {
                c.set_transport_max_datagram(now, limit);
            }
            c.expected_identity = expected;
            let policy = c.policy(&ctx);
            c.client_hs = Some(ClientHandshake::new(&mut self.rng, &self.credentials, &policy, id));
            // The reference posts None → Connecting for outgoing connections too.
            c.transitions.push((ConnectionState::None, ConnectionState::Connecting));
        }
        self.touch(index);
        Ok(h)
    }

    fn conn(&self, h: ConnectionHandle) -> Option<&Connection<A>> {
        self.conns.get(h.index, h.generation).filter(|c| !c.app_closed)
    }

    fn conn_mut(&mut self, h: ConnectionHandle) -> Option<&mut Connection<A>> {
        self.conns.get_mut(h.index, h.generation).filter(|c| !c.app_closed)
    }

    /// Symmetric connect (the reference's `SymmetricConnect`): both peers connected to each
    /// other at once, and the driver decided (by an order both sides agree on) that this
    /// side's outgoing connection `conn` gives way to the peer's attempt, which will arrive
    /// from `from` on the same local socket. From now on `conn` sends no handshake of its
    /// own; the peer's connect request from `from` makes `conn` the server side of that
    /// connection, accepted at once (the application asked for it by connecting), with no
    /// listen socket needed and no incoming-connection event: the application sees its
    /// outgoing connection go `Connecting` → `Connected`. Messages queued on `conn` stay
    /// queued, and `TimeoutInitial` still counts from the connect.
    ///
    /// Errors: [`HandleError::InvalidHandle`], or [`HandleError::InvalidState`] when `conn`
    /// is not an outgoing connection still in its handshake.
    pub fn merge_incoming(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        from: A,
    ) -> Result<(), HandleError> {
        self.advance(now);
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        if c.role != Role::Client || c.phase != Phase::Handshake {
            return Err(HandleError::InvalidState);
        }
        let local = c.local;
        if let Some(old) = c.merge_from.replace(from.clone()) {
            self.merges.remove(&(local, old));
        }
        self.merges.insert((local, from), conn.index);
        self.touch(conn.index);
        Ok(())
    }

    /// Symmetric connect, for P2P drivers: what a symmetric connect from `local` makes of one
    /// transport path to the peer, reached at `remote`, that carries connection `existing`
    /// (if any) and that the peer opened (`incoming`) or we did:
    /// - a live connection the peer opened that waits to be accepted is accepted
    ///   ([`SymmetricClaim::Accepted`]); any other live one is a [`SymmetricClaim::Duplicate`];
    /// - a path the peer opened that carries no connection yet (the peer's handshake has not
    ///   arrived) gets a new outgoing connection that becomes the peer's attempt
    ///   ([`SymmetricClaim::Merged`]);
    /// - anything else, including ended connections, is [`SymmetricClaim::Nothing`].
    ///
    /// Errors: `config` refused, as for [`Endpoint::connect`].
    pub fn symmetric_claim(
        &mut self,
        now: Instant,
        local: LocalId,
        remote: A,
        existing: Option<ConnectionHandle>,
        incoming: bool,
        config: &Config,
    ) -> Result<SymmetricClaim, ConfigError> {
        match existing {
            Some(c) => {
                let Some(info) = self.connection_info(c) else {
                    return Ok(SymmetricClaim::Nothing);
                };
                if info.state.is_ended() {
                    return Ok(SymmetricClaim::Nothing);
                }
                let waiting = incoming
                    && info.listen_socket.is_some()
                    && info.state == ConnectionState::Connecting;
                if waiting && self.accept(now, c).is_ok() {
                    return Ok(SymmetricClaim::Accepted(c));
                }
                Ok(SymmetricClaim::Duplicate(c))
            }
            None if incoming => {
                let c = self.connect(now, local, remote.clone(), config.clone())?;
                // A fresh outgoing connection is in its handshake: it merges.
                let _ = self.merge_incoming(now, c, remote);
                Ok(SymmetricClaim::Merged(c))
            }
            None => Ok(SymmetricClaim::Nothing),
        }
    }

    /// Pauses (`true`) or resumes the transmission of one connection, for drivers whose
    /// transport can be full for one peer and not for others (a WebRTC data channel that
    /// already buffers plenty): while paused, [`Endpoint::poll_transmit`] takes nothing from
    /// it, its data stays queued (reliable messages are never lost this way) and only its
    /// time-outs run; the others go on. Resume when the transport has drained. Works on
    /// closed handles still finishing their close, so a driver can always resume.
    ///
    /// Errors: [`HandleError::InvalidHandle`].
    pub fn set_transmit_paused(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        paused: bool,
    ) -> Result<(), HandleError> {
        self.advance(now);
        let c =
            self.conns.get_mut(conn.index, conn.generation).ok_or(HandleError::InvalidHandle)?;
        if c.tx_paused != paused {
            c.tx_paused = paused;
            self.touch(conn.index);
        }
        Ok(())
    }

    /// Accepts an incoming connection (state `Connecting`, `listen_socket` set).
    pub fn accept(&mut self, now: Instant, conn: ConnectionHandle) -> Result<(), HandleError> {
        self.advance(now);
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.accept(now)?;
        self.touch(conn.index);
        Ok(())
    }

    /// Ends a connection because of a problem the driver detected (signaling failed, the
    /// peer is unknown, no route). The application sees `ProblemDetectedLocally` with `reason`
    /// and `debug`; the handle stays valid until it closes it.
    pub fn fail_connection(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        reason: EndReason,
        debug: &str,
    ) -> Result<(), HandleError> {
        self.advance(now);
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        if c.state().is_ended() {
            return Err(HandleError::InvalidState);
        }
        c.problem(now, reason, debug);
        self.touch(conn.index);
        Ok(())
    }

    /// Closes a connection and invalidates its handle. `reason` must be in the application
    /// ranges (1000-2999; 0 means [`EndReason::APP_GENERIC`]); other codes become
    /// [`EndReason::APP_MAX`] with a note in the debug text, as in the reference. With
    /// `linger`, reliable data still queued is delivered before the peer is told.
    pub fn close(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        reason: EndReason,
        debug: &str,
        linger: bool,
    ) -> Result<(), HandleError> {
        self.advance(now);
        let (reason, debug) = match reason {
            EndReason(0) => (
                EndReason::APP_GENERIC,
                if debug.is_empty() { "Application closed connection" } else { debug },
            ),
            r if r.is_app() => (r, debug),
            _ => (EndReason::APP_MAX, "Invalid numeric reason code"),
        };
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.app_close(now, reason, debug, linger);
        self.touch(conn.index);
        Ok(())
    }

    // ------------------------------------------------------------------ messages

    /// Sends a message on lane 0. Returns its message number.
    pub fn send(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<u64, SendError> {
        self.send_on_lane(now, conn, 0, data, flags)
    }

    /// Sends a message on a lane. Returns its message number in that lane.
    pub fn send_on_lane(
        &mut self,
        now: Instant,
        conn: ConnectionHandle,
        lane: u16,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<u64, SendError> {
        self.advance(now);
        let c = self.conn_mut(conn).ok_or(SendError::InvalidHandle)?;
        let n = c.send(now, data, flags, lane)?;
        if c.in_dirty {
            // Already queued for poll_transmit, which refreshes its timer when it drains it.
            return Ok(n);
        }
        self.touch(conn.index);
        Ok(n)
    }

    /// Sends a batch. Results are in order; after the first failure on a connection, later
    /// messages for it are not attempted (`None`), as the reference's `SendMessages`.
    pub fn send_messages(
        &mut self,
        now: Instant,
        msgs: &[OutgoingMessage<'_>],
    ) -> Vec<Option<Result<u64, SendError>>> {
        let mut failed: Vec<ConnectionHandle> = Vec::new();
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            if failed.contains(&m.conn) {
                out.push(None);
                continue;
            }
            let r = self.send_on_lane(now, m.conn, m.lane, m.data, m.flags);
            if r.is_err() {
                failed.push(m.conn);
            }
            out.push(Some(r));
        }
        out
    }

    /// Sends what is waiting for the Nagle timer as soon as pacing allows.
    pub fn flush(&mut self, now: Instant, conn: ConnectionHandle) -> Result<(), HandleError> {
        self.advance(now);
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        if c.state() != ConnectionState::Connected {
            return Err(HandleError::InvalidState);
        }
        c.flush(now);
        self.touch(conn.index);
        Ok(())
    }

    /// Configures the connection's outgoing lanes: one priority (lower goes first) and one
    /// weight (share among equal priorities) per lane. The count can only grow.
    pub fn configure_lanes(
        &mut self,
        conn: ConnectionHandle,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), HandleError> {
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        if c.state().is_ended() {
            return Err(HandleError::InvalidState);
        }
        c.configure_lanes(priorities, weights)
    }

    /// Moves up to `max` received messages of one connection into `out`; returns how many.
    pub fn receive(
        &mut self,
        conn: ConnectionHandle,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Result<usize, HandleError> {
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        let n = c.receive(max, out);
        // Reading grants the peer more credit: tell it soon.
        if c.credit_due() && !c.in_dirty {
            self.touch(conn.index);
        }
        Ok(n)
    }

    // ------------------------------------------------------------------ poll groups

    /// A new, empty poll group.
    pub fn create_poll_group(&mut self) -> PollGroupHandle {
        let (index, generation) = self.groups.insert_with(|_, _| PollGroup::default());
        PollGroupHandle { index, generation }
    }

    /// Destroys a poll group; its members are left in no group.
    pub fn destroy_poll_group(&mut self, g: PollGroupHandle) -> Result<(), HandleError> {
        self.groups.get(g.index, g.generation).ok_or(HandleError::InvalidHandle)?;
        self.groups.remove(g.index);
        for (_, c) in self.conns.iter_mut() {
            if c.poll_group == Some(g) {
                c.poll_group = None;
            }
        }
        Ok(())
    }

    /// Puts a connection in a poll group (or none). Its waiting messages move with it.
    pub fn set_poll_group(
        &mut self,
        conn: ConnectionHandle,
        group: Option<PollGroupHandle>,
    ) -> Result<(), HandleError> {
        if let Some(g) = group {
            self.groups.get(g.index, g.generation).ok_or(HandleError::InvalidHandle)?;
        }
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.poll_group = group;
        let waiting = c.recv_queue.len();
        if let Some(g) = group.and_then(|g| self.groups.get_mut(g.index, g.generation)) {
            g.queue.extend(core::iter::repeat_n(conn, waiting));
        }
        Ok(())
    }

    /// Moves up to `max` messages from the group's connections into `out`, in about the order
    /// they completed; per-connection order is kept.
    pub fn receive_on_poll_group(
        &mut self,
        group: PollGroupHandle,
        max: usize,
        out: &mut Vec<Message>,
    ) -> Result<usize, HandleError> {
        let g =
            self.groups.get_mut(group.index, group.generation).ok_or(HandleError::InvalidHandle)?;
        let mut n = 0;
        // Connections whose reading granted their peer credit to announce.
        let mut credit = Vec::new();
        while n < max {
            let Some(h) = g.queue.pop_front() else { break };
            let Some(c) = self.conns.get_mut(h.index, h.generation) else { continue };
            if c.app_closed || c.poll_group != Some(group) {
                continue;
            }
            if let Some(m) = c.pop_message() {
                out.push(m);
                n += 1;
            }
            if c.credit_due() && !c.in_dirty && !credit.contains(&h.index) {
                credit.push(h.index);
            }
        }
        for index in credit {
            self.touch(index);
        }
        Ok(n)
    }

    // ------------------------------------------------------------------ info

    /// Everything about a connection, or `None` for an invalid handle.
    pub fn connection_info(&self, conn: ConnectionHandle) -> Option<ConnectionInfo<A>> {
        let c = self.conn(conn)?;
        Some(c.info(self.describe(c)))
    }

    fn describe(&self, c: &Connection<A>) -> String {
        let dir = match c.role {
            Role::Client => "to",
            Role::Server => "from",
        };
        let sep = if c.name.is_empty() { "#" } else { " #" };
        text!(c.name, sep, c.handle.index, " ", dir, " ", c.remote)
    }

    /// Cheap status (ping, quality, rates, queues).
    pub fn quick_status(&mut self, now: Instant, conn: ConnectionHandle) -> Option<QuickStatus> {
        self.conn_mut(conn).map(|c| c.quick_status(now))
    }

    /// Human-readable multi-line status.
    pub fn detailed_status(&mut self, now: Instant, conn: ConnectionHandle) -> Option<String> {
        let desc = self.conn(conn).map(|c| self.describe(c))?;
        self.conn_mut(conn).map(|c| text!(desc, "\n", c.detailed_status(now)))
    }

    /// Sets the connection's user data (also updates messages already queued).
    pub fn set_user_data(&mut self, conn: ConnectionHandle, data: i64) -> Result<(), HandleError> {
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.user_data = data;
        for m in &mut c.recv_queue {
            m.user_data = data;
        }
        Ok(())
    }

    /// The connection's user data (-1 when unset or the handle is invalid, as the reference).
    pub fn user_data(&self, conn: ConnectionHandle) -> i64 {
        self.conn(conn).map_or(-1, |c| c.user_data)
    }

    /// Names the connection (appears in descriptions and logs).
    pub fn set_name(&mut self, conn: ConnectionHandle, name: &str) -> Result<(), HandleError> {
        let c = self.conn_mut(conn).ok_or(HandleError::InvalidHandle)?;
        c.name = name.chars().take(127).collect();
        Ok(())
    }

    /// Marks the transport of a connection as encrypting (WebRTC's DTLS) or relayed, for the
    /// connection info. The driver calls it; it changes no protocol behaviour here.
    pub fn set_transport_info(
        &mut self,
        conn: ConnectionHandle,
        encrypted: bool,
        relayed: bool,
    ) -> Result<(), HandleError> {
        let c =
            self.conns.get_mut(conn.index, conn.generation).ok_or(HandleError::InvalidHandle)?;
        c.transport_encrypted = encrypted;
        c.relayed = relayed;
        Ok(())
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Live connections (including ones the application closed that are still finishing).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Bytes held in connection buffers (send queues, reassembly, receive queues).
    pub fn buffered_bytes(&self) -> usize {
        self.conns.iter().map(|(_, c)| c.buffered_bytes()).sum()
    }

    /// Handles of every connection the application has not closed.
    pub fn connections(&self) -> Vec<ConnectionHandle> {
        self.conns.iter().filter(|(_, c)| !c.app_closed).map(|(_, c)| c.handle).collect()
    }

    // ------------------------------------------------------------------ driving

    fn advance(&mut self, now: Instant) {
        debug_assert!(now >= self.last_now, "time went backwards");
        if now > self.last_now {
            let dt = (now - self.last_now).as_secs_f64();
            self.no_conn_tokens = (self.no_conn_tokens + dt * NO_CONNECTION_REPLIES_PER_SEC)
                .min(NO_CONNECTION_REPLIES_PER_SEC);
            self.last_now = now;
        }
    }

    /// A datagram arrived on local socket `local` from `from`. The buffer may be modified
    /// (decryption happens in place).
    pub fn handle_datagram(&mut self, now: Instant, local: LocalId, from: A, data: &mut [u8]) {
        self.advance(now);
        self.stats.datagrams_in += 1;
        if let Some(link) = &mut self.recv_link {
            link.send(now, data.len(), (local, from, data.to_vec()));
            self.deliver_conditioned(now);
            return;
        }
        self.process_datagram(now, local, from, data);
    }

    fn deliver_conditioned(&mut self, now: Instant) {
        while let Some((local, from, mut data)) =
            self.recv_link.as_mut().and_then(|l| l.poll_deliver(now))
        {
            self.process_datagram(now, local, from, &mut data);
        }
    }

    fn process_datagram(&mut self, now: Instant, local: LocalId, from: A, data: &mut [u8]) {
        let Some(&first) = data.first() else {
            self.stats.malformed += 1;
            return;
        };
        if first & wire::DATA_FLAG != 0 {
            let Ok(p) = DataPacket::new_checked(&*data) else {
                self.stats.malformed += 1;
                return;
            };
            let h = DataHeaderRepr::parse(&p);
            let header_len = p.header_len();
            let Some(&index) = self.by_id.get(&h.dst_conn_id) else {
                self.stats.unknown_connection += 1;
                self.reply_no_connection(local, from, h.dst_conn_id, 0, data.len());
                return;
            };
            let Some(c) = self.conns.by_index_mut(index) else { return };
            let migrated = c.remote != from;
            if migrated && !c.protection.is_encrypted() {
                // Without authentication a packet from elsewhere could be spoofed: drop it.
                self.stats.dropped_by_connection += 1;
                return;
            }
            let group = c.poll_group;
            let before = c.recv_queue.len();
            let largest_before = c.largest_received();
            let len = data.len();
            match c.handle_data(now, header_len, h.truncated_pn, h.pn_len, h.key_phase, data) {
                PacketOutcome::Accepted => {
                    if !migrated {
                        c.on_path_bytes(len);
                    } else if c.largest_received() != largest_before {
                        // Authenticated by our AEAD (without it, packets from elsewhere were
                        // dropped above) and the newest packet: the peer's address changed
                        // (NAT rebinding). Follow it, and validate it.
                        #[cfg(feature = "crypto")]
                        c.on_address_change(from, len, self.rng.u64().to_le_bytes());
                    }
                }
                PacketOutcome::Dropped => self.stats.dropped_by_connection += 1,
                PacketOutcome::Refused => self.stats.refused_by_connection += 1,
            }
            let added = c.recv_queue.len().saturating_sub(before);
            let handle = c.handle;
            if added > 0
                && let Some(g) = group.and_then(|g| self.groups.get_mut(g.index, g.generation))
            {
                g.queue.extend(core::iter::repeat_n(handle, added));
            }
            self.touch(index);
            return;
        }
        let repr = match ControlRepr::parse(data) {
            Ok(r) => r,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match repr {
            ControlRepr::ChallengeRequest { version, client_conn_id, timestamp } => {
                if !self.listen_by_local.contains_key(&local)
                    && !self.merges.contains_key(&(local, from.clone()))
                {
                    self.stats.no_listener += 1;
                    return;
                }
                if version != wire::PROTOCOL_VERSION {
                    self.stats.bad_version += 1;
                    return;
                }
                let cookie = self.make_cookie(now, &from, client_conn_id);
                let reply = ControlRepr::ChallengeReply {
                    version: wire::PROTOCOL_VERSION,
                    client_conn_id,
                    cookie,
                    echo_timestamp: timestamp,
                };
                self.queue_control(local, from, &reply);
            }
            ControlRepr::ConnectRequest { version, client_conn_id, cookie, timestamp, crypto } => {
                self.on_connect_request(
                    now,
                    local,
                    from,
                    version,
                    client_conn_id,
                    cookie,
                    timestamp,
                    crypto,
                );
            }
            ControlRepr::ChallengeReply { client_conn_id: id, .. }
            | ControlRepr::ConnectOk { client_conn_id: id, .. } => {
                self.route_control(now, id, &from, &repr);
            }
            ControlRepr::Closed { to_conn_id, from_conn_id, .. }
            | ControlRepr::NoConnection { to_conn_id, from_conn_id } => {
                if to_conn_id != 0 {
                    self.route_control(now, to_conn_id, &from, &repr);
                } else if let Some(&index) = self.by_remote.get(&(from.clone(), from_conn_id)) {
                    // A client gave up before learning our id, or a server that lost our
                    // connection answers the id we used.
                    let ctx = HandshakeCtx { trust: &self.trust, unix_now: None };
                    if let Some(c) = self.conns.by_index_mut(index) {
                        c.handle_control(now, &repr, &ctx);
                    }
                    self.touch(index);
                } else {
                    self.stats.unexpected_control += 1;
                }
            }
        }
    }

    fn route_control(&mut self, now: Instant, id: u32, from: &A, repr: &ControlRepr<'_>) {
        let Some(&index) = self.by_id.get(&id) else {
            self.stats.unexpected_control += 1;
            return;
        };
        let ctx = HandshakeCtx { trust: &self.trust, unix_now: self.unix_now(now) };
        let Some(c) = self.conns.by_index_mut(index) else { return };
        if &c.remote != from {
            self.stats.unexpected_control += 1;
            return;
        }
        c.handle_control(now, repr, &ctx);
        if c.role == Role::Client && c.remote_id != 0 {
            let key = (c.remote.clone(), c.remote_id);
            if !self.by_remote.contains_key(&key) {
                self.by_remote.insert(key, index);
            }
        }
        self.touch(index);
    }

    fn cookie_hash(&self, tick: u64, from: &A, client_id: u32) -> u64 {
        let mut h = SipHasher24::new(self.cookie_key.0, self.cookie_key.1);
        from.hash(&mut h);
        h.write_u32(client_id);
        h.write_u64(tick);
        h.finish()
    }

    fn tick(now: Instant) -> u64 {
        now.as_micros() >> 20
    }

    fn make_cookie(&self, now: Instant, from: &A, client_id: u32) -> u64 {
        let tick = Self::tick(now);
        (self.cookie_hash(tick, from, client_id) & !0xffff) | (tick & 0xffff)
    }

    fn check_cookie(&self, now: Instant, from: &A, client_id: u32, cookie: u64) -> bool {
        let now_tick = Self::tick(now);
        let age = now_tick.wrapping_sub(cookie & 0xffff) & 0xffff;
        if age > COOKIE_TICKS {
            return false;
        }
        // A cookie claiming a tick before the endpoint's time zero was never made here.
        let Some(tick) = now_tick.checked_sub(age) else {
            return false;
        };
        (self.cookie_hash(tick, from, client_id) & !0xffff) == (cookie & !0xffff)
    }

    #[allow(clippy::too_many_arguments)]
    fn on_connect_request(
        &mut self,
        now: Instant,
        local: LocalId,
        from: A,
        version: u8,
        client_id: u32,
        cookie: u64,
        timestamp: u64,
        offer: &[u8],
    ) {
        let merge = self.merges.get(&(local, from.clone())).copied();
        let listener = self.listen_by_local.get(&local).copied();
        if merge.is_none() && listener.is_none() {
            self.stats.no_listener += 1;
            return;
        }
        if version != wire::PROTOCOL_VERSION {
            self.stats.bad_version += 1;
            let reply = ControlRepr::Closed {
                to_conn_id: client_id,
                from_conn_id: 0,
                reason: EndReason::REMOTE_BAD_PROTOCOL_VERSION.0,
                debug: b"Unsupported protocol version",
            };
            self.queue_control(local, from, &reply);
            return;
        }
        if !self.check_cookie(now, &from, client_id, cookie) {
            // Could be spoofed: say nothing.
            self.stats.bad_cookie += 1;
            return;
        }
        if let Some(&index) = self.by_remote.get(&(from.clone(), client_id)) {
            if let Some(c) = self.conns.by_index_mut(index) {
                c.on_connect_request(now, timestamp);
            }
            self.touch(index);
            return;
        }
        if let Some(index) = merge {
            self.merge(now, index, local, from, client_id, timestamp, offer);
            return;
        }
        let Some(lh) = listener else { return };
        let half_open = self
            .conns
            .iter()
            .filter(|(_, c)| c.state() == ConnectionState::Connecting && c.role == Role::Server)
            .count();
        if half_open >= MAX_HALF_OPEN {
            self.stats.half_open_refused += 1;
            return;
        }
        let listen_cfg =
            self.listen.get(lh.index, lh.generation).map(|l| l.config.clone()).unwrap_or_default();
        let cfg = ConnectionConfig::resolve(&[&listen_cfg, &self.config]);
        let id = self.fresh_conn_id();
        let transport_encrypted = self.transport_encrypted.contains(&local);
        let policy = Policy {
            unencrypted: cfg.unencrypted,
            allow_without_auth: cfg.allow_without_auth,
            transport_encrypted,
            unix_now: self.unix_now(now),
        };
        // On failure no state is kept.
        let Ok((answer, keys, auth)) =
            self.answer_offer(local, &from, offer, &policy, client_id, id)
        else {
            return;
        };
        let remote = from.clone();
        let (index, _) = self.conns.insert_with(|index, generation| {
            Connection::new(
                now,
                ConnectionHandle { index, generation },
                local,
                remote,
                Role::Server,
                id,
                client_id,
                Some(lh),
                Config::new(),
                cfg,
            )
        });
        self.by_id.insert(id, index);
        self.by_remote.insert((from, client_id), index);
        let limit = self.transport_limit(local);
        if let Some(c) = self.conns.by_index_mut(index) {
            c.transport_encrypted = transport_encrypted;
            if let Some(limit) = limit {
                c.set_transport_max_datagram(now, limit);
            }
            c.answer = answer;
            c.set_keys(keys, auth);
            c.on_connect_request(now, timestamp);
            c.transitions.push((ConnectionState::None, ConnectionState::Connecting));
        }
        self.touch(index);
    }

    /// Symmetric connect: the peer's connect request from `from` turns the outgoing
    /// connection at `index` into the server side of the peer's attempt (see
    /// [`Endpoint::merge_incoming`]).
    #[allow(clippy::too_many_arguments)]
    fn merge(
        &mut self,
        now: Instant,
        index: u32,
        local: LocalId,
        from: A,
        client_id: u32,
        timestamp: u64,
        offer: &[u8],
    ) {
        self.merges.remove(&(local, from.clone()));
        let unix_now = self.unix_now(now);
        let Some(c) = self.conns.by_index_mut(index) else { return };
        if c.merge_from.as_ref() != Some(&from) || c.phase != Phase::Handshake || c.app_closed {
            return;
        }
        let policy = Policy {
            unencrypted: c.config.unencrypted,
            allow_without_auth: c.config.allow_without_auth,
            transport_encrypted: c.transport_encrypted,
            unix_now,
        };
        let local_id = c.local_id;
        let (answer, keys, auth) =
            match self.answer_offer(local, &from, offer, &policy, client_id, local_id) {
                Ok(x) => x,
                Err((reason, debug)) => {
                    if let Some(c) = self.conns.by_index_mut(index) {
                        c.merge_from = None;
                        c.problem(now, reason, &debug);
                    }
                    self.touch(index);
                    return;
                }
            };
        let Some(c) = self.conns.by_index_mut(index) else { return };
        let old = (c.remote.clone(), c.remote_id);
        c.become_server(now, from.clone(), client_id, timestamp, answer, keys, auth);
        if self.by_remote.get(&old) == Some(&index) {
            self.by_remote.remove(&old);
        }
        self.by_remote.insert((from, client_id), index);
        self.touch(index);
    }

    /// The server side of a handshake: the answer to a client's crypto offer, or the failure,
    /// which is counted and told to the client in a closed packet (the cookie proved its
    /// address), so it fails fast with a clear reason.
    fn answer_offer(
        &mut self,
        local: LocalId,
        from: &A,
        offer: &[u8],
        policy: &Policy,
        client_id: u32,
        our_id: u32,
    ) -> Result<(Vec<u8>, SessionKeys, PeerAuth), Failure> {
        let answered = server_answer(
            &mut self.rng,
            offer,
            &self.credentials,
            &self.trust,
            policy,
            client_id,
            our_id,
        );
        if let Err((reason, debug)) = &answered {
            self.stats.handshake_failed += 1;
            let reply = ControlRepr::Closed {
                to_conn_id: client_id,
                from_conn_id: 0,
                reason: reason.0,
                debug: debug.as_bytes(),
            };
            self.queue_control(local, from.clone(), &reply);
        }
        answered
    }

    fn queue_control(&mut self, local: LocalId, to: A, repr: &ControlRepr<'_>) {
        if self.control_out.len() >= MAX_CONTROL_QUEUE {
            self.stats.replies_dropped += 1;
            return;
        }
        let mut buf = vec![0u8; repr.buffer_len()];
        if let Some(n) = repr.emit(&mut buf) {
            buf.truncate(n);
            self.control_out.push_back((local, to, buf));
        }
    }

    fn reply_no_connection(
        &mut self,
        local: LocalId,
        to: A,
        to_conn_id: u32,
        from_conn_id: u32,
        request_len: usize,
    ) {
        let reply =
            ControlRepr::NoConnection { to_conn_id: from_conn_id, from_conn_id: to_conn_id };
        // Never larger than what provoked it, and rate-limited.
        if reply.buffer_len() > request_len || self.no_conn_tokens < 1.0 {
            self.stats.replies_dropped += 1;
            return;
        }
        self.no_conn_tokens -= 1.0;
        self.queue_control(local, to, &reply);
    }

    /// Runs the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.deliver_conditioned(now);
        // Collect what is due first: running a timer may schedule another at `now` (a packet
        // to send), which poll_transmit handles, not this loop.
        let mut due = Vec::new();
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.conns.generation(index) != generation {
                continue; // stale entry
            }
            let Some(c) = self.conns.by_index_mut(index) else { continue };
            if c.timer_at != Some(t) {
                continue; // stale entry
            }
            c.timer_at = None;
            due.push(index);
        }
        for index in due {
            if let Some(c) = self.conns.by_index_mut(index) {
                c.handle_timeout(now);
            }
            self.touch(index);
        }
    }

    /// The next datagram to send, written into `buf` (at least [`MAX_DATAGRAM`] bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit<A>> {
        self.advance(now);
        loop {
            if let Some((local, to, data)) =
                self.send_link.as_mut().and_then(|l| l.poll_deliver(now))
            {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                self.stats.datagrams_out += 1;
                return Some(Transmit { local, to, len: n });
            }
            let t = self.produce(now, buf)?;
            match &mut self.send_link {
                Some(link) => link.send(now, t.len, (t.local, t.to, buf[..t.len].to_vec())),
                None => {
                    self.stats.datagrams_out += 1;
                    return Some(t);
                }
            }
        }
    }

    /// The next datagram from control replies or connections, unconditioned.
    fn produce(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit<A>> {
        if let Some((local, to, data)) = self.control_out.pop_front() {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            return Some(Transmit { local, to, len: n });
        }
        while let Some(&index) = self.dirty.front() {
            let Some(c) = self.conns.by_index_mut(index) else {
                self.dirty.pop_front();
                continue;
            };
            match c.poll_transmit(now, buf) {
                Some(len) => {
                    let t = Transmit { local: c.local, to: c.remote.clone(), len };
                    // Round robin: this connection goes to the back.
                    self.dirty.pop_front();
                    self.dirty.push_back(index);
                    self.after_mutation(index);
                    return Some(t);
                }
                None => {
                    self.dirty.pop_front();
                    c.in_dirty = false;
                    self.after_mutation(index);
                }
            }
        }
        None
    }

    /// When [`Endpoint::handle_timeout`] should be called next (`None`: only on a datagram or
    /// a command).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        while let Some(&Reverse((at, index, generation))) = self.timers.peek() {
            let live = self.conns.generation(index) == generation
                && self.conns.by_index(index).is_some_and(|c| c.timer_at == Some(at));
            if !live {
                self.timers.pop();
                continue;
            }
            t = Some(at);
            break;
        }
        for l in [&self.send_link, &self.recv_link].into_iter().flatten() {
            if let Some(d) = l.next_delivery() {
                t = Some(t.map_or(d, |x| x.min(d)));
            }
        }
        if !self.dirty.is_empty() || !self.control_out.is_empty() {
            // Something may be sendable right now.
            t = Some(t.map_or(self.last_now, |x| x.min(self.last_now)));
        }
        t
    }

    /// The next status event.
    pub fn poll_event(&mut self) -> Option<Event<A>> {
        self.events.pop_front()
    }

    /// Marks a connection as possibly having something to send and refreshes its timer and
    /// events.
    fn touch(&mut self, index: u32) {
        if let Some(c) = self.conns.by_index_mut(index)
            && !c.in_dirty
        {
            c.in_dirty = true;
            self.dirty.push_back(index);
        }
        self.after_mutation(index);
    }

    fn after_mutation(&mut self, index: u32) {
        let now = self.last_now;
        let Some(c) = self.conns.by_index_mut(index) else { return };
        if !c.transitions.is_empty() {
            let transitions = core::mem::take(&mut c.transitions);
            for (old, new) in transitions {
                let c = self.conns.by_index(index).expect("checked above");
                let mut info = c.info(self.describe(c));
                info.state = new;
                self.events.push_back(Event::StatusChanged { conn: c.handle, old, info });
            }
        }
        let Some(c) = self.conns.by_index_mut(index) else { return };
        if c.is_dead() {
            self.free(index);
            return;
        }
        let next = c.poll_timeout(now);
        if c.timer_at != next {
            c.timer_at = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, index, self.conns.generation(index))));
            }
        }
        // Keep the heap from filling with stale entries.
        if self.timers.len() > 64 + 4 * self.conns.len() {
            let conns = &self.conns;
            let live: Vec<_> = conns
                .iter()
                .filter_map(|(i, c)| c.timer_at.map(|t| Reverse((t, i, conns.generation(i)))))
                .collect();
            self.timers = live.into_iter().collect();
        }
    }

    fn free(&mut self, index: u32) {
        if let Some(c) = self.conns.remove(index) {
            self.by_id.remove(&c.local_id);
            if let Some(from) = c.merge_from {
                let key = (c.local, from);
                if self.merges.get(&key) == Some(&index) {
                    self.merges.remove(&key);
                }
            }
            let key = (c.remote.clone(), c.remote_id);
            if self.by_remote.get(&key) == Some(&index) {
                self.by_remote.remove(&key);
            }
        }
    }
}

/// One message of a [`Endpoint::send_messages`] batch.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// Connection.
    pub conn: ConnectionHandle,
    /// Lane.
    pub lane: u16,
    /// Flags.
    pub flags: SendFlags,
    /// Payload.
    pub data: &'a [u8],
}

/// How long after closing a connection's slot may be reused for a new connection. (Handles
/// carry a generation, so reuse is safe at any time; this only documents FIN_WAIT.)
pub const FIN_WAIT: Duration = crate::conn::FIN_WAIT;

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn cookies_from_before_time_zero_are_refused() {
        // Found by the endpoint_recv fuzz target: early in an endpoint's life, a cookie whose
        // 16-bit tick claims a recent age from before tick 0 made the age subtraction
        // overflow (a panic with overflow checks on).
        let ep: Endpoint<u32> = Endpoint::new(Config::new(), [3; 32]);
        let now = Instant::from_micros(1 << 20); // tick 1
        let good = ep.make_cookie(now, &7, 9);
        assert!(ep.check_cookie(now, &7, 9, good));
        assert!(!ep.check_cookie(now, &7, 10, good));
        assert!(!ep.check_cookie(now, &8, 9, good));
        for claimed in [0xfffd_u64, 0xfffe, 0xffff] {
            assert!(!ep.check_cookie(now, &7, 9, (good & !0xffff) | claimed));
        }
        let later = Instant::from_micros(6 << 20);
        assert!(!ep.check_cookie(later, &7, 9, good), "older than COOKIE_TICKS");
    }
}
