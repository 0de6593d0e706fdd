//! The one random number generator of the core.
//!
//! The core never reaches for OS entropy or a global RNG: the driver hands the endpoint a
//! 32-byte seed (from the OS, or `crypto.getRandomValues` in the browser), and every random
//! choice (connection ids, cookie secrets, ephemeral keys, the link conditioner's dice) comes
//! from a ChaCha20 stream keyed by it. The simulator seeds it with a fixed value, which is what
//! makes every simulated run reproducible.
//!
//! The stream is [`ChaCha20`], a plain one-block-at-a-time implementation whose output is the
//! same as `rand_chacha::ChaCha20Rng`'s word for word (checked by a test): `rand_chacha`'s
//! four-block SIMD-style code is about 6 KB of wasm, this about 1 KB, and the core draws a few
//! words per connection (and per packet only when the link conditioner is on).

use core::convert::Infallible;
use core::fmt;

/// ChaCha20 (20 rounds, 64-bit block counter, 64-bit stream id 0, D. J. Bernstein's layout)
/// keyed by a 32-byte seed, as a stream of 32-bit words: the same output as
/// `rand_chacha::ChaCha20Rng::from_seed(seed)`, including how `u64`s and byte fills take words
/// (two words low first; a fill's partly used last word is discarded).
#[derive(Clone)]
pub struct ChaCha20 {
    key: [u32; 8],
    counter: u64,
    block: [u32; 16],
    /// Next unread word of `block`; 16 when it is used up.
    index: usize,
}

impl ChaCha20 {
    /// The stream keyed by `seed`, from its first word.
    pub fn from_seed(seed: [u8; 32]) -> ChaCha20 {
        let mut key = [0u32; 8];
        for (k, b) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        ChaCha20 { key, counter: 0, block: [0; 16], index: 16 }
    }

    fn refill(&mut self) {
        let mut input = [0u32; 16];
        input[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
        input[4..12].copy_from_slice(&self.key);
        input[12] = self.counter as u32;
        input[13] = (self.counter >> 32) as u32;
        let mut x = input;
        fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(16);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(12);
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(8);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(7);
        }
        for _ in 0..10 {
            for (a, b, c, d) in [
                (0, 4, 8, 12),
                (1, 5, 9, 13),
                (2, 6, 10, 14),
                (3, 7, 11, 15),
                (0, 5, 10, 15),
                (1, 6, 11, 12),
                (2, 7, 8, 13),
                (3, 4, 9, 14),
            ] {
                quarter(&mut x, a, b, c, d);
            }
        }
        for (out, (x, i)) in self.block.iter_mut().zip(x.iter().zip(input)) {
            *out = x.wrapping_add(i);
        }
        self.counter = self.counter.wrapping_add(1);
        self.index = 0;
    }

    /// The next word.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 16 {
            self.refill();
        }
        let w = self.block[self.index];
        self.index += 1;
        w
    }

    /// The next two words, the first as the low half.
    pub fn next_u64(&mut self) -> u64 {
        let lo = self.next_u32();
        u64::from(lo) | (u64::from(self.next_u32()) << 32)
    }

    /// Fills `buf` with the next words' little-endian bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(4) {
            let w = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

impl fmt::Debug for ChaCha20 {
    /// Shows no key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChaCha20 { .. }")
    }
}

impl rand_core::TryRng for ChaCha20 {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill_bytes(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ChaCha20 {}

/// A seeded cryptographically strong RNG (ChaCha20).
#[derive(Clone, Debug)]
pub struct Rng {
    inner: ChaCha20,
}

impl Rng {
    /// An RNG keyed by `seed`. Equal seeds give equal streams.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng { inner: ChaCha20::from_seed(seed) }
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
    pub fn as_rand_core(&mut self) -> &mut ChaCha20 {
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

    /// Word for word the stream of `rand_chacha` (which the core used before), through every
    /// way of drawing and across block boundaries, so seeded runs are unchanged.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn same_stream_as_rand_chacha() {
        use rand_core::{Rng as _, SeedableRng};
        for seed in [[0u8; 32], [7; 32], core::array::from_fn(|i| (i as u8).wrapping_mul(13))] {
            let mut ours = ChaCha20::from_seed(seed);
            let mut theirs = rand_chacha::ChaCha20Rng::from_seed(seed);
            let mut pick = Rng::seeded(u64::from(seed[1]));
            for step in 0..3000 {
                match pick.u32() % 4 {
                    0 => assert_eq!(ours.next_u32(), theirs.next_u32(), "step {step}"),
                    1 => assert_eq!(ours.next_u64(), theirs.next_u64(), "step {step}"),
                    _ => {
                        let n = (pick.u32() % 70) as usize;
                        let (mut a, mut b) = ([0u8; 70], [0u8; 70]);
                        ours.fill_bytes(&mut a[..n]);
                        theirs.fill_bytes(&mut b[..n]);
                        assert_eq!(a, b, "step {step}");
                    }
                }
            }
        }
    }
}
