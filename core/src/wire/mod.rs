//! The wire format, in two levels (see `core/WIRE_FORMAT.md` for the pictures).
//!
//! - Checked accessors: [`DataPacket`] wraps a byte buffer, checks its length once in
//!   [`DataPacket::new_checked`], and then reads fields without further checks or panics.
//! - Parsed representations: [`DataHeaderRepr`], [`ControlRepr`] and [`Frame`] with `parse`,
//!   `emit` and `buffer_len`, tested on literal byte arrays both ways.
//!
//! Every decoder here takes untrusted bytes: malformed input is a [`WireError`], never a panic,
//! and no decoder allocates in proportion to a length field it has not checked against the
//! bytes actually present.

pub mod varint;

mod control;
mod frame;
mod packet;

pub use control::{
    ControlRepr, ControlType, HANDSHAKE_PADDED_LEN, MAX_CRYPTO_BLOB, PROTOCOL_VERSION,
};
pub use frame::{
    AckFrame, AckRanges, Frame, FrameReader, MAX_ACK_RANGES, MAX_DEBUG_LEN, MAX_LANE,
    UnreliableFrame, reliable_header_len, unreliable_header_len, write_reliable_header,
    write_unreliable_header,
};
pub use packet::{
    DATA_FLAG, DataHeaderRepr, DataPacket, decode_packet_number, encode_packet_number_len,
};

use core::fmt;

/// Why a datagram or frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The input ended in the middle of a field.
    Truncated,
    /// A varint longer than ten bytes or above `u64::MAX`.
    VarintOverflow,
    /// An unknown packet or frame type, or reserved bits set.
    UnknownType,
    /// A length or count field is out of its allowed range.
    BadLength,
    /// A handshake packet that must be padded is too short (anti-amplification).
    NotPadded,
    /// A protocol version this implementation does not speak.
    BadVersion,
    /// A field value is out of range (for example a zero connection id).
    BadValue,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireError::Truncated => "truncated",
            WireError::VarintOverflow => "varint overflow",
            WireError::UnknownType => "unknown type or reserved bits",
            WireError::BadLength => "length out of range",
            WireError::NotPadded => "handshake packet not padded",
            WireError::BadVersion => "unsupported protocol version",
            WireError::BadValue => "field value out of range",
        };
        f.write_str(s)
    }
}

impl core::error::Error for WireError {}

/// A cursor over untrusted bytes with checked reads.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        let b = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        let s = self.bytes(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    /// Reads a varint.
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let (v, n) = varint::read(self.rest())?;
        self.pos += n;
        Ok(v)
    }
    /// Reads a varint that must fit in `usize` and be at most `max`.
    pub fn varint_len(&mut self, max: usize) -> Result<usize, WireError> {
        let v = self.varint()?;
        if v > max as u64 {
            return Err(WireError::BadLength);
        }
        Ok(v as usize)
    }
    /// Reads `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Reads everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let s = self.rest();
        self.pos = self.buf.len();
        s
    }
}

/// A cursor writing into a caller-owned buffer. Writes past the end are refused (`None`)
/// rather than panicking; callers size their output with `buffer_len` first.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }
    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
    /// Room left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Writes one byte.
    pub fn u8(&mut self, v: u8) -> Option<()> {
        *self.buf.get_mut(self.pos)? = v;
        self.pos += 1;
        Some(())
    }
    /// Writes a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Writes a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Option<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Writes a varint.
    pub fn varint(&mut self, v: u64) -> Option<()> {
        let n = varint::write(self.buf.get_mut(self.pos..)?, v)?;
        self.pos += n;
        Some(())
    }
    /// Writes a byte slice.
    pub fn bytes(&mut self, s: &[u8]) -> Option<()> {
        let dst = self.buf.get_mut(self.pos..self.pos.checked_add(s.len())?)?;
        dst.copy_from_slice(s);
        self.pos += s.len();
        Some(())
    }
    /// Reserves the next `n` bytes and returns them for the caller to fill (contents are
    /// whatever the buffer held: the caller overwrites all of them).
    pub fn reserve(&mut self, n: usize) -> Option<&mut [u8]> {
        let end = self.pos.checked_add(n)?;
        let dst = self.buf.get_mut(self.pos..end)?;
        self.pos = end;
        Some(dst)
    }
    /// Writes `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> Option<()> {
        let dst = self.buf.get_mut(self.pos..self.pos.checked_add(n)?)?;
        dst.fill(0);
        self.pos += n;
        Some(())
    }
    /// The written bytes.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }
    /// Mutable access to the whole buffer (for in-place sealing after the frames are written).
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf
    }
}
