//! Acknowledgements: which packets we received (and must ack), which we sent (and wait to
//! hear about), RTT estimation and loss detection.
//!
//! Loss detection follows RFC 9002: a packet is lost when a packet sent at least
//! [`PACKET_THRESHOLD`] later was acked, or when it is older than 9/8 of the RTT and a later
//! packet was acked; and when acks stop altogether, the retransmission timeout declares the
//! outstanding packets lost (GNS: `3 × RTT + 60 ms`; ours adapts to RTT variance instead).
//! Retransmissions always go in new packets with new numbers: we ack packets, not data.

use crate::prelude::*;
use core::time::Duration;

use super::ranges::RangeSet;
use crate::time::Instant;

/// A packet is lost once a packet this many numbers later is acknowledged (RFC 9002 §6.1.1).
pub(crate) const PACKET_THRESHOLD: u64 = 3;
/// A packet declared lost and then acked was only reordered: the thresholds grow (the packet
/// threshold to the distance that fooled it, the time threshold by an eighth of the RTT), up
/// to these bounds, so that a path that reorders stops causing spurious retransmissions
/// (in the manner of RACK, RFC 8985).
const MAX_PACKET_THRESHOLD: u64 = 256;
/// Time threshold in eighths of the RTT: 9/8 at first (RFC 9002), at most twice the RTT.
const TIME_THRESHOLD_EIGHTHS: u32 = 9;
const MAX_TIME_THRESHOLD_EIGHTHS: u32 = 16;
/// Packets declared lost that are remembered for spotting spurious losses.
const RECENTLY_LOST: usize = 32;
/// Maximum time we hold an ack for reliable data before sending it. GNS waits up to 50 ms;
/// 5 ms keeps the sender's RTT and loss signals fresh at a cost of at most 200 tiny packets a
/// second, and acks usually ride on data packets anyway.
pub(crate) const MAX_ACK_DELAY: Duration = Duration::from_millis(5);
/// Ack at once after this many ack-eliciting packets (RFC 9000 says 2; bulk flows at high
/// rates spend far less CPU at 8 with no measurable loss of ack clock on our pacer).
pub(crate) const ACK_EVERY: u32 = 8;
/// Ranges remembered for acking. Older ones are forgotten (packets below them count as
/// duplicates), which bounds memory and ack size; the sender's stop-waiting frames normally
/// prune far earlier.
pub(crate) const MAX_RECV_RANGES: usize = 48;
/// Before any RTT sample, as GNS: one second.
pub(crate) const INITIAL_RTO: Duration = Duration::from_secs(1);
/// The RTO never backs off past 2^6 × RTO, so a long outage is probed at least every few
/// seconds and `TimeoutConnected` decides when to give up.
const MAX_RTO_BACKOFF: u32 = 6;
/// Reliable segments one packet may carry (packets are built to respect it).
pub(crate) const MAX_SEGS_PER_PACKET: usize = 8;

/// Packet numbers remembered for duplicate detection below the largest received: a packet
/// this far or further behind the largest is taken for a replay and dropped. 4,096 numbers cover
/// 40 ms of reordering at 100,000 packets a second; the bitmap costs 512 bytes per connection.
pub(crate) const REPLAY_WINDOW: u64 = 4096;

/// Which recent packet numbers arrived: a bitmap ring indexed by packet number modulo
/// [`REPLAY_WINDOW`], below the largest number seen.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    largest: Option<u64>,
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { largest: None, bits: [0; (REPLAY_WINDOW / 64) as usize] }
    }
}

impl ReplayWindow {
    fn bit(pn: u64) -> (usize, u64) {
        let i = pn % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// True if `pn` arrived already, or is too old to tell (a replay).
    pub(crate) fn seen(&self, pn: u64) -> bool {
        let Some(largest) = self.largest else { return false };
        if pn > largest {
            return false;
        }
        if largest - pn >= REPLAY_WINDOW {
            return true;
        }
        let (w, b) = Self::bit(pn);
        self.bits[w] & b != 0
    }

    /// Records `pn` (not [`seen`](Self::seen)).
    pub(crate) fn insert(&mut self, pn: u64) {
        match self.largest {
            Some(largest) if pn <= largest => {}
            Some(largest) if pn - largest < REPLAY_WINDOW => {
                // Numbers skipped on the way up did not arrive (yet).
                for skipped in largest + 1..pn {
                    let (w, b) = Self::bit(skipped);
                    self.bits[w] &= !b;
                }
                self.largest = Some(pn);
            }
            _ => {
                self.bits = [0; (REPLAY_WINDOW / 64) as usize];
                self.largest = Some(pn);
            }
        }
        let (w, b) = Self::bit(pn);
        self.bits[w] |= b;
    }
}

/// Packets received from the peer.
#[derive(Debug, Default)]
pub(crate) struct RecvTracker {
    /// Packet numbers to acknowledge.
    ranges: RangeSet,
    /// Packets below this are no longer acknowledged: the sender said it does not need them
    /// (stop waiting), or they fell out of the remembered ranges. Such a packet that arrives
    /// late is still taken (its unreliable data delivered, its reliable data used if still
    /// missing): duplicates are told by the replay window, not by the floor.
    floor: u64,
    /// Duplicate and replay detection.
    replay: ReplayWindow,
    pub(crate) largest: Option<u64>,
    largest_time: Instant,
    /// Ack-eliciting packets since our last ack.
    unacked_eliciting: u32,
    /// Send an ack by this time.
    pub(crate) ack_deadline: Option<Instant>,
    /// Something received that we have not acked yet (ack-eliciting or not).
    pub(crate) ack_pending: bool,
}

impl RecvTracker {
    /// True if `pn` was already received, or is older than the replay window.
    pub(crate) fn is_duplicate(&self, pn: u64) -> bool {
        self.replay.seen(pn)
    }

    /// Records `pn`; the caller checked [`is_duplicate`](Self::is_duplicate).
    pub(crate) fn on_packet(&mut self, pn: u64, now: Instant, ack_eliciting: bool) {
        let gap = match self.largest {
            Some(l) => pn != l + 1,
            None => pn != 0,
        };
        self.replay.insert(pn);
        // Acked even below the floor: the sender gave up on it, but learns that the path
        // only reordered it (and stops declaring such packets lost so early).
        self.ranges.insert(pn..pn.saturating_add(1));
        if self.largest.is_none_or(|l| pn > l) {
            self.largest = Some(pn);
            self.largest_time = now;
        }
        while self.ranges.len() > MAX_RECV_RANGES {
            self.ranges.drop_first();
            self.floor = self.ranges.first().map_or(self.floor, |r| r.start);
        }
        if ack_eliciting {
            // Packets that ask for no ack (pure acks) get none: acking them would make two
            // idle peers ack each other forever.
            self.ack_pending = true;
            self.unacked_eliciting += 1;
            // Out-of-order arrival is loss evidence for the sender: tell it at once.
            let deadline =
                if gap || self.unacked_eliciting >= ACK_EVERY { now } else { now + MAX_ACK_DELAY };
            self.ack_deadline = Some(self.ack_deadline.map_or(deadline, |d| d.min(deadline)));
        }
    }

    /// The sender no longer needs acks below `lowest`.
    pub(crate) fn on_stop_waiting(&mut self, lowest: u64) {
        if lowest > self.floor {
            self.floor = lowest;
            self.ranges.remove_below(lowest);
        }
    }

    /// True if an ack should go out now (on its own if need be).
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.ack_deadline.is_some_and(|d| d <= now)
    }

    /// Ranges to ack, highest first, as `(low, high)` inclusive, plus the ack delay.
    pub(crate) fn ack_ranges(&self, now: Instant, out: &mut Vec<(u64, u64)>) -> u64 {
        out.clear();
        for r in self.ranges.iter().rev().take(crate::wire::MAX_ACK_RANGES) {
            out.push((r.start, r.end - 1));
        }
        (now - self.largest_time).as_micros() as u64
    }

    /// An ack went out.
    pub(crate) fn on_ack_sent(&mut self) {
        self.unacked_eliciting = 0;
        self.ack_deadline = None;
        self.ack_pending = false;
    }
}

/// A reliable segment carried by a sent packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SegRef {
    pub(crate) lane: u16,
    pub(crate) len: u32,
    pub(crate) offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Outstanding,
    Acked,
    Lost,
}

/// What we remember of a sent packet until it is acked or lost.
#[derive(Debug, Clone)]
pub(crate) struct SentPacket {
    pub(crate) time: Instant,
    pub(crate) size: u32,
    pub(crate) ack_eliciting: bool,
    pub(crate) has_close: bool,
    /// Carried flow-control limits (said again if it is lost).
    pub(crate) has_credit: bool,
    /// A path MTU probe.
    pub(crate) is_probe: bool,
    pub(crate) nsegs: u8,
    pub(crate) segs: [SegRef; MAX_SEGS_PER_PACKET],
    fate: Fate,
    /// Delivery-rate sampling: the connection's delivered bytes, and the times of the last ack
    /// and of the send of the packet it acked, when this packet was sent.
    delivered: u64,
    delivered_time: Instant,
    first_sent_time: Instant,
    /// Sent while the application had less to send than the controller allowed.
    app_limited: bool,
}

impl SentPacket {
    pub(crate) fn new(time: Instant, size: usize, ack_eliciting: bool) -> Self {
        SentPacket {
            time,
            size: size as u32,
            ack_eliciting,
            has_close: false,
            has_credit: false,
            is_probe: false,
            nsegs: 0,
            segs: [SegRef::default(); MAX_SEGS_PER_PACKET],
            fate: Fate::Outstanding,
            delivered: 0,
            delivered_time: time,
            first_sent_time: time,
            app_limited: false,
        }
    }
    pub(crate) fn segs(&self) -> &[SegRef] {
        &self.segs[..usize::from(self.nsegs)]
    }
}

/// RTT estimator (RFC 6298 / RFC 9002 §5).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rtt {
    pub(crate) smoothed: Option<Duration>,
    pub(crate) var: Duration,
    pub(crate) min: Option<Duration>,
    pub(crate) latest: Duration,
}

impl Rtt {
    pub(crate) fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        let min = self.min.map_or(sample, |m| m.min(sample));
        self.min = Some(min);
        // Subtract the peer's hold time unless that would go below the minimum seen.
        let adjusted = if sample >= min + ack_delay { sample - ack_delay } else { sample };
        match self.smoothed {
            None => {
                self.smoothed = Some(adjusted);
                self.var = adjusted / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(adjusted);
                self.var = (self.var * 3 + diff) / 4;
                self.smoothed = Some((s * 7 + adjusted) / 8);
            }
        }
    }
    /// Smoothed RTT, or 1/3 of the initial RTO before any sample.
    pub(crate) fn get(&self) -> Duration {
        self.smoothed.unwrap_or(INITIAL_RTO / 3)
    }
    /// Retransmission timeout before backoff.
    pub(crate) fn rto(&self) -> Duration {
        match self.smoothed {
            None => INITIAL_RTO,
            Some(s) => s + (self.var * 4).max(Duration::from_millis(1)) + MAX_ACK_DELAY,
        }
    }
}

/// Result of processing an ack frame.
#[derive(Debug, Default)]
pub(crate) struct AckOutcome {
    pub(crate) newly_acked: u32,
    pub(crate) acked_bytes: u64,
    pub(crate) close_acked: bool,
    /// Size of the largest packet newly acked.
    pub(crate) max_acked_size: u32,
    /// A delivery-rate sample, from the most recently sent packet newly acked.
    pub(crate) rate: Option<RateSample>,
    /// The RTT this ack measured, less the peer's ack delay.
    pub(crate) rtt: Option<Duration>,
    /// A path MTU probe was among the packets acked.
    pub(crate) probe_acked: bool,
}

/// A delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation): the bytes delivered
/// between a packet's send and its ack, over the longer of the send and the ack intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes per second.
    pub rate: u64,
    /// The packet was sent while the application had less to send than allowed: the rate
    /// says how much was offered, not what the path carries.
    pub app_limited: bool,
    /// The connection's delivered bytes when the sampled packet was sent (marks rounds).
    pub prior_delivered: u64,
    /// The interval the rate was measured over.
    pub interval: Duration,
}

/// Packets we sent that are not yet acked or declared lost, indexed by packet number.
#[derive(Debug, Default)]
pub(crate) struct SentPackets {
    base: u64,
    q: alloc::collections::VecDeque<SentPacket>,
    pub(crate) next_pn: u64,
    pub(crate) largest_acked: Option<u64>,
    pub(crate) bytes_in_flight: u64,
    pub(crate) rtt: Rtt,
    /// Consecutive retransmission timeouts without an ack.
    pub(crate) rto_count: u32,
    /// When the oldest outstanding packet below the largest acked becomes lost by time.
    loss_time: Option<Instant>,
    pub(crate) time_of_last_eliciting: Option<Instant>,
    /// Packets declared lost (for statistics).
    pub(crate) lost_packets: u64,
    /// Of those, acked later: they were only reordered.
    pub(crate) spurious_losses: u64,
    /// Reordering thresholds in force (0: the initial ones, see [`PACKET_THRESHOLD`]).
    packet_threshold: u64,
    time_threshold_eighths: u32,
    /// The packets most recently declared lost, with the largest acked number then: an ack
    /// for one of them shows a spurious loss (their records are gone by then). A ring.
    recently_lost: [Option<(u64, u64)>; RECENTLY_LOST],
    recently_lost_next: usize,
    /// Bytes of ack-eliciting packets acknowledged so far.
    pub(crate) delivered: u64,
    /// When `delivered` last grew.
    delivered_time: Instant,
    /// Send time of the packet most recently acked.
    first_sent_time: Instant,
    /// Samples are app-limited until `delivered` passes this (0: not app-limited).
    app_limited_until: u64,
}

impl SentPackets {
    /// The number for the next packet.
    pub(crate) fn take_pn(&mut self) -> u64 {
        let pn = self.next_pn;
        self.next_pn += 1;
        pn
    }

    /// Records a sent packet numbered `pn` (the value `take_pn` returned).
    pub(crate) fn on_sent(&mut self, pn: u64, p: SentPacket) {
        if self.q.is_empty() {
            self.base = pn;
        }
        // Packet numbers are taken in order and each is recorded once.
        debug_assert_eq!(pn, self.base + self.q.len() as u64);
        let mut p = p;
        if p.ack_eliciting {
            if self.bytes_in_flight == 0 {
                // Nothing in flight: the sample interval starts now, not at the last ack.
                self.first_sent_time = p.time;
                self.delivered_time = p.time;
            }
            p.delivered = self.delivered;
            p.delivered_time = self.delivered_time;
            p.first_sent_time = self.first_sent_time;
            p.app_limited = self.app_limited_until != 0;
            self.time_of_last_eliciting = Some(p.time);
            self.bytes_in_flight += u64::from(p.size);
        }
        self.q.push_back(p);
    }

    /// The application has nothing more to send now: samples of packets in flight until then
    /// measure what it offered, not what the path carries.
    pub(crate) fn mark_app_limited(&mut self) {
        self.app_limited_until = (self.delivered + self.bytes_in_flight).max(1);
    }

    /// The lowest packet number we still want to hear about (for stop-waiting).
    pub(crate) fn lowest_needed(&self) -> u64 {
        self.q
            .iter()
            .position(|p| p.fate == Fate::Outstanding)
            .map_or(self.next_pn, |i| self.base + i as u64)
    }

    pub(crate) fn has_outstanding_eliciting(&self) -> bool {
        self.bytes_in_flight > 0
    }

    fn resolve(p: &mut SentPacket, fate: Fate, in_flight: &mut u64) {
        if p.ack_eliciting {
            *in_flight -= u64::from(p.size);
        }
        p.fate = fate;
    }

    /// Processes the ranges of an ack frame. `on_seg` sees each newly acked reliable segment.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        largest: u64,
        ack_delay: Duration,
        ranges: impl Iterator<Item = (u64, u64)>,
        mut on_seg: impl FnMut(SegRef),
    ) -> AckOutcome {
        let mut out = AckOutcome::default();
        if largest >= self.next_pn {
            // Acks for packets never sent: a confused or hostile peer. Ignore the frame.
            return out;
        }
        let mut rtt_sample = None;
        let (mut spurious, mut reordered_by) = (0u64, 0u64);
        // The most recently sent packet newly acked: (send time, delivered, delivered time,
        // first sent time, app-limited).
        let mut newest: Option<(Instant, u64, Instant, Instant, bool)> = None;
        let end = self.base + self.q.len() as u64;
        let mut acked_ranges = [(0u64, 0u64); 8];
        let mut n_ranges = 0;
        for (low, high) in ranges {
            if n_ranges < acked_ranges.len() {
                acked_ranges[n_ranges] = (low, high);
                n_ranges += 1;
            }
            let lo = low.max(self.base);
            let hi = high.min(end.saturating_sub(1));
            if lo > hi || end == self.base {
                continue;
            }
            for pn in lo..=hi {
                let Some(p) = self.q.get_mut((pn - self.base) as usize) else { continue };
                if p.fate == Fate::Acked {
                    continue;
                }
                // A packet we declared lost may still be acked: its data was resent anyway,
                // but acking the segments lets the sender stop retransmitting sooner.
                let was_outstanding = p.fate == Fate::Outstanding;
                let (size, eliciting, time, close) = (p.size, p.ack_eliciting, p.time, p.has_close);
                let p_is_probe = p.is_probe;
                if eliciting {
                    self.delivered += u64::from(size);
                    if newest.is_none_or(|n| time >= n.0) {
                        newest = Some((
                            time,
                            p.delivered,
                            p.delivered_time,
                            p.first_sent_time,
                            p.app_limited,
                        ));
                    }
                }
                let nsegs = usize::from(p.nsegs);
                let segs = p.segs;
                if was_outstanding {
                    Self::resolve(p, Fate::Acked, &mut self.bytes_in_flight);
                } else {
                    p.fate = Fate::Acked;
                }
                for s in &segs[..nsegs] {
                    on_seg(*s);
                }
                out.newly_acked += 1;
                out.acked_bytes += u64::from(size);
                out.close_acked |= close;
                out.probe_acked |= p_is_probe;
                out.max_acked_size = out.max_acked_size.max(size);
                if pn == largest && eliciting {
                    rtt_sample = Some(now - time);
                }
            }
        }
        // Packets declared lost that this ack covers were only reordered.
        for entry in &mut self.recently_lost {
            let Some((pn, largest_then)) = *entry else { continue };
            if acked_ranges[..n_ranges].iter().any(|&(lo, hi)| (lo..=hi).contains(&pn)) {
                spurious += 1;
                reordered_by = reordered_by.max(largest_then.saturating_sub(pn) + 1);
                *entry = None;
            }
        }
        if spurious > 0 {
            self.spurious_losses += spurious;
            self.packet_threshold =
                self.packet_threshold().max(reordered_by).min(MAX_PACKET_THRESHOLD);
            self.time_threshold_eighths =
                (self.time_threshold_eighths() + 1).min(MAX_TIME_THRESHOLD_EIGHTHS);
        }
        if out.newly_acked == 0 {
            return out;
        }
        if let Some((sent, prior, prior_time, first_sent, app_limited)) = newest {
            self.delivered_time = now;
            self.first_sent_time = sent;
            let interval = (sent - first_sent).max(now - prior_time);
            let us = interval.as_micros() as u64;
            if let Some(rate) = (self.delivered - prior).saturating_mul(1_000_000).checked_div(us) {
                out.rate = Some(RateSample { rate, app_limited, prior_delivered: prior, interval });
            }
            if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
                self.app_limited_until = 0;
            }
        }
        if self.largest_acked.is_none_or(|l| largest > l) {
            self.largest_acked = Some(largest);
            if let Some(s) = rtt_sample {
                self.rtt.update(s, ack_delay);
                let adjusted = s.saturating_sub(ack_delay);
                out.rtt = Some(if adjusted.is_zero() { s } else { adjusted });
            }
        }
        self.rto_count = 0;
        self.pop_resolved();
        out
    }

    /// Declares lost what RFC 9002's thresholds say is lost; `on_lost` sees each lost packet.
    pub(crate) fn detect_lost(&mut self, now: Instant, mut on_lost: impl FnMut(&SentPacket)) {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else { return };
        let rtt = self.rtt.get().max(self.rtt.latest);
        let loss_delay = (rtt * self.time_threshold_eighths() / 8).max(Duration::from_millis(1));
        let packet_threshold = self.packet_threshold();
        let lost_send_time = now - loss_delay;
        let mut inflight = self.bytes_in_flight;
        let mut lost = 0;
        for (i, p) in self.q.iter_mut().enumerate() {
            let pn = self.base + i as u64;
            if pn >= largest {
                break;
            }
            if p.fate != Fate::Outstanding {
                continue;
            }
            if !p.ack_eliciting {
                // Ack-only packets carry nothing to recover; forget them quietly.
                p.fate = Fate::Lost;
                continue;
            }
            if p.time <= lost_send_time || largest - pn >= packet_threshold {
                Self::resolve(p, Fate::Lost, &mut inflight);
                lost += 1;
                on_lost(p);
                self.recently_lost[self.recently_lost_next] = Some((pn, largest));
                self.recently_lost_next = (self.recently_lost_next + 1) % RECENTLY_LOST;
            } else {
                let t = p.time + loss_delay;
                self.loss_time = Some(self.loss_time.map_or(t, |x: Instant| x.min(t)));
            }
        }
        self.bytes_in_flight = inflight;
        self.lost_packets += lost;
        self.pop_resolved();
    }

    fn packet_threshold(&self) -> u64 {
        if self.packet_threshold == 0 { PACKET_THRESHOLD } else { self.packet_threshold }
    }

    fn time_threshold_eighths(&self) -> u32 {
        if self.time_threshold_eighths == 0 {
            TIME_THRESHOLD_EIGHTHS
        } else {
            self.time_threshold_eighths
        }
    }

    /// When the loss-detection timer (time threshold or RTO) fires next.
    pub(crate) fn loss_timer(&self) -> Option<Instant> {
        if let Some(t) = self.loss_time {
            return Some(t);
        }
        let last = self.time_of_last_eliciting?;
        if !self.has_outstanding_eliciting() {
            return None;
        }
        Some(last + self.rto_backed_off())
    }

    pub(crate) fn rto_backed_off(&self) -> Duration {
        self.rtt.rto() * (1 << self.rto_count.min(MAX_RTO_BACKOFF))
    }

    /// The loss timer fired: either time-threshold losses or a retransmission timeout, which
    /// declares every outstanding packet lost. Returns true on an RTO (the caller then probes).
    pub(crate) fn on_loss_timer(
        &mut self,
        now: Instant,
        mut on_lost: impl FnMut(&SentPacket),
    ) -> bool {
        if self.loss_time.is_some_and(|t| t <= now) {
            self.detect_lost(now, on_lost);
            return false;
        }
        if self.loss_timer().is_none_or(|t| t > now) {
            return false;
        }
        let mut inflight = self.bytes_in_flight;
        let mut lost = 0;
        for p in self.q.iter_mut() {
            if p.fate == Fate::Outstanding && p.ack_eliciting {
                Self::resolve(p, Fate::Lost, &mut inflight);
                lost += 1;
                on_lost(p);
            }
        }
        self.bytes_in_flight = inflight;
        self.lost_packets += lost;
        self.rto_count += 1;
        // The timer restarts from the probe we are about to send.
        self.time_of_last_eliciting = Some(now);
        self.pop_resolved();
        true
    }

    fn pop_resolved(&mut self) {
        while self.q.front().is_some_and(|p| p.fate != Fate::Outstanding || !p.ack_eliciting) {
            self.q.pop_front();
            self.base += 1;
        }
        if self.q.is_empty() {
            self.base = self.next_pn;
        }
    }

    /// Packets we still track (for memory accounting).
    pub(crate) fn tracked(&self) -> usize {
        self.q.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn recv_tracker_ranges_and_floor() {
        let mut r = RecvTracker::default();
        for pn in [0, 1, 2, 5, 6, 9] {
            assert!(!r.is_duplicate(pn));
            r.on_packet(pn, t(1), true);
        }
        assert!(r.is_duplicate(5));
        let mut out = Vec::new();
        r.ack_ranges(t(1), &mut out);
        assert_eq!(out, vec![(9, 9), (5, 6), (0, 2)]);
        assert!(r.ack_due(t(1)), "gap forces an immediate ack");
        r.on_stop_waiting(6);
        r.ack_ranges(t(1), &mut out);
        assert_eq!(out, vec![(9, 9), (6, 6)]);
        assert!(!r.is_duplicate(3), "a late packet below the floor is still taken");
        r.on_packet(3, t(2), true);
        assert!(r.is_duplicate(3), "once");
        r.ack_ranges(t(2), &mut out);
        assert_eq!(out, vec![(9, 9), (6, 6), (3, 3)], "and acked, so the sender learns");
        // Far behind the largest: a replay.
        r.on_packet(9 + REPLAY_WINDOW, t(3), true);
        assert!(r.is_duplicate(8) && r.is_duplicate(9));
        assert!(!r.is_duplicate(10) && !r.is_duplicate(8 + REPLAY_WINDOW));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn loss_by_threshold_and_rto() {
        let mut s = SentPackets::default();
        for i in 0..6 {
            let pn = s.take_pn();
            s.on_sent(pn, SentPacket::new(t(i), 100, true));
        }
        // Ack 4 and 5 only: 0, 1, 2 are lost by packet threshold (5 - pn >= 3); 3 waits.
        let o = s.on_ack(t(50), 5, Duration::ZERO, [(4, 5)].into_iter(), |_| {});
        assert_eq!(o.newly_acked, 2);
        let mut lost = 0;
        s.detect_lost(t(50), |_| lost += 1);
        assert_eq!(lost, 3);
        assert!(s.loss_timer().is_some());
        // Time threshold: 9/8 RTT after 3 was sent, it is lost too.
        let deadline = s.loss_timer().unwrap();
        assert!(!s.on_loss_timer(deadline, |_| lost += 1));
        assert_eq!(lost, 4);
        assert_eq!(s.bytes_in_flight, 0);
        // RTO: an unacked packet is declared lost after the RTO.
        let pn = s.take_pn();
        s.on_sent(pn, SentPacket::new(t(100), 100, true));
        let at = s.loss_timer().unwrap();
        assert!(at > t(100));
        assert!(s.on_loss_timer(at, |_| lost += 1));
        assert_eq!(lost, 5);
        assert_eq!(s.rto_count, 1);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rtt_estimator() {
        let mut r = Rtt::default();
        assert_eq!(r.rto(), INITIAL_RTO);
        r.update(Duration::from_millis(100), Duration::ZERO);
        assert_eq!(r.get(), Duration::from_millis(100));
        for _ in 0..50 {
            r.update(Duration::from_millis(60), Duration::from_millis(10));
        }
        let s = r.get().as_millis();
        assert!((49..=61).contains(&s), "{s}");
        assert!(r.rto() < Duration::from_millis(100));
    }
}
