//! Rates and quality for quick status.

use core::time::Duration;

use crate::time::Instant;

/// Rates are measured over intervals of this length and smoothed.
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Packet and byte counters, turned into per-second rates once per interval.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meter {
    start: Instant,
    packets: u64,
    bytes: u64,
    pub(crate) packets_per_sec: f32,
    pub(crate) bytes_per_sec: f32,
    pub(crate) total_packets: u64,
    pub(crate) total_bytes: u64,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Self {
        Meter { start: now, ..Default::default() }
    }
    pub(crate) fn record(&mut self, now: Instant, bytes: usize) {
        self.roll(now);
        self.packets += 1;
        self.bytes += bytes as u64;
        self.total_packets += 1;
        self.total_bytes += bytes as u64;
    }
    /// Closes the interval if it is over.
    pub(crate) fn roll(&mut self, now: Instant) {
        let dt = now - self.start;
        if dt >= STATS_INTERVAL {
            let secs = dt.as_secs_f32();
            self.packets_per_sec = self.packets as f32 / secs;
            self.bytes_per_sec = self.bytes as f32 / secs;
            self.packets = 0;
            self.bytes = 0;
            self.start = now;
        }
    }
}

/// Fraction of the peer's packets that arrived, by packet-number analysis.
#[derive(Debug, Default, Clone)]
pub(crate) struct Quality {
    start: Instant,
    first_pn: Option<u64>,
    largest_pn: u64,
    received: u64,
    /// Last interval's quality, 0..=1000, or `None` before the first interval.
    pub(crate) permille: Option<u16>,
    pub(crate) report_pending: bool,
}

impl Quality {
    pub(crate) fn on_packet(&mut self, now: Instant, pn: u64) {
        if self.first_pn.is_none() {
            self.first_pn = Some(pn);
            self.largest_pn = pn;
            self.start = now;
        }
        self.largest_pn = self.largest_pn.max(pn);
        self.received += 1;
        self.roll(now);
    }
    pub(crate) fn roll(&mut self, now: Instant) {
        let Some(first) = self.first_pn else { return };
        if now - self.start >= STATS_INTERVAL {
            let expected = self.largest_pn.saturating_sub(first).saturating_add(1);
            self.permille = Some(((self.received.min(expected) * 1000) / expected) as u16);
            self.report_pending = true;
            self.first_pn = None;
            self.received = 0;
        }
    }
}
