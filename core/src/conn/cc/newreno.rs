//! NewReno (RFC 9002 section 7): a loss-based window. Slow start doubles the window each round
//! trip until the first loss; then it grows by one packet per round trip and halves on each
//! loss episode. It fills whatever buffer the bottleneck has before it sees a loss, which is
//! what most TCP stacks still do; Lanewire offers it for comparison and for paths where a
//! model-based controller misbehaves, and the simulator uses it as the competing flow in the
//! fairness tests.

use core::time::Duration;

use super::{AckSample, CongestionController, LossSample, bytes_in, rate_of};
use crate::prelude::*;
use crate::text;
use crate::time::Instant;

/// Initial window, in packets (RFC 9002: 10).
const INITIAL_PACKETS: u64 = 10;
/// Smallest window, in packets (RFC 9002: 2).
const MIN_PACKETS: u64 = 2;
/// Pacing rate over `window / srtt`, so that pacing never is the limit (RFC 9002 7.7: 1.25).
const PACING_GAIN_PERCENT: u64 = 125;

/// The NewReno controller (`CongestionControl` 1, RFC 9002 section 7): a loss-based window
/// that doubles each round trip in slow start, then grows by a packet per round trip and halves
/// once per loss episode; it paces at 125 % of window / smoothed RTT.
#[derive(Debug, Clone)]
pub struct NewReno {
    mss: u64,
    window: u64,
    ssthresh: u64,
    /// Losses of packets sent before this are part of the episode already answered.
    recovery_start: Option<Instant>,
    /// Bytes acked in congestion avoidance since the window last grew.
    acked_in_ca: u64,
    srtt: Duration,
}

impl NewReno {
    /// A controller for packets of `mtu` bytes.
    pub fn new(mtu: usize) -> Self {
        let mss = mtu as u64;
        NewReno {
            mss,
            window: INITIAL_PACKETS * mss,
            ssthresh: u64::MAX,
            recovery_start: None,
            acked_in_ca: 0,
            srtt: Duration::from_millis(100),
        }
    }
}

impl CongestionController for NewReno {
    fn on_sent(&mut self, _: Instant, _: u64, _: u64) {}

    fn on_ack(&mut self, _: Instant, ack: &AckSample) {
        self.srtt = ack.srtt;
        if self.window < self.ssthresh {
            self.window += ack.acked_bytes;
        } else {
            self.acked_in_ca += ack.acked_bytes;
            if self.acked_in_ca >= self.window {
                self.acked_in_ca -= self.window;
                self.window += self.mss;
            }
        }
    }

    fn on_loss(&mut self, now: Instant, loss: &LossSample) {
        if loss.timeout {
            self.ssthresh = (self.window / 2).max(MIN_PACKETS * self.mss);
            self.window = MIN_PACKETS * self.mss;
            self.recovery_start = Some(now);
            return;
        }
        if self.recovery_start.is_some_and(|t| loss.newest_sent <= t) {
            return; // the same episode
        }
        self.recovery_start = Some(now);
        self.ssthresh = (self.window / 2).max(MIN_PACKETS * self.mss);
        self.window = self.ssthresh;
        self.acked_in_ca = 0;
    }

    fn pacing_rate(&self) -> u64 {
        rate_of(self.window, self.srtt).saturating_mul(PACING_GAIN_PERCENT) / 100
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn bandwidth_estimate(&self) -> u64 {
        rate_of(self.window, self.srtt)
    }

    fn describe(&self) -> String {
        let ss = if self.window < self.ssthresh { " (slow start)" } else { "" };
        text!(
            "NewReno window ",
            self.window,
            " B",
            ss,
            ", ",
            bytes_in(self.pacing_rate(), Duration::from_secs(1)),
            " B/s"
        )
    }
}
