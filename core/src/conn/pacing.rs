//! Pacing: a token bucket that spreads packets at the send rate the congestion controller
//! chose (see `cc`), clamped to `[SendRateMin, SendRateMax]`.

use core::time::Duration;

use crate::time::Instant;

/// How much time's worth of sending the bucket may hold. Drivers wake up with about a
/// millisecond of timer slack; 2 ms of burst keeps the configured rate reachable through that
/// slack without letting a long idle period turn into a burst (the bucket is capped).
const BURST_TIME: Duration = Duration::from_millis(2);

/// Token bucket in bytes.
#[derive(Debug)]
pub(crate) struct Pacer {
    tokens: f64,
    last: Instant,
    rate: u64,
    burst: f64,
}

impl Pacer {
    pub(crate) fn new(now: Instant, rate: u64, mtu: usize) -> Self {
        let mut p = Pacer { tokens: 0.0, last: now, rate: 1, burst: 0.0 };
        p.set_rate(rate, mtu);
        p.tokens = p.burst;
        p
    }

    pub(crate) fn set_rate(&mut self, rate: u64, mtu: usize) {
        self.rate = rate.max(1);
        self.burst = (self.rate as f64 * BURST_TIME.as_secs_f64()).max(2.0 * mtu as f64);
        self.tokens = self.tokens.min(self.burst);
    }

    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        if now > self.last {
            let dt = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate as f64).min(self.burst);
            self.last = now;
        }
    }

    /// True if a packet may go now. The bucket may go one packet negative, so a packet is
    /// never held back for want of a few bytes.
    pub(crate) fn can_send(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 0.0
    }

    pub(crate) fn on_sent(&mut self, bytes: usize) {
        self.tokens -= bytes as f64;
    }

    /// When the bucket is non-negative again.
    pub(crate) fn next_send_time(&self, now: Instant) -> Instant {
        if self.tokens >= 0.0 {
            now
        } else {
            // Rounded up to a whole microsecond (`f64::ceil` is not in `core`).
            let wait = -self.tokens / self.rate as f64 * 1e6;
            let whole = wait as u64;
            now + Duration::from_micros(whole + u64::from((whole as f64) < wait))
        }
    }

    /// Time to send `bytes` at the current rate.
    pub(crate) fn time_for(&self, bytes: usize) -> Duration {
        // In u64 (no u128 division in the browser's .wasm); exact below 18 TB.
        Duration::from_micros((bytes as u64).saturating_mul(1_000_000) / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn paces_at_rate() {
        let mut p = Pacer::new(Instant::ZERO, 100_000, 1000);
        let mut now = Instant::ZERO;
        let mut sent = 0;
        while now < Instant::from_millis(1000) {
            if p.can_send(now) {
                p.on_sent(1000);
                sent += 1000;
            } else {
                now = p.next_send_time(now);
            }
        }
        // 100 kB/s for one second, plus the initial burst of two packets.
        assert!((100_000..=103_000).contains(&sent), "{sent}");
    }
}
