//! The browser driver: one [`Endpoint`] of the core, its peer connections, the signaling
//! WebSocket and one timer, behind the [`Lanewire`] handle.
//!
//! # How it drives the core
//!
//! It is the core's drive loop, split over browser events. Every entry point (a call of the
//! API, a datagram from a data channel, a signaling frame, the timer) runs the same sequence:
//! read the clock, do its work (`handle_datagram`, `handle_timeout`, a command), then
//! [`Inner::pump`]: drain `poll_transmit` into the peers' data channels, drain `poll_event`
//! into the event queue, free finished peers and re-arm the timer to `poll_timeout`. Only
//! then, with the state no longer borrowed, are the application's callbacks called, so a
//! callback may call the API freely.
//!
//! # Invariants
//!
//! - The state lives in one `Rc<RefCell<Inner>>`; browser callbacks hold only `Weak`
//!   references, so dropping the last [`Lanewire`] frees everything and the callbacks become
//!   no-ops. Every `Closure` is owned by the struct that owns the object it is attached to.
//! - The borrow is never held across a call into application code; promises settle into
//!   entry points as browser events do.
//! - A peer (RTCPeerConnection) carries exactly one core connection, keyed by [`PeerKey`].

use crate::prelude::*;
use alloc::collections::VecDeque;
use alloc::rc::{Rc, Weak};
use core::cell::RefCell;
use core::fmt;
use core::task::{Poll, Waker};
use core::time::Duration;
use lanewire_core::text;
use lanewire_core::text::Text;

use js_sys::{Array, Function, Promise, Reflect};
use lanewire_core::config::{ConfigKey, ConfigValue};
use lanewire_core::{
    Config, ConnectionHandle, DATA_CHANNEL_DATAGRAM, EndReason, Endpoint, EndpointStats, Event,
    Instant, ListenSocketHandle, LocalId, MAX_DATAGRAM, Message, PollGroupHandle, QuickStatus, Rng,
    SendFlags, SymmetricClaim,
};
use lanewire_signaling::protocol::{
    ClientMessage, ConnectionId, ErrorCode as SigErrorCode, ErrorFrame, Identity, PROTOCOL_VERSION,
    Payload, ServerMessage,
};
use wasm_bindgen::prelude::*;
use web_sys::{
    RtcConfiguration, RtcIceCandidate, RtcIceCandidateInit, RtcIceConnectionState, RtcIceServer,
    RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit,
};

use crate::error::{Error, ErrorCode, bad_identity, invalid_id_text, js_message};
use crate::peer::{Peer, PeerParams, Peers, Sent, TransportStats};
use crate::signaling::{Signaling, web_sys_warn};
use crate::sys::{Clock, Once, Settled, Timer, random_seed, then};
use crate::types::{ConnectionInfo, IceServer, Options, StatusEvent};

/// After the application closes a connection, its peer connection stays this long (and until
/// the core has been quiet on it for [`QUIET_BEFORE_FREE`]) so the core can resend its close
/// and answer stray packets: the core's FIN_WAIT of 5 s, plus a margin.
const FREE_AFTER_CLOSE: Duration = Duration::from_millis(5500);
/// See [`FREE_AFTER_CLOSE`]: a lingering connection still sending is not cut off.
const QUIET_BEFORE_FREE: Duration = Duration::from_secs(1);
/// A connection whose data channel is full waits at most this long for it to drain (then the
/// datagram that did not fit is dropped, counted, and sending resumes; the core's reliability
/// and time-outs take it from there), as natively. Only that connection waits.
const MAX_STALL: Duration = Duration::from_secs(1);
const MAX_STALL_US: u64 = MAX_STALL.as_micros() as u64;
/// An incoming peer connection whose core connection never appeared (the handshake never
/// came through) is freed after this: three times the core's default `TimeoutInitial`.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(30);

/// The transport key the core knows a peer by: an index into this instance's table of peer
/// connections, never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub(crate) u32);

impl Text for PeerKey {
    /// `webrtc#3`: the address part of the core's connection descriptions.
    fn push_to(&self, out: &mut String) {
        out.push_str("webrtc#");
        self.0.push_to(out);
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text!(self))
    }
}

enum Registration {
    /// Waiting for the server; `waiter` resolves the promise `connect` awaits.
    Pending {
        waiter: Option<Function>,
    },
    Registered,
    Failed(Error),
}

type StatusCallback = Box<dyn FnMut(StatusEvent)>;
type ReadableCallback = Box<dyn FnMut(ConnectionHandle)>;

/// The state behind a [`Lanewire`] handle.
pub(crate) struct Inner {
    weak: Weak<RefCell<Inner>>,
    ep: Endpoint<PeerKey>,
    clock: Clock,
    rng: Rng,
    identity: Identity,
    token: Option<String>,
    rtc_config: RtcConfiguration,
    /// How many of `rtc_config`'s ICE servers are the application's; the signaling server's
    /// minted ones (TURN credentials) follow and are replaced at each registration.
    static_ice: u32,
    signaling: Option<Signaling>,
    registration: Registration,
    peers: Peers,
    /// Virtual ports and their listen sockets.
    listen: Vec<(u32, ListenSocketHandle)>,
    next_key: u32,
    tx_buf: Vec<u8>,
    rx_buf: Vec<u8>,
    timer: Timer,
    events: VecDeque<StatusEvent>,
    readable: Vec<ConnectionHandle>,
    on_status: Option<StatusCallback>,
    on_status_generation: u32,
    on_readable: Option<ReadableCallback>,
    on_readable_generation: u32,
    stats: TransportStats,
    shut_down: bool,
}

/// A Lanewire instance in the browser: registered at a signaling server under an identity,
/// listening on virtual ports and connecting to peers by identity, with the semantics of the
/// native library (whole messages, reliable and unreliable, lanes, status events, poll
/// groups, config values and the fake-network conditioner).
///
/// Cheap to clone (a reference to shared state). Call [`Lanewire::shutdown`] when done: the
/// callbacks you register may hold clones, and shutting down drops them.
#[derive(Clone)]
pub struct Lanewire {
    inner: Rc<RefCell<Inner>>,
}

impl fmt::Debug for Lanewire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_borrow() {
            Ok(i) => write!(f, "Lanewire({}, {} peers)", i.identity, i.peers.len()),
            Err(_) => f.write_str("Lanewire(busy)"),
        }
    }
}

impl Lanewire {
    /// Connects to the signaling server and registers `options.identity`. Resolves once the
    /// server accepted the registration; fails with [`ErrorCode::BadToken`],
    /// [`ErrorCode::TokenExpired`], [`ErrorCode::Signaling`], [`ErrorCode::Timeout`],
    /// [`ErrorCode::InvalidParam`] (bad identity or URL) or [`ErrorCode::Unsupported`].
    pub async fn connect(options: Options) -> Result<Lanewire, Error> {
        type Slot = (Option<Result<Lanewire, Error>>, Option<Waker>);
        let slot: Rc<RefCell<Slot>> = Rc::default();
        let s = slot.clone();
        Lanewire::connect_with(
            options,
            Box::new(move |r| {
                let waker = {
                    let mut s = s.borrow_mut();
                    s.0 = Some(r);
                    s.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }),
        );
        core::future::poll_fn(|cx| {
            let mut s = slot.borrow_mut();
            match s.0.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    s.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// [`Lanewire::connect`] with a callback instead of a future: `done` gets the outcome (at
    /// once when the options are bad).
    pub(crate) fn connect_with(options: Options, done: Box<dyn FnOnce(Result<Lanewire, Error>)>) {
        let lw = match Lanewire::open(&options) {
            Ok(lw) => lw,
            Err(e) => return done(Err(e)),
        };
        let registered = Promise::new(&mut |resolve, _reject| {
            lw.inner.borrow_mut().registration = Registration::Pending { waiter: Some(resolve) };
        });
        // `as_millis() as u64` without the u128.
        let timeout_ms = (options.timeout.as_secs().wrapping_mul(1000))
            .wrapping_add(u64::from(options.timeout.subsec_millis()));
        let w = Rc::downgrade(&lw.inner);
        let deadline = Once::after(timeout_ms as f64, move || {
            let msg = text!("no answer from the signaling server in ", timeout_ms, " ms");
            enter(&w, move |inner, _| inner.fail_registration(Error::new(ErrorCode::Timeout, msg)));
        });
        // The promise only ever resolves; the outcome is in `registration`.
        then(&registered, move |_| {
            drop(deadline);
            let outcome = core::mem::replace(
                &mut lw.inner.borrow_mut().registration,
                Registration::Failed(Error::new(ErrorCode::Closed, "registration consumed")),
            );
            done(match outcome {
                Registration::Registered => {
                    lw.inner.borrow_mut().registration = Registration::Registered;
                    Ok(lw)
                }
                Registration::Failed(e) => {
                    lw.shutdown();
                    Err(e)
                }
                Registration::Pending { .. } => {
                    lw.shutdown();
                    Err(Error::new(ErrorCode::Closed, "registration abandoned"))
                }
            });
        });
    }

    /// The instance of [`Lanewire::connect`], its signaling WebSocket opening.
    fn open(options: &Options) -> Result<Lanewire, Error> {
        crate::sys::install_panic_hook();
        let identity = Identity::new(options.identity.clone())
            .map_err(|e| Error::new(ErrorCode::InvalidParam, bad_identity(&options.identity, e)))?;
        let seed = random_seed()?;
        // `P2PTransportIceEnable` 1 (relay bit alone) in the global config: relay only.
        let relay_only = matches!(
            options.config.get(ConfigKey::P2PTransportIceEnable),
            Some(ConfigValue::Int32(v)) if v & 0b110 == 0
        );
        let rtc_config = rtc_configuration(&options.ice_servers, relay_only);
        let hop = Timer::channel()?;
        let inner = Rc::new_cyclic(|weak: &Weak<RefCell<Inner>>| {
            let (w, w2) = (weak.clone(), weak.clone());
            let timer = Timer::new(
                hop,
                Closure::new(move || on_timer(&w)),
                Closure::new(move || on_timer_hop(&w2)),
            );
            let mut rng = Rng::from_seed(seed);
            let ep_seed = {
                let mut s = [0u8; 32];
                rng.fill(&mut s);
                s
            };
            RefCell::new(Inner {
                weak: weak.clone(),
                ep: Endpoint::new(options.config.clone(), ep_seed),
                clock: Clock::new(),
                rng,
                identity,
                token: options.token.clone(),
                rtc_config,
                static_ice: options.ice_servers.len() as u32,
                signaling: None,
                registration: Registration::Pending { waiter: None },
                peers: Peers::default(),
                listen: Vec::new(),
                next_key: 0,
                tx_buf: vec![0; MAX_DATAGRAM],
                rx_buf: Vec::with_capacity(MAX_DATAGRAM),
                timer,
                events: VecDeque::new(),
                readable: Vec::new(),
                on_status: None,
                on_status_generation: 0,
                on_readable: None,
                on_readable_generation: 0,
                stats: TransportStats::default(),
                shut_down: false,
            })
        });
        let signaling = Signaling::open(&options.signaling_url, Rc::downgrade(&inner))?;
        inner.borrow_mut().signaling = Some(signaling);
        Ok(Lanewire { inner })
    }

    /// The identity this instance registered.
    pub fn identity(&self) -> String {
        self.inner.borrow().identity.as_str().into()
    }

    /// True while the signaling connection is up (new connections need it; established ones
    /// do not).
    pub fn is_signaling_connected(&self) -> bool {
        let i = self.inner.borrow();
        i.signaling.is_some() && !i.shut_down
    }

    /// Runs `f` on the state with the current time, then pumps the core and calls the
    /// application's callbacks.
    fn run<R>(&self, f: impl FnOnce(&mut Inner, Instant) -> Result<R, Error>) -> Result<R, Error> {
        let mut f = Some(f);
        let mut out = None;
        self.run_dyn(&mut |inner, now| out = f.take().map(|f| f(inner, now)))?;
        out.unwrap_or_else(|| Err(shut_down()))
    }

    /// [`Lanewire::run`]'s body, compiled once rather than once per API call.
    #[inline(never)]
    fn run_dyn(&self, f: &mut dyn FnMut(&mut Inner, Instant)) -> Result<(), Error> {
        {
            let mut inner = self.inner.borrow_mut();
            if inner.shut_down {
                return Err(shut_down());
            }
            let now = inner.clock.now();
            f(&mut inner, now);
            inner.pump(now);
        }
        self.dispatch();
        Ok(())
    }

    /// Calls the application's callbacks for queued events, outside the borrow.
    #[inline(never)]
    fn dispatch(&self) {
        loop {
            let mut inner = self.inner.borrow_mut();
            if inner.on_status.is_none() || inner.events.is_empty() {
                break;
            }
            let (Some(mut cb), Some(ev)) = (inner.on_status.take(), inner.events.pop_front())
            else {
                break;
            };
            let generation = inner.on_status_generation;
            drop(inner);
            cb(ev);
            let mut inner = self.inner.borrow_mut();
            // Unless the callback replaced itself, put it back.
            if inner.on_status_generation == generation {
                inner.on_status = Some(cb);
            }
        }
        loop {
            let mut inner = self.inner.borrow_mut();
            if inner.on_readable.is_none() || inner.readable.is_empty() {
                break;
            }
            let Some(mut cb) = inner.on_readable.take() else { break };
            let conn = inner.readable.remove(0);
            let generation = inner.on_readable_generation;
            drop(inner);
            cb(conn);
            let mut inner = self.inner.borrow_mut();
            if inner.on_readable_generation == generation {
                inner.on_readable = Some(cb);
            }
        }
    }

    // ------------------------------------------------------------------ callbacks

    /// Calls `f` for every status event (connecting, connected, closed by the peer, problem
    /// detected, and new incoming connections). Without a callback, events queue for
    /// [`Lanewire::poll_event`].
    pub fn on_status(&self, f: impl FnMut(StatusEvent) + 'static) {
        {
            let mut i = self.inner.borrow_mut();
            i.on_status = Some(Box::new(f));
            i.on_status_generation = i.on_status_generation.wrapping_add(1);
        }
        self.dispatch();
    }

    /// Removes the status callback; events queue again.
    pub fn clear_on_status(&self) {
        let mut i = self.inner.borrow_mut();
        i.on_status = None;
        i.on_status_generation = i.on_status_generation.wrapping_add(1);
    }

    /// The next queued status event (when no callback is set).
    pub fn poll_event(&self) -> Option<StatusEvent> {
        self.inner.borrow_mut().events.pop_front()
    }

    /// Calls `f(conn)` after packets for `conn` arrived: [`Lanewire::receive`] (or the poll
    /// group's receive) may now return messages. A hint, at most once per browser event and
    /// connection; it may come with nothing to read (an ack, part of a message).
    pub fn on_readable(&self, f: impl FnMut(ConnectionHandle) + 'static) {
        let mut i = self.inner.borrow_mut();
        i.on_readable = Some(Box::new(f));
        i.on_readable_generation = i.on_readable_generation.wrapping_add(1);
    }

    /// Removes the readable callback.
    pub fn clear_on_readable(&self) {
        let mut i = self.inner.borrow_mut();
        i.on_readable = None;
        i.on_readable_generation = i.on_readable_generation.wrapping_add(1);
    }

    // ------------------------------------------------------------------ listen / connect

    /// Listens for peers connecting to virtual port `port`; `config` is inherited by the
    /// connections it accepts. Incoming connections arrive as status events.
    pub fn listen_p2p(&self, port: u32, config: Config) -> Result<ListenSocketHandle, Error> {
        self.run(|inner, _| {
            if inner.listen.iter().any(|(p, _)| *p == port) {
                return Err(Error::new(
                    ErrorCode::InvalidState,
                    text!("already listening on virtual port ", port),
                ));
            }
            inner.ep.set_transport_encrypted(LocalId(port), true);
            inner.ep.set_transport_max_datagram(LocalId(port), Some(DATA_CHANNEL_DATAGRAM));
            let h = inner.ep.create_listen_socket(LocalId(port), config)?;
            inner.listen.push((port, h));
            Ok(h)
        })
    }

    /// Stops listening. Connections it accepted are closed too, as in the reference.
    pub fn close_listen_socket(&self, socket: ListenSocketHandle) -> Result<(), Error> {
        self.run(|inner, now| {
            let port = inner.ep.listen_socket_local(socket).map(|l| l.0);
            inner.ep.close_listen_socket(now, socket)?;
            inner.listen.retain(|(_, h)| *h != socket);
            // The core closed the connections it accepted, without linger.
            for p in inner.peers.iter_mut() {
                if !p.outgoing && Some(p.port) == port && p.closed_at.is_none() {
                    p.closed_at = Some(now);
                }
            }
            Ok(())
        })
    }

    /// Connects to the peer registered as `identity`, on its virtual port `port`. Returns at
    /// once; progress arrives as status events. If the peer is not registered, refuses, or no
    /// route is found, the connection ends in `ProblemDetectedLocally` with
    /// [`EndReason::MISC_P2P_RENDEZVOUS`] or [`EndReason::MISC_P2P_NAT_FIREWALL`].
    ///
    /// With `SymmetricConnect` 1 (in `config` or global) there is at most one connection per
    /// identity and virtual port, as natively: a connection from the peer waiting to be
    /// accepted is accepted and returned (`accept` on it then fails with `InvalidState`); if
    /// both peers connect at once, the attempt of the identity that sorts first (UTF-8 byte
    /// order) is kept and the other side's connection becomes its server side, so both see
    /// their own handle connect and no incoming connection; a live symmetric connection to
    /// the same peer and port makes the call fail with `InvalidState`.
    pub fn connect_p2p(
        &self,
        identity: &str,
        port: u32,
        config: Config,
    ) -> Result<ConnectionHandle, Error> {
        let to = Identity::new(identity)
            .map_err(|e| Error::new(ErrorCode::InvalidParam, bad_identity(identity, e)))?;
        self.run(|inner, now| {
            if to == inner.identity {
                return Err(Error::new(
                    ErrorCode::InvalidParam,
                    "cannot connect to this instance's own identity",
                ));
            }
            if inner.signaling.is_none() {
                return Err(Error::new(ErrorCode::Closed, "not connected to the signaling server"));
            }
            let local = match config.get(ConfigKey::LocalVirtualPort) {
                Some(ConfigValue::Int32(p)) if *p >= 0 => *p as u32,
                _ => port,
            };
            inner.ep.set_transport_encrypted(LocalId(local), true);
            inner.ep.set_transport_max_datagram(LocalId(local), Some(DATA_CHANNEL_DATAGRAM));
            let symmetric = matches!(
                config
                    .get(ConfigKey::SymmetricConnect)
                    .cloned()
                    .unwrap_or_else(|| inner.ep.config_value(ConfigKey::SymmetricConnect)),
                ConfigValue::Int32(v) if v != 0
            );
            if symmetric && let Some(conn) = inner.symmetric_match(now, &to, local, &config)? {
                return Ok(conn);
            }
            let key = inner.new_key();
            // 16 hex digits: valid by construction.
            let attempt = ConnectionId::new(hex16(inner.rng.u64()))
                .map_err(|e| Error::new(ErrorCode::InvalidParam, invalid_id_text(e)))?;
            let params = PeerParams {
                key,
                identity: to.clone(),
                attempt: attempt.clone(),
                outgoing: true,
                local: LocalId(local),
                port,
                now,
            };
            let mut peer = Peer::new(&inner.weak, &inner.rtc_config, params)?;
            peer.symmetric = symmetric.then(|| config.clone());
            let conn = inner.ep.connect(now, LocalId(local), key, config)?;
            peer.conn = Some(conn);
            let pc = peer.pc.clone();
            inner.peers.insert(peer);
            make_offer(inner.weak.clone(), key, pc);
            Ok(conn)
        })
    }

    /// Accepts an incoming connection (announced by a `None → Connecting` status event).
    pub fn accept(&self, conn: ConnectionHandle) -> Result<(), Error> {
        self.run(|inner, now| Ok(inner.ep.accept(now, conn)?))
    }

    /// Closes a connection and invalidates its handle. `reason` must be in the application
    /// ranges (1000-2999; 0 means 1000); the peer sees it with `debug` in its
    /// `ClosedByPeer` event. With `linger`, reliable data still queued is delivered first.
    pub fn close(
        &self,
        conn: ConnectionHandle,
        reason: EndReason,
        debug: &str,
        linger: bool,
    ) -> Result<(), Error> {
        self.run(|inner, now| {
            let ended = inner.ep.connection_info(conn).map(|i| i.state.is_ended());
            inner.ep.close(now, conn, reason, debug, linger)?;
            if let Some(p) = inner.peers.by_conn(conn) {
                p.closed_at = Some(now);
                // Nothing more can reach the peer on a transport that never opened, and an
                // ended connection has nothing more to say.
                if ended == Some(true) || p.opened_at.is_none() {
                    p.free_now = true;
                }
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------------ messages

    /// Sends a message on lane 0; returns its message number.
    pub fn send(
        &self,
        conn: ConnectionHandle,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<u64, Error> {
        self.send_on_lane(conn, 0, data, flags)
    }

    /// Sends a message on a lane; returns its message number in that lane.
    pub fn send_on_lane(
        &self,
        conn: ConnectionHandle,
        lane: u16,
        data: &[u8],
        flags: SendFlags,
    ) -> Result<u64, Error> {
        self.run(|inner, now| Ok(inner.ep.send_on_lane(now, conn, lane, data, flags)?))
    }

    /// Sends what waits for the Nagle timer now.
    pub fn flush(&self, conn: ConnectionHandle) -> Result<(), Error> {
        self.run(|inner, now| Ok(inner.ep.flush(now, conn)?))
    }

    /// Configures the outgoing lanes: a priority (lower first) and a weight per lane.
    pub fn configure_lanes(
        &self,
        conn: ConnectionHandle,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), Error> {
        self.run(|inner, _| Ok(inner.ep.configure_lanes(conn, priorities, weights)?))
    }

    /// Up to `max` received messages of one connection, in order.
    pub fn receive(&self, conn: ConnectionHandle, max: usize) -> Result<Vec<Message>, Error> {
        let mut out = Vec::new();
        self.inner.borrow_mut().ep.receive(conn, max, &mut out)?;
        Ok(out)
    }

    /// A new poll group.
    pub fn create_poll_group(&self) -> PollGroupHandle {
        self.inner.borrow_mut().ep.create_poll_group()
    }

    /// Destroys a poll group; its members are left in no group.
    pub fn destroy_poll_group(&self, group: PollGroupHandle) -> Result<(), Error> {
        Ok(self.inner.borrow_mut().ep.destroy_poll_group(group)?)
    }

    /// Puts a connection in a poll group, or in none.
    pub fn set_poll_group(
        &self,
        conn: ConnectionHandle,
        group: Option<PollGroupHandle>,
    ) -> Result<(), Error> {
        Ok(self.inner.borrow_mut().ep.set_poll_group(conn, group)?)
    }

    /// Up to `max` messages from the group's connections.
    pub fn receive_on_poll_group(
        &self,
        group: PollGroupHandle,
        max: usize,
    ) -> Result<Vec<Message>, Error> {
        let mut out = Vec::new();
        self.inner.borrow_mut().ep.receive_on_poll_group(group, max, &mut out)?;
        Ok(out)
    }

    // ------------------------------------------------------------------ status and config

    /// Ping, quality, rates and queues of a connection.
    pub fn quick_status(&self, conn: ConnectionHandle) -> Result<QuickStatus, Error> {
        self.run(|inner, now| inner.ep.quick_status(now, conn).ok_or_else(invalid_handle))
    }

    /// Human-readable, multi-line status of a connection.
    pub fn detailed_status(&self, conn: ConnectionHandle) -> Result<String, Error> {
        self.run(|inner, now| inner.ep.detailed_status(now, conn).ok_or_else(invalid_handle))
    }

    /// Everything about a connection.
    pub fn connection_info(&self, conn: ConnectionHandle) -> Result<ConnectionInfo, Error> {
        let inner = self.inner.borrow();
        let info = inner.ep.connection_info(conn).ok_or_else(invalid_handle)?;
        Ok(inner.convert_info(info))
    }

    /// Sets a global config value (fake loss, lag and jitter take effect at once).
    pub fn set_config(&self, key: ConfigKey, value: ConfigValue) -> Result<(), Error> {
        self.run(|inner, _| Ok(inner.ep.set_config(key, value)?))
    }

    /// The effective global value of `key`.
    pub fn config_value(&self, key: ConfigKey) -> ConfigValue {
        self.inner.borrow().ep.config_value(key)
    }

    /// Sets a config value on one connection.
    pub fn set_connection_config(
        &self,
        conn: ConnectionHandle,
        key: ConfigKey,
        value: ConfigValue,
    ) -> Result<(), Error> {
        self.run(|inner, _| Ok(inner.ep.set_connection_config(conn, key, value)?))
    }

    /// Sets a connection's user data (also on messages already queued).
    pub fn set_user_data(&self, conn: ConnectionHandle, data: i64) -> Result<(), Error> {
        Ok(self.inner.borrow_mut().ep.set_user_data(conn, data)?)
    }

    /// Names a connection (for descriptions and logs).
    pub fn set_name(&self, conn: ConnectionHandle, name: &str) -> Result<(), Error> {
        Ok(self.inner.borrow_mut().ep.set_name(conn, name)?)
    }

    /// The core's counters (datagrams in and out, drops by cause).
    pub fn endpoint_stats(&self) -> EndpointStats {
        self.inner.borrow().ep.stats().clone()
    }

    /// The browser transport's counters.
    pub fn transport_stats(&self) -> TransportStats {
        self.inner.borrow().stats
    }

    /// Milliseconds since the data channel of `conn` opened, from the instance's creation
    /// clock; `None` before it opens. (For measurements.)
    pub fn channel_opened_at_ms(&self, conn: ConnectionHandle) -> Option<f64> {
        let inner = self.inner.borrow();
        let p = inner.peers.iter().find(|p| p.conn == Some(conn))?;
        p.opened_at.map(|t| t.as_micros() as f64 / 1000.0)
    }

    /// Closes every connection (without linger), every peer connection and the signaling
    /// socket, and drops the callbacks. Later calls fail with [`ErrorCode::Closed`].
    pub fn shutdown(&self) {
        let (status, readable) = {
            let mut inner = self.inner.borrow_mut();
            if inner.shut_down {
                return;
            }
            let now = inner.clock.now();
            for c in inner.ep.connections() {
                let _ = inner.ep.close(now, c, EndReason::APP_GENERIC, "Lanewire shut down", false);
            }
            // Let the close notices go out before the transports close.
            inner.pump(now);
            inner.shut_down = true;
            inner.timer.close();
            inner.peers.clear();
            inner.signaling = None;
            inner.events.clear();
            inner.readable.clear();
            (inner.on_status.take(), inner.on_readable.take())
        };
        // Dropped outside the borrow: they may hold clones of this handle.
        drop((status, readable));
    }
}

fn shut_down() -> Error {
    Error::new(ErrorCode::Closed, "this Lanewire instance is shut down")
}

fn invalid_handle() -> Error {
    Error::new(ErrorCode::InvalidHandle, "invalid connection handle")
}

fn rtc_ice_server(
    urls: &[String],
    username: Option<&str>,
    credential: Option<&str>,
) -> RtcIceServer {
    let server = RtcIceServer::new();
    let urls: Array = urls.iter().map(|u| JsValue::from_str(u)).collect();
    server.set_urls(&urls);
    if let Some(u) = username {
        server.set_username(u);
    }
    if let Some(c) = credential {
        server.set_credential(c);
    }
    server
}

fn rtc_configuration(servers: &[IceServer], relay_only: bool) -> RtcConfiguration {
    let list = Array::new();
    for s in servers {
        list.push(&rtc_ice_server(&s.urls, s.username.as_deref(), s.credential.as_deref()));
    }
    let config = RtcConfiguration::new();
    config.set_ice_servers(&list);
    if relay_only {
        let _ = Reflect::set(&config, &"iceTransportPolicy".into(), &"relay".into());
    }
    config
}

// ---------------------------------------------------------------------- the state machine

impl Inner {
    fn new_key(&mut self) -> PeerKey {
        self.next_key += 1;
        PeerKey(self.next_key)
    }

    /// After any change: send what the core wants sent, collect its events, free finished
    /// peers, re-arm the timer.
    #[inline(never)]
    fn pump(&mut self, now: Instant) {
        // A full channel is a socket that is not writable: its connection stops sending
        // (the core keeps its data queued, the other connections go on) until the channel
        // drains (`on_channel_drained`) or MAX_STALL passes. Dropping datagrams instead would
        // have the core produce them only to lose them while the channel is the bottleneck.
        let mut waited_out = Vec::new();
        for p in self.peers.iter() {
            if p.full_until.is_some_and(|until| now >= until) {
                waited_out.push(p.key);
            }
        }
        for key in waited_out {
            self.stats.stall_timeouts += 1;
            self.unstall(key, now);
        }
        let mut buf = core::mem::take(&mut self.tx_buf);
        while let Some(t) = self.ep.poll_transmit(now, &mut buf) {
            match self.peers.get_mut(t.to) {
                Some(p) => {
                    if p.send(now, &buf[..t.len], &mut self.stats) == Sent::Full {
                        p.full_until = Some(now + MAX_STALL);
                        if let Some(c) = p.conn {
                            let _ = self.ep.set_transmit_paused(now, c, true);
                        }
                    }
                }
                None => self.stats.no_route += 1,
            }
        }
        self.tx_buf = buf;
        while let Some(Event::StatusChanged { conn, old, info }) = self.ep.poll_event() {
            if let Some(p) = self.peers.get_mut(info.remote)
                && p.conn.is_none()
            {
                // An incoming connection: the core created it from the handshake.
                p.conn = Some(conn);
                if p.relayed {
                    let _ = self.ep.set_transport_info(conn, true, true);
                }
            }
            let mut info = info;
            info.relayed |= self.peers.get(info.remote).is_some_and(|p| p.relayed);
            let info = self.convert_info(info);
            self.events.push_back(StatusEvent { conn, old, info });
        }
        let reap_at = self.reap(now);
        if !self.shut_down {
            let mut due = self.ep.poll_timeout();
            for t in self.peers.iter().filter_map(|p| p.full_until).chain(reap_at) {
                due = Some(due.map_or(t, |d| d.min(t)));
            }
            self.timer.arm(now, due);
        }
    }

    /// Ends the wait of `key`'s full channel: its stashed datagram goes out (or is dropped)
    /// and its connection sends again.
    fn unstall(&mut self, key: PeerKey, now: Instant) {
        let Some(p) = self.peers.get_mut(key) else { return };
        let Some(until) = p.full_until.take() else { return };
        // In u64 (`Duration::as_micros` is a u128).
        let began = until.as_micros().saturating_sub(MAX_STALL_US);
        self.stats.stalled_us += now.as_micros().saturating_sub(began);
        p.unstash(&mut self.stats);
        if let Some(c) = p.conn {
            let _ = self.ep.set_transmit_paused(now, c, false);
        }
    }

    fn convert_info(&self, info: lanewire_core::ConnectionInfo<PeerKey>) -> ConnectionInfo {
        let peer = self.peers.get(info.remote);
        ConnectionInfo {
            state: info.state,
            peer_identity: peer.map(|p| p.identity.as_str().into()),
            virtual_port: peer.map_or(0, |p| p.port),
            listen_socket: info.listen_socket,
            user_data: info.user_data,
            end_reason: info.end_reason,
            end_debug: info.end_debug,
            description: match peer {
                Some(p) => {
                    text!(info.description, " (", p.identity.as_str(), ", port ", p.port, ")")
                }
                None => info.description,
            },
            name: info.name,
            encrypted: info.encrypted,
            transport_encrypted: info.transport_encrypted,
            authenticated: info.authenticated,
            relayed: info.relayed,
        }
    }

    /// A symmetric `connect_p2p` to (`to`, `local`): the connection it turns out to be if the
    /// peer is already connecting to us, `None` to go on with a new attempt, or an error when
    /// a live symmetric connection exists.
    fn symmetric_match(
        &mut self,
        now: Instant,
        to: &Identity,
        local: u32,
        config: &Config,
    ) -> Result<Option<ConnectionHandle>, Error> {
        let Inner { ep, peers, .. } = self;
        for p in peers.iter_mut() {
            if p.identity != *to || p.local != LocalId(local) || p.dead {
                continue;
            }
            match ep.symmetric_claim(now, LocalId(local), p.key, p.conn, !p.outgoing, config)? {
                SymmetricClaim::Nothing => {}
                SymmetricClaim::Accepted(c) => return Ok(Some(c)),
                SymmetricClaim::Duplicate(_) => {
                    return Err(Error::new(
                        ErrorCode::InvalidState,
                        text!(
                            "a symmetric connection to ",
                            to.as_str(),
                            " on port ",
                            local,
                            " exists already"
                        ),
                    ));
                }
                // The peer's offer is here and its channel is opening: become that connection.
                SymmetricClaim::Merged(c) => {
                    p.conn = Some(c);
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    /// Frees the peers whose connection is finished; returns when to look again.
    fn reap(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut gone = Vec::new();
        for p in self.peers.iter() {
            let key = p.key;
            let due = if p.free_now {
                now
            } else if let Some(closed) = p.closed_at {
                (closed + FREE_AFTER_CLOSE).max(p.last_send + QUIET_BEFORE_FREE)
            } else if p.conn.is_none() {
                p.created + ORPHAN_TIMEOUT
            } else {
                continue;
            };
            if due <= now {
                gone.push(key);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        for key in gone {
            self.unstall(key, now);
            if let Some(p) = self.peers.remove(key)
                && p.opened_at.is_none()
                && !p.told
            {
                // The peer may still be waiting for this attempt.
                self.signal(&p.identity, &p.attempt, Payload::Bye);
            }
        }
        next
    }

    fn signal(&self, to: &Identity, attempt: &ConnectionId, payload: Payload) {
        if let Some(s) = &self.signaling {
            s.send(&ClientMessage::Signal { to: to.clone(), connection: attempt.clone(), payload });
        }
    }

    /// Signals the peer of `key`, or queues candidates until our description went out (the
    /// peer cannot place them before it has our offer).
    fn signal_peer(&mut self, key: PeerKey, payload: Payload) {
        let Some(p) = self.peers.get_mut(key) else { return };
        let is_description = matches!(payload, Payload::Offer { .. } | Payload::Answer { .. });
        if !is_description && !p.description_sent {
            p.pending_signals.push(payload);
            return;
        }
        if is_description {
            p.description_sent = true;
        }
        let (to, attempt) = (p.identity.clone(), p.attempt.clone());
        let pending = core::mem::take(&mut p.pending_signals);
        self.signal(&to, &attempt, payload);
        for s in pending {
            self.signal(&to, &attempt, s);
        }
    }

    /// Ends the connection of `key` because its rendezvous or transport failed, closes the
    /// transport, and tells the peer when the transport never opened (unless `from_peer`: it
    /// told us). With `only_before_open`, an open transport is left alone.
    fn fail_peer(
        &mut self,
        now: Instant,
        key: PeerKey,
        reason: EndReason,
        debug: &str,
        only_before_open: bool,
        from_peer: bool,
    ) {
        let Some(p) = self.peers.get_mut(key) else { return };
        if only_before_open && p.opened_at.is_some() {
            return;
        }
        self.unstall(key, now);
        let Some(p) = self.peers.get_mut(key) else { return };
        if let Some(c) = p.conn
            && self.ep.connection_info(c).is_some_and(|i| !i.state.is_ended())
        {
            let _ = self.ep.fail_connection(now, c, reason, debug);
        }
        let tell = p.opened_at.is_none() && !from_peer && !p.told;
        p.told |= tell || from_peer;
        if p.conn.is_none() {
            p.free_now = true;
        }
        p.shut();
        if tell {
            let (to, attempt) = (p.identity.clone(), p.attempt.clone());
            self.signal(&to, &attempt, Payload::Bye);
        }
    }

    fn fail_registration(&mut self, e: Error) {
        if let Registration::Pending { waiter } = &mut self.registration {
            let waiter = waiter.take();
            self.registration = Registration::Failed(e);
            if let Some(w) = waiter {
                let _ = w.call0(&JsValue::NULL);
            }
        }
    }

    fn on_server_message(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::Registered { ice_servers, .. } => {
                // Peer connections made from now on use the fresh credentials too.
                let list = Array::from(
                    &Reflect::get(&self.rtc_config, &"iceServers".into()).unwrap_or_default(),
                );
                list.set_length(self.static_ice);
                for s in &ice_servers {
                    list.push(&rtc_ice_server(&s.urls, Some(&s.username), Some(&s.credential)));
                }
                if let Registration::Pending { waiter } = &mut self.registration {
                    let waiter = waiter.take();
                    self.registration = Registration::Registered;
                    if let Some(w) = waiter {
                        let _ = w.call0(&JsValue::NULL);
                    }
                }
            }
            ServerMessage::Signal { from, connection, payload } => {
                self.on_signal(now, from, connection, payload);
            }
            ServerMessage::Error(frame) => self.on_server_error(now, frame),
            ServerMessage::Replaced { .. } => {
                self.signaling_lost(now, "another client registered this identity".into());
            }
        }
    }

    fn on_server_error(&mut self, now: Instant, frame: ErrorFrame) {
        if matches!(self.registration, Registration::Pending { .. }) {
            let code = match frame.code {
                SigErrorCode::BadToken => ErrorCode::BadToken,
                SigErrorCode::TokenExpired => ErrorCode::TokenExpired,
                _ => ErrorCode::Signaling,
            };
            let e = Error::new(
                code,
                text!("signaling server: ", frame.code.as_str(), ": ", frame.message),
            );
            self.fail_registration(e);
            return;
        }
        match (frame.code, frame.to, frame.connection) {
            (SigErrorCode::UnknownPeer | SigErrorCode::PeerBusy, Some(to), Some(attempt)) => {
                if let Some(key) = self.peers.by_attempt(&to, &attempt) {
                    let debug = text!("Signaling: ", frame.message, " (", frame.code.as_str(), ")");
                    self.fail_peer(now, key, EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
                }
            }
            (code, _, _) => {
                web_sys_warn(&text!(
                    "lanewire: signaling server: ",
                    code.as_str(),
                    ": ",
                    frame.message
                ));
            }
        }
    }

    fn on_signal(&mut self, now: Instant, from: Identity, attempt: ConnectionId, payload: Payload) {
        let key = self.peers.by_attempt(&from, &attempt);
        match payload {
            Payload::Offer { sdp, port } => {
                if key.is_some() {
                    return; // a repeated offer
                }
                // Symmetric connect: our own attempt to this peer and port is still opening.
                // The attempt of the identity that sorts first is kept: ours (ignore this
                // offer; the peer takes ours), or theirs (our connection becomes its server).
                let crossing = self
                    .peers
                    .iter()
                    .find(|p| {
                        p.outgoing
                            && p.symmetric.is_some()
                            && p.identity == from
                            && p.local == LocalId(port)
                            && p.opened_at.is_none()
                            && !p.dead
                    })
                    .map(|p| (p.key, p.conn));
                let mut give_way = None;
                if let Some((old_key, conn)) = crossing {
                    if SymmetricClaim::keeps_own_attempt(self.identity.as_str(), from.as_str()) {
                        self.stats.symmetric_kept += 1;
                        return;
                    }
                    give_way = conn.map(|c| (old_key, c));
                }
                if give_way.is_none() && !self.listen.iter().any(|(p, _)| *p == port) {
                    let reason = text!("nobody listens on virtual port ", port);
                    self.signal(&from, &attempt, Payload::Reject { reason });
                    return;
                }
                let key = self.new_key();
                let params = PeerParams {
                    key,
                    identity: from.clone(),
                    attempt: attempt.clone(),
                    outgoing: false,
                    local: LocalId(port),
                    port,
                    now,
                };
                match Peer::new(&self.weak, &self.rtc_config, params) {
                    Ok(mut peer) => {
                        if let Some((old_key, conn)) = give_way
                            && self.ep.merge_incoming(now, conn, key).is_ok()
                        {
                            // Our attempt is abandoned (the peer ignored its offer): close
                            // its peer connection and say bye.
                            peer.conn = Some(conn);
                            self.unstall(old_key, now);
                            if let Some(old) = self.peers.remove(old_key) {
                                self.signal(&old.identity, &old.attempt, Payload::Bye);
                            }
                            self.stats.symmetric_merged += 1;
                        } else if !self.listen.iter().any(|(p, _)| *p == port) {
                            let reason = text!("nobody listens on virtual port ", port);
                            self.signal(&from, &attempt, Payload::Reject { reason });
                            return;
                        }
                        let pc = peer.pc.clone();
                        self.peers.insert(peer);
                        make_answer(self.weak.clone(), key, pc, sdp);
                    }
                    Err(e) => {
                        self.signal(&from, &attempt, Payload::Reject { reason: e.text() });
                    }
                }
            }
            Payload::Answer { sdp } => {
                let Some(key) = key else { return };
                let Some(p) = self.peers.get_mut(key) else { return };
                if p.outgoing && !p.answer_seen && !p.dead {
                    p.answer_seen = true;
                    let pc = p.pc.clone();
                    take_answer(self.weak.clone(), key, pc, sdp);
                }
            }
            Payload::Candidate { candidate, sdp_mid, sdp_mline_index } => {
                let Some(p) = key.and_then(|k| self.peers.get_mut(k)) else { return };
                if candidate.is_empty() || p.dead {
                    return; // end of candidates: nothing to do
                }
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_mline_index);
                if p.remote_description {
                    add_candidate(&p.pc, &init);
                } else {
                    p.early_candidates.push(init);
                }
            }
            Payload::Reject { reason } => {
                if let Some(key) = key {
                    let debug = text!(from.as_str(), " refused the connection: ", reason);
                    self.fail_peer(now, key, EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
                }
            }
            Payload::Bye => {
                if let Some(key) = key {
                    let debug = text!(from.as_str(), " abandoned the connection attempt");
                    self.fail_peer(now, key, EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
                }
            }
        }
    }

    /// The signaling connection is gone: attempts still rendezvousing fail; open connections
    /// carry on.
    fn signaling_lost(&mut self, now: Instant, why: String) {
        self.signaling = None;
        if matches!(self.registration, Registration::Pending { .. }) {
            self.fail_registration(Error::new(ErrorCode::Signaling, why));
            return;
        }
        web_sys_warn(&text!("lanewire: ", why));
        let debug = text!("Signaling connection lost: ", why);
        let keys = self.peers.keys();
        for key in keys {
            self.fail_peer(now, key, EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
        }
    }

    fn remote_description_set(&mut self, key: PeerKey) {
        let Some(p) = self.peers.get_mut(key) else { return };
        p.remote_description = true;
        for c in core::mem::take(&mut p.early_candidates) {
            add_candidate(&p.pc, &c);
        }
    }

    fn receive_datagram(&mut self, now: Instant, key: PeerKey, data: &JsValue) {
        let Some(p) = self.peers.get(key) else { return };
        let (local, conn) = (p.local, p.conn);
        let array = js_sys::Uint8Array::new(data);
        let len = array.length() as usize;
        if len > MAX_DATAGRAM {
            self.stats.oversized += 1;
            return;
        }
        let mut buf = core::mem::take(&mut self.rx_buf);
        buf.resize(len, 0);
        array.copy_to(&mut buf);
        self.ep.handle_datagram(now, local, key, &mut buf);
        self.rx_buf = buf;
        if let Some(c) = conn
            && !self.readable.contains(&c)
        {
            self.readable.push(c);
        }
    }
}

fn add_candidate(pc: &RtcPeerConnection, init: &RtcIceCandidateInit) {
    let p = pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init));
    // A candidate the browser cannot use is not an error of the connection.
    then(&p, |_| {});
}

// ---------------------------------------------------------------------- entry points

/// Runs `f` on the instance behind `weak` (if it still exists) as an entry point: clock,
/// work, pump, callbacks.
fn enter(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner, Instant) + 'static) {
    enter_boxed(weak, Box::new(f));
}

/// Work an entry point could not do at once.
type Deferred = Box<dyn FnOnce(&mut Inner, Instant)>;

/// [`enter`]'s body, compiled once rather than once per entry point.
#[inline(never)]
fn enter_boxed(weak: &Weak<RefCell<Inner>>, f: Deferred) {
    let Some(inner) = weak.upgrade() else { return };
    let lw = Lanewire { inner };
    if lw.inner.try_borrow_mut().is_err() {
        // Browsers queue these events as tasks, so this does not happen; if one ever arrives
        // synchronously inside a call into the browser, run it right after that call.
        then(&Promise::resolve(&JsValue::UNDEFINED), move |_| run_once(&lw, f));
        return;
    }
    run_once(&lw, f);
}

fn run_once(lw: &Lanewire, f: Deferred) {
    let mut f = Some(f);
    let _ = lw.run_dyn(&mut |inner, now| {
        if let Some(f) = f.take() {
            f(inner, now);
        }
    });
}

fn on_timer(weak: &Weak<RefCell<Inner>>) {
    enter(weak, |inner, now| {
        inner.timer.fired();
        inner.ep.handle_timeout(now);
    });
}

fn on_timer_hop(weak: &Weak<RefCell<Inner>>) {
    enter(weak, |inner, now| {
        inner.timer.hopped();
        inner.ep.handle_timeout(now);
    });
}

pub(crate) fn on_signaling_open(weak: &Weak<RefCell<Inner>>) {
    enter(weak, |inner, _| {
        let register = ClientMessage::Register {
            protocol: PROTOCOL_VERSION,
            identity: inner.identity.clone(),
            token: inner.token.clone(),
        };
        if let Some(s) = &inner.signaling {
            s.send(&register);
        }
    });
}

pub(crate) fn on_signaling_message(weak: &Weak<RefCell<Inner>>, msg: ServerMessage) {
    enter(weak, move |inner, now| inner.on_server_message(now, msg));
}

pub(crate) fn on_signaling_closed(weak: &Weak<RefCell<Inner>>, why: String) {
    enter(weak, move |inner, now| inner.signaling_lost(now, why));
}

pub(crate) fn on_channel_open(weak: &Weak<RefCell<Inner>>, key: PeerKey) {
    let w = weak.clone();
    enter(weak, move |inner, now| {
        if let Some(p) = inner.peers.get_mut(key) {
            p.on_open(now, &mut inner.stats);
            if p.had_queued() {
                // Repeat the handshake datagrams that waited, 5 and 30 ms after opening (see
                // `Peer::repeat_queued`), as the native driver does.
                for (ms, last) in [(5.0, false), (30.0, true)] {
                    let w = w.clone();
                    p.repeats.push(Once::after(ms, move || {
                        enter(&w, move |inner, now| {
                            if let Some(p) = inner.peers.get_mut(key) {
                                p.repeat_queued(now, &mut inner.stats, last);
                            }
                        });
                    }));
                }
            }
            // Which route ICE chose: connection info reports relayed ones.
            let pc = p.pc.clone();
            then(&pc.get_stats(), move |report| {
                let Some(relayed) = report.ok().and_then(|r| crate::sys::relayed(&r)) else {
                    return;
                };
                enter(&w, move |inner, _| {
                    if let Some(p) = inner.peers.get_mut(key) {
                        p.relayed = relayed;
                        if let Some(c) = p.conn {
                            let _ = inner.ep.set_transport_info(c, true, relayed);
                        }
                    }
                });
            });
        }
    });
}

pub(crate) fn on_channel_message(weak: &Weak<RefCell<Inner>>, key: PeerKey, data: JsValue) {
    enter(weak, move |inner, now| inner.receive_datagram(now, key, &data));
}

pub(crate) fn on_channel_drained(weak: &Weak<RefCell<Inner>>, key: PeerKey) {
    enter(weak, move |inner, now| inner.unstall(key, now));
}

pub(crate) fn on_channel_closed(weak: &Weak<RefCell<Inner>>, key: PeerKey) {
    enter(weak, move |inner, now| {
        inner.unstall(key, now);
        let debug = "WebRTC data channel closed (the peer went away)";
        inner.fail_peer(now, key, EndReason::MISC_TIMEOUT, debug, false, true);
    });
}

pub(crate) fn on_ice_state(
    weak: &Weak<RefCell<Inner>>,
    key: PeerKey,
    state: RtcIceConnectionState,
) {
    if state == RtcIceConnectionState::Failed {
        enter(weak, move |inner, now| {
            let debug = "ICE failed: no route to the peer";
            inner.fail_peer(now, key, EndReason::MISC_P2P_NAT_FIREWALL, debug, false, false);
        });
    }
}

pub(crate) fn on_local_candidate(
    weak: &Weak<RefCell<Inner>>,
    key: PeerKey,
    candidate: Option<RtcIceCandidate>,
) {
    // The end of gathering (`None`) is not signaled: the peer needs no notice of it.
    let Some(c) = candidate else { return };
    let payload = Payload::Candidate {
        candidate: c.candidate(),
        sdp_mid: c.sdp_mid(),
        sdp_mline_index: c.sdp_m_line_index(),
    };
    enter(weak, move |inner, _| inner.signal_peer(key, payload));
}

// ---------------------------------------------------------------------- offer / answer

fn sdp_of(desc: &JsValue) -> Result<String, JsValue> {
    Reflect::get(desc, &"sdp".into())?
        .as_string()
        .ok_or_else(|| JsValue::from_str("session description without sdp"))
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let d = RtcSessionDescriptionInit::new(kind);
    d.set_sdp(sdp);
    d
}

fn rendezvous_failed(weak: &Weak<RefCell<Inner>>, key: PeerKey, what: &str, e: &JsValue) {
    let debug = text!("WebRTC ", what, " failed: ", js_message(e));
    enter(weak, move |inner, now| {
        inner.fail_peer(now, key, EndReason::MISC_P2P_RENDEZVOUS, &debug, true, false);
    });
}

fn make_offer(weak: Weak<RefCell<Inner>>, key: PeerKey, pc: RtcPeerConnection) {
    let offer = pc.create_offer();
    then(&offer, move |r: Settled| {
        let sdp = match r.and_then(|offer| sdp_of(&offer)) {
            Ok(sdp) => sdp,
            Err(e) => return rendezvous_failed(&weak, key, "offer", &e),
        };
        let set = pc.set_local_description(&description(RtcSdpType::Offer, &sdp));
        then(&set, move |r| match r {
            Ok(_) => enter(&weak, move |inner, _| {
                let port = inner.peers.get(key).map_or(0, |p| p.port);
                inner.signal_peer(key, Payload::Offer { sdp, port });
            }),
            Err(e) => rendezvous_failed(&weak, key, "offer", &e),
        });
    });
}

fn make_answer(weak: Weak<RefCell<Inner>>, key: PeerKey, pc: RtcPeerConnection, sdp: String) {
    let set = pc.set_remote_description(&description(RtcSdpType::Offer, &sdp));
    then(&set, move |r| {
        if let Err(e) = r {
            return rendezvous_failed(&weak, key, "answer", &e);
        }
        enter(&weak, move |inner, _| inner.remote_description_set(key));
        let answer = pc.create_answer();
        then(&answer, move |r| {
            let sdp = match r.and_then(|answer| sdp_of(&answer)) {
                Ok(sdp) => sdp,
                Err(e) => return rendezvous_failed(&weak, key, "answer", &e),
            };
            let set = pc.set_local_description(&description(RtcSdpType::Answer, &sdp));
            then(&set, move |r| match r {
                Ok(_) => {
                    enter(&weak, move |inner, _| inner.signal_peer(key, Payload::Answer { sdp }));
                }
                Err(e) => rendezvous_failed(&weak, key, "answer", &e),
            });
        });
    });
}

fn take_answer(weak: Weak<RefCell<Inner>>, key: PeerKey, pc: RtcPeerConnection, sdp: String) {
    let set = pc.set_remote_description(&description(RtcSdpType::Answer, &sdp));
    then(&set, move |r| match r {
        Ok(_) => enter(&weak, move |inner, _| inner.remote_description_set(key)),
        Err(e) => rendezvous_failed(&weak, key, "answer", &e),
    });
}

/// `n` as 16 lowercase hex digits (a connection attempt's id).
fn hex16(n: u64) -> String {
    (0..16)
        .rev()
        .map(|i| char::from(b"0123456789abcdef"[((n >> (4 * i)) & 0xf) as usize]))
        .collect()
}
