//! One WebRTC peer connection: the transport of one Lanewire connection.
//!
//! Three tasks per peer: the peer task (this module's [`run`]) owns the `RTCPeerConnection`,
//! runs offer / answer / trickle ICE through the signaling client, repeats its signals until
//! the data channel opens, and enforces the connect deadline; the reader hands data-channel
//! messages to the core; the writer hands the core's datagrams to the data channel (keeping
//! the last few while it opens). The data channel is created by both sides at once
//! (negotiated, id 0, unordered, `maxRetransmits: 0`), so nobody waits for an in-band open.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use lanewire_core::{EndReason, LocalId};
use lanewire_signaling::protocol::{ConnectionId, Identity, Payload};
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::error::Error as RtcError;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceCandidateType, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder, StatsSelector,
};

use super::PeerInput;
use super::hub::Ctx;
use super::ice::IceSettings;

/// With `LANEWIRE_P2P_TRACE` set, the peer tasks print their milestones to stderr (when the
/// offer went out, candidates, ICE states, the channel opening), to see where connect time
/// goes.
fn trace_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LANEWIRE_P2P_TRACE").is_some())
}

macro_rules! trace {
    ($key:expr, $($arg:tt)*) => {
        if trace_on() {
            eprintln!("[lanewire p2p {:?} peer {}] {}", std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH).unwrap_or_default(), $key,
                format!($($arg)*));
        }
    };
}

/// The data channel's label (both sides create it; browsers see it in their dev tools).
pub(crate) const CHANNEL_LABEL: &str = "lanewire";
/// The data channel's SCTP stream id, negotiated out of band.
pub(crate) const CHANNEL_ID: u16 = 0;

/// Datagrams kept while the data channel is not open yet. The core resends its handshake
/// every 500 ms, so a few are plenty; more would only be stale.
const MAX_QUEUED: usize = 16;

/// When the datagrams queued before the channel opened are repeated (see [`writer`]): the
/// peer's channel opens within a round trip of ours, a fraction of a millisecond on a LAN.
const REPEAT_QUEUED_AFTER: [Duration; 2] = [Duration::from_millis(5), Duration::from_millis(25)];

/// Bytes the data channel may hold before the connection stops sending until half of it is
/// released (see [`wait_for_room`]), as a UDP driver waits for a socket to become writable.
/// The webrtc crate counts bytes SCTP has not released yet (queued, or sent and not yet
/// acknowledged), not only unsent ones as a browser's `bufferedAmount` does. What waits here
/// is latency: 256 KiB, as in the browser driver, is 0.13 s at 2 MB/s (1 MiB, when a full
/// channel dropped datagrams instead, made pings of 1.5 s under load).
const MAX_BUFFERED: usize = 256 * 1024;

/// How often a full channel is looked at, and how long the core may be held off at most.
const FULL_POLL: Duration = Duration::from_millis(2);
const MAX_FULL_WAIT: Duration = Duration::from_secs(1);

/// Messages read from the data channel per lock of the endpoint. The reader takes what is
/// already there without waiting, so under load one lock serves a burst.
const RX_BATCH: usize = 64;

/// Signals are repeated at these intervals until the channel opens (signals may be lost):
/// first after 400 ms (a loopback rendezvous takes ~100 ms, a WAN one a few hundred), then
/// doubling up to 2 s.
const RESEND_FIRST: Duration = Duration::from_millis(400);
const RESEND_MAX: Duration = Duration::from_secs(2);

/// ICE runs its connectivity checks on this tick (the webrtc crate's default is 200 ms, and
/// the first check waits for the first tick).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Checks per candidate pair before it is given up: the default budget of 7 checks 200 ms
/// apart (1.4 s), at the faster tick.
const ICE_MAX_BINDING_REQUESTS: u16 = 70;

/// While the channel opens, the peer task wakes the webrtc driver this often. webrtc 0.21
/// answers packets that arrive through a TURN relay only at its next wake-up (it hands relayed
/// reads to the core after flushing writes, then sleeps until its next timer, up to 200 ms
/// away), so each hop of the DTLS and SCTP handshakes over a relay cost ~200 ms: 3-5 s to
/// connect on loopback. Once open, Lanewire's own sends wake it.
const POKE_EVERY: Duration = Duration::from_millis(10);

/// How much earlier than `TimeoutInitial` the peer task fails a connection that has no
/// transport, so the application sees why (no answer, no route...) rather than the core's
/// generic timeout: a tenth of it, at most half a second.
fn deadline_margin(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(500))
}

/// What a peer task needs to know.
#[derive(Debug)]
pub(crate) struct PeerParams {
    pub(crate) key: u32,
    pub(crate) identity: Identity,
    pub(crate) attempt: ConnectionId,
    pub(crate) outgoing: bool,
    /// The virtual port in the offer.
    pub(crate) port: u32,
    pub(crate) local: LocalId,
    pub(crate) addr: SocketAddr,
    pub(crate) ice: IceSettings,
    /// `TimeoutInitial` of an outgoing connection.
    pub(crate) timeout: Option<Duration>,
    /// The offer of an incoming connection.
    pub(crate) offer: Option<String>,
}

/// Events of the peer connection, forwarded from the webrtc crate's handler.
#[derive(Debug)]
enum PcEvent {
    Candidate(RTCIceCandidateInit, RTCIceCandidateType, String),
    CandidateError(String),
    Ice(RTCIceConnectionState),
    Gathering(RTCIceGatheringState),
    State(RTCPeerConnectionState),
}

struct Handler {
    tx: mpsc::UnboundedSender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let c = &event.candidate;
            let _ = self.tx.send(PcEvent::Candidate(init, c.typ, c.address.clone()));
        }
    }
    async fn on_ice_candidate_error(&self, event: RTCPeerConnectionIceErrorEvent) {
        let text = format!("{} error {}: {}", event.url, event.error_code, event.error_text);
        let _ = self.tx.send(PcEvent::CandidateError(text));
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let _ = self.tx.send(PcEvent::Ice(state));
    }
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        let _ = self.tx.send(PcEvent::Gathering(state));
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::State(state));
    }
}

/// A host candidate's address is private (RFC 1918, loopback, link-local, unique local).
fn is_private(ip: &str) -> bool {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => true, // mDNS names and the like: local by nature
    }
}

/// Whether `P2PTransportIceEnable` lets us share a local candidate.
fn allowed(ice: &IceSettings, typ: RTCIceCandidateType, address: &str) -> bool {
    const RELAY: i32 = 1;
    const PRIVATE: i32 = 2;
    const PUBLIC: i32 = 4;
    let bit = match typ {
        RTCIceCandidateType::Relay => RELAY,
        RTCIceCandidateType::Host if is_private(address) => PRIVATE,
        _ => PUBLIC,
    };
    ice.enable & bit != 0
}

/// The state of one rendezvous, for the peer task.
struct Rendezvous {
    ctx: Arc<Ctx>,
    p: PeerParams,
    pc: Arc<dyn PeerConnection>,
    /// Our offer or answer, once sent.
    description: Option<Payload>,
    /// Our candidates, sent after the description (and again with it when repeating).
    candidates: Vec<Payload>,
    remote_set: bool,
    early: Vec<RTCIceCandidateInit>,
    seen: HashSet<String>,
    last_candidate_error: Option<String>,
    gathering_done: bool,
    ice_state: RTCIceConnectionState,
    /// The transport failed and the connection with it: stop.
    failed: bool,
}

impl Rendezvous {
    fn signal(&self, payload: Payload) {
        self.ctx.send_signal(&self.p.identity, &self.p.attempt, payload);
    }

    /// Sends our description and every candidate so far (again).
    fn send_all(&self) {
        if let Some(d) = &self.description {
            self.signal(d.clone());
            for c in &self.candidates {
                self.signal(c.clone());
            }
        }
    }

    fn fail(&mut self, reason: EndReason, debug: &str, only_before_open: bool, from_peer: bool) {
        let tell = self.ctx.fail_peer(self.p.key, reason, debug, only_before_open, from_peer);
        if tell {
            self.signal(Payload::Bye);
        }
        if !only_before_open || !self.is_open() {
            self.failed = true;
        }
    }

    fn is_open(&self) -> bool {
        let st = self.ctx.shared.lock();
        st.p2p.peers.get(&self.p.key).is_some_and(|p| p.open)
    }

    async fn add_remote(&mut self, init: RTCIceCandidateInit) {
        if self.remote_set {
            // A candidate the stack cannot use is not an error of the connection.
            let _ = self.pc.add_ice_candidate(init).await;
        } else {
            self.early.push(init);
        }
    }

    async fn remote_description_set(&mut self) {
        self.remote_set = true;
        for c in std::mem::take(&mut self.early) {
            let _ = self.pc.add_ice_candidate(c).await;
        }
    }

    async fn on_signal(&mut self, payload: Payload) {
        trace!(
            self.p.key,
            "signal {}",
            match &payload {
                Payload::Offer { .. } => "offer".to_string(),
                Payload::Answer { .. } => "answer".to_string(),
                Payload::Candidate { candidate, .. } => format!("candidate {candidate}"),
                Payload::Reject { reason } => format!("reject {reason}"),
                Payload::Bye => "bye".to_string(),
            }
        );
        let who = self.p.identity.clone();
        match payload {
            Payload::Offer { .. } => {
                // A repeated offer: our answer (or a candidate) was lost. Repeat them.
                if !self.p.outgoing {
                    self.send_all();
                }
            }
            Payload::Answer { sdp } => {
                if !self.p.outgoing || self.remote_set {
                    return; // a repeated answer
                }
                let desc = match RTCSessionDescription::answer(sdp) {
                    Ok(d) => d,
                    Err(e) => {
                        let debug = format!("WebRTC answer from {who} is invalid: {e}");
                        self.fail(EndReason::MISC_P2P_RENDEZVOUS, &debug, true, false);
                        return;
                    }
                };
                if let Err(e) = self.pc.set_remote_description(desc).await {
                    let debug = format!("WebRTC answer from {who} refused: {e}");
                    self.fail(EndReason::MISC_P2P_RENDEZVOUS, &debug, true, false);
                    return;
                }
                self.remote_description_set().await;
            }
            Payload::Candidate { candidate, sdp_mid, sdp_mline_index } => {
                // An empty candidate is the end of candidates: nothing to do.
                if candidate.is_empty() || !self.seen.insert(candidate.clone()) {
                    return;
                }
                let init = RTCIceCandidateInit {
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                    ..Default::default()
                };
                self.add_remote(init).await;
            }
            Payload::Reject { reason } => {
                let debug = format!("{who} refused the connection: {reason}");
                self.fail(EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
            }
            Payload::Bye => {
                let debug = format!("{who} abandoned the connection attempt");
                self.fail(EndReason::MISC_P2P_RENDEZVOUS, &debug, true, true);
            }
        }
    }

    fn on_event(&mut self, ev: PcEvent) {
        trace!(self.p.key, "{ev:?}");
        match ev {
            PcEvent::Candidate(init, typ, address) => {
                if !allowed(&self.p.ice, typ, &address) {
                    return;
                }
                let payload = Payload::Candidate {
                    candidate: init.candidate,
                    // The mid is left out: browsers match on the m-line index, and an empty
                    // mid (what the stack reports) would not match theirs.
                    sdp_mid: None,
                    sdp_mline_index: Some(init.sdp_mline_index.unwrap_or(0)),
                };
                if self.description.is_some() {
                    self.signal(payload.clone());
                }
                self.candidates.push(payload);
            }
            PcEvent::CandidateError(text) => self.last_candidate_error = Some(text),
            PcEvent::Gathering(state) => {
                if state == RTCIceGatheringState::Complete {
                    self.gathering_done = true;
                    if self.candidates.is_empty() {
                        let debug = format!(
                            "No route to {}: no usable ICE candidate{}",
                            self.p.identity,
                            self.why_no_candidates()
                        );
                        self.fail(EndReason::MISC_P2P_NAT_FIREWALL, &debug, true, false);
                    }
                }
            }
            PcEvent::Ice(state) => {
                self.ice_state = state;
                if state == RTCIceConnectionState::Failed {
                    let debug = format!("ICE failed: no route to {}", self.p.identity);
                    self.fail(EndReason::MISC_P2P_NAT_FIREWALL, &debug, false, false);
                }
            }
            PcEvent::State(state) => {
                if state == RTCPeerConnectionState::Failed {
                    let debug = format!("WebRTC connection to {} failed", self.p.identity);
                    self.fail(EndReason::MISC_P2P_NAT_FIREWALL, &debug, false, false);
                }
            }
        }
    }

    fn why_no_candidates(&self) -> String {
        match &self.last_candidate_error {
            Some(e) => format!(" ({e})"),
            None if self.p.ice.relay_only() && !self.p.ice.has_turn(&minted(&self.ctx)) => {
                " (relay only, and no TURN server configured)".into()
            }
            None if self.p.ice.relay_only() => " (relay only: TURN allocation failed)".into(),
            None => String::new(),
        }
    }

    /// The connect deadline passed without an open channel: say why.
    fn deadline(&mut self) {
        let who = &self.p.identity;
        let (registered, sig_error) = {
            let s = self.ctx.status.lock().unwrap_or_else(|p| p.into_inner());
            (s.registered, s.last_error.clone())
        };
        let (reason, debug) = if !registered && !self.remote_set {
            (
                EndReason::MISC_P2P_RENDEZVOUS,
                format!("Signaling server unreachable ({sig_error}): no answer from {who}"),
            )
        } else if !self.remote_set {
            (EndReason::MISC_P2P_RENDEZVOUS, format!("No answer from {who} through signaling"))
        } else if self.candidates.is_empty() {
            (
                EndReason::MISC_P2P_NAT_FIREWALL,
                format!("No route to {who}: no usable ICE candidate{}", self.why_no_candidates()),
            )
        } else {
            (
                EndReason::MISC_P2P_NAT_FIREWALL,
                format!(
                    "No route to {who}: ICE is {} after {} local candidate(s){}",
                    self.ice_state,
                    self.candidates.len(),
                    self.why_no_candidates()
                ),
            )
        };
        self.fail(reason, &debug, true, false);
    }
}

/// The ICE servers the signaling server minted at the last registration (TURN credentials).
fn minted(ctx: &Ctx) -> Vec<lanewire_signaling::protocol::IceServer> {
    ctx.status.lock().unwrap_or_else(|p| p.into_inner()).minted_ice.clone()
}

/// Builds the peer connection with the settings of `ice` and the instance's bind addresses.
async fn build(
    ctx: &Ctx,
    ice: &IceSettings,
    events: mpsc::UnboundedSender<PcEvent>,
) -> Result<Arc<dyn PeerConnection>, RtcError> {
    let setting_engine = SettingEngineBuilder::new()
        // mDNS would bind the multicast port 5353 and announce us on the LAN: never.
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(ctx.config.loopback_candidates)
        // Accept the first working pair at once instead of waiting for a better one: the
        // candidates we gather are all we will use, and every wait is connect time.
        .with_host_acceptance_min_wait(Some(Duration::ZERO))
        .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_relay_acceptance_min_wait(Some(Duration::ZERO))
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        .build();
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(ice.servers_with(&minted(ctx)))
        .with_ice_transport_policy(ice.policy())
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(setting_engine)
        .with_handler(Arc::new(Handler { tx: events }))
        .with_udp_addrs(ctx.config.ice_bind.clone())
        .with_data_channel_send_buffer_limit(MAX_BUFFERED)
        .build()
        .await?;
    Ok(Arc::new(pc))
}

/// The peer task. Ends when the hub forgets the peer (its input closes) or the connection
/// failed; then closes the peer connection, after the writer handed over what it had.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    p: PeerParams,
    mut input: mpsc::UnboundedReceiver<PeerInput>,
    out: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    trace!(p.key, "start ({} {})", if p.outgoing { "to" } else { "from" }, p.identity);
    // Settings that can never give a route fail before anything is built.
    let hopeless = if p.ice.disabled() {
        Some("ICE is disabled (P2PTransportIceEnable = 0): no route is possible".to_string())
    } else if p.ice.relay_only() && !p.ice.has_turn(&minted(&ctx)) {
        Some(format!("No route to {}: relay only, and no TURN server configured", p.identity))
    } else {
        None
    };
    if let Some(debug) = hopeless {
        if ctx.fail_peer(p.key, EndReason::MISC_P2P_NAT_FIREWALL, &debug, false, false) {
            ctx.send_signal(&p.identity, &p.attempt, Payload::Bye);
        }
        return;
    }
    let pc = match build(&ctx, &p.ice, ev_tx).await {
        Ok(pc) => pc,
        Err(e) => {
            let debug = format!("Cannot create a WebRTC peer connection: {e}");
            if ctx.fail_peer(p.key, EndReason::MISC_P2P_RENDEZVOUS, &debug, false, false) {
                ctx.send_signal(&p.identity, &p.attempt, Payload::Bye);
            }
            return;
        }
    };
    let init = RTCDataChannelInit {
        ordered: false,
        max_retransmits: Some(0),
        negotiated: Some(CHANNEL_ID),
        ..Default::default()
    };
    let dc = match pc.create_data_channel(CHANNEL_LABEL, Some(init)).await {
        Ok(dc) => dc,
        Err(e) => {
            let debug = format!("Cannot create the WebRTC data channel: {e}");
            if ctx.fail_peer(p.key, EndReason::MISC_P2P_RENDEZVOUS, &debug, false, false) {
                ctx.send_signal(&p.identity, &p.attempt, Payload::Bye);
            }
            let _ = pc.close().await;
            return;
        }
    };
    trace!(p.key, "peer connection built");
    let (open_tx, open_rx) = watch::channel(false);
    let reader = ctx.handle.spawn(reader(
        ctx.clone(),
        p.key,
        p.local,
        p.addr,
        dc.clone(),
        pc.clone(),
        open_tx,
    ));
    let writer = ctx.handle.spawn(writer(ctx.clone(), p.key, dc.clone(), out, open_rx.clone()));

    let deadline =
        p.timeout.map(|t| tokio::time::Instant::now() + t.saturating_sub(deadline_margin(t)));
    let mut r = Rendezvous {
        ctx: ctx.clone(),
        p,
        pc: pc.clone(),
        description: None,
        candidates: Vec::new(),
        remote_set: false,
        early: Vec::new(),
        seen: HashSet::new(),
        last_candidate_error: None,
        gathering_done: false,
        ice_state: RTCIceConnectionState::New,
        failed: false,
    };
    if let Err(e) = describe(&mut r).await {
        let what = if r.p.outgoing { "offer" } else { "answer" };
        let debug = format!("WebRTC {what} failed: {e}");
        r.fail(EndReason::MISC_P2P_RENDEZVOUS, &debug, true, false);
    }

    let mut open_rx = open_rx;
    let mut opened = *open_rx.borrow();
    let mut resend_every = RESEND_FIRST;
    let resend = tokio::time::sleep(resend_every);
    tokio::pin!(resend);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let until = tokio::time::sleep_until(deadline.unwrap_or(far));
    tokio::pin!(until);
    let mut deadline_armed = deadline.is_some();
    let mut poke = tokio::time::interval(POKE_EVERY);
    poke.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !r.failed {
        tokio::select! {
            msg = input.recv() => match msg {
                None => break, // the hub forgot this peer
                // After the channel opened only a repeated offer matters (our answer was
                // lost): the rest is stale and handled as such.
                Some(PeerInput::Signal(payload)) => r.on_signal(payload).await,
                Some(PeerInput::SignalError(why)) => {
                    r.fail(EndReason::MISC_P2P_RENDEZVOUS, &why, true, true);
                }
            },
            Some(ev) = events.recv() => {
                let dtls_up = matches!(ev, PcEvent::State(RTCPeerConnectionState::Connected));
                r.on_event(ev);
                if dtls_up {
                    // webrtc 0.21 queues the SCTP INIT when DTLS completes but sends it only
                    // at its driver's next wake-up, up to 200 ms later (measured: 190 ms of
                    // a 270 ms loopback connect). Any call that wakes the driver's write
                    // path flushes it; this one changes nothing else.
                    let _ = dc.set_buffered_amount_low_threshold(0).await;
                }
            }
            changed = open_rx.changed(), if !opened => {
                if changed.is_err() { break } // the reader ended: the channel closed
                opened = *open_rx.borrow();
            }
            _ = &mut resend, if !opened && r.p.outgoing => {
                r.send_all();
                resend_every = (resend_every * 2).min(RESEND_MAX);
                resend.as_mut().reset(tokio::time::Instant::now() + resend_every);
            }
            _ = poke.tick(), if !opened && r.remote_set => {
                let _ = dc.set_buffered_amount_low_threshold(0).await;
            }
            _ = &mut until, if deadline_armed && !opened => {
                deadline_armed = false;
                r.deadline();
            }
        }
    }
    // Keep serving signals and the channel until the hub forgets the peer (a failed peer is
    // forgotten when the application closes its connection).
    if r.failed {
        let _ = pc.close().await;
        while input.recv().await.is_some() {}
    }
    // Let the writer hand over the core's last datagrams (its input closes with the peer
    // entry), then close.
    let _ = tokio::time::timeout(Duration::from_millis(200), writer).await;
    let _ = dc.close().await;
    let _ = pc.close().await;
    reader.abort();
}

/// Creates and sends our offer (outgoing) or applies the offer and sends our answer.
async fn describe(r: &mut Rendezvous) -> Result<(), RtcError> {
    if r.p.outgoing {
        let offer = r.pc.create_offer(None).await?;
        let sdp = offer.sdp.clone();
        r.pc.set_local_description(offer).await?;
        r.description = Some(Payload::Offer { sdp, port: r.p.port });
    } else {
        let sdp = r.p.offer.take().unwrap_or_default();
        r.pc.set_remote_description(RTCSessionDescription::offer(sdp)?).await?;
        r.remote_description_set().await;
        let answer = r.pc.create_answer(None).await?;
        let sdp = answer.sdp.clone();
        r.pc.set_local_description(answer).await?;
        r.description = Some(Payload::Answer { sdp });
    }
    trace!(r.p.key, "description sent");
    r.send_all();
    Ok(())
}

/// Reads the selected ICE pair: (relayed, description).
///
/// The stats can lag the channel's opening by a moment (the selected pair not yet recorded):
/// a few short retries, then the nominated pair.
async fn selected_route(pc: &Arc<dyn PeerConnection>) -> (bool, Option<String>) {
    for attempt in 0..5 {
        if let Some(r) = route_from_stats(pc, attempt == 4).await {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (false, None)
}

async fn route_from_stats(
    pc: &Arc<dyn PeerConnection>,
    nominated_will_do: bool,
) -> Option<(bool, Option<String>)> {
    let report = pc.get_stats(std::time::Instant::now(), StatsSelector::None).await;
    let pair_id = report.transport().map(|t| t.selected_candidate_pair_id.clone());
    let pair = report
        .candidate_pairs()
        .find(|c| Some(&c.stats.id) == pair_id.as_ref() && !c.stats.id.is_empty())
        .or_else(|| report.candidate_pairs().find(|c| nominated_will_do && c.nominated))?;
    // The pair names candidates `candidate:X`; their own entries are
    // `RTCLocalIceCandidate_candidate:X` / `RTCRemoteIceCandidate_candidate:X`.
    let candidate = |id: &str, local: bool| {
        report.iter().find_map(|e| {
            let c = match e {
                RTCStatsReportEntry::LocalCandidate(c) if local => c,
                RTCStatsReportEntry::RemoteCandidate(c) if !local => c,
                _ => return None,
            };
            let sid = c.stats.id.as_str();
            (sid == id || sid.strip_suffix(id).is_some_and(|p| p.ends_with('_'))).then(|| {
                let addr = c.address.as_deref().unwrap_or("?");
                let text = format!("{} {addr}:{} ({})", c.protocol, c.port, c.candidate_type);
                (c.candidate_type, text)
            })
        })
    };
    let local = candidate(&pair.local_candidate_id, true);
    let remote = candidate(&pair.remote_candidate_id, false);
    let relayed = [&local, &remote]
        .iter()
        .any(|c| c.as_ref().is_some_and(|(t, _)| *t == RTCIceCandidateType::Relay));
    // A remote candidate learned from the peer's checks before its signal arrived
    // (peer-reflexive) has no stats entry of its own.
    let route = match (local, remote) {
        (Some((_, l)), Some((_, r))) => Some(format!("{l} -> {r}")),
        (Some((_, l)), None) => Some(format!("{l} -> (peer-reflexive)")),
        (None, _) => return None,
    };
    Some((relayed, route))
}

/// Hands data-channel messages to the core, a burst per lock.
async fn reader(
    ctx: Arc<Ctx>,
    key: u32,
    local: LocalId,
    addr: SocketAddr,
    dc: Arc<dyn DataChannel>,
    pc: Arc<dyn PeerConnection>,
    open: watch::Sender<bool>,
) {
    let mut batch: Vec<BytesMut> = Vec::with_capacity(RX_BATCH);
    let mut pending: Option<DataChannelEvent> = None;
    loop {
        let ev = match pending.take() {
            Some(ev) => ev,
            None => match dc.poll().await {
                Some(ev) => ev,
                None => break,
            },
        };
        match ev {
            DataChannelEvent::OnOpen => {
                trace!(key, "data channel open");
                let (relayed, route) = selected_route(&pc).await;
                ctx.on_open(key, relayed, route);
                let _ = open.send(true);
            }
            DataChannelEvent::OnMessage(msg) => {
                batch.push(msg.data);
                while batch.len() < RX_BATCH {
                    match dc.poll().now_or_never() {
                        Some(Some(DataChannelEvent::OnMessage(m))) => batch.push(m.data),
                        Some(Some(other)) => {
                            pending = Some(other);
                            break;
                        }
                        Some(None) | None => break,
                    }
                }
                let wake = ctx.shared.command(true, |st, now| {
                    for d in batch.iter_mut() {
                        st.ep.handle_datagram(now, local, addr, d);
                    }
                    st.waiters > 0
                });
                batch.clear();
                // Threads in `receive_timeout` may have something to read now.
                if wake {
                    ctx.shared.cond.notify_all();
                }
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    let debug = "WebRTC data channel closed (the peer went away)";
    ctx.fail_peer(key, EndReason::MISC_TIMEOUT, debug, false, true);
}

/// Hands the core's datagrams to the data channel, keeping the last [`MAX_QUEUED`] until it
/// opens.
async fn writer(
    ctx: Arc<Ctx>,
    key: u32,
    dc: Arc<dyn DataChannel>,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    mut open: watch::Receiver<bool>,
) {
    let mut queued: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        if *open.borrow() {
            break;
        }
        tokio::select! {
            changed = open.changed() => if changed.is_err() { return },
            d = out.recv() => match d {
                Some(d) => {
                    if queued.len() == MAX_QUEUED {
                        queued.pop_front();
                        ctx.count(|c| c.dropped_opening += 1);
                    }
                    queued.push_back(d);
                }
                None => return,
            },
        }
    }
    for d in &queued {
        send(&ctx, &dc, d.clone()).await;
    }
    // The side whose SCTP association completes first opens its channel a moment before the
    // peer's, and webrtc 0.21 drops what arrives on a channel that is not open yet: the first
    // handshake datagram, queued here, is often lost that way and the core would resend it
    // only after 500 ms. Repeat what was queued shortly after opening (handshake datagrams
    // are idempotent: a repeated challenge request gets a repeated stateless reply).
    let mut repeats = REPEAT_QUEUED_AFTER.iter();
    let mut next = repeats.next().map(|d| tokio::time::Instant::now() + *d);
    loop {
        let d = match next {
            Some(at) if !queued.is_empty() => tokio::select! {
                d = out.recv() => d,
                _ = tokio::time::sleep_until(at) => {
                    for d in &queued {
                        send(&ctx, &dc, d.clone()).await;
                    }
                    next = repeats.next().map(|d| at + *d);
                    continue;
                }
            },
            _ => out.recv().await,
        };
        let Some(d) = d else { return };
        if let Err(d) = try_send(&ctx, &dc, d).await {
            wait_for_room(&ctx, key, &dc, d).await;
        }
    }
}

/// Sends one datagram; gives it back if the channel is full.
async fn try_send(ctx: &Ctx, dc: &Arc<dyn DataChannel>, d: Vec<u8>) -> Result<(), Vec<u8>> {
    match dc.try_send(BytesMut::from(&d[..])).await {
        Ok(()) => Ok(()),
        Err(RtcError::ErrSendBufferFull) => Err(d),
        Err(_) => {
            ctx.count(|c| c.send_errors += 1);
            Ok(())
        }
    }
}

/// Sends one datagram, dropping it (counted) if the channel is full: for repeats.
async fn send(ctx: &Ctx, dc: &Arc<dyn DataChannel>, d: Vec<u8>) {
    if try_send(ctx, dc, d).await.is_err() {
        ctx.count(|c| c.dropped_buffer_full += 1);
    }
}

/// The channel holds [`MAX_BUFFERED`] bytes: like a socket that is not writable. The core
/// stops sending on this connection (its data stays queued, the other connections go on)
/// until SCTP has released half of it, then `d` goes out and sending resumes. After
/// [`MAX_FULL_WAIT`] without room, `d` is dropped (counted) and sending resumes anyway: the
/// core's reliability and time-outs take it from there.
async fn wait_for_room(ctx: &Ctx, key: u32, dc: &Arc<dyn DataChannel>, d: Vec<u8>) {
    ctx.count(|c| c.channel_full += 1);
    ctx.set_transmit_paused(key, true);
    let give_up = tokio::time::Instant::now() + MAX_FULL_WAIT;
    let mut d = Some(d);
    while tokio::time::Instant::now() < give_up {
        tokio::time::sleep(FULL_POLL).await;
        match dc.outstanding_bytes().await {
            Ok(n) if n <= MAX_BUFFERED / 2 => {
                if let Some(x) = d.take()
                    && let Err(x) = try_send(ctx, dc, x).await
                {
                    d = Some(x);
                    continue;
                }
                break;
            }
            Ok(_) => {}
            Err(_) => break, // closed: the reader notices and ends the connection
        }
    }
    if d.is_some() {
        ctx.count(|c| c.dropped_buffer_full += 1);
    }
    ctx.set_transmit_paused(key, false);
}
