//! A token bucket for per-client message rates. Time comes in as an argument, so the tests
//! need no clock.

use std::time::Duration;

use tokio::time::Instant;

/// Holds up to `burst` tokens, refills `rate` per second; each message takes one.
pub(crate) struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst),
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(50, 200, t0);
        for _ in 0..200 {
            assert!(bucket.try_take(t0).is_ok());
        }
        let wait = bucket.try_take(t0).expect_err("bucket is empty");
        assert_eq!(wait, Duration::from_millis(20));
        // One second later: 50 more, not 51.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..50 {
            assert!(bucket.try_take(t1).is_ok());
        }
        assert!(bucket.try_take(t1).is_err());
        // A long pause refills to the burst, no further.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..200 {
            assert!(bucket.try_take(t2).is_ok());
        }
        assert!(bucket.try_take(t2).is_err());
    }
}
