//! One connection: handshake state, reliability, lanes, pacing, Nagle, timers and status.
//!
//! The endpoint owns connections in a slab and routes datagrams to them by connection id. A
//! connection never sees the network: it parses packets handed to it and writes packets into
//! buffers handed to it.
//!
//! Receive path invariant: a data packet is acknowledged only if everything in it was taken.
//! Frames are decoded and checked first (a malformed packet is dropped whole); reliable segments
//! within the credit we granted are taken; and only a packet taken whole is recorded for acking
//! and has its once-only frames applied. A refused packet (data beyond the credit, a flooded
//! receive queue, closing) is simply not acknowledged and the peer retransmits it: no reliable
//! byte is ever acked and dropped, and the segments taken from it meanwhile are duplicates then.

pub(crate) mod ack;
pub(crate) mod cc;
pub(crate) mod flow;
mod keys;
mod nagle;
pub(crate) mod pacing;
mod path;
pub(crate) mod pmtu;
pub(crate) mod ranges;
pub(crate) mod recv;
mod schedule;
pub(crate) mod send;
pub(crate) mod stats;
mod timers;

use crate::prelude::*;
use crate::text;
use alloc::collections::VecDeque;
use core::time::Duration;

use self::ack::{RecvTracker, SegRef, SentPacket, SentPackets};
use self::cc::{AckSample, CongestionController, LossSample};
use self::flow::{INITIAL_CONN_CREDIT, RecvCredit};
use self::keys::{KeyError, KeyUpdate};
use self::pacing::Pacer;
#[cfg(feature = "crypto")]
use self::path::PathState;
use self::pmtu::PathMtu;
use self::recv::{Completed, ProtocolError, RecvLane, UnreliableReassembly};
use self::send::SendLane;
use self::stats::{DurationText, Fixed, Meter, Quality};
use crate::config::{Config, ConnectionConfig};
use crate::crypto::{Cipher, SessionKeys, TrustStore};
use crate::handshake::{ClientHandshake, PeerAuth, Policy};
use crate::identity::Identity;
use crate::time::Instant;
use crate::types::*;
use crate::wire::{
    self, AckFrame, ControlRepr, DataHeaderRepr, Frame, FrameReader, UnreliableFrame, Writer,
};

/// Largest message, reliable or not: 512 KiB, as the reference.
pub const MAX_MESSAGE_SIZE: usize = 512 * 1024;
/// Unreliable messages larger than this are sent reliably instead, as GNS does above 16500
/// bytes: past about a dozen fragments, the chance that one is lost makes unreliable delivery of
/// the whole message too unlikely to be useful.
pub const MAX_UNRELIABLE_SIZE: usize = 16 * 1024;
/// Client handshake packets are resent this often until answered (GNS: 500 ms).
pub(crate) const HANDSHAKE_RETRY: Duration = Duration::from_millis(500);
/// After the peer has been silent this long, send a ping (it doubles as an RTT probe).
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a closed connection stays to retransmit its close and answer stray packets
/// (GNS `k_usecFinWaitTimeout`).
pub(crate) const FIN_WAIT: Duration = Duration::from_secs(5);
/// A `NO_DELAY` message is dropped if what is queued before it needs longer than this.
pub(crate) const NO_DELAY_MAX_QUEUE: Duration = Duration::from_millis(20);
/// Consecutive retransmission timeouts without any ack after which packets of the size in use
/// are assumed to vanish on the path (an MTU black hole): they shrink to the base size
/// (`pmtu::BASE_MTU`) and path MTU discovery searches again.
const BLACK_HOLE_RTOS: u32 = 3;
/// The same conclusion from this many packets larger than the base size declared lost in a
/// row with none of that size acked in between, while smaller ones get through. At 20 %
/// random loss that happens by chance with probability 0.2^10 ≈ 10^-7 per run; a false alarm
/// costs a few round trips of smaller packets until the search confirms the size again.
const BLACK_HOLE_LARGE_LOSSES: u32 = 10;
/// Less room than this for an unvalidated address: wait for it to send more.
const MIN_AMPLIFICATION_ROOM: usize = 64;
/// Largest packet number accepted (2^62, as QUIC).
const MAX_PACKET_NUMBER: u64 = 1 << 62;
/// Segments are not started in less room than this.
const MIN_SEGMENT_ROOM: usize = 8;
/// Largest data packet header: flags, connection id, 8-byte packet number.
const MAX_HEADER: usize = 1 + 4 + 8;
/// Reliable data is refused (not acked; the peer resends) once the receive queue holds this
/// many times `RecvBufferMessages` messages. Flow control stops granting credit at the limit
/// itself; this bounds the memory of a peer that sends very many tiny messages within credit
/// it already has.
const RECV_QUEUE_HARD_FACTOR: usize = 4;

/// Which side of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// Internal state, finer than [`ConnectionState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Client: sending challenge requests (no cookie yet) or connect requests.
    Handshake,
    /// Server: handshake done, waiting for the application to accept.
    AwaitAccept,
    Connected,
    ClosedByPeer,
    ProblemDetected,
    /// App closed with linger: flush reliable data, then close.
    Linger,
    /// App closed: resend our close until acked or FIN_WAIT passes.
    FinWait,
    /// Ready to be freed.
    Dead,
}

impl Phase {
    /// The variant's name, as `{:?}` prints it (for the detailed status).
    fn name(self) -> &'static str {
        match self {
            Phase::Handshake => "Handshake",
            Phase::AwaitAccept => "AwaitAccept",
            Phase::Connected => "Connected",
            Phase::ClosedByPeer => "ClosedByPeer",
            Phase::ProblemDetected => "ProblemDetected",
            Phase::Linger => "Linger",
            Phase::FinWait => "FinWait",
            Phase::Dead => "Dead",
        }
    }
}

/// Packet protection. The handshake chooses it; `None` until keys exist or when the transport
/// encrypts or both sides opted into plaintext.
#[derive(Debug)]
pub(crate) enum Protection {
    /// Before the handshake finished.
    None,
    /// After it: the negotiated cipher (possibly `Null` when both sides allowed plaintext or
    /// the transport encrypts).
    Keys(SessionKeys),
}

impl Protection {
    fn tag_len(&self) -> usize {
        match self {
            Protection::None => 0,
            Protection::Keys(k) => k.send.overhead(),
        }
    }
    /// True when our own AEAD protects packets.
    pub(crate) fn is_encrypted(&self) -> bool {
        matches!(self, Protection::Keys(k) if k.cipher() != Cipher::Null)
    }
}

/// What the handshake needs from the endpoint.
#[derive(Debug)]
pub(crate) struct HandshakeCtx<'a> {
    pub(crate) trust: &'a TrustStore,
    pub(crate) unix_now: Option<u64>,
}

/// A connection.
#[derive(Debug)]
pub(crate) struct Connection<A> {
    pub(crate) handle: ConnectionHandle,
    pub(crate) local: LocalId,
    pub(crate) remote: A,
    pub(crate) role: Role,
    pub(crate) local_id: u32,
    pub(crate) remote_id: u32,
    pub(crate) listen_socket: Option<ListenSocketHandle>,
    pub(crate) overrides: Config,
    pub(crate) config: ConnectionConfig,
    pub(crate) user_data: i64,
    pub(crate) name: String,
    pub(crate) poll_group: Option<PollGroupHandle>,
    pub(crate) phase: Phase,
    /// The application closed the handle; the connection lingers only to finish closing.
    pub(crate) app_closed: bool,
    pub(crate) end_reason: EndReason,
    pub(crate) end_debug: String,
    pub(crate) protection: Protection,
    pub(crate) transport_encrypted: bool,
    pub(crate) relayed: bool,
    pub(crate) remote_identity: Option<Identity>,
    pub(crate) expected_identity: Option<Identity>,
    pub(crate) authenticated: bool,
    pub(crate) client_hs: Option<ClientHandshake>,
    /// Server: the crypto answer sent in every connect-OK.
    pub(crate) answer: Vec<u8>,
    /// Closing before the handshake finished: tell the peer with a control packet.
    close_via_control: bool,
    phase_entered: Instant,
    last_recv: Instant,
    // Handshake.
    cookie: Option<u64>,
    next_handshake_send: Instant,
    handshake_sent_at: Instant,
    connect_ok_pending: bool,
    request_timestamp: u64,
    request_received_at: Instant,
    // Reliability.
    recv_tracker: RecvTracker,
    sent: SentPackets,
    send_lanes: Vec<SendLane>,
    recv_lanes: Vec<RecvLane>,
    unreliable: UnreliableReassembly,
    last_stop_waiting_sent: u64,
    /// Flow control, receive side: the credit we grant the peer.
    recv_credit: RecvCredit,
    /// Flow control, send side: the peer accepts stream bytes until the sum over our lanes of
    /// the highest offset sent reaches this.
    peer_conn_credit: u64,
    // Sending.
    pacer: Pacer,
    cc: Box<dyn CongestionController>,
    nagle_deadline: Option<Instant>,
    ping_pending: bool,
    close_frame_pending: bool,
    close_resend_at: Option<Instant>,
    // Receiving.
    pub(crate) recv_queue: VecDeque<Message>,
    recv_queue_bytes: usize,
    completed: Vec<Completed>,
    // Status.
    pub(crate) transitions: Vec<(ConnectionState, ConnectionState)>,
    out_meter: Meter,
    in_meter: Meter,
    quality: Quality,
    remote_quality: Option<u16>,
    ack_scratch: Vec<(u64, u64)>,
    /// Packets dropped by this connection (undecryptable, malformed, refused).
    pub(crate) dropped_packets: u64,
    /// In the endpoint's queue of connections that may have something to send.
    pub(crate) in_dirty: bool,
    /// The time this connection's entry in the endpoint's timer heap is for.
    pub(crate) timer_at: Option<Instant>,
    /// Datagrams refused because the receive queue was full.
    pub(crate) refused_packets: u64,
    /// Reliable bytes sent again after a loss.
    bytes_retransmitted: u64,
    /// Path MTU discovery: the packet size in use.
    pmtu: PathMtu,
    /// Packets above the base size lost in a row with none of them acked.
    large_lost_run: u32,
    /// Symmetric connect: this outgoing connection waits to become the server side of the
    /// peer's own connection attempt from this address, and sends no handshake meanwhile.
    pub(crate) merge_from: Option<A>,
    /// The driver's transport cannot take more for this connection now (a full WebRTC data
    /// channel): nothing is sent, and only the time-outs tick, until it is resumed.
    pub(crate) tx_paused: bool,
    /// The transport's own datagram limit (a WebRTC data channel): the packet size, unprobed.
    transport_max_datagram: Option<usize>,
    /// Key updates.
    key_update: KeyUpdate,
    /// Address changes and their validation.
    #[cfg(feature = "crypto")]
    path: PathState<A>,
}

/// Outcome of handing a data packet to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketOutcome {
    /// Applied.
    Accepted,
    /// Dropped: duplicate, undecryptable or malformed (counted).
    Dropped,
    /// Not applied because the receive queue is full; the peer will retransmit.
    Refused,
}

impl<A: Clone> Connection<A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        now: Instant,
        handle: ConnectionHandle,
        local: LocalId,
        remote: A,
        role: Role,
        local_id: u32,
        remote_id: u32,
        listen_socket: Option<ListenSocketHandle>,
        overrides: Config,
        config: ConnectionConfig,
    ) -> Self {
        let phase = match role {
            Role::Client => Phase::Handshake,
            Role::Server => Phase::AwaitAccept,
        };
        let pmtu = PathMtu::new(now, config.mtu, true);
        let cc = cc::from_config(config.congestion_control, now, pmtu.current());
        let pacer = Pacer::new(now, pacing_rate(&config, cc.as_ref()), config.mtu);
        Connection {
            handle,
            local,
            remote,
            role,
            local_id,
            remote_id,
            listen_socket,
            overrides,
            user_data: config.user_data,
            config,
            name: String::new(),
            poll_group: None,
            phase,
            app_closed: false,
            end_reason: EndReason::INVALID,
            end_debug: String::new(),
            protection: Protection::None,
            transport_encrypted: false,
            relayed: false,
            remote_identity: None,
            expected_identity: None,
            authenticated: false,
            client_hs: None,
            answer: Vec::new(),
            close_via_control: false,
            phase_entered: now,
            last_recv: now,
            cookie: None,
            next_handshake_send: now,
            handshake_sent_at: now,
            connect_ok_pending: false,
            request_timestamp: 0,
            request_received_at: now,
            recv_tracker: RecvTracker::default(),
            sent: SentPackets::default(),
            send_lanes: vec![SendLane::new(0, 1)],
            recv_lanes: vec![RecvLane::default()],
            unreliable: UnreliableReassembly::default(),
            last_stop_waiting_sent: 0,
            recv_credit: RecvCredit::default(),
            peer_conn_credit: INITIAL_CONN_CREDIT,
            pacer,
            cc,
            nagle_deadline: None,
            ping_pending: false,
            close_frame_pending: false,
            close_resend_at: None,
            recv_queue: VecDeque::new(),
            recv_queue_bytes: 0,
            completed: Vec::new(),
            transitions: Vec::new(),
            out_meter: Meter::new(now),
            in_meter: Meter::new(now),
            quality: Quality::default(),
            remote_quality: None,
            ack_scratch: Vec::new(),
            dropped_packets: 0,
            in_dirty: false,
            timer_at: None,
            refused_packets: 0,
            bytes_retransmitted: 0,
            pmtu,
            large_lost_run: 0,
            merge_from: None,
            tx_paused: false,
            transport_max_datagram: None,
            key_update: KeyUpdate::new(u64::MAX),
            #[cfg(feature = "crypto")]
            path: PathState::default(),
        }
    }

    /// The state the application sees.
    pub(crate) fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Handshake | Phase::AwaitAccept => ConnectionState::Connecting,
            Phase::Connected => ConnectionState::Connected,
            Phase::ClosedByPeer => ConnectionState::ClosedByPeer,
            Phase::ProblemDetected => ConnectionState::ProblemDetectedLocally,
            Phase::Linger | Phase::FinWait | Phase::Dead => ConnectionState::None,
        }
    }

    fn set_phase(&mut self, now: Instant, phase: Phase) {
        let old = self.state();
        self.phase = phase;
        self.phase_entered = now;
        let new = self.state();
        if old != new && !self.app_closed {
            self.transitions.push((old, new));
        }
    }

    /// Ends the connection from our side because of a problem.
    pub(crate) fn problem(&mut self, now: Instant, reason: EndReason, debug: &str) {
        if matches!(self.phase, Phase::ClosedByPeer | Phase::ProblemDetected | Phase::Dead) {
            return;
        }
        self.end_reason = reason;
        self.end_debug = truncate_debug(debug);
        if self.app_closed {
            // Lingering or in fin-wait: nobody to tell; just go.
            self.phase = Phase::Dead;
            return;
        }
        self.set_phase(now, Phase::ProblemDetected);
        self.discard_send_queues();
        // Tell the peer, best effort, so it does not wait for a timeout.
        if self.remote_id != 0 && reason != EndReason::MISC_TIMEOUT {
            self.close_frame_pending = true;
        }
    }

    fn peer_closed(&mut self, now: Instant, reason: EndReason, debug: &[u8]) {
        if self.app_closed {
            self.phase = Phase::Dead;
            return;
        }
        if matches!(self.phase, Phase::ClosedByPeer | Phase::ProblemDetected | Phase::Dead) {
            return;
        }
        self.end_reason = reason;
        self.end_debug = truncate_debug(&String::from_utf8_lossy(debug));
        self.set_phase(now, Phase::ClosedByPeer);
        self.discard_send_queues();
    }

    fn discard_send_queues(&mut self) {
        let lanes = self.send_lanes.len();
        let prio: Vec<_> = self.send_lanes.iter().map(|l| (l.priority, l.weight)).collect();
        self.send_lanes.clear();
        for (p, w) in prio.into_iter().take(lanes) {
            self.send_lanes.push(SendLane::new(p, w));
        }
        self.nagle_deadline = None;
    }

    /// The application closes the connection. Returns true if it can be freed at once.
    pub(crate) fn app_close(
        &mut self,
        now: Instant,
        reason: EndReason,
        debug: &str,
        linger: bool,
    ) -> bool {
        self.app_closed = true;
        self.recv_queue.clear();
        self.recv_queue_bytes = 0;
        self.recv_credit.on_queue_cleared();
        match self.phase {
            Phase::Handshake | Phase::AwaitAccept => {
                self.end_reason = reason;
                self.end_debug = truncate_debug(debug);
                // Tell the other side with a control packet (no keys yet); see poll_transmit.
                self.close_via_control = true;
                self.phase = Phase::FinWait;
                self.phase_entered = now;
                false
            }
            Phase::Connected => {
                self.end_reason = reason;
                self.end_debug = truncate_debug(debug);
                for l in &mut self.send_lanes {
                    l.clear_unreliable();
                }
                let unacked = self.send_lanes.iter().any(|l| !l.all_reliable_acked());
                // The reference has no linger on symmetric connections.
                if linger && unacked && !self.config.symmetric_connect {
                    self.phase = Phase::Linger;
                    self.phase_entered = now;
                    // Flush: no more Nagle waiting.
                    self.nagle_expire(now);
                } else {
                    self.enter_fin_wait(now);
                }
                false
            }
            Phase::ClosedByPeer | Phase::ProblemDetected | Phase::Dead => {
                self.phase = Phase::Dead;
                true
            }
            Phase::Linger | Phase::FinWait => false,
        }
    }

    fn enter_fin_wait(&mut self, now: Instant) {
        self.discard_send_queues();
        self.phase = Phase::FinWait;
        self.phase_entered = now;
        self.close_frame_pending = true;
        self.close_resend_at = Some(now);
    }

    /// Unauthenticated close notices are believed before keys exist, on links without our
    /// AEAD, and until the peer has sent one authenticated packet (a client that refused our
    /// certificate can only tell us in clear).
    fn accepts_unauthenticated_close(&self) -> bool {
        matches!(self.phase, Phase::Handshake | Phase::AwaitAccept)
            || !self.protection.is_encrypted()
            || self.recv_tracker.largest.is_none()
    }

    /// The transport carries messages of at most `limit` bytes and fragments itself (a WebRTC
    /// data channel): packets are that size (at most `MtuPacketSize`) and never probed.
    pub(crate) fn set_transport_max_datagram(&mut self, now: Instant, limit: usize) {
        self.transport_max_datagram = Some(limit);
        self.pmtu = PathMtu::new(now, self.config.mtu.min(limit), false);
    }

    /// The packet size in use: what path MTU discovery confirmed, at most the configured MTU.
    fn mtu(&self) -> usize {
        self.pmtu.current().min(self.config.mtu)
    }

    /// This side's handshake policy.
    pub(crate) fn policy(&self, ctx: &HandshakeCtx<'_>) -> Policy {
        Policy {
            unencrypted: self.config.unencrypted,
            allow_without_auth: self.config.allow_without_auth,
            transport_encrypted: self.transport_encrypted,
            unix_now: ctx.unix_now,
        }
    }

    /// Installs the session keys and what the handshake proved about the peer.
    pub(crate) fn set_keys(&mut self, keys: SessionKeys, auth: PeerAuth) {
        self.key_update = KeyUpdate::new(keys.cipher().packet_limit());
        self.protection = Protection::Keys(keys);
        self.remote_identity = auth.identity;
        self.authenticated = auth.authenticated;
    }

    /// Server: the application accepted.
    pub(crate) fn accept(&mut self, now: Instant) -> Result<(), HandleError> {
        if self.role != Role::Server || self.phase != Phase::AwaitAccept {
            return Err(HandleError::InvalidState);
        }
        self.connect_ok_pending = true;
        self.set_phase(now, Phase::Connected);
        self.last_recv = now;
        Ok(())
    }

    /// Symmetric connect: this outgoing connection, still in its handshake, takes the server
    /// role of the peer's connection attempt from `remote` (whose connect request carried
    /// `remote_id` and `timestamp`), and is accepted at once: the application already asked
    /// for it by connecting. Messages queued meanwhile stay queued.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn become_server(
        &mut self,
        now: Instant,
        remote: A,
        remote_id: u32,
        timestamp: u64,
        answer: Vec<u8>,
        keys: SessionKeys,
        auth: PeerAuth,
    ) {
        debug_assert!(self.role == Role::Client && self.phase == Phase::Handshake);
        self.role = Role::Server;
        self.remote = remote;
        self.remote_id = remote_id;
        self.merge_from = None;
        self.client_hs = None;
        self.cookie = None;
        self.answer = answer;
        if let (Some(e), Some(i)) = (&self.expected_identity, &auth.identity)
            && e != i
        {
            let debug = text!("Peer claims identity ", i, ", expected ", e);
            self.set_keys(keys, auth);
            self.problem(now, EndReason::REMOTE_BAD_CERT, &debug);
            return;
        }
        self.set_keys(keys, auth);
        self.on_connect_request(now, timestamp);
        self.phase = Phase::AwaitAccept;
        // Cannot fail: server role, awaiting accept.
        let _ = self.accept(now);
    }

    /// Server: a connect request for this connection arrived (first or repeated).
    pub(crate) fn on_connect_request(&mut self, now: Instant, timestamp: u64) {
        self.request_timestamp = timestamp;
        self.request_received_at = now;
        if self.phase == Phase::Connected {
            // Our connect-OK was lost: answer again.
            self.connect_ok_pending = true;
        }
    }

    // ---------------------------------------------------------------- receiving

    /// A control packet addressed to this connection.
    pub(crate) fn handle_control(
        &mut self,
        now: Instant,
        repr: &ControlRepr<'_>,
        ctx: &HandshakeCtx<'_>,
    ) {
        match *repr {
            ControlRepr::ChallengeReply { cookie, .. }
                if self.phase == Phase::Handshake && self.cookie.is_none() => {
                    self.cookie = Some(cookie);
                    self.next_handshake_send = now; // send the connect request at once
                }
            ControlRepr::ConnectOk {
                server_conn_id, echo_timestamp, server_delay_us, crypto, ..
            } => {
                if self.phase != Phase::Handshake || self.cookie.is_none() {
                    return;
                }
                let policy = self.policy(ctx);
                let expected = self.expected_identity;
                let Some(hs) = self.client_hs.as_mut() else { return };
                match hs.finish(crypto, ctx.trust, &policy, expected.as_ref(), self.local_id, server_conn_id) {
                    Ok((keys, auth)) => self.set_keys(keys, auth),
                    Err((reason, debug)) => {
                        // Tell the server, which already holds state for us.
                        self.remote_id = server_conn_id;
                        self.close_via_control = true;
                        self.problem(now, reason, &debug);
                        // The server cannot read our AEAD-less close frame: the control
                        // packet above says it instead.
                        self.close_frame_pending = false;
                        return;
                    }
                }
                self.client_hs = None;
                self.remote_id = server_conn_id;
                let sent_at = Instant::from_micros(echo_timestamp);
                if sent_at <= now && sent_at >= self.handshake_sent_at - HANDSHAKE_RETRY * 64 {
                    let rtt = (now - sent_at)
                        .saturating_sub(Duration::from_micros(u64::from(server_delay_us)));
                    self.sent.rtt.update(rtt.max(Duration::from_micros(1)), Duration::ZERO);
                }
                self.last_recv = now;
                self.set_phase(now, Phase::Connected);
            }
            ControlRepr::Closed { reason, debug, .. }
                // Unauthenticated: honoured before keys exist, and on links without our AEAD.
                if self.accepts_unauthenticated_close() =>
            {
                    self.peer_closed(now, EndReason(reason), debug);
                }
            // Honoured whenever it names our ids and comes from the peer's address (the
            // endpoint checked both): after a server restart the client learns at once
            // instead of timing out. An off-path attacker would have to guess a random 32-bit
            // id; an on-path one can cut the connection anyway.
            ControlRepr::NoConnection { .. } => {
                    if self.phase == Phase::FinWait {
                        self.phase = Phase::Dead;
                    } else {
                        self.peer_closed(
                            now,
                            EndReason::MISC_PEER_SENT_NO_CONNECTION,
                            b"The peer has no such connection",
                        );
                    }
                }
            _ => {}
        }
    }

    /// A data packet for this connection. `full_pn` is the expanded packet number.
    pub(crate) fn handle_data(
        &mut self,
        now: Instant,
        header_len: usize,
        truncated_pn: u64,
        pn_len: usize,
        key_phase: bool,
        datagram: &mut [u8],
    ) -> PacketOutcome {
        if matches!(self.phase, Phase::Handshake | Phase::AwaitAccept | Phase::Dead) {
            // Client: data before connect-OK (it was lost; the server resends). Server: data
            // before accept cannot happen from an honest client.
            self.dropped_packets += 1;
            return PacketOutcome::Dropped;
        }
        let pn = wire::decode_packet_number(self.recv_tracker.largest, truncated_pn, pn_len);
        // Packet numbers stay below 2^62 (RFC 9000's bound; an honest sender would need
        // millennia to get there): anything above is hostile and would overflow the trackers.
        if pn >= MAX_PACKET_NUMBER || self.recv_tracker.is_duplicate(pn) {
            self.dropped_packets += 1;
            return PacketOutcome::Dropped;
        }
        let payload_len = match self.open_packet(pn, key_phase, header_len, datagram) {
            Ok(n) => n,
            Err(KeyError::Drop) => {
                self.dropped_packets += 1;
                return PacketOutcome::Dropped;
            }
            Err(KeyError::Limit) => {
                self.dropped_packets += 1;
                self.problem(
                    now,
                    EndReason::MISC_GENERIC,
                    "The peer did not update its key in time",
                );
                return PacketOutcome::Dropped;
            }
        };
        let payload = &datagram[header_len..header_len + payload_len];
        self.in_meter.record(now, datagram.len());
        self.last_recv = now;

        // Pass 1: decode and check every frame before applying anything. A malformed packet
        // is dropped whole.
        let mut ack_eliciting = false;
        let mut has_data = false;
        let mut segments = 0usize;
        let max_msg = self.config.recv_max_message_size;
        for f in FrameReader::new(payload) {
            let Ok(f) = f else {
                self.dropped_packets += 1;
                return PacketOutcome::Dropped;
            };
            match &f {
                Frame::Padding
                | Frame::Ack(_)
                | Frame::StopWaiting { .. }
                | Frame::Stats { .. }
                | Frame::MaxData { .. }
                | Frame::MaxLaneData { .. }
                | Frame::PathResponse { .. } => {}
                Frame::PathChallenge { .. } => ack_eliciting = true,
                Frame::Ping | Frame::Close { .. } => ack_eliciting = true,
                Frame::Reliable { .. } => {
                    ack_eliciting = true;
                    has_data = true;
                    segments += 1;
                }
                Frame::Unreliable(u) => {
                    ack_eliciting = true;
                    has_data = true;
                    segments += 1;
                    if u.total as usize > MAX_UNRELIABLE_SIZE.max(self.config.mtu)
                        || u.total as usize > max_msg
                    {
                        self.dropped_packets += 1;
                        return PacketOutcome::Dropped;
                    }
                }
            }
        }
        if segments > self.config.recv_max_segments_per_packet {
            self.dropped_packets += 1;
            return PacketOutcome::Dropped;
        }
        // Data is refused while closing, and while the application leaves far more messages
        // unread than `RecvBufferMessages` (flow control stops granting credit at the limit
        // itself, so only a peer sending many tiny messages within its credit gets here).
        let closing = matches!(
            self.phase,
            Phase::Linger | Phase::FinWait | Phase::ClosedByPeer | Phase::ProblemDetected
        );
        let flooded =
            self.recv_queue.len() >= RECV_QUEUE_HARD_FACTOR * self.config.recv_buffer_messages;
        let refuse_data = has_data && (closing || flooded);

        // Pass 2: acks and credit (they concern our data, and are taken from any packet), then
        // each reliable segment that is within the credit we granted. A segment beyond it (a
        // broken or hostile peer) is not taken, and then the packet is not acked, so that its
        // sender resends all of it; the segments taken meanwhile are duplicates by then. Taking
        // what fits rather than nothing means a packet carrying the retransmission that fills
        // a gap is never refused for the other data it carries: the stream always moves.
        let mut whole = !refuse_data;
        let mut protocol_error = None;
        for f in FrameReader::new(payload).flatten() {
            match f {
                Frame::Ack(a) => self.on_ack_frame(now, &a),
                Frame::Stats { quality_permille } => self.remote_quality = Some(quality_permille),
                Frame::MaxData { limit } => {
                    self.peer_conn_credit = self.peer_conn_credit.max(limit)
                }
                Frame::MaxLaneData { lane, limit } => {
                    if let Some(l) = self.send_lanes.get_mut(usize::from(lane)) {
                        l.credit = l.credit.max(limit);
                    }
                }
                Frame::Reliable { lane, offset, data } if !refuse_data => {
                    let end = offset + data.len() as u64;
                    let held = self.recv_lanes.get(usize::from(lane));
                    if !self.recv_credit.allows(lane, end) || held.is_some_and(|l| !l.fits(offset))
                    {
                        whole = false;
                        continue;
                    }
                    self.recv_credit.on_received(lane, end);
                    let lane = usize::from(lane);
                    while self.recv_lanes.len() <= lane {
                        self.recv_lanes.push(RecvLane::default());
                    }
                    let mut done = core::mem::take(&mut self.completed);
                    if let Err(e) =
                        self.recv_lanes[lane].on_segment(offset, data, max_msg, &mut done)
                    {
                        protocol_error = Some(e);
                    }
                    for (num, bytes, end) in done.drain(..) {
                        self.recv_credit.on_queued(lane as u16, end);
                        self.push_message(now, lane as u16, num, true, bytes);
                    }
                    self.completed = done;
                }
                _ => {}
            }
        }
        if !whole {
            self.refused_packets += 1;
            return PacketOutcome::Refused;
        }
        // Pass 3, for a packet taken whole (and so acked, and never applied again): what may
        // only be applied once.
        let mut close: Option<(u32, Vec<u8>)> = None;
        for f in FrameReader::new(payload).flatten() {
            match f {
                Frame::StopWaiting { delta } => {
                    self.recv_tracker.on_stop_waiting(pn.saturating_sub(delta))
                }
                Frame::Close { reason, debug } => close = Some((reason, debug.to_vec())),
                Frame::Unreliable(u) => self.on_unreliable(now, &u),
                Frame::PathChallenge { data } => self.on_path_challenge(data),
                Frame::PathResponse { data } => self.on_path_response(data),
                _ => {}
            }
        }
        self.recv_tracker.on_packet(pn, now, ack_eliciting);
        self.quality.on_packet(now, pn);
        if let Some(e) = protocol_error {
            let debug = match e {
                ProtocolError::MessageTooBig => {
                    "Peer sent a message larger than RecvMaxMessageSize"
                }
                ProtocolError::BadFraming => "Peer sent a malformed reliable stream",
            };
            self.problem(now, EndReason::MISC_INTERNAL_ERROR, debug);
        }
        if let Some((reason, debug)) = close {
            match self.phase {
                Phase::FinWait | Phase::Linger => self.phase = Phase::Dead,
                _ => self.peer_closed(now, EndReason(reason), &debug),
            }
        }
        PacketOutcome::Accepted
    }

    fn on_unreliable(&mut self, now: Instant, u: &UnreliableFrame<'_>) {
        // Unreliable data is not flow controlled: while the application leaves the receive
        // queue full, it is dropped (counted), as a congested router would.
        if self.recv_queue.len() >= self.config.recv_buffer_messages
            || self.recv_queue_bytes >= self.config.recv_buffer_size
        {
            self.unreliable.dropped += 1;
            return;
        }
        if u.data.len() == u.total as usize {
            self.push_message(now, u.lane, u.msg_num, false, u.data.to_vec());
        } else if let Some(whole) =
            self.unreliable.on_fragment(u.lane, u.msg_num, u.offset, u.total, u.data)
        {
            self.push_message(now, u.lane, u.msg_num, false, whole);
        }
    }

    fn push_message(
        &mut self,
        now: Instant,
        lane: u16,
        number: u64,
        reliable: bool,
        data: Vec<u8>,
    ) {
        if self.app_closed {
            return;
        }
        self.recv_queue_bytes += data.len();
        self.recv_queue.push_back(Message {
            conn: self.handle,
            user_data: self.user_data,
            number,
            lane,
            reliable,
            received_at: now,
            data: data.into_boxed_slice(),
        });
    }

    /// Pops up to `max` received messages into `out`; returns how many.
    pub(crate) fn receive(&mut self, max: usize, out: &mut Vec<Message>) -> usize {
        let n = max.min(self.recv_queue.len());
        for m in self.recv_queue.drain(..n) {
            self.recv_queue_bytes -= m.data.len();
            self.recv_credit.on_read(m.reliable);
            out.push(m);
        }
        self.grant_credit();
        n
    }

    /// Pops one message (for poll groups).
    pub(crate) fn pop_message(&mut self) -> Option<Message> {
        let m = self.recv_queue.pop_front()?;
        self.recv_queue_bytes -= m.data.len();
        self.recv_credit.on_read(m.reliable);
        self.grant_credit();
        Some(m)
    }

    /// The highest packet number received from the peer.
    pub(crate) fn largest_received(&self) -> Option<u64> {
        self.recv_tracker.largest
    }

    /// The lane window flow control grants the peer.
    fn credit_window(&self) -> u64 {
        flow::lane_window(self.config.recv_buffer_size)
    }

    /// Raises the credit after the application read something.
    fn grant_credit(&mut self) {
        let room = self.recv_queue.len() < self.config.recv_buffer_messages;
        let window = self.credit_window();
        self.recv_credit.update(window, room);
    }

    /// True if the peer should hear of more credit now (the endpoint then polls us).
    pub(crate) fn credit_due(&self) -> bool {
        matches!(self.phase, Phase::Connected | Phase::Linger)
            && self.recv_credit.due(self.credit_window())
    }

    /// Stream bytes the peer's connection-wide credit still lets us send.
    fn conn_credit_room(&self) -> u64 {
        let sent: u64 = self.send_lanes.iter().map(|l| l.next_unsent()).sum();
        self.peer_conn_credit.saturating_sub(sent)
    }

    /// True if some lane has new data that flow control lets go now.
    fn has_sendable(&self) -> bool {
        let room = self.conn_credit_room();
        self.send_lanes.iter().any(|l| l.sendable(room))
    }

    fn on_ack_frame(&mut self, now: Instant, a: &AckFrame<'_>) {
        if a.largest < self.sent.next_pn {
            self.keys_on_ack(a.largest);
        }
        let lanes = &mut self.send_lanes;
        let delay = Duration::from_micros(a.delay_us.min(10_000_000));
        let out = self.sent.on_ack(now, a.largest, delay, a.ranges(), |s: SegRef| {
            if let Some(l) = lanes.get_mut(usize::from(s.lane)) {
                l.on_acked(s.offset, u64::from(s.len));
            }
        });
        if out.newly_acked > 0 {
            let sample = AckSample {
                acked_bytes: out.acked_bytes,
                in_flight: self.sent.bytes_in_flight,
                delivered: self.sent.delivered,
                rtt: out.rtt,
                srtt: self.sent.rtt.get(),
                rate: out.rate,
            };
            self.cc.on_ack(now, &sample);
        }
        if self.pmtu.is_large(out.max_acked_size as usize) {
            self.large_lost_run = 0;
        }
        if out.probe_acked {
            self.pmtu.on_probe_acked(now);
        }
        if out.close_acked && self.phase == Phase::FinWait {
            self.phase = Phase::Dead;
        }
        self.detect_lost(now);
        if self.phase == Phase::Linger && self.send_lanes.iter().all(|l| l.all_reliable_acked()) {
            self.enter_fin_wait(now);
        }
    }

    fn detect_lost(&mut self, now: Instant) {
        let (lanes, pmtu) = (&mut self.send_lanes, &self.pmtu);
        let mut losses = Losses::default();
        self.sent.detect_lost(now, |p| losses.add(p, lanes, pmtu));
        self.on_losses(now, &losses, false);
    }

    /// What loss detection found: resend what the lost packets carried, tell the congestion
    /// controller (probes excepted: their loss says nothing about congestion), and watch for
    /// black holes.
    fn on_losses(&mut self, now: Instant, l: &Losses, rto: bool) {
        if l.close {
            self.close_frame_pending = true;
        }
        if l.credit {
            self.recv_credit.on_lost();
        }
        if l.probe {
            self.pmtu.on_probe_lost(now);
        }
        if l.packets > 0 {
            let loss = LossSample {
                lost_bytes: l.bytes,
                lost_packets: l.packets,
                newest_sent: l.newest,
                in_flight: self.sent.bytes_in_flight,
                timeout: rto,
            };
            self.cc.on_loss(now, &loss);
        }
        self.large_lost_run += l.large;
        let black_hole = self.large_lost_run >= BLACK_HOLE_LARGE_LOSSES
            || (rto && self.sent.rto_count >= BLACK_HOLE_RTOS);
        if black_hole && self.pmtu.on_black_hole(now) {
            // Packets of the size in use vanish while small ones pass: back to the base size.
            self.large_lost_run = 0;
        }
    }

    // ---------------------------------------------------------------- timers

    /// Runs whatever timers are due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Handshake => {
                if now >= self.phase_entered + self.config.timeout_initial {
                    self.problem(now, EndReason::MISC_TIMEOUT, "Timed out attempting to connect");
                }
            }
            Phase::AwaitAccept => {
                if now >= self.phase_entered + self.config.timeout_initial {
                    self.problem(
                        now,
                        EndReason::MISC_TIMEOUT,
                        "App didn't accept or close incoming connection in time",
                    );
                }
            }
            Phase::Connected | Phase::Linger => {
                if now >= self.last_recv + self.config.timeout_connected {
                    if self.phase == Phase::Linger {
                        self.phase = Phase::Dead;
                    } else {
                        self.problem(now, EndReason::MISC_TIMEOUT, "Connection dropped");
                    }
                    return;
                }
                self.run_loss_timer(now);
                self.check_path(now);
                if now >= self.last_recv + KEEPALIVE_INTERVAL
                    && !self.sent.has_outstanding_eliciting()
                {
                    self.ping_pending = true;
                }
            }
            Phase::FinWait => {
                if now >= self.phase_entered + FIN_WAIT {
                    self.phase = Phase::Dead;
                    return;
                }
                self.run_loss_timer(now);
                if self.close_resend_at.is_some_and(|t| t <= now) {
                    self.close_frame_pending = true;
                }
            }
            Phase::ClosedByPeer | Phase::ProblemDetected | Phase::Dead => {}
        }
    }

    fn run_loss_timer(&mut self, now: Instant) {
        let (lanes, pmtu) = (&mut self.send_lanes, &self.pmtu);
        let mut losses = Losses::default();
        let rto = self.sent.on_loss_timer(now, |p| losses.add(p, lanes, pmtu));
        self.on_losses(now, &losses, rto);
        if rto && !self.send_lanes.iter().any(|l| l.has_retransmit()) && !self.close_frame_pending {
            // Nothing to resend: probe so the peer acks and the RTT stays known.
            self.ping_pending = true;
        }
    }

    // ---------------------------------------------------------------- sending

    /// Queues a message.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        data: &[u8],
        flags: SendFlags,
        lane: u16,
    ) -> Result<u64, SendError> {
        match self.phase {
            Phase::ClosedByPeer | Phase::ProblemDetected => return Err(SendError::NoConnection),
            Phase::Linger | Phase::FinWait | Phase::Dead => return Err(SendError::InvalidHandle),
            _ => {}
        }
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(SendError::MessageTooBig);
        }
        let lane_idx = usize::from(lane);
        if lane_idx >= self.send_lanes.len() {
            return Err(SendError::InvalidLane);
        }
        let reliable = flags.is_reliable() || data.len() > MAX_UNRELIABLE_SIZE;
        let pending = self.pending_bytes();
        if !reliable && flags.no_delay() {
            let connected = self.phase == Phase::Connected;
            if !connected || self.pacer.time_for(pending) > NO_DELAY_MAX_QUEUE {
                return Err(SendError::Ignored);
            }
        }
        if pending + data.len() > self.config.send_buffer_size {
            return Err(SendError::LimitExceeded);
        }
        let l = &mut self.send_lanes[lane_idx];
        if !l.has_new() && !l.has_retransmit() {
            // An idle lane does not bank credit (weighted fair queueing).
            let floor =
                self.send_lanes.iter().filter(|o| o.has_new()).map(|o| o.vtime).min().unwrap_or(0);
            let l = &mut self.send_lanes[lane_idx];
            l.vtime = l.vtime.max(floor);
        }
        let l = &mut self.send_lanes[lane_idx];
        let num = if reliable { l.queue_reliable(data) } else { l.queue_unreliable(data) };
        self.nagle_on_queued(now, flags.no_nagle());
        Ok(num)
    }

    /// Expires the Nagle timer: what is queued goes out as soon as pacing allows.
    pub(crate) fn flush(&mut self, now: Instant) {
        if self.send_lanes.iter().any(|l| l.has_new()) {
            self.nagle_expire(now);
        }
    }

    /// Configures lanes: counts can only grow.
    pub(crate) fn configure_lanes(
        &mut self,
        priorities: &[i32],
        weights: &[u16],
    ) -> Result<(), HandleError> {
        let n = priorities.len();
        if n == 0
            || n > usize::from(wire::MAX_LANE as u16) + 1
            || weights.len() != n
            || n < self.send_lanes.len()
            || weights.contains(&0)
        {
            return Err(HandleError::InvalidParam);
        }
        for (i, (&p, &w)) in priorities.iter().zip(weights).enumerate() {
            match self.send_lanes.get_mut(i) {
                Some(l) => {
                    l.priority = p;
                    l.weight = w;
                }
                None => self.send_lanes.push(SendLane::new(p, w)),
            }
        }
        Ok(())
    }

    fn pending_bytes(&self) -> usize {
        self.send_lanes.iter().map(|l| l.pending()).sum()
    }

    /// Applies a changed configuration (rates, Nagle, timeouts take effect live).
    pub(crate) fn reconfigure(&mut self, now: Instant, config: ConnectionConfig) {
        if config.mtu != self.config.mtu && self.transport_max_datagram.is_none() {
            self.pmtu = PathMtu::new(now, config.mtu, true);
        }
        if config.congestion_control != self.config.congestion_control {
            self.cc = cc::from_config(config.congestion_control, now, self.mtu());
        }
        self.config = config;
        self.update_rate();
    }

    fn update_rate(&mut self) {
        let rate = pacing_rate(&self.config, self.cc.as_ref());
        if rate != self.pacer.rate() {
            self.pacer.set_rate(rate, self.mtu());
        }
    }

    /// True if the congestion window lets another packet go (always at a fixed rate).
    fn window_open(&self) -> bool {
        self.config.send_rate_min == self.config.send_rate_max
            || self.sent.bytes_in_flight < self.cc.window()
    }

    /// Writes the next packet for this connection into `buf`, if any is due.
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.tx_paused || self.amplification_blocked() {
            return None;
        }
        // An address being validated gets at most its amplification budget.
        let len = self.amplification_budget().min(buf.len());
        let n = self.poll_transmit_inner(now, &mut buf[..len])?;
        self.on_path_sent(n);
        Some(n)
    }

    /// True while an unvalidated address has had all the bytes it may get: nothing is sent
    /// until it sends more (or answers the challenge).
    pub(crate) fn amplification_blocked(&self) -> bool {
        self.amplification_budget() < MIN_AMPLIFICATION_ROOM
    }

    fn poll_transmit_inner(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.phase == Phase::Connected
            && let Some(size) = self.pmtu.probe_due(now)
            && size <= buf.len()
            && self.window_open()
            && self.pacer.can_send(now)
        {
            return self.build_probe(now, &mut buf[..size]);
        }
        let mtu = self.mtu().min(buf.len());
        let buf = &mut buf[..mtu];
        if self.close_via_control {
            // Closed before keys existed (or the handshake failed): one unauthenticated close.
            self.close_via_control = false;
            if self.phase == Phase::FinWait {
                self.phase = Phase::Dead;
            }
            if self.role == Role::Client && self.cookie.is_none() {
                return None; // the server never heard of us
            }
            let repr = ControlRepr::Closed {
                to_conn_id: self.remote_id,
                from_conn_id: self.local_id,
                reason: self.end_reason.0,
                debug: self.end_debug.as_bytes(),
            };
            return repr.emit(buf);
        }
        match self.phase {
            Phase::Handshake => return self.poll_handshake(now, buf),
            Phase::AwaitAccept | Phase::Dead => return None,
            _ => {}
        }
        if self.connect_ok_pending {
            self.connect_ok_pending = false;
            let held =
                (now - self.request_received_at).as_micros().min(u128::from(u32::MAX)) as u32;
            let repr = ControlRepr::ConnectOk {
                version: wire::PROTOCOL_VERSION,
                client_conn_id: self.remote_id,
                server_conn_id: self.local_id,
                echo_timestamp: self.request_timestamp,
                server_delay_us: held,
                crypto: &self.answer,
            };
            return repr.emit(buf);
        }
        self.build_data_packet(now, buf)
    }

    fn poll_handshake(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if now < self.next_handshake_send || self.merge_from.is_some() {
            return None;
        }
        self.next_handshake_send = now + HANDSHAKE_RETRY;
        self.handshake_sent_at = now;
        let repr = match self.cookie {
            None => ControlRepr::ChallengeRequest {
                version: wire::PROTOCOL_VERSION,
                client_conn_id: self.local_id,
                timestamp: now.as_micros(),
            },
            Some(cookie) => ControlRepr::ConnectRequest {
                version: wire::PROTOCOL_VERSION,
                client_conn_id: self.local_id,
                cookie,
                timestamp: now.as_micros(),
                crypto: self.client_hs.as_ref().map_or(&[][..], |h| &h.offer),
            },
        };
        repr.emit(buf)
    }

    fn build_data_packet(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let sending_data = matches!(self.phase, Phase::Connected | Phase::Linger);
        let ack_due = self.recv_tracker.ack_due(now);
        let close = self.close_frame_pending && self.remote_id != 0;
        let ping = self.ping_pending && sending_data;
        let credit = self.credit_due();
        let challenge = if sending_data { self.path_challenge_due(now) } else { None };
        let response = self.path_response_due().filter(|_| sending_data);
        let mut can_data = false;
        let mut want_data = false;
        if sending_data {
            let retx = self.send_lanes.iter().any(|l| l.has_retransmit());
            let nagle_ok = self.nagle_ready_at(now).is_some_and(|t| t <= now);
            let new = nagle_ok && self.has_sendable();
            want_data = retx || new;
            if want_data {
                self.update_rate();
                can_data = self.window_open() && self.pacer.can_send(now);
            }
        }
        if !(ack_due
            || close
            || ping
            || credit
            || challenge.is_some()
            || response.is_some()
            || (want_data && can_data))
        {
            return None;
        }
        let (pn, limit) = self.take_packet_number(now, buf.len())?;
        let mut w = Writer::new(&mut buf[..limit]);
        self.write_header(&mut w, pn)?;
        let header_len = w.len();

        let mut eliciting = false;
        let mut record = SentPacket::new(now, 0, false);
        // Acks ride on every packet when something is unacked.
        if self.recv_tracker.ack_pending {
            let delay = self.recv_tracker.ack_ranges(now, &mut self.ack_scratch);
            let mut n = self.ack_scratch.len();
            while n > 0 && AckFrame::buffer_len(delay, &self.ack_scratch[..n]) > w.remaining() / 2 {
                n -= 1;
            }
            if n > 0 && AckFrame::emit(&mut w, delay, &self.ack_scratch[..n]).is_some() {
                self.recv_tracker.on_ack_sent();
            }
        }
        if self.quality.report_pending
            && let Some(q) = self.quality.permille
            && (Frame::Stats { quality_permille: q }).emit(&mut w).is_some()
        {
            self.quality.report_pending = false;
        }
        if let Some(data) = response
            && (Frame::PathResponse { data }).emit(&mut w).is_some()
        {
            self.on_path_response_sent();
            eliciting = true;
        }
        if let Some(data) = challenge
            && (Frame::PathChallenge { data }).emit(&mut w).is_some()
        {
            self.on_path_challenge_sent(now);
            eliciting = true;
        }
        if credit {
            let window = self.credit_window();
            if self.recv_credit.write(&mut w, window) {
                record.has_credit = true;
                eliciting = true;
            }
        }
        if close {
            let debug = self.end_debug.as_bytes();
            let f = Frame::Close {
                reason: self.end_reason.0,
                debug: &debug[..debug.len().min(wire::MAX_DEBUG_LEN)],
            };
            if f.emit(&mut w).is_some() {
                self.close_frame_pending = false;
                record.has_close = true;
                eliciting = true;
                // Resent on loss through the ack machinery; also on a timer in case nothing
                // comes back at all.
                self.close_resend_at = Some(now + self.sent.rtt.rto());
            }
        }
        if want_data && can_data {
            eliciting |= self.write_segments(&mut w, &mut record, now);
        }
        if !eliciting && ping {
            w.u8(0x01)?;
            eliciting = true;
        }
        if eliciting {
            self.ping_pending = false;
        }
        // Tell the peer which of our packets it may stop acking (every packet may carry it:
        // a side that only sends acks needs none back, and says so).
        let lowest = self.sent.lowest_needed().min(pn);
        if lowest != self.last_stop_waiting_sent && w.remaining() > wire::varint::MAX_LEN {
            let _ = (Frame::StopWaiting { delta: pn - lowest }).emit(&mut w);
            self.last_stop_waiting_sent = lowest;
        }
        if w.len() == header_len {
            // Nothing fit after all (tiny MTU): give the packet number back.
            self.sent.next_pn -= 1;
            return None;
        }
        let payload_end = w.len();
        record.ack_eliciting = eliciting;
        let total = self.finish_packet(now, pn, buf, header_len, payload_end, record);
        if want_data
            && can_data
            && !self.send_lanes.iter().any(|l| l.has_new() || l.has_retransmit())
        {
            // The application has nothing more to send: what is in flight measures what it
            // offered, not what the path carries.
            self.sent.mark_app_limited();
        }
        self.nagle_after_packet();
        Some(total)
    }

    /// The next packet number and the room for header and frames in a buffer of `len` bytes,
    /// or `None` (the session key's packet limit: the connection ends).
    fn take_packet_number(&mut self, now: Instant, len: usize) -> Option<(u64, usize)> {
        let limit = len.checked_sub(self.protection.tag_len())?;
        if self.prepare_seal(self.sent.next_pn).is_err() {
            // The key is at its limit and could not be updated (the peer never confirmed our
            // last update): end cleanly rather than weaken the AEAD.
            self.problem(now, EndReason::MISC_GENERIC, "Packet limit of the session key reached");
            return None;
        }
        Some((self.sent.take_pn(), limit))
    }

    fn write_header(&self, w: &mut Writer<'_>, pn: u64) -> Option<()> {
        let pn_len = wire::encode_packet_number_len(pn, self.sent.largest_acked);
        let key_phase = self.key_update.send_phase();
        DataHeaderRepr { dst_conn_id: self.remote_id, truncated_pn: pn, pn_len, key_phase }.emit(w)
    }

    /// Seals packet `pn` (its frames end at `payload_end`), records it for loss detection,
    /// pacing and congestion control; returns its size.
    fn finish_packet(
        &mut self,
        now: Instant,
        pn: u64,
        buf: &mut [u8],
        header_len: usize,
        payload_end: usize,
        mut record: SentPacket,
    ) -> usize {
        let total = self.seal(pn, buf, header_len, payload_end);
        record.size = total as u32;
        let eliciting = record.ack_eliciting;
        self.sent.on_sent(pn, record);
        self.out_meter.record(now, total);
        if eliciting {
            self.pacer.on_sent(total);
            self.cc.on_sent(now, total as u64, self.sent.bytes_in_flight);
        }
        total
    }

    /// A path MTU probe of `buf.len()` bytes: a ping padded to the size under test.
    fn build_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let (pn, limit) = self.take_packet_number(now, buf.len())?;
        let mut w = Writer::new(&mut buf[..limit]);
        self.write_header(&mut w, pn)?;
        let header_len = w.len();
        w.u8(0x01)?; // ping
        w.zeros(w.remaining())?; // a padding frame to the end
        let payload_end = w.len();
        let mut record = SentPacket::new(now, 0, true);
        record.is_probe = true;
        self.pmtu.on_probe_sent(pn);
        Some(self.finish_packet(now, pn, buf, header_len, payload_end, record))
    }

    fn seal(&mut self, pn: u64, buf: &mut [u8], header_len: usize, payload_end: usize) -> usize {
        match &self.protection {
            Protection::None => payload_end,
            Protection::Keys(k) => {
                let (header, body) = buf.split_at_mut(header_len);
                // The writer left room for the tag (limit = buffer - tag).
                header_len + k.send.seal_in_place(pn, header, body, payload_end - header_len)
            }
        }
    }

    // ---------------------------------------------------------------- status

    pub(crate) fn info(&self, description: String) -> ConnectionInfo<A> {
        ConnectionInfo {
            state: self.state(),
            remote: self.remote.clone(),
            listen_socket: self.listen_socket,
            user_data: self.user_data,
            end_reason: self.end_reason,
            end_debug: self.end_debug.clone(),
            description,
            name: self.name.clone(),
            encrypted: self.protection.is_encrypted(),
            transport_encrypted: self.transport_encrypted,
            authenticated: self.authenticated,
            remote_identity: self.remote_identity.map(|i| text!(i)),
            relayed: self.relayed,
        }
    }

    pub(crate) fn quick_status(&mut self, now: Instant) -> QuickStatus {
        self.out_meter.roll(now);
        self.in_meter.roll(now);
        self.quality.roll(now);
        let rate = self.pacer.rate();
        let lanes: Vec<LaneStatus> = self.lane_status();
        let pending_reliable = lanes.iter().map(|l| l.pending_reliable).sum();
        let pending_unreliable = lanes.iter().map(|l| l.pending_unreliable).sum();
        QuickStatus {
            state: Some(self.state()),
            ping_ms: self
                .sent
                .rtt
                .smoothed
                .map_or(-1, |r| r.as_millis().min(i32::MAX as u128) as i32),
            quality_local: self.quality.permille.map_or(-1.0, |q| f32::from(q) / 1000.0),
            quality_remote: self.remote_quality.map_or(-1.0, |q| f32::from(q) / 1000.0),
            out_packets_per_sec: self.out_meter.packets_per_sec,
            out_bytes_per_sec: self.out_meter.bytes_per_sec,
            in_packets_per_sec: self.in_meter.packets_per_sec,
            in_bytes_per_sec: self.in_meter.bytes_per_sec,
            send_rate_bytes_per_sec: rate,
            bandwidth_estimate_bytes_per_sec: self.cc.bandwidth_estimate(),
            congestion_window: self.cc.window(),
            pending_unreliable,
            pending_reliable,
            sent_unacked_reliable: lanes.iter().map(|l| l.sent_unacked_reliable).sum(),
            queue_time: self.pacer.time_for(pending_reliable + pending_unreliable),
            packets_sent: self.sent.next_pn,
            packets_lost: self.sent.lost_packets,
            bytes_retransmitted: self.bytes_retransmitted,
            lanes,
        }
    }

    pub(crate) fn detailed_status(&mut self, now: Instant) -> String {
        // Built with `text!` rather than `format!` (see `crate::text`); Fixed and DurationText
        // print as `{:.N}` and `{:?}` would, without core's float code.
        let q = self.quick_status(now);
        let rtt_min = match self.sent.rtt.min {
            Some(min) => text!("Some(", DurationText(min), ")"),
            None => "None".into(),
        };
        let (ql, qr) = (Fixed(q.quality_local.into(), 3), Fixed(q.quality_remote.into(), 3));
        let mut s = text!(
            "state: ",
            self.state().name(),
            " (phase ",
            self.phase.name(),
            ")\n",
            "ping: ",
            q.ping_ms,
            " ms (rtt var ",
            self.sent.rtt.var.as_micros() as u64,
            " µs, min ",
            rtt_min,
            ")\n",
            "quality: local ",
            ql,
            " remote ",
            qr,
            "\n",
            self.out_meter.status_line("out"),
            self.in_meter.status_line("in"),
            "send rate: ",
            q.send_rate_bytes_per_sec,
            " B/s (min ",
            self.config.send_rate_min,
            " max ",
            self.config.send_rate_max,
            ")\n",
            "congestion: ",
            self.cc.describe(),
            "\n",
            "pending: reliable ",
            q.pending_reliable,
            " B, unreliable ",
            q.pending_unreliable,
            " B, unacked ",
            q.sent_unacked_reliable,
            " B, queue time ",
            DurationText(q.queue_time),
            "\n",
            "packets: next ",
            self.sent.next_pn,
            " lost ",
            self.sent.lost_packets,
            " in flight ",
            self.sent.bytes_in_flight,
            " B, tracked ",
            self.sent.tracked(),
            "\n",
            "receive queue: ",
            self.recv_queue.len(),
            " messages, ",
            self.recv_queue_bytes,
            " B; dropped ",
            self.dropped_packets,
            " refused ",
            self.refused_packets,
            " unreliable dropped ",
            self.unreliable.dropped,
            "\n",
            "keys: ",
            self.key_update.updates,
            " updates, phase ",
            u8::from(self.key_update.send_phase()),
            "\n",
            self.path_status(),
            "next timer: ",
            self.next_timer(now).map_or("none", |(t, _)| t.name()),
            "\n",
            "flow: held ",
            self.recv_credit.held(),
            " B of the credit granted; peer credit left ",
            self.conn_credit_room(),
            " B\n",
        );
        for (i, l) in q.lanes.iter().enumerate() {
            let sl = &self.send_lanes[i];
            s.push_str(&text!(
                "lane ",
                i,
                ": priority ",
                sl.priority,
                " weight ",
                sl.weight,
                " pending rel ",
                l.pending_reliable,
                " unrel ",
                l.pending_unreliable,
                " unacked ",
                l.sent_unacked_reliable,
                " queue ",
                DurationText(l.queue_time),
                "\n",
            ));
        }
        s
    }

    /// Bytes of memory this connection holds in buffers (for accounting and tests).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.send_lanes.iter().map(|l| l.buffered_bytes()).sum::<usize>()
            + self.recv_lanes.iter().map(|l| l.buffered()).sum::<usize>()
            + self.unreliable.buffered()
            + self.recv_queue_bytes
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }
}

/// What one round of loss detection declared lost.
#[derive(Debug, Default)]
struct Losses {
    /// Lost packets other than probes, their bytes and the newest one's send time.
    packets: u64,
    bytes: u64,
    newest: Instant,
    /// Of those, packets above the base size.
    large: u32,
    close: bool,
    credit: bool,
    probe: bool,
}

impl Losses {
    /// Counts a lost packet and queues its segments for retransmission.
    fn add(&mut self, p: &SentPacket, lanes: &mut [SendLane], pmtu: &PathMtu) {
        for s in p.segs() {
            if let Some(l) = lanes.get_mut(usize::from(s.lane)) {
                l.on_lost(s.offset, u64::from(s.len));
            }
        }
        self.close |= p.has_close;
        self.credit |= p.has_credit;
        if p.is_probe {
            self.probe = true;
            return;
        }
        self.packets += 1;
        self.bytes += u64::from(p.size);
        self.newest = self.newest.max(p.time);
        self.large += u32::from(pmtu.is_large(p.size as usize));
    }
}

/// The pacing rate: the controller's, clamped to `[SendRateMin, SendRateMax]`; exactly the
/// maximum when the two are equal (the reference's fixed rate).
fn pacing_rate(config: &ConnectionConfig, cc: &dyn CongestionController) -> u64 {
    if config.send_rate_min == config.send_rate_max {
        return config.send_rate_max;
    }
    cc.pacing_rate().clamp(config.send_rate_min, config.send_rate_max)
}

fn truncate_debug(s: &str) -> String {
    let mut end = s.len().min(wire::MAX_DEBUG_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // `get` rather than indexing: the same cut, without the panic path's formatting code.
    s.get(..end).unwrap_or_default().to_string()
}
