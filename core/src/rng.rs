//! The one random number generator of the core.
//!
//! The core never reaches for OS entropy or a global RNG: the driver hands the endpoint a
//! 32-byte seed (from the OS, or `crypto.getRandomValues` in the browser), and every random
//! choice (connection ids, cookie secrets, ephemeral keys, the link conditioner's dice) comes
//! from a ChaCha20 stream keyed by it. The simulator seeds it with a fixed value, which is what
//! makes every simulated run reproducible.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

/// A seeded cryptographically strong RNG (ChaCha20).
#[derive(Clone, Debug)]
pub struct Rng {
    inner: ChaCha20Rng,
}

impl Rng {
    /// An RNG keyed by `seed`. Equal seeds give equal streams.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng { inner: ChaCha20Rng::from_seed(seed) }
    }

    /// An RNG for tests and the simulator, keyed by a small number.
    pub fn seeded(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self::from_seed(s)
    }

    /// A new independent RNG whose seed is drawn from this one.
    pub fn fork(&mut self) -> Rng {
        let mut s = [0u8; 32];
        self.fill(&mut s);
        Rng::from_seed(s)
    }

    /// Uniform `u32`.
    pub fn u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// Uniform `u64`.
    pub fn u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        self.inner.fill_bytes(buf)
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        // 53 random mantissa bits.
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.f64() < p
    }

    /// Uniform in `[lo, hi]` (inclusive). Returns `lo` when `hi <= lo`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.u64();
        }
        // Multiply-shift: bias below 2^-64 * span, irrelevant for our uses.
        lo + ((self.u64() as u128 * (span as u128 + 1)) >> 64) as u64
    }

    /// Access to the underlying generator, for crates that take a `rand_core` RNG.
    pub fn as_rand_core(&mut self) -> &mut ChaCha20Rng {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn deterministic_and_in_range() {
        let mut a = Rng::seeded(7);
        let mut b = Rng::seeded(7);
        for _ in 0..1000 {
            let x = a.range(10, 20);
            assert_eq!(x, b.range(10, 20));
            assert!((10..=20).contains(&x));
            let f = a.f64();
            assert_eq!(f, b.f64());
            assert!((0.0..1.0).contains(&f));
        }
        assert_ne!(Rng::seeded(1).u64(), Rng::seeded(2).u64());
    }
}
