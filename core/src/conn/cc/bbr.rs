//! A model-based controller of the BBR family: it measures the bottleneck's bandwidth (the
//! highest delivery rate of the last ten round trips) and the path's round-trip time without
//! queueing (the lowest RTT of the last ten seconds), paces at that bandwidth, and keeps about
//! two bandwidth-delay products in flight.
//!
//! - **Startup** doubles the rate each round trip until the bandwidth stops growing by 25 % for
//!   three rounds, or a whole round's RTTs stay above the minimum (HyStart++'s delay signal),
//!   or loss says the pipe is full; **Drain** then empties the queue Startup built.
//! - **ProbeBW** cycles through eight phases of one minimum RTT: one at 125 % of the bandwidth
//!   to find more, one at 75 % to drain what that probe queued, six at 100 %. The probe ends
//!   early once it queues (RTT above the minimum by an eighth): more bandwidth is not there.
//! - **ProbeRTT**: when the minimum RTT was not seen for ten seconds, the window drops to half a
//!   bandwidth-delay product for 200 ms, so that the queue drains and the minimum is measured
//!   again.
//!
//! What BBR v1 lacks, and a game transport needs (in the manner of BBR v2):
//!
//! - **A loss band.** Loss is congestion only when a round lost more than [`LOSS_BAND_PERCENT`]
//!   of its packets while it queued (its lowest RTT above the minimum: a bottleneck's full
//!   buffer delays every packet and drops at its tail), or more than
//!   a fifth whatever the RTT did. Random loss (Wi-Fi, mobile links) of several percent is not a
//!   signal. On congestion the bandwidth the model may use (`bw_lo`) drops to what the last
//!   round delivered, and at least by 30 % of what it was, until the next probe; the bandwidth
//!   filter forgets samples above it.
//! - **A delay-trend guard.** A queue that stays (the lowest RTT of two whole rounds above the
//!   minimum by an eighth, at least 5 ms) while the model thinks it sends no faster than the
//!   path means the model is stale (the capacity fell, or a clump of acks inflated a sample):
//!   it drains for a phase and, until its next probe, sends no faster than 95 % of the last
//!   round's delivery rate. If draining twice does not remove the queue,
//!   the queue is another flow's (a loss-based flow fills every buffer), and the guard rests
//!   until the queue goes away, so that Lanewire is not starved by such flows.
//! - **App-limited periods** (a game sending 60 small messages a second) do not lower the
//!   estimate: their samples only count when they are above it.

use core::time::Duration;

use super::{AckSample, CongestionController, LossSample, bytes_in, rate_of};
use crate::prelude::*;
use crate::text;
use crate::time::Instant;

/// The queueing delay above the minimum RTT that counts as a queue: an eighth of the minimum,
/// at least 5 ms (timer and scheduling noise of real hosts stays below it).
fn queue_target(min_rtt: Duration) -> Duration {
    (min_rtt / 8).max(Duration::from_millis(5))
}

/// Round trips the bandwidth filter remembers.
const BW_ROUNDS: usize = 10;
/// How long a minimum RTT stays valid without being seen again.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// How long ProbeRTT holds the window down.
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// Startup's pacing and window gain, in percent (2 / ln 2).
const STARTUP_GAIN: u64 = 277;
/// Drain's pacing gain, in percent (ln 2 / 2).
const DRAIN_GAIN: u64 = 36;
/// The window over the bandwidth-delay product, in percent.
const CWND_GAIN: u64 = 200;
/// ProbeBW's pacing gains, in percent, one phase per minimum RTT.
const PROBE_GAINS: [u64; 8] = [125, 75, 100, 100, 100, 100, 100, 100];
/// Loss above this share of a round's packets is congestion when the round also queued (its
/// lowest RTT an eighth above the minimum): a full bottleneck queue drops at its tail. Below
/// it, or without a queue, loss is random (Wi-Fi, mobile) and not a signal.
pub(crate) const LOSS_BAND_PERCENT: u64 = 3;
/// Loss above this share of a round's packets is congestion whatever the RTT (a bottleneck
/// whose buffer is too small to show a queue).
const HEAVY_LOSS_PERCENT: u64 = 20;
/// Initial window, in packets.
const INITIAL_PACKETS: u64 = 10;
/// Smallest window, in packets.
const MIN_PACKETS: u64 = 4;
/// Round trips of a standing queue before the delay-trend guard acts.
const STANDING_ROUNDS: u32 = 2;
/// Drains that left the queue in place before the guard concludes the queue is not ours.
const FUTILE_DRAINS: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Startup => "startup",
            Mode::Drain => "drain",
            Mode::ProbeBw => "probe bandwidth",
            Mode::ProbeRtt => "probe RTT",
        }
    }
}

/// The BBR-family controller, the default (`CongestionControl` 0): paces at the bottleneck
/// bandwidth it measures (the highest delivery rate of the last ten busy round trips), keeps
/// about two bandwidth-delay products in flight, probes for more bandwidth every eight round
/// trips and for the minimum RTT every ten seconds. Loss counts as congestion only when a round
/// lost more than 3 % of its packets while it queued, or more than 20 %; a standing queue that
/// outlives two round trips makes it drain and lower its estimate, unless draining does not help
/// (another flow's queue). App-limited periods leave the estimate as it was.
#[derive(Debug, Clone)]
pub struct Bbr {
    mss: u64,
    mode: Mode,
    /// Highest delivery rate of each of the last [`BW_ROUNDS`] busy rounds (rounds with a
    /// sample that was not app-limited), by `busy_round`: an app-limited period leaves the
    /// estimate as it was.
    bw_rounds: [u64; BW_ROUNDS],
    busy_round: u64,
    /// The current round had a sample that was not app-limited.
    round_busy: bool,
    /// Bandwidth cap after congestion (`u64::MAX`: none), lifted when ProbeBW probes again.
    bw_lo: u64,
    /// Highest delivery rate of the current round.
    bw_latest: u64,
    round: u64,
    next_round_delivered: u64,
    /// Startup: the bandwidth of the last round that grew by 25 %, and rounds since.
    full_bw: u64,
    full_bw_rounds: u32,
    filled_pipe: bool,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    srtt: Duration,
    /// ProbeRTT: when it may end.
    probe_rtt_until: Option<Instant>,
    cycle_index: usize,
    cycle_stamp: Instant,
    /// Signals of the current round.
    round_lost: u64,
    round_delivered_start: u64,
    round_min_rtt: Option<Duration>,
    /// Delay-trend guard: consecutive rounds with a standing queue, drains that did not
    /// remove it, and whether it rests (the queue is another flow's).
    standing_rounds: u32,
    futile_drains: u32,
    guard_resting: bool,
    delivered: u64,
    in_flight: u64,
    pacing_rate: u64,
    window: u64,
}

impl Bbr {
    /// A controller for packets of `mtu` bytes, starting at `now`.
    pub fn new(now: Instant, mtu: usize) -> Self {
        let mss = mtu as u64;
        let mut b = Bbr {
            mss,
            mode: Mode::Startup,
            bw_rounds: [0; BW_ROUNDS],
            busy_round: 0,
            round_busy: false,
            bw_lo: u64::MAX,
            bw_latest: 0,
            round: 0,
            next_round_delivered: 0,
            full_bw: 0,
            full_bw_rounds: 0,
            filled_pipe: false,
            min_rtt: None,
            min_rtt_stamp: now,
            srtt: Duration::from_millis(100),
            probe_rtt_until: None,
            cycle_index: 2,
            cycle_stamp: now,
            round_lost: 0,
            round_delivered_start: 0,
            round_min_rtt: None,
            standing_rounds: 0,
            futile_drains: 0,
            guard_resting: false,
            delivered: 0,
            in_flight: 0,
            pacing_rate: 0,
            window: INITIAL_PACKETS * mss,
        };
        b.set_outputs();
        b
    }

    fn bw_max(&self) -> u64 {
        self.bw_rounds.iter().copied().max().unwrap_or(0)
    }

    /// The bandwidth the model uses.
    fn bw(&self) -> u64 {
        self.bw_max().min(self.bw_lo)
    }

    fn bdp(&self) -> u64 {
        bytes_in(self.bw(), self.min_rtt.unwrap_or(self.srtt))
    }

    fn pacing_gain(&self) -> u64 {
        match self.mode {
            Mode::Startup => STARTUP_GAIN,
            Mode::Drain => DRAIN_GAIN,
            Mode::ProbeBw => PROBE_GAINS[self.cycle_index],
            Mode::ProbeRtt => 100,
        }
    }

    fn set_outputs(&mut self) {
        let bw = self.bw();
        let min_window = MIN_PACKETS * self.mss;
        if bw == 0 {
            // No sample yet: the initial window over the handshake's RTT, as Startup would.
            let rate = rate_of(INITIAL_PACKETS * self.mss, self.srtt);
            self.pacing_rate = rate * STARTUP_GAIN / 100;
            self.window = INITIAL_PACKETS * self.mss;
            return;
        }
        let rate = bw.saturating_mul(self.pacing_gain()) / 100;
        // Startup never slows down: its samples lag its rate by a round trip.
        self.pacing_rate =
            if self.mode == Mode::Startup { self.pacing_rate.max(rate) } else { rate };
        let bdp = self.bdp();
        // Acks are held up to 5 ms: keep that much more in flight (and two packets) so that
        // the window does not stall between acks on a small bandwidth-delay product.
        let ack_room = bytes_in(bw, Duration::from_millis(5)) + 2 * self.mss;
        let gain = if self.mode == Mode::Startup { STARTUP_GAIN } else { CWND_GAIN };
        let mut window = bdp.saturating_mul(gain) / 100 + ack_room;
        if self.mode == Mode::ProbeRtt {
            window = bdp / 2;
        }
        if !self.filled_pipe {
            window = window.max(INITIAL_PACKETS * self.mss);
        }
        self.window = window.max(min_window);
    }

    /// A new round began: judge the one that ended.
    fn end_round(&mut self, now: Instant) {
        let delivered = self.delivered - self.round_delivered_start;
        let lost = self.round_lost;
        // A full bottleneck queue delays every packet of the round (reordering delays only
        // some): the round's lowest RTT tells.
        let queued = match (self.round_min_rtt, self.min_rtt) {
            (Some(round_min), Some(min)) => round_min > min + queue_target(min),
            _ => false,
        };
        let over = |pct: u64| lost.saturating_mul(100) > (delivered + lost).saturating_mul(pct);
        let congested = lost > 2 * self.mss
            && (over(HEAVY_LOSS_PERCENT) || (queued && over(LOSS_BAND_PERCENT)));
        if congested {
            self.filled_pipe = true;
            let cap = self.bw_latest.max(self.bw().saturating_mul(7) / 10);
            self.cap_bw(cap);
        }
        // Startup: a queue that stays a whole round means the pipe is full (HyStart++'s delay
        // increase: an eighth of the minimum RTT, between 4 and 16 ms).
        if let (false, Some(round_min), Some(min)) =
            (self.filled_pipe, self.round_min_rtt, self.min_rtt)
        {
            let rise = (min / 8).clamp(Duration::from_millis(4), Duration::from_millis(16));
            if self.round_busy && round_min >= min + rise {
                self.filled_pipe = true;
            }
        }
        // Startup: has the bandwidth stopped growing? (Only a busy round can tell.)
        if !self.filled_pipe && self.round_busy {
            let bw = self.bw_max();
            if bw >= self.full_bw.saturating_mul(5) / 4 {
                self.full_bw = bw;
                self.full_bw_rounds = 0;
            } else if bw > 0 {
                self.full_bw_rounds += 1;
                if self.full_bw_rounds >= 3 {
                    self.filled_pipe = true;
                }
            }
        }
        self.delay_guard(now);
        self.round_lost = 0;
        self.round_delivered_start = self.delivered;
        self.round_min_rtt = None;
        self.round += 1;
        if self.round_busy {
            self.busy_round += 1;
            self.bw_rounds[(self.busy_round % BW_ROUNDS as u64) as usize] = 0;
        }
        self.round_busy = false;
        self.bw_latest = 0;
    }

    /// Caps the bandwidth at `cap` until the next probe, and forgets samples above it.
    fn cap_bw(&mut self, cap: u64) {
        if cap == 0 {
            return;
        }
        self.bw_lo = cap;
        for b in &mut self.bw_rounds {
            *b = (*b).min(cap);
        }
    }

    fn delay_guard(&mut self, now: Instant) {
        let (Some(round_min), Some(min)) = (self.round_min_rtt, self.min_rtt) else { return };
        let standing = round_min > min + queue_target(min);
        if !standing {
            self.standing_rounds = 0;
            self.futile_drains = 0;
            self.guard_resting = false;
            return;
        }
        if self.mode != Mode::ProbeBw || self.guard_resting {
            return;
        }
        self.standing_rounds += 1;
        if self.standing_rounds < STANDING_ROUNDS {
            return;
        }
        self.standing_rounds = 0;
        self.futile_drains += 1;
        if self.futile_drains > FUTILE_DRAINS {
            // Draining does not remove this queue: it is not ours.
            self.guard_resting = true;
            return;
        }
        // Sending at the estimate keeps a queue: the estimate is too high. Drain, and until the
        // next probe send no faster than 95 % of what the last round delivered. The bandwidth
        // filter keeps its samples: on a real path delivery samples are noisy, and one low
        // round must not ratchet the estimate down for good.
        let bw = self.bw();
        let latest = if self.bw_latest > 0 { self.bw_latest.min(bw) } else { bw };
        self.bw_lo = latest.saturating_mul(95) / 100;
        self.cycle_index = 1; // drain phase
        self.cycle_stamp = now;
    }

    fn advance_cycle(&mut self, now: Instant, rtt: Option<Duration>) {
        let min = self.min_rtt.unwrap_or(self.srtt);
        let elapsed = now - self.cycle_stamp;
        let gain = PROBE_GAINS[self.cycle_index];
        let queued = rtt.is_some_and(|r| r > min + (min / 8).max(Duration::from_millis(1)));
        let done = match gain {
            // Probing: three quarters of a phase (what it queued then is a fifth of the
            // bandwidth-delay product), or half of one once it queues.
            g if g > 100 => elapsed >= min * 3 / 4 || (elapsed >= min / 2 && queued),
            // Draining: a phase, or until the queue is gone.
            g if g < 100 => elapsed >= min || self.in_flight <= self.bdp(),
            _ => elapsed >= min,
        };
        if done {
            self.cycle_index = (self.cycle_index + 1) % PROBE_GAINS.len();
            self.cycle_stamp = now;
            if self.cycle_index == 0 {
                // Probe again from the full estimate.
                self.bw_lo = u64::MAX;
            }
        }
    }

    fn update_mode(&mut self, now: Instant, rtt: Option<Duration>) {
        match self.mode {
            Mode::Startup if self.filled_pipe => self.mode = Mode::Drain,
            Mode::Drain if self.in_flight <= self.bdp() => {
                self.mode = Mode::ProbeBw;
                // Start in a cruising phase, at a point that differs between connections so
                // that flows sharing a path do not probe in lock step.
                self.cycle_index = 2 + (self.round % 6) as usize;
                self.cycle_stamp = now;
            }
            Mode::ProbeBw => self.advance_cycle(now, rtt),
            Mode::ProbeRtt if self.probe_rtt_until.is_some_and(|t| now >= t) => {
                self.probe_rtt_until = None;
                self.min_rtt_stamp = now;
                self.mode = if self.filled_pipe { Mode::ProbeBw } else { Mode::Startup };
                self.cycle_index = 2;
                self.cycle_stamp = now;
            }
            _ => {}
        }
        if self.mode != Mode::ProbeRtt
            && self.mode != Mode::Startup
            && now - self.min_rtt_stamp > MIN_RTT_WINDOW
        {
            self.mode = Mode::ProbeRtt;
            self.probe_rtt_until = Some(now + PROBE_RTT_TIME.max(self.srtt));
        }
    }
}

impl CongestionController for Bbr {
    fn on_sent(&mut self, _: Instant, _: u64, in_flight: u64) {
        self.in_flight = in_flight;
    }

    fn on_ack(&mut self, now: Instant, ack: &AckSample) {
        self.delivered = ack.delivered;
        self.in_flight = ack.in_flight;
        self.srtt = ack.srtt;
        if let Some(rtt) = ack.rtt {
            if self.min_rtt.is_none_or(|m| rtt <= m || now - self.min_rtt_stamp > MIN_RTT_WINDOW) {
                self.min_rtt = Some(rtt);
                self.min_rtt_stamp = now;
            }
            self.round_min_rtt = Some(self.round_min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        if let Some(rs) = ack.rate {
            if rs.prior_delivered >= self.next_round_delivered {
                self.next_round_delivered = self.delivered;
                self.end_round(now);
            }
            // A sample over less than the minimum RTT can be inflated by acks that arrive in
            // a clump; an app-limited one only counts when it shows more than the estimate.
            let short = self.min_rtt.is_some_and(|m| rs.interval < m);
            if !short && (!rs.app_limited || rs.rate >= self.bw_max()) {
                let slot = &mut self.bw_rounds[(self.busy_round % BW_ROUNDS as u64) as usize];
                *slot = (*slot).max(rs.rate.min(self.bw_lo));
            }
            self.round_busy |= !rs.app_limited;
            if !short {
                self.bw_latest = self.bw_latest.max(rs.rate);
            }
        }
        self.update_mode(now, ack.rtt);
        self.set_outputs();
    }

    fn on_loss(&mut self, _: Instant, loss: &LossSample) {
        self.round_lost += loss.lost_bytes;
        self.in_flight = loss.in_flight;
    }

    fn pacing_rate(&self) -> u64 {
        self.pacing_rate.max(1)
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn bandwidth_estimate(&self) -> u64 {
        self.bw()
    }

    fn describe(&self) -> String {
        let min = self.min_rtt.map_or(0, |m| m.as_micros() as u64);
        text!(
            "BBR ",
            self.mode.name(),
            ", bandwidth ",
            self.bw(),
            " B/s, min RTT ",
            min,
            " µs, window ",
            self.window,
            " B, pacing ",
            self.pacing_rate,
            " B/s"
        )
    }
}
