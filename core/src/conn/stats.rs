//! Rates and quality for quick status.

use crate::prelude::*;
use crate::text::{Text, push_u64, push_u64_padded};
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
    /// `label: P pkt/s B B/s, total N pkts M B` and a newline, for the detailed status.
    pub(crate) fn status_line(&self, label: &str) -> String {
        crate::text!(
            label,
            ": ",
            Fixed(self.packets_per_sec.into(), 0),
            " pkt/s ",
            Fixed(self.bytes_per_sec.into(), 0),
            " B/s, total ",
            self.total_packets,
            " pkts ",
            self.total_bytes,
            " B\n",
        )
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

/// `value` with `decimals` digits after the point (at most 9), as `{:.N}` prints it (ties
/// round to even), for finite values below 2^53 after scaling. Written out by hand because
/// core's float formatting (Grisu and Dragon4 tables and bignums) costs about 15 KB of wasm,
/// and the detailed status text is the only place the core prints floats.
pub(crate) struct Fixed(pub(crate) f64, pub(crate) u32);

impl Text for Fixed {
    fn push_to(&self, out: &mut String) {
        let Fixed(value, decimals) = *self;
        let decimals = decimals.min(9);
        if !value.is_finite() {
            return out.push_str(if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "inf"
            } else {
                "-inf"
            });
        }
        let scale = 10u64.pow(decimals);
        let raw = value.abs() * scale as f64;
        if raw >= (1u64 << 53) as f64 {
            // Beyond f64's integer precision: integer digits only (never reached by rates).
            if value < 0.0 {
                out.push('-');
            }
            return push_u64(out, value.abs() as u64);
        }
        // Rounded half to even, as `f64::round_ties_even` (not in `core`) would: below 2^53 the
        // fraction is exact.
        let whole = raw as u64;
        let frac = raw - whole as f64;
        let scaled = whole + u64::from(frac > 0.5 || (frac == 0.5 && whole % 2 == 1));
        if value.is_sign_negative() && value != 0.0 {
            out.push('-');
        }
        push_u64(out, scaled / scale);
        if decimals > 0 {
            out.push('.');
            push_u64_padded(out, scaled % scale, decimals as usize);
        }
    }
}

/// A duration as `{:?}` prints it (`1.5ms`, `250µs`, `2.000001s`, `0ns`), without core's
/// `Duration` `Debug` code and its float-style padding machinery.
pub(crate) struct DurationText(pub(crate) Duration);

impl Text for DurationText {
    fn push_to(&self, out: &mut String) {
        let d = self.0;
        let (whole, frac, frac_digits, unit) = if d.as_secs() > 0 {
            (d.as_secs(), u64::from(d.subsec_nanos()), 9, "s")
        } else if d.subsec_nanos() >= 1_000_000 {
            (u64::from(d.subsec_millis()), u64::from(d.subsec_nanos() % 1_000_000), 6, "ms")
        } else if d.subsec_nanos() >= 1_000 {
            (u64::from(d.subsec_micros()), u64::from(d.subsec_nanos() % 1_000), 3, "µs")
        } else {
            (u64::from(d.subsec_nanos()), 0, 0, "ns")
        };
        push_u64(out, whole);
        if frac > 0 {
            let (mut frac, mut digits) = (frac, frac_digits);
            while frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            out.push('.');
            push_u64_padded(out, frac, digits);
        }
        out.push_str(unit);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn text_matches_core_formatting() {
        for v in [0.0f32, 0.5, 1.5, 2.5, 0.9996, 0.12345, 3.0, 1234.567, 99999.5, -0.25, 1e-7] {
            assert_eq!(crate::text!(Fixed(f64::from(v), 3)), format!("{v:.3}"), "{v}");
            assert_eq!(crate::text!(Fixed(f64::from(v), 0)), format!("{v:.0}"), "{v}");
        }
        assert_eq!(crate::text!(Fixed(f64::NAN, 3)), "NaN");
        assert_eq!(crate::text!(Fixed(f64::INFINITY, 0)), "inf");
        for d in [
            Duration::ZERO,
            Duration::from_nanos(7),
            Duration::from_micros(250),
            Duration::from_nanos(1_500),
            Duration::from_millis(12),
            Duration::from_micros(12_345),
            Duration::from_nanos(12_000_001),
            Duration::from_secs(3),
            Duration::new(2, 1),
            Duration::new(1, 500_000_000),
        ] {
            assert_eq!(crate::text!(DurationText(d)), format!("{d:?}"));
        }
    }
}
