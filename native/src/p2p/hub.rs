//! The WebRTC runtime of one `Sockets` instance: the tokio runtime, the context its tasks
//! share, signal routing, and the maintenance tick that frees finished peer connections.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lanewire_core::{EndReason, Rng, SymmetricClaim};
use lanewire_signaling::protocol::{ClientMessage, ConnectionId, Identity, Payload};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ice::IceSettings;
use super::peer::{self, PeerParams};
use super::{P2pError, PeerEntry, PeerInput, SignalingConfig, local_of_port, peer_addr};
use crate::state::{Shared, State};

/// After the application closes a connection whose data channel is open, its peer
/// connection stays this long (and until the core has been quiet on it for
/// [`QUIET_BEFORE_FREE`]) so the core can resend its close notice and answer stray packets:
/// the core's FIN_WAIT of 5 s plus a margin, as in the browser driver.
const FREE_AFTER_CLOSE: Duration = Duration::from_millis(5500);
/// See [`FREE_AFTER_CLOSE`]: a lingering connection still sending is not cut off.
const QUIET_BEFORE_FREE: Duration = Duration::from_secs(1);
/// An incoming peer connection whose core connection never appeared (the handshake never
/// came through) is freed after this: three times the default `TimeoutInitial`.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the maintenance tick runs. Freeing is not urgent; 4 Hz costs nothing.
const MAINTAIN_EVERY: Duration = Duration::from_millis(250);
/// On shutdown, how long peer tasks get to hand the core's last close notices to their data
/// channels and close their peer connections (which also releases TURN allocations).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Where the signaling connection stands.
#[derive(Debug, Default)]
pub(crate) struct SigStatus {
    /// Registered now.
    pub(crate) registered: bool,
    /// Registered at least once (from then on the client reconnects by itself).
    pub(crate) ever_registered: bool,
    /// The server refused us for good (bad token, replaced...): no more reconnects.
    pub(crate) refused: Option<String>,
    /// The last connection problem, for error messages.
    pub(crate) last_error: String,
    /// ICE servers (TURN credentials) the signaling server minted at the last registration;
    /// used with those of the config values.
    pub(crate) minted_ice: Vec<lanewire_signaling::protocol::IceServer>,
}

/// Shared by every task of the runtime.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) identity: Identity,
    pub(crate) config: SignalingConfig,
    pub(crate) handle: tokio::runtime::Handle,
    /// The TLS client configuration for a `wss://` URL.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    sig_out: mpsc::UnboundedSender<ClientMessage>,
    pub(crate) status: Mutex<SigStatus>,
    status_cond: Condvar,
    rng: Mutex<Rng>,
    tasks: Mutex<HashMap<u32, JoinHandle<()>>>,
}

/// The runtime and its context; dropping it stops everything (see [`Hub::drop`]).
pub(crate) struct Hub {
    rt: Option<tokio::runtime::Runtime>,
    pub(crate) ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("identity", &self.ctx.identity).finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the runtime, the signaling client and the maintenance tick.
    pub(crate) fn start(
        shared: Arc<Shared>,
        identity: Identity,
        config: SignalingConfig,
    ) -> Result<Hub, P2pError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lanewire-p2p")
            .enable_all()
            .build()
            .map_err(P2pError::Io)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| P2pError::Io(std::io::Error::other(e)))?;
        let (sig_tx, sig_rx) = mpsc::unbounded_channel();
        let tls = match config.url.starts_with("wss://") {
            true => Some(super::signaling::tls_config(&config.extra_root_certs)?),
            false => None,
        };
        let ctx = Arc::new(Ctx {
            shared,
            identity,
            config,
            handle: rt.handle().clone(),
            tls,
            sig_out: sig_tx,
            status: Mutex::new(SigStatus::default()),
            status_cond: Condvar::new(),
            rng: Mutex::new(Rng::from_seed(seed)),
            tasks: Mutex::new(HashMap::new()),
        });
        rt.spawn(super::signaling::run(ctx.clone(), sig_rx));
        let c = ctx.clone();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(MAINTAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                c.maintain();
            }
        });
        Ok(Hub { rt: Some(rt), ctx })
    }

    /// Waits until the server accepted the registration, refused it, or `timeout` passed.
    pub(crate) fn wait_registered(&self, timeout: Duration) -> Result<(), P2pError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut st = self.ctx.status.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if st.registered {
                return Ok(());
            }
            if let Some(why) = &st.refused {
                return Err(P2pError::Refused(why.clone()));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let why = if st.last_error.is_empty() {
                    format!("no answer in {timeout:?}")
                } else {
                    st.last_error.clone()
                };
                return Err(P2pError::Unreachable(why));
            }
            st = self.ctx.status_cond.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.ctx.status.lock().unwrap_or_else(|p| p.into_inner()).registered
    }

    /// A fresh attempt id: 16 hex digits, valid by construction.
    pub(crate) fn new_attempt_id(&self) -> ConnectionId {
        self.ctx.new_attempt_id()
    }

    /// Runs a peer connection's task.
    pub(crate) fn spawn_peer(
        &self,
        params: PeerParams,
        input: mpsc::UnboundedReceiver<PeerInput>,
        out: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        self.ctx.spawn_peer(params, input, out);
    }
}

impl Drop for Hub {
    /// Forgets every peer (their tasks hand what the core last sent, its close notices, to
    /// the data channels, then close the peer connections), waits up to [`SHUTDOWN_GRACE`]
    /// for that, and stops the runtime. Inside another async runtime, where blocking is not
    /// allowed, the runtime is stopped at once instead.
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        {
            let mut st = self.ctx.shared.lock();
            let keys: Vec<u32> = st.p2p.peers.keys().copied().collect();
            for k in keys {
                st.p2p.remove(k);
            }
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            rt.shutdown_background();
            return;
        }
        let tasks: Vec<JoinHandle<()>> = {
            let mut t = self.ctx.tasks.lock().unwrap_or_else(|p| p.into_inner());
            t.drain().map(|(_, h)| h).collect()
        };
        rt.block_on(async move {
            let all = futures_util::future::join_all(tasks);
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, all).await;
        });
        rt.shutdown_timeout(Duration::from_millis(100));
    }
}

impl Ctx {
    pub(crate) fn new_attempt_id(&self) -> ConnectionId {
        let n = self.rng.lock().unwrap_or_else(|p| p.into_inner()).u64();
        ConnectionId::new(format!("{n:016x}")).expect("16 hex digits are a valid id")
    }

    /// Draws a percentage for the fake signaling loss and duplication.
    fn roll(&self, percent: u8) -> bool {
        percent > 0
            && self.rng.lock().unwrap_or_else(|p| p.into_inner()).range(0, 100) < percent as u64
    }

    /// Sends a signal to `to` about `attempt`. Signals may be lost (the server or the peer
    /// may be gone); the peer tasks resend what matters.
    pub(crate) fn send_signal(&self, to: &Identity, attempt: &ConnectionId, payload: Payload) {
        if self.roll(self.config.fake_signal_loss_percent) {
            return;
        }
        let msg = ClientMessage::Signal { to: to.clone(), connection: attempt.clone(), payload };
        if self.roll(self.config.fake_signal_dup_percent) {
            let _ = self.sig_out.send(msg.clone());
        }
        let _ = self.sig_out.send(msg);
    }

    pub(crate) fn set_status(&self, f: impl FnOnce(&mut SigStatus)) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st);
        self.status_cond.notify_all();
    }

    pub(crate) fn spawn_peer(
        self: &Arc<Self>,
        params: PeerParams,
        input: mpsc::UnboundedReceiver<PeerInput>,
        out: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let key = params.key;
        let h = self.handle.spawn(peer::run(self.clone(), params, input, out));
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|_, t| !t.is_finished());
        tasks.insert(key, h);
    }

    /// A signal arrived: route it to its attempt, or start an incoming peer connection for a
    /// new offer (or refuse it when nobody listens on the port).
    pub(crate) fn on_signal(
        self: &Arc<Self>,
        from: Identity,
        attempt: ConnectionId,
        payload: Payload,
    ) {
        let mut st = self.shared.lock();
        if let Some(p) =
            st.p2p.attempts.get(&(from.clone(), attempt.clone())).and_then(|k| st.p2p.peers.get(k))
        {
            let _ = p.input.send(PeerInput::Signal(payload));
            return;
        }
        // Anything but an offer for an unknown attempt is stale (a finished attempt's
        // candidates, a repeated bye...).
        let Payload::Offer { sdp, port } = payload else { return };
        // Symmetric connect: our own attempt to this peer and port is still opening. The
        // attempt of the identity that sorts first is kept: ours (ignore this offer; the peer
        // will take ours), or theirs (our connection becomes the server side of it).
        let crossing = st.p2p.peers.iter().find(|(_, p)| {
            p.outgoing
                && p.symmetric.is_some()
                && p.identity == from
                && p.local_port == port
                && !p.open
                && !p.dead
        });
        let mut give_way = None;
        if let Some((&old_key, p)) = crossing {
            if SymmetricClaim::keeps_own_attempt(self.identity.as_str(), from.as_str()) {
                st.p2p.stats.symmetric_kept += 1;
                return;
            }
            if let (Some(conn), Some(cfg)) = (p.conn, p.symmetric.clone()) {
                give_way = Some((old_key, conn, cfg));
            }
        }
        let listen_cfg = (port <= super::MAX_VIRTUAL_PORT)
            .then(|| st.listen.values().find(|l| l.local == local_of_port(port) && !l.hidden))
            .flatten()
            .map(|l| l.config.clone());
        let now = st.now();
        let key = st.p2p.new_key();
        let addr = peer_addr(key);
        let mut merged = None;
        if let Some((old_key, conn, cfg)) = give_way
            && st.ep.merge_incoming(now, conn, addr).is_ok()
        {
            // Our attempt is abandoned: its peer connection closes, the peer (which ignored
            // our offer) is told with a bye.
            let old = st.p2p.remove(old_key);
            st.p2p.stats.symmetric_merged += 1;
            merged = Some((conn, cfg, old.map(|o| (o.attempt, o.created))));
        }
        let cfg = merged.as_ref().map(|m| m.1.clone()).or(listen_cfg);
        let Some(cfg) = cfg else {
            drop(st);
            let reason = format!("nobody listens on virtual port {port}");
            self.send_signal(&from, &attempt, Payload::Reject { reason });
            return;
        };
        let ice = IceSettings::resolve(&[&cfg], &st);
        // A merged connection keeps its connect deadline (`TimeoutInitial` from the connect).
        let timeout = merged.as_ref().and_then(|m| m.2.as_ref()).map(|(_, created)| {
            let total = super::timeout_initial(&[&cfg], &st);
            total.saturating_sub(now.saturating_duration_since(*created))
        });
        let (mut entry, out_rx, in_rx) =
            PeerEntry::new(from.clone(), attempt.clone(), false, port, port, addr, now);
        entry.conn = merged.as_ref().map(|m| m.0);
        st.p2p.insert(key, entry);
        let params = PeerParams {
            key,
            identity: from,
            attempt,
            outgoing: false,
            port,
            local: local_of_port(port),
            addr,
            ice,
            timeout,
            offer: Some(sdp),
        };
        let peer = params.identity.clone();
        drop(st);
        self.spawn_peer(params, in_rx, out_rx);
        if let Some((_, _, Some((old_attempt, _)))) = merged {
            self.send_signal(&peer, &old_attempt, Payload::Bye);
        }
    }

    /// The server refused a signal for `attempt` to `to` (unknown peer, peer busy).
    pub(crate) fn on_signal_refused(&self, to: Identity, attempt: ConnectionId, why: String) {
        let st = self.shared.lock();
        if let Some(p) = st.p2p.attempts.get(&(to, attempt)).and_then(|k| st.p2p.peers.get(k)) {
            let _ = p.input.send(PeerInput::SignalError(why));
        }
    }

    /// Ends the connection of peer `key` because its rendezvous or transport failed, and
    /// marks the transport dead. With `only_before_open`, an open transport is left alone.
    /// Returns true if the peer should be told (it was not told, and the channel never
    /// opened).
    pub(crate) fn fail_peer(
        &self,
        key: u32,
        reason: EndReason,
        debug: &str,
        only_before_open: bool,
        from_peer: bool,
    ) -> bool {
        self.shared.command(true, |st, now| {
            let State { ep, p2p, .. } = st;
            let Some(p) = p2p.peers.get_mut(&key) else { return false };
            if only_before_open && p.open {
                return false;
            }
            if let Some(c) = p.conn
                && ep.connection_info(c).is_some_and(|i| !i.state.is_ended())
            {
                let _ = ep.fail_connection(now, c, reason, debug);
            }
            p.dead = true;
            let tell = !p.open && !from_peer && !p.told;
            p.told |= tell || from_peer;
            tell
        })
    }

    /// Frees peer connections whose Lanewire connection is finished.
    fn maintain(&self) {
        let mut byes = Vec::new();
        {
            let mut st = self.shared.lock();
            let now = st.now();
            let State { ep, p2p, .. } = &mut *st;
            let mut gone = Vec::new();
            for (&key, p) in p2p.peers.iter_mut() {
                match p.conn {
                    Some(c) => {
                        if ep.connection_info(c).is_none() {
                            let closed = *p.closed_at.get_or_insert(now);
                            let quiet = now >= closed + FREE_AFTER_CLOSE
                                && now >= p.last_send + QUIET_BEFORE_FREE;
                            // Nothing more reaches the peer on a transport that never
                            // opened or died.
                            if !p.open || p.dead || quiet {
                                gone.push(key);
                            }
                        }
                    }
                    None => {
                        if p.dead || now >= p.created + ORPHAN_TIMEOUT {
                            gone.push(key);
                        }
                    }
                }
            }
            for key in gone {
                if let Some(p) = p2p.remove(key)
                    && !p.open
                    && !p.told
                {
                    byes.push((p.identity, p.attempt));
                }
            }
        }
        for (to, attempt) in byes {
            self.send_signal(&to, &attempt, Payload::Bye);
        }
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|_, t| !t.is_finished());
    }

    /// The data channel of peer `key` opened, through the route described.
    pub(crate) fn on_open(&self, key: u32, relayed: bool, route: Option<String>) {
        let mut st = self.shared.lock();
        let State { ep, p2p, .. } = &mut *st;
        if let Some(p) = p2p.peers.get_mut(&key) {
            p.open = true;
            p.relayed = relayed;
            p.route = route;
            if let Some(c) = p.conn {
                let _ = ep.set_transport_info(c, true, relayed);
            }
        }
    }

    /// Pauses or resumes the core's sending on peer `key`'s connection (its data channel is
    /// full, or has room again; resuming also sends what is due).
    pub(crate) fn set_transmit_paused(&self, key: u32, paused: bool) {
        self.shared.command(!paused, |st, now| {
            let State { ep, p2p, .. } = st;
            if let Some(c) = p2p.peers.get(&key).and_then(|p| p.conn) {
                let _ = ep.set_transmit_paused(now, c, paused);
            }
        });
    }

    /// Counts datagrams the writer could not hand to the data channel.
    pub(crate) fn count(&self, f: impl FnOnce(&mut super::P2pStats)) {
        f(&mut self.shared.lock().p2p.stats);
    }
}
