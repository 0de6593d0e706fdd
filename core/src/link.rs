//! One direction of a network path, as a model: the simulator's wire and the link conditioner.
//!
//! A [`Link`] takes datagrams in with [`Link::send`] and hands them back out with
//! [`Link::poll_deliver`] once they are due, after doing to them what a bad network does:
//! drop, delay, clump, reorder, duplicate and throttle. The deterministic simulator puts one
//! `Link` in each direction between two endpoints; the link conditioner that the fake
//! network config values switch on puts one on the send side and one on the receive side of a
//! real transport (the `_Send` and `_Recv` values of GNS). Both use this same model, so a bug
//! reproduced in the simulator is the bug seen over a conditioned real socket.
//!
//! Like the rest of the core it is sans-IO: it reads no clock (every call carries `now`), owns
//! no socket or timer, and draws every random choice from the [`Rng`] it is given. Equal seeds,
//! equal configs and equal call sequences give equal delivery traces, on every target: even
//! the exponential jitter uses a logarithm built from basic IEEE arithmetic rather than the
//! platform's `ln`. The only allocation is the in-flight queue itself.
//!
//! # What happens to a datagram
//!
//! [`Link::send`] takes each datagram through these stages, in this order; each stage that
//! drops it counts the drop in [`LinkStats`] and stops:
//!
//! 1. **MTU**: larger than [`LinkConfig::mtu`] → dropped (`dropped_mtu`).
//! 2. **Bottleneck** (when [`LinkConfig::rate`] is non-zero): a FIFO that serialises
//!    `size / rate` seconds per datagram. If the bytes waiting in it plus this datagram would
//!    exceed [`LinkConfig::queue_bytes`], tail drop (`dropped_queue`). Otherwise the datagram
//!    leaves the bottleneck when its last byte is serialised.
//! 3. **Loss**: random ([`LinkConfig::loss`], `lost_random`) and bursty
//!    ([`LinkConfig::burst_loss`], a Gilbert-Elliott chain stepped once per datagram that
//!    reaches this stage, `lost_burst`). Loss comes after the bottleneck because a real packet
//!    lost downstream still used the bottleneck's bandwidth.
//! 4. **Latency and jitter**: due at departure + [`LinkConfig::latency`] + a jitter sample, but
//!    never before the previous in-order datagram. Jitter therefore clumps packets and never
//!    reorders them, as in GNS; the same clamp keeps a live latency decrease from reordering.
//! 5. **Reorder**: with probability [`LinkConfig::reorder`] the datagram is due
//!    [`LinkConfig::reorder_delay`] later (`reordered`), so later datagrams overtake it. It does
//!    not move the in-order clamp of stage 4.
//! 6. **Duplicate**: with probability [`LinkConfig::duplicate`] a second copy is due uniformly
//!    in `[0, duplicate_delay_max]` after the first (`duplicated`).
//!
//! # Driving it
//!
//! Call [`Link::send`] as datagrams are produced. Whenever `now` reaches
//! [`Link::next_delivery`], drain [`Link::poll_deliver`] until it returns `None`. Datagrams come
//! out in due-time order; those due at the same instant come out in the order they were
//! scheduled (a duplicate right after its original). As everywhere in the core, `now` must not
//! go backwards between calls.
//!
//! ```
//! use core::time::Duration;
//! use lanewire_core::link::{Link, LinkConfig};
//! use lanewire_core::rng::Rng;
//! use lanewire_core::time::Instant;
//!
//! let config = LinkConfig { latency: Duration::from_millis(30), ..LinkConfig::ideal() };
//! let mut link = Link::new(config, Rng::seeded(1));
//! link.send(Instant::ZERO, 1200, "hello");
//! assert_eq!(link.next_delivery(), Some(Instant::from_millis(30)));
//! assert_eq!(link.poll_deliver(Instant::from_millis(29)), None);
//! assert_eq!(link.poll_deliver(Instant::from_millis(30)), Some("hello"));
//! ```
//!
//! # Units
//!
//! GNS takes loss, reorder, duplicate and jitter odds as percentages (0..=100); a `LinkConfig`
//! takes probabilities (0..=1), so divide by 100. GNS's millisecond values become
//! [`Duration`]s. Time here has microsecond resolution, like [`Instant`].

use alloc::collections::BinaryHeap;
use core::cmp::Ordering;
use core::fmt;
use core::time::Duration;

use crate::rng::Rng;
use crate::time::Instant;

/// Bottleneck queue capacity of [`LinkConfig::ideal`], so that turning a rate limit on from an
/// ideal config (a demo slider) gives a sane queue. 64 KiB is 44 full 1,472-byte datagrams, a
/// modest home-router buffer: 52 ms of queueing at 10 Mbit/s (1,250,000 B/s), 524 ms at
/// 1 Mbit/s.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

/// GNS's default `FakePacketJitter_*_Max` (100 ms), kept in [`LinkConfig::ideal`] so that
/// setting only `jitter_avg` behaves as setting only `FakePacketJitter_*_Avg` does in GNS.
const GNS_JITTER_MAX: Duration = Duration::from_millis(100);
/// GNS's default `FakePacketJitter_*_Pct` (75 %), as a probability; same reason.
const GNS_JITTER_PCT: f64 = 0.75;
/// GNS's default `FakePacketReorder_Time` (15 ms); same reason.
const GNS_REORDER_TIME: Duration = Duration::from_millis(15);
/// GNS's default `FakePacketDup_TimeMax` (10 ms); same reason.
const GNS_DUP_TIME_MAX: Duration = Duration::from_millis(10);

/// Rate arithmetic is in bytes and microseconds: serialising `n` bytes at `rate` B/s takes
/// `n * MICROS_PER_SEC / rate` microseconds.
const MICROS_PER_SEC: u64 = 1_000_000;

/// UDP payload of a full Ethernet frame: 1,500-byte IP MTU - 20 (IPv4) - 8 (UDP).
const ETHERNET_UDP_PAYLOAD: usize = 1472;
/// UDP payload over cellular: mobile carriers tunnel user traffic (GTP-U) and commonly clamp
/// the IP MTU near 1,428; 1,428 - 28 (IPv4 + UDP) = 1,400.
const CELLULAR_UDP_PAYLOAD: usize = 1400;
/// UDP payload that fits any IPv6 path: 1,280-byte minimum IPv6 MTU - 40 (IPv6) - 8 (UDP).
/// The "safe everywhere" size QUIC and DNS use; the `bad` preset assumes nothing better.
const MIN_IPV6_UDP_PAYLOAD: usize = 1232;

/// The Gilbert-Elliott two-state model of bursty loss.
///
/// A Markov chain with a *good* and a *bad* state is stepped once per datagram; the datagram
/// is then lost with the current state's loss probability. With `loss_in_bad = 1` and
/// `loss_in_good = 0` (the Gilbert model, see [`BurstLoss::gilbert`]) losses come in runs of
/// mean length `1 / p_bad_to_good`. GNS has no counterpart: its `FakePacketLoss_*` is
/// independent per packet, which is [`LinkConfig::loss`] here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    /// Probability, per datagram, of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Probability, per datagram, of moving from the bad back to the good state; the mean
    /// number of datagrams spent in the bad state is its inverse.
    pub p_bad_to_good: f64,
    /// Probability of losing a datagram while in the bad state.
    pub loss_in_bad: f64,
    /// Probability of losing a datagram while in the good state.
    pub loss_in_good: f64,
}

impl BurstLoss {
    /// The Gilbert model with a long-run loss rate `loss` (0..1) in runs of mean length
    /// `mean_run` datagrams (at least 1): everything is lost in the bad state, nothing in the
    /// good one. The inputs a slider would offer.
    pub fn gilbert(loss: f64, mean_run: f64) -> Self {
        let p_bad_to_good = 1.0 / mean_run.max(1.0);
        // Stationary share of the bad state is g / (g + b); solve g / (g + b) = loss for g.
        let loss = loss.clamp(0.0, 0.999_999);
        let p_good_to_bad = (loss * p_bad_to_good / (1.0 - loss)).min(1.0);
        BurstLoss { p_good_to_bad, p_bad_to_good, loss_in_bad: 1.0, loss_in_good: 0.0 }
    }

    /// The long-run fraction of datagrams this chain loses.
    pub fn mean_loss(&self) -> f64 {
        let (g, b) = (self.p_good_to_bad.clamp(0.0, 1.0), self.p_bad_to_good.clamp(0.0, 1.0));
        if g + b <= 0.0 {
            // The chain never leaves the good state it starts in.
            return self.loss_in_good.clamp(0.0, 1.0);
        }
        let bad = g / (g + b);
        bad * self.loss_in_bad.clamp(0.0, 1.0) + (1.0 - bad) * self.loss_in_good.clamp(0.0, 1.0)
    }

    /// True if this chain can never lose a datagram (starting, as a link does, in good).
    fn is_lossless(&self) -> bool {
        !is_on(self.loss_in_good) && (!is_on(self.loss_in_bad) || !is_on(self.p_good_to_bad))
    }
}

/// How a [`Link`] treats datagrams. Each field names its GNS config value.
///
/// Probabilities are in `0..=1`; [`LinkConfig::validate`] rejects values outside it. A `Link`
/// given an invalid config does not panic: probabilities act as clamped to `0..=1` (NaN as 0)
/// and a zero `queue_bytes` or `mtu` drops everything. Durations have microsecond resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay added to every datagram. GNS: `FakePacketLag_Send` /
    /// `FakePacketLag_Recv` (ms).
    pub latency: Duration,
    /// Mean of the exponentially distributed extra delay a jittered datagram gets; zero turns
    /// jitter off. Jitter clumps datagrams but never reorders them. GNS:
    /// `FakePacketJitter_Send_Avg` / `FakePacketJitter_Recv_Avg` (ms).
    pub jitter_avg: Duration,
    /// Cap on a single jitter sample. GNS: `FakePacketJitter_Send_Max` /
    /// `FakePacketJitter_Recv_Max` (ms, default 100).
    pub jitter_max: Duration,
    /// Probability that a datagram gets a jitter sample; the others get none of their own but
    /// still wait behind a jittered predecessor. GNS: `FakePacketJitter_Send_Pct` /
    /// `FakePacketJitter_Recv_Pct` (%, default 75).
    pub jitter_pct: f64,
    /// Probability that a datagram is lost, independently of all others. GNS:
    /// `FakePacketLoss_Send` / `FakePacketLoss_Recv` (%).
    pub loss: f64,
    /// Bursty loss on top of `loss`; `None` = off. No GNS counterpart.
    pub burst_loss: Option<BurstLoss>,
    /// Probability that a datagram is delivered twice. GNS: `FakePacketDup_Send` /
    /// `FakePacketDup_Recv` (%).
    pub duplicate: f64,
    /// The second copy is due uniformly in `[0, this]` after the first. GNS:
    /// `FakePacketDup_TimeMax` (ms, default 10).
    pub duplicate_delay_max: Duration,
    /// Probability that a datagram is held back by `reorder_delay`, so that later ones
    /// overtake it. GNS: `FakePacketReorder_Send` / `FakePacketReorder_Recv` (%).
    pub reorder: f64,
    /// The extra delay of a reordered datagram. GNS: `FakePacketReorder_Time` (ms, default 15).
    pub reorder_delay: Duration,
    /// Bottleneck bandwidth in bytes per second; 0 = unlimited. Each datagram takes
    /// `size / rate` to serialise, one after the other. GNS: `FakeRateLimit_Send_Rate` /
    /// `FakeRateLimit_Recv_Rate` (B/s), which GNS implements as a token bucket.
    pub rate: u64,
    /// Bytes the bottleneck may hold when `rate > 0`, counting what is left of the datagram
    /// being serialised; a datagram that would take it past this is tail-dropped. A datagram larger than this
    /// is always dropped. GNS's nearest value is `FakeRateLimit_*_Burst` (default 16 KiB), the
    /// token bucket's depth; GNS does not model a finite queue.
    pub queue_bytes: usize,
    /// Datagrams larger than this many bytes are dropped; `usize::MAX` = no limit. GNS has no
    /// fake value for it; its `MTU_PacketSize` (default 1,300) is what it sends, not what a
    /// path carries.
    pub mtu: usize,
}

impl Default for LinkConfig {
    /// [`LinkConfig::ideal`].
    fn default() -> Self {
        Self::ideal()
    }
}

impl LinkConfig {
    /// No impairment at all: every datagram is due the instant it is sent, in order. The
    /// switched-off knobs hold GNS's defaults (jitter max 100 ms at 75 %, reorder time 15 ms,
    /// duplicate time 10 ms) and the queue [`DEFAULT_QUEUE_BYTES`], so that turning on a single
    /// impairment behaves as it does in GNS.
    pub fn ideal() -> Self {
        LinkConfig {
            latency: Duration::ZERO,
            jitter_avg: Duration::ZERO,
            jitter_max: GNS_JITTER_MAX,
            jitter_pct: GNS_JITTER_PCT,
            loss: 0.0,
            burst_loss: None,
            duplicate: 0.0,
            duplicate_delay_max: GNS_DUP_TIME_MAX,
            reorder: 0.0,
            reorder_delay: GNS_REORDER_TIME,
            rate: 0,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            mtu: usize::MAX,
        }
    }

    /// A wired LAN: 0.25 ms one way (0.5 ms round trip through a switch or two), 1 Gbit/s
    /// (125,000,000 B/s) with a 64 KiB queue, Ethernet MTU (1,472-byte UDP payload), no loss.
    pub fn lan() -> Self {
        LinkConfig {
            latency: Duration::from_micros(250),
            rate: 125_000_000,
            mtu: ETHERNET_UDP_PAYLOAD,
            ..Self::ideal()
        }
    }

    /// Home Wi-Fi and broadband to a regional server: 20 ms one way; half the datagrams get
    /// exponential jitter of mean 3 ms capped at 50 ms (contention and frame aggregation);
    /// 0.2 % random loss plus 0.5 % in bursts of mean 3 (interference), about 0.7 % in all;
    /// 20 Mbit/s upstream (2,500,000 B/s) with a 64 KiB queue (26 ms); 1,472-byte MTU.
    pub fn wifi() -> Self {
        LinkConfig {
            latency: Duration::from_millis(20),
            jitter_avg: Duration::from_millis(3),
            jitter_max: Duration::from_millis(50),
            jitter_pct: 0.5,
            loss: 0.002,
            burst_loss: Some(BurstLoss::gilbert(0.005, 3.0)),
            rate: 2_500_000,
            queue_bytes: 64 * 1024,
            mtu: ETHERNET_UDP_PAYLOAD,
            ..Self::ideal()
        }
    }

    /// 4G/LTE to a regional server: 40 ms one way; 75 % of datagrams get jitter of mean 8 ms
    /// capped at 100 ms (scheduling grants, HARQ retransmission); 0.5 % random loss plus 1 %
    /// in bursts of mean 5 (fades, handovers), about 1.5 % in all; 0.5 % reordered by 10 ms;
    /// 5 Mbit/s uplink (625,000 B/s) behind a deep 128 KiB queue (210 ms, the bufferbloat
    /// typical of cellular); 1,400-byte MTU.
    pub fn cellular() -> Self {
        LinkConfig {
            latency: Duration::from_millis(40),
            jitter_avg: Duration::from_millis(8),
            jitter_max: Duration::from_millis(100),
            jitter_pct: 0.75,
            loss: 0.005,
            burst_loss: Some(BurstLoss::gilbert(0.01, 5.0)),
            reorder: 0.005,
            reorder_delay: Duration::from_millis(10),
            rate: 625_000,
            queue_bytes: 128 * 1024,
            mtu: CELLULAR_UDP_PAYLOAD,
            ..Self::ideal()
        }
    }

    /// A poor connection far away (weak mobile signal, congested hotel Wi-Fi, another
    /// continent): 100 ms one way; 75 % jittered with mean 20 ms capped at 200 ms; 2 % random
    /// loss plus 3 % in bursts of mean 4, about 4.9 % in all; 1 % duplicated within 10 ms;
    /// 2 % reordered by 15 ms; 1 Mbit/s (125,000 B/s) with a 32 KiB queue (262 ms);
    /// 1,232-byte MTU (the IPv6 minimum).
    pub fn bad() -> Self {
        LinkConfig {
            latency: Duration::from_millis(100),
            jitter_avg: Duration::from_millis(20),
            jitter_max: Duration::from_millis(200),
            jitter_pct: 0.75,
            loss: 0.02,
            burst_loss: Some(BurstLoss::gilbert(0.03, 4.0)),
            duplicate: 0.01,
            duplicate_delay_max: Duration::from_millis(10),
            reorder: 0.02,
            reorder_delay: Duration::from_millis(15),
            rate: 125_000,
            queue_bytes: 32 * 1024,
            mtu: MIN_IPV6_UDP_PAYLOAD,
        }
    }

    /// True if a link with this config delivers every datagram the instant it is sent, in
    /// order: no latency, no effective jitter, loss, duplication or reordering, no rate limit
    /// and no MTU. A driver may then skip the conditioner altogether.
    pub fn is_ideal(&self) -> bool {
        let no_jitter =
            self.jitter_avg.is_zero() || self.jitter_max.is_zero() || !is_on(self.jitter_pct);
        self.latency.is_zero()
            && no_jitter
            && !is_on(self.loss)
            && self.burst_loss.is_none_or(|b| b.is_lossless())
            && !is_on(self.duplicate)
            && (!is_on(self.reorder) || self.reorder_delay.is_zero())
            && self.rate == 0
            && self.mtu == usize::MAX
    }

    /// Checks that every probability is in `0..=1` and that the link can carry a datagram at
    /// all. Call it where a config comes from a user (a config file, a slider); a [`Link`]
    /// accepts anything.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        let off = BurstLoss {
            p_good_to_bad: 0.0,
            p_bad_to_good: 0.0,
            loss_in_bad: 0.0,
            loss_in_good: 0.0,
        };
        let burst = self.burst_loss.unwrap_or(off);
        let probabilities = [
            ("jitter_pct", self.jitter_pct),
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("burst_loss.p_good_to_bad", burst.p_good_to_bad),
            ("burst_loss.p_bad_to_good", burst.p_bad_to_good),
            ("burst_loss.loss_in_bad", burst.loss_in_bad),
            ("burst_loss.loss_in_good", burst.loss_in_good),
        ];
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(LinkConfigError::Probability { field, value });
            }
        }
        if self.rate > 0 && self.queue_bytes == 0 {
            return Err(LinkConfigError::ZeroQueue);
        }
        if self.mtu == 0 {
            return Err(LinkConfigError::ZeroMtu);
        }
        Ok(())
    }
}

/// Why [`LinkConfig::validate`] rejected a config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkConfigError {
    /// A probability is NaN or outside `0..=1`.
    Probability {
        /// The field, e.g. `"loss"` or `"burst_loss.p_bad_to_good"`.
        field: &'static str,
        /// The offending value.
        value: f64,
    },
    /// `rate` is limited but `queue_bytes` is 0, so every datagram would be tail-dropped.
    ZeroQueue,
    /// `mtu` is 0, so every datagram would be dropped.
    ZeroMtu,
}

impl fmt::Display for LinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkConfigError::Probability { field, value } => {
                write!(f, "link config: {field} = {value} is not a probability in 0..=1")
            }
            LinkConfigError::ZeroQueue => {
                f.write_str("link config: rate is limited but queue_bytes is 0")
            }
            LinkConfigError::ZeroMtu => f.write_str("link config: mtu is 0"),
        }
    }
}

impl core::error::Error for LinkConfigError {}

/// What a [`Link`] has done so far. Every datagram passed to [`Link::send`] is counted in
/// `sent` and then in exactly one of `lost_random`, `lost_burst`, `dropped_queue`,
/// `dropped_mtu`, or delivered (or still in flight); so once a link is drained,
/// `delivered == sent - lost_random - lost_burst - dropped_queue - dropped_mtu + duplicated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams passed to [`Link::send`].
    pub sent: u64,
    /// Their bytes.
    pub sent_bytes: u64,
    /// Bytes accepted into the bottleneck (or onto the link, without one): what the path
    /// carries, before random loss. Over time and divided by `rate`, its utilisation.
    pub carried_bytes: u64,
    /// Copies returned by [`Link::poll_deliver`], duplicates included.
    pub delivered: u64,
    /// Lost to [`LinkConfig::loss`].
    pub lost_random: u64,
    /// Lost to [`LinkConfig::burst_loss`] (and not already to `loss`).
    pub lost_burst: u64,
    /// Tail-dropped by a full bottleneck queue ([`LinkConfig::queue_bytes`]).
    pub dropped_queue: u64,
    /// Dropped for being larger than [`LinkConfig::mtu`].
    pub dropped_mtu: u64,
    /// Extra copies scheduled ([`LinkConfig::duplicate`]).
    pub duplicated: u64,
    /// Datagrams held back by [`LinkConfig::reorder_delay`].
    pub reordered: u64,
}

/// One direction of a simulated or conditioned network path. See the [module docs](self) for
/// the model and the drive loop.
///
/// `T` is whatever the caller wants back: the datagram bytes, an index into its own buffer,
/// a (from, to, bytes) triple. It is cloned only to make a duplicate.
#[derive(Clone, Debug)]
pub struct Link<T> {
    config: LinkConfig,
    rng: Rng,
    /// Scheduled copies; the top is the earliest due, ties broken by `seq`.
    in_flight: BinaryHeap<Scheduled<T>>,
    /// Sequence number of the next scheduled copy.
    next_seq: u64,
    /// Due time of the last datagram scheduled in order (reorder delay not included). No
    /// later datagram is due before it unless it is itself reordered.
    last_due: Instant,
    /// When the bottleneck will have serialised all it holds: this instant plus
    /// `busy_frac / rate` of a microsecond. Keeping the fraction makes long runs exact.
    busy_until: Instant,
    /// See `busy_until`; always below `config.rate`.
    busy_frac: u64,
    /// Gilbert-Elliott state: true in the bad state. Links start in the good state.
    burst_bad: bool,
    stats: LinkStats,
}

impl<T: Clone> Link<T> {
    /// An empty link drawing its random choices from `rng` (fork one per link, so that links
    /// do not perturb each other).
    pub fn new(config: LinkConfig, rng: Rng) -> Self {
        Link {
            config,
            rng,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            last_due: Instant::ZERO,
            busy_until: Instant::ZERO,
            busy_frac: 0,
            burst_bad: false,
            stats: LinkStats::default(),
        }
    }

    /// The config datagrams sent from now on are subject to.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Changes the config live. Datagrams already in flight keep their due times, and those
    /// already in the bottleneck their departure times; the new config applies to datagrams
    /// sent from now on. As with jitter, a lower latency makes new datagrams wait behind those
    /// in flight rather than overtake them.
    pub fn set_config(&mut self, config: LinkConfig) {
        if config.rate != self.config.rate {
            // The fraction is in units of 1 / old rate µs; dropping it costs under 1 µs.
            self.busy_frac = 0;
        }
        if config.burst_loss.is_none() {
            self.burst_bad = false;
        }
        self.config = config;
    }

    /// Puts a datagram of `size` bytes on the link at `now`. `item` comes back out of
    /// [`Link::poll_deliver`] when due, unless the link drops it (see [`Link::stats`]).
    pub fn send(&mut self, now: Instant, size: usize, item: T) {
        self.stats.sent += 1;
        self.stats.sent_bytes += size as u64;
        if size > self.config.mtu {
            self.stats.dropped_mtu += 1;
            return;
        }
        let Some(departed) = self.serialise(now, size) else {
            self.stats.dropped_queue += 1;
            return;
        };
        self.stats.carried_bytes += size as u64;
        // Both draws happen for every datagram so that the burst chain steps once per datagram
        // whatever the random loss decides.
        let lost_random = self.rng.chance(self.config.loss);
        let lost_burst = self.burst_step();
        if lost_random {
            self.stats.lost_random += 1;
            return;
        }
        if lost_burst {
            self.stats.lost_burst += 1;
            return;
        }
        let jitter = self.jitter();
        let due = (departed + self.config.latency + jitter).max(self.last_due);
        self.last_due = due;
        let due = if self.rng.chance(self.config.reorder) {
            self.stats.reordered += 1;
            due + self.config.reorder_delay
        } else {
            due
        };
        if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            let extra = self.rng.range(0, micros(self.config.duplicate_delay_max));
            self.schedule(due, item.clone());
            self.schedule(due + Duration::from_micros(extra), item);
        } else {
            self.schedule(due, item);
        }
    }

    /// The earliest due time among the datagrams in flight, if any: when to call
    /// [`Link::poll_deliver`] next.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|s| s.due)
    }

    /// Takes out one datagram due at or before `now`: the earliest due, and of those due at the
    /// same instant the first scheduled. `None` if nothing is due yet.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<T> {
        if self.in_flight.peek()?.due > now {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.pop().map(|s| s.item)
    }

    /// Counters since the link was made.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// How long a datagram sent now would wait in the bottleneck before its turn: the
    /// queueing delay (zero without a rate limit).
    pub fn queue_delay(&self, now: Instant) -> Duration {
        if self.config.rate == 0 || self.busy_until <= now {
            Duration::ZERO
        } else {
            self.busy_until - now
        }
    }

    /// Copies scheduled but not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn schedule(&mut self, due: Instant, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.push(Scheduled { due, seq, item });
    }

    /// Passes `size` bytes through the bottleneck: when the last byte leaves it, or `None` for
    /// a tail drop.
    fn serialise(&mut self, now: Instant, size: usize) -> Option<Instant> {
        let rate = self.config.rate;
        if rate == 0 {
            return Some(now);
        }
        if self.busy_until <= now {
            self.busy_until = now;
            self.busy_frac = 0;
        }
        // In u64, saturating (u128 division is a 1 KB libcall in the browser's .wasm): the
        // backlog is at most `queue_bytes` plus a byte, so its product with the rate stays far
        // below 2^64 for any queue under 18 TB; beyond that a saturated backlog drops.
        // Bytes not yet serialised, rounded up: a partly sent byte still occupies the queue.
        let backlog = u64::try_from((self.busy_until - now).as_micros())
            .unwrap_or(u64::MAX)
            .saturating_mul(rate)
            .saturating_add(self.busy_frac)
            .div_ceil(MICROS_PER_SEC);
        if backlog.saturating_add(size as u64) > self.config.queue_bytes as u64 {
            return None;
        }
        let total = (size as u64).saturating_mul(MICROS_PER_SEC).saturating_add(self.busy_frac);
        // The remainder is below `rate`.
        self.busy_frac = total % rate;
        self.busy_until += Duration::from_micros(total / rate);
        Some(self.busy_until)
    }

    /// Steps the Gilbert-Elliott chain and says whether it loses this datagram.
    fn burst_step(&mut self) -> bool {
        let Some(b) = self.config.burst_loss else {
            return false;
        };
        let leave = if self.burst_bad { b.p_bad_to_good } else { b.p_good_to_bad };
        if self.rng.chance(leave) {
            self.burst_bad = !self.burst_bad;
        }
        self.rng.chance(if self.burst_bad { b.loss_in_bad } else { b.loss_in_good })
    }

    /// A jitter sample: zero, or with probability `jitter_pct` exponential with mean
    /// `jitter_avg` capped at `jitter_max`.
    fn jitter(&mut self) -> Duration {
        let avg = micros(self.config.jitter_avg);
        if avg == 0 || !self.rng.chance(self.config.jitter_pct) {
            return Duration::ZERO;
        }
        // Inverse transform sampling; 1 - f64() is in (0, 1], so the logarithm is finite.
        let sample = neg_ln(1.0 - self.rng.f64()) * avg as f64;
        // `as` saturates; the sample is never negative.
        Duration::from_micros((sample as u64).min(micros(self.config.jitter_max)))
    }
}

/// A copy in flight. Ordered for `BinaryHeap`, a max-heap, so that the greatest is the
/// earliest `(due, seq)`; the item takes no part in the order.
#[derive(Clone, Debug)]
struct Scheduled<T> {
    due: Instant,
    seq: u64,
    item: T,
}

impl<T> Ord for Scheduled<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<T> Eq for Scheduled<T> {}

/// True if a probability is in effect; NaN is not.
fn is_on(p: f64) -> bool {
    p > 0.0
}

/// A duration in whole microseconds, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `-ln(u)` for `u` in `(0, 1]`, from basic IEEE arithmetic only.
///
/// `f64::ln` calls the platform's math library, which may round the last bit differently on
/// x86-64, aarch64 and wasm32; a jitter sample one microsecond apart would then fork a
/// simulated run between native and browser builds. `+ - * /` are correctly rounded
/// everywhere, so this is bit-identical on every target, and accurate to about 1e-15.
fn neg_ln(u: f64) -> f64 {
    // Only for positive normal input, which `1 - Rng::f64()` always is (at least 2^-53).
    debug_assert!(u.is_normal() && u > 0.0 && u <= 1.0);
    const EXP_BIAS: i64 = 1023;
    const MANTISSA_BITS: u32 = 52;
    const MANTISSA_MASK: u64 = (1 << MANTISSA_BITS) - 1;
    let bits = u.to_bits();
    // u = m * 2^e with m in [1, 2).
    let mut e = ((bits >> MANTISSA_BITS) & 0x7ff) as i64 - EXP_BIAS;
    let mut m = f64::from_bits((bits & MANTISSA_MASK) | ((EXP_BIAS as u64) << MANTISSA_BITS));
    // Centre m on 1, in [sqrt(1/2), sqrt(2)), so that s below stays within +-0.172.
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1) / (m + 1). With s^2 < 0.0295,
    // the terms up to s^23 leave an error below 0.0295^12 / 25 < 1e-19.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut series = 0.0;
    for k in (0..12).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    -(e as f64 * core::f64::consts::LN_2 + 2.0 * s * series)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at_ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Delivers, at their due times, everything due at or before `until`.
    fn deliver_until<T: Clone>(link: &mut Link<T>, until: Instant, out: &mut Vec<(Instant, T)>) {
        while let Some(due) = link.next_delivery().filter(|&due| due <= until) {
            let item = link.poll_deliver(due).expect("something is due at next_delivery");
            out.push((due, item));
        }
    }

    /// Sends `sends` in order, delivering in between, then drains the link: the delivery trace.
    fn run<T: Clone>(
        link: &mut Link<T>,
        sends: impl IntoIterator<Item = (Instant, usize, T)>,
    ) -> Vec<(Instant, T)> {
        let mut out = Vec::new();
        for (now, size, item) in sends {
            deliver_until(link, now, &mut out);
            link.send(now, size, item);
        }
        deliver_until(link, Instant::FAR_FUTURE, &mut out);
        assert_eq!(link.in_flight(), 0);
        out
    }

    /// `count` of `n` trials with probability `p` lies within 5 standard deviations.
    fn assert_binomial(count: u64, n: u64, p: f64) {
        let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
        let off = (count as f64 - mean).abs();
        assert!(off <= 5.0 * sd, "{count} of {n}: expected {mean:.0} +- {:.0}", 5.0 * sd);
    }

    /// `n` datagrams of 1,000 bytes, one every `gap`, numbered from 0.
    fn evenly(n: u32, gap: Duration) -> impl Iterator<Item = (Instant, usize, u32)> {
        (0..n).map(move |i| (Instant::ZERO + gap * i, 1000, i))
    }

    fn with(f: impl FnOnce(&mut LinkConfig)) -> LinkConfig {
        let mut config = LinkConfig::ideal();
        f(&mut config);
        config
    }

    fn assert_in_order(trace: &[(Instant, u32)]) {
        assert!(trace.windows(2).all(|w| w[0].1 < w[1].1 && w[0].0 <= w[1].0), "reordered");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn ideal_link_passes_everything_in_order_at_once() {
        assert!(LinkConfig::ideal().is_ideal());
        let mut link = Link::new(LinkConfig::ideal(), Rng::seeded(1));
        let now = at_ms(7);
        for i in 0..100u32 {
            link.send(now, 1 + 1000 * i as usize, i);
        }
        assert_eq!(link.next_delivery(), Some(now));
        let got: Vec<u32> = core::iter::from_fn(|| link.poll_deliver(now)).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(link.next_delivery(), None);
        let stats = *link.stats();
        // Bytes: 100 datagrams of 1 + 1000 i bytes.
        let bytes = 100 + 1000 * (0..100u64).sum::<u64>();
        assert_eq!(
            stats,
            LinkStats {
                sent: 100,
                delivered: 100,
                sent_bytes: bytes,
                carried_bytes: bytes,
                ..LinkStats::default()
            }
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn fixed_latency_delays_every_datagram_by_it() {
        let mut link = Link::new(with(|c| c.latency = 40 * MS), Rng::seeded(2));
        link.send(at_ms(0), 100, 'a');
        link.send(at_ms(5), 100, 'b');
        assert_eq!(link.in_flight(), 2);
        assert_eq!(link.next_delivery(), Some(at_ms(40)));
        assert_eq!(link.poll_deliver(at_ms(40) - Duration::from_micros(1)), None);
        assert_eq!(link.poll_deliver(at_ms(44)), Some('a'));
        assert_eq!(link.poll_deliver(at_ms(44)), None);
        assert_eq!(link.next_delivery(), Some(at_ms(45)));
        assert_eq!(link.poll_deliver(at_ms(100)), Some('b'));
        assert_eq!(link.in_flight(), 0);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn loss_rate_is_within_statistical_bounds() {
        let mut link = Link::new(with(|c| c.loss = 0.1), Rng::seeded(3));
        let trace = run(&mut link, evenly(100_000, MS));
        let stats = *link.stats();
        assert_binomial(stats.lost_random, 100_000, 0.1);
        assert_eq!(stats.delivered + stats.lost_random, 100_000);
        assert_eq!(trace.len() as u64, stats.delivered);
        assert_in_order(&trace);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn same_seed_gives_identical_delivery_trace() {
        // Every impairment at once, with varying sizes, offered faster than the rate allows.
        let sends =
            || (0..20_000u32).map(|i| (at_ms(2 * u64::from(i)), 100 + (i as usize * 37) % 1300, i));
        let trace = |seed| {
            let mut link = Link::new(LinkConfig::bad(), Rng::seeded(seed));
            (run(&mut link, sends()), *link.stats())
        };
        let (a, stats) = trace(4);
        assert_eq!((a.clone(), stats), trace(4));
        assert_ne!(a, trace(5).0);
        // Every stage had something to do.
        assert!(stats.lost_random > 0 && stats.lost_burst > 0 && stats.dropped_queue > 0);
        assert!(stats.dropped_mtu > 0 && stats.duplicated > 0 && stats.reordered > 0);
        let dropped =
            stats.lost_random + stats.lost_burst + stats.dropped_queue + stats.dropped_mtu;
        assert_eq!(stats.delivered, stats.sent - dropped + stats.duplicated);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn jitter_alone_clumps_but_never_reorders() {
        for pct in [1.0, 0.75, 0.1] {
            let config = with(|c| {
                c.latency = 20 * MS;
                c.jitter_avg = 10 * MS;
                c.jitter_max = 100 * MS;
                c.jitter_pct = pct;
            });
            let mut link = Link::new(config, Rng::seeded(6));
            let trace = run(&mut link, evenly(10_000, MS));
            assert_eq!(trace.len(), 10_000);
            assert_in_order(&trace);
            let delay = |&(due, i): &(Instant, u32)| due - at_ms(u64::from(i));
            assert!(trace.iter().all(|d| delay(d) >= 20 * MS && delay(d) <= 120 * MS));
            // Clumping: some datagrams wait behind a jittered predecessor and arrive with it.
            let clumped = trace.windows(2).filter(|w| w[0].0 == w[1].0).count();
            assert!(clumped > 100, "pct {pct}: only {clumped} clumped");
            assert_eq!(link.stats().reordered, 0);
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn jitter_samples_are_capped_exponential() {
        // Datagrams a second apart never wait behind each other: each delay is a raw sample.
        let config = with(|c| {
            c.jitter_avg = 10 * MS;
            c.jitter_max = 30 * MS;
            c.jitter_pct = 0.75;
        });
        let mut link = Link::new(config, Rng::seeded(7));
        let n = 20_000;
        let trace = run(&mut link, evenly(n, Duration::from_secs(1)));
        let samples: Vec<f64> = trace
            .iter()
            .map(|&(due, i)| (due - Instant::from_millis(1000 * u64::from(i))).as_secs_f64() * 1e3)
            .collect();
        let unjittered = samples.iter().filter(|&&s| s == 0.0).count() as u64;
        assert_binomial(unjittered, n.into(), 0.25);
        // An exponential of mean 10 capped at 30 has mean 10 (1 - e^-3) = 9.502, and
        // P(capped) = e^-3 = 0.0498.
        let jittered: Vec<f64> = samples.into_iter().filter(|&s| s > 0.0).collect();
        let mean = jittered.iter().sum::<f64>() / jittered.len() as f64;
        assert!((mean - 9.502).abs() < 0.3, "mean jitter {mean} ms");
        let capped = jittered.iter().filter(|&&s| s == 30.0).count() as u64;
        assert_binomial(capped, jittered.len() as u64, (-3.0f64).exp());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn reorder_rate_is_within_bounds_and_reordered_datagrams_are_overtaken() {
        let config = with(|c| {
            c.latency = 30 * MS;
            c.reorder = 0.05;
            c.reorder_delay = 15 * MS;
        });
        let mut link = Link::new(config, Rng::seeded(8));
        let trace = run(&mut link, evenly(100_000, MS));
        assert_eq!(trace.len(), 100_000);
        let reordered = link.stats().reordered;
        assert_binomial(reordered, 100_000, 0.05);
        // Each held-back datagram is due 15 ms late, so the next datagram sent after it that
        // was not held back (1 ms later, almost always) overtakes it.
        let mut newest = None;
        let mut overtaken = 0;
        for &(due, i) in &trace {
            let delay = due - at_ms(u64::from(i));
            assert!(delay == 30 * MS || delay == 45 * MS, "delay {delay:?}");
            if newest.is_some_and(|n| n > i) {
                overtaken += 1;
            }
            newest = newest.max(Some(i));
        }
        assert_eq!(overtaken, reordered);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn duplication_rate_and_duplicate_delay() {
        let config = with(|c| {
            c.latency = 10 * MS;
            c.duplicate = 0.02;
            c.duplicate_delay_max = 10 * MS;
        });
        let mut link = Link::new(config, Rng::seeded(9));
        let n = 100_000;
        let trace = run(&mut link, evenly(n, MS));
        let stats = *link.stats();
        assert_binomial(stats.duplicated, n.into(), 0.02);
        assert_eq!(stats.delivered, u64::from(n) + stats.duplicated);
        let mut copies = vec![Vec::new(); n as usize];
        for &(due, i) in &trace {
            copies[i as usize].push(due);
        }
        assert_eq!(copies.iter().filter(|c| c.len() == 2).count() as u64, stats.duplicated);
        for (i, c) in copies.iter().enumerate() {
            assert_eq!(c[0], at_ms(i as u64 + 10), "originals keep their schedule");
            if let [first, second] = c[..] {
                assert!(second >= first && second - first <= 10 * MS);
            }
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rate_limit_gives_expected_throughput_and_tail_drops() {
        // 100,000 B/s: a 1,000-byte datagram takes 10 ms; the queue holds ten of them.
        let config = with(|c| {
            c.latency = 10 * MS;
            c.rate = 100_000;
            c.queue_bytes = 10_000;
        });

        // A burst of 100 at once: ten fit, each leaving 10 ms after the one before.
        let mut link = Link::new(config.clone(), Rng::seeded(10));
        let trace = run(&mut link, (0..100).map(|i| (Instant::ZERO, 1000, i)));
        let expected: Vec<_> = (0..10).map(|i| (at_ms(10 + 10 * (i as u64 + 1)), i)).collect();
        assert_eq!(trace, expected);
        assert_eq!(link.stats().dropped_queue, 90);

        // Twice the rate offered for ten seconds: the link carries exactly its rate.
        let mut link = Link::new(config.clone(), Rng::seeded(10));
        let trace = run(&mut link, evenly(2000, 5 * MS));
        let by_10s = trace.iter().filter(|&&(due, _)| due <= at_ms(10_010)).count();
        assert_eq!(by_10s, 1000, "100,000 B/s for 10 s is 1,000 datagrams");
        let stats = *link.stats();
        assert!((1005..=1011).contains(&stats.delivered), "{stats:?}");
        assert_eq!(stats.delivered + stats.dropped_queue, 2000);
        assert_in_order(&trace);

        // At exactly the rate nothing is dropped or queued.
        let mut link = Link::new(config.clone(), Rng::seeded(10));
        let trace = run(&mut link, evenly(1000, 10 * MS));
        assert!(trace.iter().all(|&(due, i)| due == at_ms(10 * u64::from(i) + 20)));

        // A rate that does not divide a second: a long run still ends on the exact time.
        let config = with(|c| {
            c.rate = 300_007;
            c.queue_bytes = usize::MAX;
        });
        let mut link = Link::new(config, Rng::seeded(10));
        let trace = run(&mut link, (0..1000).map(|i| (Instant::ZERO, 1000, i)));
        let exact = 1000.0 * 1000.0 * 1e6 / 300_007.0;
        let last = trace.last().expect("delivered").0.as_micros() as f64;
        assert!((last - exact).abs() < 1.0, "{last} vs {exact}");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn burst_loss_comes_in_runs() {
        let n = 200_000u32;
        let loss_runs = |config: LinkConfig| {
            let mut link = Link::new(config, Rng::seeded(11));
            let trace = run(&mut link, evenly(n, MS));
            let mut got = vec![false; n as usize];
            for (_, i) in trace {
                got[i as usize] = true;
            }
            let runs: Vec<usize> =
                got.split(|&g| g).map(<[bool]>::len).filter(|&len| len > 0).collect();
            let mean = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
            (*link.stats(), mean)
        };

        let burst =
            BurstLoss { p_good_to_bad: 0.01, p_bad_to_good: 0.25, ..BurstLoss::gilbert(0.0, 1.0) };
        assert!((burst.mean_loss() - 0.01 / 0.26).abs() < 1e-12);
        let (stats, mean_run) = loss_runs(with(|c| c.burst_loss = Some(burst)));
        assert!((mean_run - 4.0).abs() < 0.4, "mean run {mean_run}, expected 1/0.25 = 4");
        let observed = stats.lost_burst as f64 / f64::from(n);
        assert!((observed - burst.mean_loss()).abs() < 0.005, "loss {observed}");
        assert_eq!(stats.lost_random, 0);

        // The same mean loss at random comes in runs of 1 / (1 - p) = 1.04.
        let (_, mean_run) = loss_runs(with(|c| c.loss = burst.mean_loss()));
        assert!(mean_run < 1.1, "random loss mean run {mean_run}");

        // The slider-friendly constructor gives what it promises.
        let gilbert = BurstLoss::gilbert(0.03, 5.0);
        assert!((gilbert.mean_loss() - 0.03).abs() < 1e-12);
        let (stats, mean_run) = loss_runs(with(|c| c.burst_loss = Some(gilbert)));
        assert!((mean_run - 5.0).abs() < 0.6, "mean run {mean_run}");
        assert!((stats.lost_burst as f64 / f64::from(n) - 0.03).abs() < 0.005);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn datagrams_over_the_mtu_are_dropped() {
        let mut link = Link::new(with(|c| c.mtu = 1200), Rng::seeded(12));
        let trace =
            run(&mut link, [(at_ms(0), 1200, 'a'), (at_ms(0), 1201, 'b'), (at_ms(0), 0, 'c')]);
        assert_eq!(trace, [(at_ms(0), 'a'), (at_ms(0), 'c')]);
        assert_eq!(link.stats().dropped_mtu, 1);
        assert!(!link.config().is_ideal());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn presets_validate_and_bad_configs_do_not() {
        for (name, preset) in [
            ("ideal", LinkConfig::ideal()),
            ("lan", LinkConfig::lan()),
            ("wifi", LinkConfig::wifi()),
            ("cellular", LinkConfig::cellular()),
            ("bad", LinkConfig::bad()),
        ] {
            assert_eq!(preset.validate(), Ok(()), "{name}");
            assert_eq!(preset.is_ideal(), name == "ideal", "{name}");
        }
        assert_eq!(LinkConfig::default(), LinkConfig::ideal());
        // Only the knobs that are switched off differ: still ideal.
        assert!(with(|c| c.jitter_pct = 1.0).is_ideal());
        assert!(with(|c| c.queue_bytes = 0).is_ideal());
        assert!(with(|c| c.burst_loss = Some(BurstLoss::gilbert(0.0, 4.0))).is_ideal());
        assert!(!with(|c| c.reorder = 0.1).is_ideal());

        let err = |f: fn(&mut LinkConfig)| with(f).validate().unwrap_err();
        assert_eq!(
            err(|c| c.loss = 1.5),
            LinkConfigError::Probability { field: "loss", value: 1.5 }
        );
        assert!(matches!(
            err(|c| c.jitter_pct = f64::NAN),
            LinkConfigError::Probability { field: "jitter_pct", .. }
        ));
        assert!(matches!(
            err(|c| c.burst_loss =
                Some(BurstLoss { p_bad_to_good: -0.1, ..BurstLoss::gilbert(0.1, 2.0) })),
            LinkConfigError::Probability { field: "burst_loss.p_bad_to_good", .. }
        ));
        assert_eq!(err(|c| (c.rate, c.queue_bytes) = (1000, 0)), LinkConfigError::ZeroQueue);
        assert_eq!(err(|c| c.mtu = 0), LinkConfigError::ZeroMtu);
        assert!(err(|c| c.reorder = 2.0).to_string().contains("reorder"));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn set_config_mid_flight_keeps_scheduled_datagrams() {
        let mut link = Link::new(with(|c| c.latency = 100 * MS), Rng::seeded(13));
        let mut out = Vec::new();
        link.send(at_ms(0), 100, 'a');

        // Lower the latency: new datagrams wait behind 'a' rather than overtake it.
        link.set_config(with(|c| c.latency = 10 * MS));
        link.send(at_ms(1), 100, 'b');
        link.send(at_ms(50), 100, 'c');
        link.send(at_ms(95), 100, 'd');
        deliver_until(&mut link, at_ms(200), &mut out);
        link.send(at_ms(200), 100, 'e');

        // Raise it again: 'f' keeps its 10 ms.
        link.send(at_ms(300), 100, 'f');
        link.set_config(with(|c| c.latency = 50 * MS));
        link.send(at_ms(301), 100, 'g');

        // Total loss: what is in flight still arrives.
        link.set_config(with(|c| c.loss = 1.0));
        link.send(at_ms(302), 100, 'h');
        deliver_until(&mut link, Instant::FAR_FUTURE, &mut out);
        assert_eq!(
            out,
            [
                (at_ms(100), 'a'),
                (at_ms(100), 'b'),
                (at_ms(100), 'c'),
                (at_ms(105), 'd'),
                (at_ms(210), 'e'),
                (at_ms(310), 'f'),
                (at_ms(351), 'g'),
            ]
        );
        assert_eq!(link.stats().lost_random, 1);

        // A rate limit switched on and off keeps datagrams queued in the bottleneck on time.
        let limited = with(|c| c.rate = 100_000);
        let mut link = Link::new(limited, Rng::seeded(13));
        link.send(at_ms(1000), 1000, 1);
        link.send(at_ms(1000), 1000, 2);
        link.set_config(LinkConfig::ideal());
        link.send(at_ms(1000), 1000, 3);
        let trace = run(&mut link, []);
        assert_eq!(trace, [(at_ms(1010), 1), (at_ms(1020), 2), (at_ms(1020), 3)]);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn neg_ln_matches_the_platform_logarithm() {
        let mut rng = Rng::seeded(14);
        let mut inputs: Vec<f64> = (0..10_000).map(|_| 1.0 - rng.f64()).collect();
        inputs.extend([1.0, 0.5, core::f64::consts::FRAC_1_SQRT_2, 1e-300, 2f64.powi(-53)]);
        for u in inputs {
            let (ours, platform) = (neg_ln(u), -u.ln());
            assert!((ours - platform).abs() <= 4.0 * f64::EPSILON * platform.max(1.0), "{u}");
        }
        assert_eq!(neg_ln(1.0), 0.0);
    }
}
