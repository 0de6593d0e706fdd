//! Lowercase hex, for the text forms of keys, certificates and generic-bytes identities.
//!
//! Hand-written because it is twenty lines and saves a dependency. Decoding takes untrusted
//! text: it never panics and never allocates more than half the input length.

use crate::prelude::*;
use core::fmt;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex.
pub(crate) fn write(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    for &b in bytes {
        f.write_char(char::from(DIGITS[usize::from(b >> 4)]))?;
        f.write_char(char::from(DIGITS[usize::from(b & 0xf)]))?;
    }
    Ok(())
}

/// Appends `bytes` as lowercase hex.
pub(crate) fn push(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Value of one hex digit (either case).
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into `out`, which must be exactly half as long as `text`.
/// Returns `None` on a length mismatch or a non-hex character.
pub(crate) fn decode_into(text: &str, out: &mut [u8]) -> Option<()> {
    let text = text.as_bytes();
    if text.len() != out.len().checked_mul(2)? {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(())
}

/// Decodes hex (either case) into a new vector. `None` on an odd length or a bad character.
pub(crate) fn decode_vec(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = vec![0u8; text.len() / 2];
    decode_into(text, &mut out)?;
    Some(out)
}

/// Decodes exactly `N` bytes of hex.
#[cfg(test)]
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(text, &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn round_trip_and_rejects() {
        let mut s = String::new();
        write(&mut s, &[0x00, 0x7f, 0xab, 0xff]).unwrap();
        assert_eq!(s, "007fabff");
        assert_eq!(decode_vec(&s).unwrap(), [0x00, 0x7f, 0xab, 0xff]);
        assert_eq!(decode_vec("ABcd").unwrap(), [0xab, 0xcd]);
        assert_eq!(decode_array::<2>("abcd"), Some([0xab, 0xcd]));
        assert_eq!(decode_array::<2>("abc"), None);
        assert_eq!(decode_array::<2>("abcdef"), None);
        assert_eq!(decode_vec("abc"), None);
        assert_eq!(decode_vec("zz"), None);
        assert_eq!(decode_vec("+1"), None);
        // A multi-byte UTF-8 character is not a digit and must not cause a slicing panic.
        assert_eq!(decode_vec("éé"), None);
        assert_eq!(decode_vec("").unwrap(), Vec::<u8>::new());
    }
}
