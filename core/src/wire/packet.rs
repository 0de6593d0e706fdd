//! Data packets: the 6-to-13-byte cleartext header in front of (sealed) frames.
//!
//! ```text
//!  0               1               2 ...           5 6 ...
//! +-+-+-+-+-+-+-+-+---------------+---------------+-------------------+----------------------+
//! |1|0 0 0 0|K|L L| destination connection id u32 LE| packet number    | frames (+ AEAD tag)  |
//! +-+-+-+-+-+-+-+-+---------------------------------+ 1/2/4/8 bytes LE +----------------------+
//! ```
//! `K` is the key phase (it flips at each key update). `LL` gives the length of the truncated
//! packet number (0: 1 byte, 1: 2, 2: 4, 3: 8). The
//! sender picks the length from the gap to the largest packet the peer has acknowledged
//! (RFC 9000 section 17.1), so however long a burst of loss lasts, the receiver can always
//! expand the number: it grows to 4 and then 8 bytes instead of wrapping. (GNS sends a fixed
//! 16 bits and kills the connection when a burst of loss pushes the gap past 0x4000.)

use super::{Reader, WireError, Writer};

/// The bit that marks a data packet; control packets have it clear.
pub const DATA_FLAG: u8 = 0x80;
const PN_LEN_MASK: u8 = 0x03;
/// The key phase bit: flips with each key update.
const KEY_PHASE: u8 = 0x04;
const RESERVED_MASK: u8 = !(DATA_FLAG | KEY_PHASE | PN_LEN_MASK);
const HEADER_FIXED: usize = 1 + 4;

fn pn_len_from_code(code: u8) -> usize {
    1 << (code & PN_LEN_MASK)
}

fn pn_code_from_len(len: usize) -> u8 {
    match len {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    }
}

/// Checked view of a data packet.
#[derive(Debug, Clone, Copy)]
pub struct DataPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> DataPacket<T> {
    /// Checks that `buf` is long enough for its header and has no reserved bits set; after this
    /// every accessor is infallible.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        let first = *b.first().ok_or(WireError::Truncated)?;
        if first & DATA_FLAG == 0 || first & RESERVED_MASK != 0 {
            return Err(WireError::UnknownType);
        }
        if b.len() < HEADER_FIXED + pn_len_from_code(first) {
            return Err(WireError::Truncated);
        }
        Ok(DataPacket { buf })
    }
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    /// The recipient's connection id.
    pub fn dst_conn_id(&self) -> u32 {
        let b = self.b();
        u32::from_le_bytes([b[1], b[2], b[3], b[4]])
    }
    /// The key phase bit.
    pub fn key_phase(&self) -> bool {
        self.b()[0] & KEY_PHASE != 0
    }
    /// Length in bytes of the truncated packet number.
    pub fn pn_len(&self) -> usize {
        pn_len_from_code(self.b()[0])
    }
    /// The truncated packet number as sent.
    pub fn truncated_pn(&self) -> u64 {
        let n = self.pn_len();
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&self.b()[HEADER_FIXED..HEADER_FIXED + n]);
        u64::from_le_bytes(a)
    }
    /// Length of the cleartext header (the AEAD's associated data).
    pub fn header_len(&self) -> usize {
        HEADER_FIXED + self.pn_len()
    }
    /// The bytes after the header: frames, sealed or not.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
}

/// Parsed data-packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeaderRepr {
    /// Recipient's connection id.
    pub dst_conn_id: u32,
    /// The packet number, truncated to `pn_len` bytes on the wire.
    pub truncated_pn: u64,
    /// 1, 2, 4 or 8.
    pub pn_len: usize,
    /// The key phase: which generation of keys sealed the packet (it flips at each update).
    pub key_phase: bool,
}

impl DataHeaderRepr {
    /// Parses the header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &DataPacket<T>) -> Self {
        DataHeaderRepr {
            dst_conn_id: p.dst_conn_id(),
            truncated_pn: p.truncated_pn(),
            pn_len: p.pn_len(),
            key_phase: p.key_phase(),
        }
    }
    /// Header bytes.
    pub fn buffer_len(&self) -> usize {
        HEADER_FIXED + self.pn_len
    }
    /// Writes the header.
    pub fn emit(&self, w: &mut Writer<'_>) -> Option<()> {
        let phase = if self.key_phase { KEY_PHASE } else { 0 };
        w.u8(DATA_FLAG | phase | pn_code_from_len(self.pn_len))?;
        w.u32(self.dst_conn_id)?;
        let bytes = self.truncated_pn.to_le_bytes();
        w.bytes(&bytes[..self.pn_len])
    }
    /// Reads a header from the front of `r` (for fuzzing and tests; the receive path uses
    /// [`DataPacket`]).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let rest = r.rest();
        let p = DataPacket::new_checked(rest)?;
        let h = Self::parse(&p);
        r.bytes(h.buffer_len())?;
        Ok(h)
    }
}

/// How many bytes to spend on packet number `pn` when the peer has acknowledged up to
/// `largest_acked` (RFC 9000 appendix A.2): enough to cover twice the unacknowledged span.
pub fn encode_packet_number_len(pn: u64, largest_acked: Option<u64>) -> usize {
    let unacked = match largest_acked {
        Some(la) => pn.saturating_sub(la),
        None => pn.saturating_add(1),
    };
    // Twice the range, so the receiver's window (centred on its expectation) covers it.
    let span = unacked.saturating_mul(2);
    if span < 1 << 8 {
        1
    } else if span < 1 << 16 {
        2
    } else if span < 1 << 32 {
        4
    } else {
        8
    }
}

/// Expands a truncated packet number (RFC 9000 appendix A.3): the candidate closest to
/// `largest_received + 1`.
pub fn decode_packet_number(largest_received: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    if pn_len >= 8 {
        return truncated;
    }
    let expected = largest_received.map_or(0, |l| l.wrapping_add(1));
    let bits = pn_len * 8;
    let win = 1u64 << bits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | (truncated & mask);
    if candidate.wrapping_add(hwin) <= expected && candidate < (1u64 << 62) - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn header_literal_both_ways() {
        let bytes = [0x81, 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0xaa];
        let p = DataPacket::new_checked(&bytes[..]).unwrap();
        let h = DataHeaderRepr::parse(&p);
        assert_eq!(
            h,
            DataHeaderRepr {
                dst_conn_id: 0x1234_5678,
                truncated_pn: 0x1234,
                pn_len: 2,
                key_phase: false
            }
        );
        assert_eq!(p.payload(), &[0xaa]);
        let mut out = [0u8; 7];
        let mut w = Writer::new(&mut out);
        h.emit(&mut w).unwrap();
        assert_eq!(w.len(), h.buffer_len());
        assert_eq!(&out[..], &bytes[..7]);
        // The key phase bit.
        let flipped = [0x85, 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0xaa];
        let p = DataPacket::new_checked(&flipped[..]).unwrap();
        assert!(p.key_phase());
        let mut w = Writer::new(&mut out);
        DataHeaderRepr::parse(&p).emit(&mut w).unwrap();
        assert_eq!(&out[..], &flipped[..7]);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn header_rejects() {
        assert_eq!(DataPacket::new_checked(&[][..]).err(), Some(WireError::Truncated));
        assert_eq!(
            DataPacket::new_checked(&[0x01, 0, 0, 0, 0, 0][..]).err(),
            Some(WireError::UnknownType)
        );
        assert_eq!(
            DataPacket::new_checked(&[0x88, 0, 0, 0, 0, 0][..]).err(),
            Some(WireError::UnknownType)
        );
        assert_eq!(
            DataPacket::new_checked(&[0x82, 0, 0, 0, 0, 0, 0][..]).err(),
            Some(WireError::Truncated)
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rfc9000_examples() {
        // RFC 9000 A.3: largest 0xa82f30ea, truncated 0x9b32 (16 bits) => 0xa82f9b32.
        assert_eq!(decode_packet_number(Some(0xa82f_30ea), 0x9b32, 2), 0xa82f_9b32);
        // A.2: acked 0xabe8b3, sending 0xac5c02 needs 16 bits; 0xace8fe needs 24 (so 4 here).
        assert_eq!(encode_packet_number_len(0xac5c02, Some(0xabe8b3)), 2);
        assert_eq!(encode_packet_number_len(0xace8fe, Some(0xabe8b3)), 4);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn long_loss_bursts_still_expand() {
        // Whatever the gap between what the peer acked and what we send, and whatever reordering
        // within the acked span, the receiver expands to the true number.
        let mut rng = Rng::seeded(9);
        for _ in 0..20_000 {
            let shift = rng.range(3, 63);
            let acked = rng.u64() >> shift; // packet numbers stay below 2^62
            let bits = rng.range(1, 40);
            let gap = rng.range(1, 1 << bits);
            let pn = acked + gap;
            let len = encode_packet_number_len(pn, Some(acked));
            let trunc = if len == 8 { pn } else { pn & ((1u64 << (len * 8)) - 1) };
            // The receiver has seen anything between the acked packet and pn - 1.
            let largest_rx = acked + rng.range(0, gap - 1);
            assert_eq!(
                decode_packet_number(Some(largest_rx), trunc, len),
                pn,
                "acked {acked} pn {pn}"
            );
        }
    }
}
