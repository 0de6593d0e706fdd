//! Path MTU discovery in the manner of RFC 8899 (DPLPMTUD, datagram packetization layer PMTU
//! discovery): packets start at a size every path carries ([`BASE_MTU`]), and probes (a ping
//! padded to the size under test) search upward to `MtuPacketSize`. A probe that is acked
//! confirms its size; one lost [`MAX_PROBES`] times rules it out, and the search halves the
//! remaining interval. Probe losses are not congestion signals.
//!
//! When packets of the size in use vanish while small ones still pass (a black hole, for
//! example a path that moved to a tunnel), the connection drops back to the base size at once
//! and searches again a moment later; once the search is over it tries the full size again
//! every [`RAISE_INTERVAL`], since paths also get better.
//!
//! Over a transport that sets its own datagram limit (a WebRTC data channel, see
//! `Endpoint::set_transport_max_datagram`) that limit is the size, and nothing is probed.

use core::time::Duration;

use crate::time::Instant;

/// The size every path carries: the smallest path MTU QUIC requires of IPv4 and IPv6 paths
/// (RFC 9000 section 14), less nothing (it is the UDP payload).
pub(crate) const BASE_MTU: usize = 1200;
/// Probes of one size that may be lost before the size is ruled out (RFC 8899's MAX_PROBES).
pub(crate) const MAX_PROBES: u32 = 3;
/// After a search, the full size is tried again this often (RFC 8899's PMTU_RAISE_TIMER).
pub(crate) const RAISE_INTERVAL: Duration = Duration::from_secs(600);
/// After a black hole, the search starts again this much later.
const RESEARCH_DELAY: Duration = Duration::from_millis(500);
/// The search stops when the interval left is smaller than this.
const SEARCH_GRANULARITY: usize = 16;

/// Path MTU state of a connection.
#[derive(Debug, Clone)]
pub(crate) struct PathMtu {
    /// The packet size in use: confirmed by an ack, or the base.
    current: usize,
    /// The largest size that may be used (`MtuPacketSize`, or the transport's limit).
    max: usize,
    /// Search interval: `current` is confirmed; sizes above `high` are ruled out.
    high: usize,
    /// The size being probed, and how many probes of it were lost.
    trying: usize,
    failures: u32,
    /// The probe in flight: its packet number.
    in_flight: Option<u64>,
    /// When the next probe may go (`None`: the search is over and no raise is scheduled).
    next_probe: Option<Instant>,
    /// Probes sent and lost (for the detailed status).
    pub(crate) probes_sent: u64,
    pub(crate) probes_lost: u64,
    /// Black holes detected.
    pub(crate) black_holes: u64,
}

impl PathMtu {
    /// Starts at the base size and searches up to `max` from `now`; with `probing` off, uses
    /// `max` as it is.
    pub(crate) fn new(now: Instant, max: usize, probing: bool) -> Self {
        let probing = probing && cfg!(feature = "path-mtu");
        let start = if probing { max.min(BASE_MTU) } else { max };
        PathMtu {
            current: start,
            max,
            high: max,
            trying: max,
            failures: 0,
            in_flight: None,
            next_probe: (probing && max > start).then_some(now),
            probes_sent: 0,
            probes_lost: 0,
            black_holes: 0,
        }
    }

    /// The packet size to use now.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// The size to probe now, if a probe is due (never without the `path-mtu` feature).
    pub(crate) fn probe_due(&self, now: Instant) -> Option<usize> {
        if !cfg!(feature = "path-mtu")
            || self.in_flight.is_some()
            || self.next_probe.is_none_or(|t| now < t)
        {
            return None;
        }
        Some(self.trying)
    }

    /// When the next probe is due (for the connection's timer).
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        if !cfg!(feature = "path-mtu") || self.in_flight.is_some() { None } else { self.next_probe }
    }

    /// A probe of the size [`PathMtu::probe_due`] said went out as packet `pn`.
    pub(crate) fn on_probe_sent(&mut self, pn: u64) {
        self.in_flight = Some(pn);
        self.probes_sent += 1;
    }

    /// The probe was acknowledged: its size is confirmed.
    pub(crate) fn on_probe_acked(&mut self, now: Instant) {
        self.in_flight = None;
        self.current = self.current.max(self.trying);
        self.failures = 0;
        self.next_size(now);
    }

    /// The probe was declared lost.
    pub(crate) fn on_probe_lost(&mut self, now: Instant) {
        self.in_flight = None;
        self.probes_lost += 1;
        self.failures += 1;
        if self.failures >= MAX_PROBES {
            // Ruled out: search below it.
            self.failures = 0;
            self.high = self.trying - 1;
            self.next_size(now);
        }
    }

    /// Picks the next size to try, or ends the search.
    fn next_size(&mut self, now: Instant) {
        if self.high <= self.current || self.high - self.current < SEARCH_GRANULARITY {
            // Done. Try the full size again later if we are below it.
            self.next_probe = (self.current < self.max).then(|| now + RAISE_INTERVAL);
            self.high = self.max;
            self.trying = self.max;
            return;
        }
        self.trying = (self.current + self.high).div_ceil(2);
        self.next_probe = Some(now);
    }

    /// Packets of the current size vanish: back to the base size, search again soon. Returns
    /// false if already at the base (nothing smaller to fall back to).
    pub(crate) fn on_black_hole(&mut self, now: Instant) -> bool {
        let floor = self.max.min(BASE_MTU);
        if self.current <= floor {
            return false;
        }
        self.black_holes += 1;
        // The size that vanished is ruled out for this search.
        self.high = self.current - 1;
        self.current = floor;
        self.trying = (self.current + self.high).div_ceil(2);
        self.failures = 0;
        self.in_flight = None;
        self.next_probe = Some(now + RESEARCH_DELAY);
        true
    }

    /// True if packets of `size` count as large for black-hole detection.
    pub(crate) fn is_large(&self, size: usize) -> bool {
        size > self.max.min(BASE_MTU)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "path-mtu")]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn searches_down_to_what_the_path_carries_and_raises_later() {
        let path = 1350;
        let mut p = PathMtu::new(Instant::ZERO, 1452, true);
        assert_eq!(p.current(), BASE_MTU);
        let mut now = Instant::ZERO;
        for pn in 0..100 {
            let Some(size) = p.probe_due(now) else { break };
            p.on_probe_sent(pn);
            if size <= path {
                p.on_probe_acked(now)
            } else {
                p.on_probe_lost(now)
            }
            now += Duration::from_millis(10);
        }
        assert!(p.current() <= path && p.current() > path - SEARCH_GRANULARITY, "{}", p.current());
        assert!(p.probe_due(now).is_none());
        assert_eq!(p.next_probe(), Some(now - Duration::from_millis(10) + RAISE_INTERVAL));
        // A black hole at the size in use: back to the base, a new search soon.
        assert!(p.on_black_hole(now));
        assert_eq!(p.current(), BASE_MTU);
        assert!(p.probe_due(now + RESEARCH_DELAY).is_some());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn without_probing_the_size_is_fixed() {
        // Probing off (a transport that sizes its own packets, or no `path-mtu` feature): the
        // largest size from the start, nothing to probe.
        let fixed = PathMtu::new(Instant::ZERO, 1300, cfg!(not(feature = "path-mtu")));
        assert_eq!(fixed.current(), 1300);
        assert!(fixed.probe_due(Instant::ZERO).is_none());
    }
}
