//! Unsigned LEB128 variable-length integers (protobuf style), as used throughout the wire
//! format: 7 bits per byte, low bits first, high bit set on every byte but the last.

use super::WireError;
use crate::prelude::*;

/// The longest encoding of a `u64`: ten bytes (9 × 7 = 63 bits, plus one).
pub const MAX_LEN: usize = 10;

/// Bytes needed to encode `v`.
#[inline]
pub const fn len(v: u64) -> usize {
    // 1 byte per started group of 7 significant bits, at least one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `v` to `out`.
#[inline]
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes `v` at the start of `out`, returning the bytes written, or `None` if `out` is short.
#[inline]
pub fn write(out: &mut [u8], mut v: u64) -> Option<usize> {
    let mut i = 0;
    loop {
        let b = out.get_mut(i)?;
        if v < 0x80 {
            *b = v as u8;
            return Some(i + 1);
        }
        *b = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
}

/// Reads a varint from the front of `buf`: the value and the bytes consumed.
///
/// Rejects truncated input, encodings longer than ten bytes and values above `u64::MAX`.
#[inline]
pub fn read(buf: &[u8]) -> Result<(u64, usize), WireError> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(MAX_LEN) {
        let part = u64::from(b & 0x7f);
        if i == MAX_LEN - 1 && (b & 0x7e) != 0 {
            return Err(WireError::VarintOverflow);
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if buf.len() >= MAX_LEN { Err(WireError::VarintOverflow) } else { Err(WireError::Truncated) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn literal_encodings() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16384, &[0x80, 0x80, 0x01]),
            (u64::MAX, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
        ];
        for &(v, bytes) in cases {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out, bytes, "encode {v}");
            assert_eq!(len(v), bytes.len());
            assert_eq!(read(bytes), Ok((v, bytes.len())), "decode {v}");
            let mut fixed = [0u8; MAX_LEN];
            assert_eq!(write(&mut fixed, v), Some(bytes.len()));
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rejects_bad_input() {
        assert_eq!(read(&[]), Err(WireError::Truncated));
        assert_eq!(read(&[0x80]), Err(WireError::Truncated));
        assert_eq!(read(&[0xff; 10]), Err(WireError::VarintOverflow));
        assert_eq!(
            read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(WireError::VarintOverflow)
        );
        assert_eq!(write(&mut [0u8; 1], 128), None);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn random_round_trips() {
        let mut rng = Rng::seeded(1);
        for _ in 0..10_000 {
            let v = rng.u64() >> rng.range(0, 63);
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(read(&out), Ok((v, out.len())));
            assert_eq!(out.len(), len(v));
        }
    }
}
