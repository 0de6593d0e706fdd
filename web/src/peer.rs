//! One WebRTC peer connection and its data channel: the transport of one Lanewire connection.
//!
//! Each connection gets its own `RTCPeerConnection` with one data channel, negotiated out of
//! band (`negotiated: true, id: 0`) so both sides create it at once and nobody waits for an
//! `ondatachannel` event; unordered with `maxRetransmits: 0`, so it behaves as UDP does and
//! the core's own reliability, ordering and pacing apply unchanged. DTLS encrypts it, so the
//! core negotiates its null cipher on these local sockets.

use crate::prelude::*;
use alloc::rc::Weak;
use core::cell::RefCell;

use lanewire_core::{Config, ConnectionHandle, Instant, LocalId};
use lanewire_signaling::protocol::{ConnectionId, Identity, Payload};
use wasm_bindgen::prelude::*;
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState,
    RtcDataChannelType, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
};

use crate::driver::{self, Inner, PeerKey};
use crate::error::{Error, ErrorCode};

/// Datagrams kept while the data channel is not open yet. The core resends its handshake
/// every 500 ms, so a few are plenty; more would only be stale.
const MAX_QUEUED: usize = 16;

/// Bytes the browser may hold in the channel's send buffer: above it the channel is "full",
/// as a UDP socket whose buffer is full, and the driver waits for it to drain (see
/// `Inner::pump`). At the ~5 MB/s Chromium's SCTP reaches on loopback this is 50 ms of queue:
/// enough to keep the channel busy through a timer's jitter, short enough that reliable data
/// waiting behind it is not delayed into spurious retransmissions.
const MAX_BUFFERED: u32 = 256 * 1024;
/// The channel reports it drained (`bufferedamountlow`) below this.
const DRAINED: u32 = MAX_BUFFERED / 2;

/// What became of a datagram handed to [`Peer::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Sent, queued until the channel opens, or dropped for good (counted).
    Done,
    /// The channel's buffer is full: the datagram is kept in [`Peer::stash`] until it drains.
    Full,
}

/// Counters of what the browser transport dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Datagrams dropped because the channel's send buffer was full.
    pub dropped_buffer_full: u64,
    /// Datagrams the data channel refused (closing, or another send error).
    pub send_errors: u64,
    /// Datagrams for a peer that no longer exists.
    pub no_route: u64,
    /// Datagrams dropped while the channel was opening (queue overflow).
    pub dropped_opening: u64,
    /// Oversized datagrams received and dropped.
    pub oversized: u64,
    /// Times a connection paused because its full channel had to drain.
    pub stalls: u64,
    /// Microseconds connections spent paused on full channels (summed).
    pub stalled_us: u64,
    /// Stalls that ended by timeout rather than by the channel draining.
    pub stall_timeouts: u64,
    /// Symmetric connect: offers ignored because our own crossing attempt is the one kept.
    pub symmetric_kept: u64,
    /// Symmetric connect: outgoing connections that gave way to the peer's crossing attempt.
    pub symmetric_merged: u64,
}

/// The peers of one instance. A handful, so a vector searched linearly: no hash tables (and
/// their code) in the .wasm for this.
#[derive(Default)]
pub(crate) struct Peers(Vec<Peer>);

impl Peers {
    pub(crate) fn get(&self, key: PeerKey) -> Option<&Peer> {
        self.0.iter().find(|p| p.key == key)
    }

    pub(crate) fn get_mut(&mut self, key: PeerKey) -> Option<&mut Peer> {
        self.0.iter_mut().find(|p| p.key == key)
    }

    pub(crate) fn insert(&mut self, peer: Peer) {
        self.0.push(peer);
    }

    pub(crate) fn remove(&mut self, key: PeerKey) -> Option<Peer> {
        let i = self.0.iter().position(|p| p.key == key)?;
        Some(self.0.swap_remove(i))
    }

    /// The peer of connection attempt `attempt` with `identity`.
    pub(crate) fn by_attempt(
        &self,
        identity: &Identity,
        attempt: &ConnectionId,
    ) -> Option<PeerKey> {
        self.0.iter().find(|p| p.identity == *identity && p.attempt == *attempt).map(|p| p.key)
    }

    /// The peer carrying core connection `conn`.
    pub(crate) fn by_conn(&mut self, conn: ConnectionHandle) -> Option<&mut Peer> {
        self.0.iter_mut().find(|p| p.conn == Some(conn))
    }

    pub(crate) fn iter(&self) -> core::slice::Iter<'_, Peer> {
        self.0.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> core::slice::IterMut<'_, Peer> {
        self.0.iter_mut()
    }

    pub(crate) fn keys(&self) -> Vec<PeerKey> {
        self.0.iter().map(|p| p.key).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// One peer connection.
pub(crate) struct Peer {
    /// Its key in the core.
    pub(crate) key: PeerKey,
    pub(crate) pc: RtcPeerConnection,
    dc: RtcDataChannel,
    /// The other side, as the signaling server stamped it.
    pub(crate) identity: Identity,
    /// The signaling id of this connection attempt.
    pub(crate) attempt: ConnectionId,
    /// We sent the offer.
    pub(crate) outgoing: bool,
    /// The local socket of the core connection (the virtual port it uses here).
    pub(crate) local: LocalId,
    /// The virtual port the connection was made to (the peer's for outgoing connections,
    /// ours for incoming ones).
    pub(crate) port: u32,
    /// The core connection this transport carries (set at once for outgoing connections, on
    /// the first status event for incoming ones).
    pub(crate) conn: Option<ConnectionHandle>,
    pub(crate) open: bool,
    /// The transport is closed or failed for good.
    pub(crate) dead: bool,
    /// A `Vec` rather than a `VecDeque`: at most [`MAX_QUEUED`], and no `VecDeque` code.
    queued: Vec<Vec<u8>>,
    /// The remote description is set, so candidates can be added.
    pub(crate) remote_description: bool,
    /// Candidates that arrived before the remote description.
    pub(crate) early_candidates: Vec<RtcIceCandidateInit>,
    pub(crate) created: Instant,
    /// When the application closed the connection.
    pub(crate) closed_at: Option<Instant>,
    /// The core has nothing more to say on this transport: free it at the next reap.
    pub(crate) free_now: bool,
    pub(crate) last_send: Instant,
    pub(crate) opened_at: Option<Instant>,
    /// The datagram that found the channel full, sent when it drains.
    stash: Option<Vec<u8>>,
    /// The channel is full and the connection paused until it drains, or until this time.
    pub(crate) full_until: Option<Instant>,
    /// The peer knows this attempt is over (it told us, or we sent it a bye).
    pub(crate) told: bool,
    /// Our offer or answer went out; candidates wait for it in `pending_signals`.
    pub(crate) description_sent: bool,
    pub(crate) pending_signals: Vec<Payload>,
    /// The answer arrived (later copies are ignored).
    pub(crate) answer_seen: bool,
    /// ICE's selected route goes through a TURN relay (known shortly after the channel opens).
    pub(crate) relayed: bool,
    /// The timers of [`Peer::repeat_queued`] (dropping one cancels it).
    pub(crate) repeats: Vec<crate::sys::Once>,
    /// An outgoing symmetric connection's config (see `Lanewire::connect_p2p`).
    pub(crate) symmetric: Option<Config>,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(Event)>,
    _on_drained: Closure<dyn FnMut(Event)>,
    _on_candidate: Closure<dyn FnMut(Event)>,
    _on_ice_state: Closure<dyn FnMut(Event)>,
}

/// Which event a peer's handler is attached to.
#[derive(Clone, Copy)]
enum PeerEvent {
    Open,
    Message,
    Close,
    Drained,
    Candidate,
    IceState,
}

/// Every event of a peer's channel and connection, passed on to the driver.
fn on_event(
    weak: &Weak<RefCell<Inner>>,
    pc: &RtcPeerConnection,
    key: PeerKey,
    kind: PeerEvent,
    ev: Event,
) {
    match kind {
        PeerEvent::Open => driver::on_channel_open(weak, key),
        PeerEvent::Message => {
            driver::on_channel_message(weak, key, ev.unchecked_into::<MessageEvent>().data())
        }
        PeerEvent::Close => driver::on_channel_closed(weak, key),
        PeerEvent::Drained => driver::on_channel_drained(weak, key),
        PeerEvent::Candidate => driver::on_local_candidate(
            weak,
            key,
            ev.unchecked_into::<RtcPeerConnectionIceEvent>().candidate(),
        ),
        PeerEvent::IceState => driver::on_ice_state(weak, key, pc.ice_connection_state()),
    }
}

/// What a new peer needs to know.
pub(crate) struct PeerParams {
    pub(crate) key: PeerKey,
    pub(crate) identity: Identity,
    pub(crate) attempt: ConnectionId,
    pub(crate) outgoing: bool,
    pub(crate) local: LocalId,
    pub(crate) port: u32,
    pub(crate) now: Instant,
}

impl Peer {
    /// Creates the peer connection and its data channel.
    pub(crate) fn new(
        weak: &Weak<RefCell<Inner>>,
        rtc_config: &RtcConfiguration,
        p: PeerParams,
    ) -> Result<Peer, Error> {
        let pc = RtcPeerConnection::new_with_configuration(rtc_config)
            .map_err(|e| Error::from_js(ErrorCode::Unsupported, "new RTCPeerConnection", &e))?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(0);
        init.set_ordered(false);
        init.set_max_retransmits(0);
        let dc = pc.create_data_channel_with_data_channel_dict("lanewire", &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);

        let key = p.key;
        // One closure type for the six handlers (one invoke shim in the .wasm, not six): the
        // handler is told which event it is by `kind`.
        let handler = |kind: PeerEvent| {
            let (w, pc) = (weak.clone(), pc.clone());
            Closure::<dyn FnMut(Event)>::new(move |ev: Event| on_event(&w, &pc, key, kind, ev))
        };
        let on_open = handler(PeerEvent::Open);
        let on_message = handler(PeerEvent::Message);
        let on_close = handler(PeerEvent::Close);
        let on_drained = handler(PeerEvent::Drained);
        let on_candidate = handler(PeerEvent::Candidate);
        let on_ice_state = handler(PeerEvent::IceState);
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_buffered_amount_low_threshold(DRAINED);
        dc.set_onbufferedamountlow(Some(on_drained.as_ref().unchecked_ref()));
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        pc.set_oniceconnectionstatechange(Some(on_ice_state.as_ref().unchecked_ref()));

        Ok(Peer {
            key,
            pc,
            dc,
            identity: p.identity,
            attempt: p.attempt,
            outgoing: p.outgoing,
            local: p.local,
            port: p.port,
            conn: None,
            open: false,
            dead: false,
            queued: Vec::new(),
            remote_description: false,
            early_candidates: Vec::new(),
            created: p.now,
            closed_at: None,
            free_now: false,
            last_send: p.now,
            opened_at: None,
            stash: None,
            full_until: None,
            told: false,
            description_sent: false,
            pending_signals: Vec::new(),
            answer_seen: false,
            symmetric: None,
            relayed: false,
            repeats: Vec::new(),
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
            _on_drained: on_drained,
            _on_candidate: on_candidate,
            _on_ice_state: on_ice_state,
        })
    }

    /// Sends one datagram of the core, keeps it until the channel opens, or, when the
    /// channel is full, stashes it and says so.
    pub(crate) fn send(&mut self, now: Instant, data: &[u8], stats: &mut TransportStats) -> Sent {
        self.last_send = now;
        if self.dead {
            stats.no_route += 1;
        } else if self.open {
            if self.stash.is_some() {
                // Still full (the connection is paused; this is connection-less traffic).
                stats.dropped_buffer_full += 1;
            } else if self.dc.buffered_amount() > MAX_BUFFERED {
                self.stash = Some(data.to_vec());
                stats.stalls += 1;
                return Sent::Full;
            } else if self.dc.send_with_u8_array(data).is_err() {
                stats.send_errors += 1;
            }
        } else {
            if self.queued.len() == MAX_QUEUED {
                self.queued.remove(0);
                stats.dropped_opening += 1;
            }
            self.queued.push(data.to_vec());
        }
        Sent::Done
    }

    /// The channel has room again, or waiting for it took too long: send the stashed
    /// datagram, or drop it (counted) when there is still no room.
    pub(crate) fn unstash(&mut self, stats: &mut TransportStats) {
        let Some(d) = self.stash.take() else { return };
        if !self.open || self.dc.buffered_amount() > MAX_BUFFERED {
            stats.dropped_buffer_full += 1;
        } else if self.dc.send_with_u8_array(&d).is_err() {
            stats.send_errors += 1;
        }
    }

    /// The channel opened: send what waited.
    pub(crate) fn on_open(&mut self, now: Instant, stats: &mut TransportStats) {
        if self.dead || self.dc.ready_state() != RtcDataChannelState::Open {
            return;
        }
        self.open = true;
        self.opened_at = Some(now);
        // A fresh channel has room for the few handshake datagrams that waited. They stay in
        // `queued` for `repeat_queued`.
        for i in 0..self.queued.len() {
            let d = core::mem::take(&mut self.queued[i]);
            let _ = self.send(now, &d, stats);
            self.queued[i] = d;
        }
    }

    /// True if datagrams waited for the channel to open (see [`Peer::repeat_queued`]).
    pub(crate) fn had_queued(&self) -> bool {
        self.open && !self.queued.is_empty()
    }

    /// Sends again what waited for the channel to open; with `last`, forgets it. The side
    /// whose SCTP association completes first opens its channel a moment before the peer's,
    /// and a native peer (webrtc 0.21) drops what arrives on a channel it has not opened yet:
    /// the first handshake datagram was often lost that way, and the core resends it only
    /// after 500 ms. Handshake datagrams are idempotent (a repeated challenge request gets a
    /// repeated stateless reply), as the native driver's own repeats rely on.
    pub(crate) fn repeat_queued(&mut self, now: Instant, stats: &mut TransportStats, last: bool) {
        if self.open && !self.dead {
            for i in 0..self.queued.len() {
                let d = core::mem::take(&mut self.queued[i]);
                let _ = self.send(now, &d, stats);
                self.queued[i] = d;
            }
        }
        if last {
            self.queued = Vec::new();
            self.repeats.clear();
        }
    }

    /// Closes the channel and the peer connection and detaches every handler. Idempotent.
    pub(crate) fn shut(&mut self) {
        if self.dead {
            return;
        }
        self.dead = true;
        self.open = false;
        self.queued.clear();
        self.stash = None;
        self.dc.set_onopen(None);
        self.dc.set_onbufferedamountlow(None);
        self.dc.set_onmessage(None);
        self.dc.set_onclose(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_oniceconnectionstatechange(None);
        self.dc.close();
        self.pc.close();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shut();
    }
}
