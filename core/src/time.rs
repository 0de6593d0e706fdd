//! Lanewire's own notion of time.
//!
//! The core never reads a clock. Every input that depends on time carries an [`Instant`]: a
//! count of microseconds from an arbitrary epoch chosen by the driver. Native drivers convert
//! from `std::time::Instant`, the browser driver from `performance.now()`, and the simulator
//! starts at zero. Durations are plain [`core::time::Duration`]s.
//!
//! Invariant the core relies on: the `now` passed to successive calls never goes backwards.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an epoch chosen by the driver.
///
/// There is deliberately no `Instant::now()`: `std::time::Instant::now()` panics on
/// `wasm32-unknown-unknown`, and a core that read the clock could not be simulated.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The epoch itself (time zero). The simulator starts here.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// A time later than any a driver will ever produce; used as "never".
    pub const FAR_FUTURE: Instant = Instant { micros: u64::MAX / 2 };

    /// Makes an instant from microseconds since the driver's epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant { micros }
    }

    /// Makes an instant from milliseconds since the driver's epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant { micros: millis * 1000 }
    }

    /// Microseconds since the driver's epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }

    /// `self + d`, saturating at [`Instant::FAR_FUTURE`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        // In u64: the u128 of `Duration::as_micros` costs more than the rest of a hot send.
        let add =
            d.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(d.subsec_micros()));
        Instant { micros: self.micros.saturating_add(add).min(Self::FAR_FUTURE.micros) }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero, never a panic.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        let sub = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant { micros: self.micros.saturating_sub(sub) }
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.micros / 1_000_000, self.micros % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), Instant::from_micros(6000));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::FAR_FUTURE + Duration::from_secs(1), Instant::FAR_FUTURE);
    }
}
