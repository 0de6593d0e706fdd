//! Frames: what a data packet's (decrypted) payload is made of.
//!
//! | type | frame | fields |
//! | --- | --- | --- |
//! | `0x00` | padding | a run of zero bytes |
//! | `0x01` | ping | none; asks for an ack |
//! | `0x02` | ack | largest, ack delay µs, range count, first range, (gap, range)* |
//! | `0x03` | stop waiting | delta: stop acking packets below `this packet - delta` |
//! | `0x04` | close | reason, debug length, debug bytes |
//! | `0x05` | stats | quality per mille (how much of the peer's traffic arrived) |
//! | `0x06` | max data | connection credit: the sum of the lanes' stream offsets the receiver accepts |
//! | `0x07` | max lane data | lane, the stream offset below which the receiver accepts that lane's data |
//! | `0x08` | path challenge | 8 random bytes: validates a peer's new address |
//! | `0x09` | path response | the 8 bytes of a path challenge, echoed |
//! | `0x10`/`0x11` | reliable segment | lane, stream offset, [length], data |
//! | `0x20..=0x23` | unreliable segment | lane, message number, [offset, total], [length], data |
//!
//! All numbers are varints. Segment types with bit 0 set carry an explicit length; without it
//! the data runs to the end of the packet (the last frame saves its length byte). Unreliable
//! types with bit 1 set are fragments and carry the offset and the message's total size.

use super::{Reader, WireError, Writer, varint};
use crate::prelude::*;

/// At most this many ack ranges in one ack frame; older ranges are dropped by the sender of the
/// ack (the peer will retransmit what we forget to ack, so this bounds work, not correctness).
pub const MAX_ACK_RANGES: usize = 64;
/// Longest close debug text, as GNS (`k_cchSteamNetworkingMaxConnectionCloseReason`).
pub const MAX_DEBUG_LEN: usize = 128;
/// Highest lane index on the wire (GNS allows 255 lanes).
pub const MAX_LANE: u64 = 254;

const T_PADDING: u8 = 0x00;
const T_PING: u8 = 0x01;
const T_ACK: u8 = 0x02;
const T_STOP_WAITING: u8 = 0x03;
const T_CLOSE: u8 = 0x04;
const T_STATS: u8 = 0x05;
const T_MAX_DATA: u8 = 0x06;
const T_MAX_LANE_DATA: u8 = 0x07;
const T_PATH_CHALLENGE: u8 = 0x08;
const T_PATH_RESPONSE: u8 = 0x09;
const T_RELIABLE: u8 = 0x10;
const T_UNRELIABLE: u8 = 0x20;
const F_LEN: u8 = 0x01;
const F_FRAGMENT: u8 = 0x02;

/// An ack frame. Ranges are validated by `parse` and then iterated without failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFrame<'a> {
    /// Largest packet number acknowledged.
    pub largest: u64,
    /// Time the receiver held `largest` before acking, in µs (subtracted from RTT samples).
    pub delay_us: u64,
    count: usize,
    first: u64,
    rest: &'a [u8],
}

impl<'a> AckFrame<'a> {
    /// Iterates the acknowledged ranges `(low, high)`, inclusive, from the highest down.
    pub fn ranges(&self) -> AckRanges<'a> {
        AckRanges {
            high: self.largest,
            low: self.largest - self.first,
            first: true,
            left: self.count,
            r: Reader::new(self.rest),
        }
    }
    /// Number of ranges.
    pub fn range_count(&self) -> usize {
        self.count + 1
    }
    /// Size of an ack frame for these ranges (descending, disjoint, non-adjacent).
    pub fn buffer_len(delay_us: u64, ranges: &[(u64, u64)]) -> usize {
        let Some(&(low0, high0)) = ranges.first() else { return 0 };
        let mut n =
            1 + varint::len(high0) + varint::len(delay_us) + varint::len(ranges.len() as u64 - 1);
        n += varint::len(high0 - low0);
        let mut prev_low = low0;
        for &(low, high) in &ranges[1..] {
            n += varint::len(prev_low - high - 2) + varint::len(high - low);
            prev_low = low;
        }
        n
    }
    /// Writes an ack frame for `ranges` (descending, disjoint, non-adjacent, non-empty).
    pub fn emit(w: &mut Writer<'_>, delay_us: u64, ranges: &[(u64, u64)]) -> Option<()> {
        let &(low0, high0) = ranges.first()?;
        w.u8(T_ACK)?;
        w.varint(high0)?;
        w.varint(delay_us)?;
        w.varint(ranges.len() as u64 - 1)?;
        w.varint(high0 - low0)?;
        let mut prev_low = low0;
        for &(low, high) in &ranges[1..] {
            debug_assert!(high + 2 <= prev_low);
            w.varint(prev_low - high - 2)?;
            w.varint(high - low)?;
            prev_low = low;
        }
        Some(())
    }
}

/// Iterator over the ranges of an [`AckFrame`].
#[derive(Debug, Clone)]
pub struct AckRanges<'a> {
    high: u64,
    low: u64,
    first: bool,
    left: usize,
    r: Reader<'a>,
}

impl Iterator for AckRanges<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        if self.first {
            self.first = false;
            return Some((self.low, self.high));
        }
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated in parse: these reads and subtractions cannot fail.
        let gap = self.r.varint().ok()?;
        let len = self.r.varint().ok()?;
        self.high = self.low - gap - 2;
        self.low = self.high - len;
        Some((self.low, self.high))
    }
}

/// An unreliable message segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreliableFrame<'a> {
    /// Lane index.
    pub lane: u16,
    /// The message's number in its lane.
    pub msg_num: u64,
    /// Byte offset of this segment in the message (0 when not a fragment).
    pub offset: u32,
    /// Total size of the message.
    pub total: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Zero bytes, ignored.
    Padding,
    /// Asks for an ack; keeps the connection alive.
    Ping,
    /// Acknowledges packets.
    Ack(AckFrame<'a>),
    /// The sender no longer needs acks for packets below `packet number - delta`.
    StopWaiting {
        /// Distance back from this packet's number.
        delta: u64,
    },
    /// The sender closed the connection.
    Close {
        /// End-reason code.
        reason: u32,
        /// Debug text (at most 128 bytes, not necessarily UTF-8).
        debug: &'a [u8],
    },
    /// Connection-quality report.
    Stats {
        /// Fraction of the recipient's packets that arrived, in per mille.
        quality_permille: u16,
    },
    /// Flow control, the connection's credit: the sender may send reliable stream bytes until
    /// the sum over lanes of the highest offset sent reaches `limit`. Limits only grow; a
    /// smaller one than already known is ignored.
    MaxData {
        /// Sum of the lanes' stream offsets the receiver accepts.
        limit: u64,
    },
    /// Flow control, one lane's credit: the sender may send that lane's stream bytes below
    /// `limit`.
    MaxLaneData {
        /// Lane index.
        lane: u16,
        /// Stream offset the receiver accepts data below.
        limit: u64,
    },
    /// Asks the peer to echo `data`, to prove it receives at the address we now send to.
    PathChallenge {
        /// Random bytes.
        data: [u8; 8],
    },
    /// Echoes a path challenge's bytes.
    PathResponse {
        /// The challenge's bytes.
        data: [u8; 8],
    },
    /// A piece of a lane's reliable byte stream.
    Reliable {
        /// Lane index.
        lane: u16,
        /// Stream offset of `data[0]`.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// A whole unreliable message or a fragment of one.
    Unreliable(UnreliableFrame<'a>),
}

/// Largest stream offset accepted (2^62), so offset + length never overflows.
const MAX_STREAM_OFFSET: u64 = 1 << 62;

impl<'a> Frame<'a> {
    /// Reads one frame from `r`.
    pub fn read(r: &mut Reader<'a>) -> Result<Frame<'a>, WireError> {
        let ty = r.u8()?;
        Ok(match ty {
            T_PADDING => {
                let rest = r.rest();
                let zeros = rest.iter().take_while(|&&b| b == 0).count();
                r.bytes(zeros)?;
                Frame::Padding
            }
            T_PING => Frame::Ping,
            T_ACK => {
                let largest = r.varint()?;
                let delay_us = r.varint()?;
                let count = r.varint_len(MAX_ACK_RANGES - 1)?;
                let first = r.varint()?;
                if first > largest {
                    return Err(WireError::BadValue);
                }
                let start = r.position();
                let all = r.rest();
                let mut low = largest - first;
                for _ in 0..count {
                    let gap = r.varint()?;
                    let len = r.varint()?;
                    let high = low
                        .checked_sub(gap)
                        .and_then(|v| v.checked_sub(2))
                        .ok_or(WireError::BadValue)?;
                    low = high.checked_sub(len).ok_or(WireError::BadValue)?;
                }
                let used = r.position() - start;
                Frame::Ack(AckFrame { largest, delay_us, count, first, rest: &all[..used] })
            }
            T_STOP_WAITING => Frame::StopWaiting { delta: r.varint()? },
            T_CLOSE => {
                let reason = u32::try_from(r.varint()?).map_err(|_| WireError::BadValue)?;
                let n = r.varint_len(MAX_DEBUG_LEN)?;
                Frame::Close { reason, debug: r.bytes(n)? }
            }
            T_STATS => {
                let q = r.varint()?;
                if q > 1000 {
                    return Err(WireError::BadValue);
                }
                Frame::Stats { quality_permille: q as u16 }
            }
            T_MAX_DATA => Frame::MaxData { limit: r.varint()? },
            T_PATH_CHALLENGE | T_PATH_RESPONSE => {
                let mut data = [0u8; 8];
                data.copy_from_slice(r.bytes(8)?);
                if ty == T_PATH_CHALLENGE {
                    Frame::PathChallenge { data }
                } else {
                    Frame::PathResponse { data }
                }
            }
            T_MAX_LANE_DATA => {
                let lane = read_lane(r)?;
                Frame::MaxLaneData { lane, limit: r.varint()? }
            }
            t if t & !F_LEN == T_RELIABLE => {
                let lane = read_lane(r)?;
                let offset = r.varint()?;
                let data = read_data(r, t & F_LEN != 0)?;
                if offset > MAX_STREAM_OFFSET {
                    return Err(WireError::BadValue);
                }
                Frame::Reliable { lane, offset, data }
            }
            t if t & !(F_LEN | F_FRAGMENT) == T_UNRELIABLE => {
                let lane = read_lane(r)?;
                let msg_num = r.varint()?;
                let (offset, total) = if t & F_FRAGMENT != 0 {
                    let o = u32::try_from(r.varint()?).map_err(|_| WireError::BadValue)?;
                    let tot = u32::try_from(r.varint()?).map_err(|_| WireError::BadValue)?;
                    (o, tot)
                } else {
                    (0, 0)
                };
                let data = read_data(r, t & F_LEN != 0)?;
                let total = if t & F_FRAGMENT != 0 { total } else { data.len() as u32 };
                if u64::from(offset) + data.len() as u64 > u64::from(total) {
                    return Err(WireError::BadLength);
                }
                Frame::Unreliable(UnreliableFrame { lane, msg_num, offset, total, data })
            }
            _ => return Err(WireError::UnknownType),
        })
    }

    /// Bytes this frame takes. Segments are sized with an explicit length; use
    /// [`Frame::emit_last`] to save it on the last frame of a packet.
    pub fn buffer_len(&self) -> usize {
        match self {
            Frame::Padding | Frame::Ping => 1,
            Frame::Ack(a) => {
                let ranges: Vec<(u64, u64)> = a.ranges().collect();
                AckFrame::buffer_len(a.delay_us, &ranges)
            }
            Frame::StopWaiting { delta } => 1 + varint::len(*delta),
            Frame::Close { reason, debug } => {
                1 + varint::len(u64::from(*reason)) + varint::len(debug.len() as u64) + debug.len()
            }
            Frame::Stats { quality_permille } => 1 + varint::len(u64::from(*quality_permille)),
            Frame::MaxData { limit } => 1 + varint::len(*limit),
            Frame::PathChallenge { .. } | Frame::PathResponse { .. } => 9,
            Frame::MaxLaneData { lane, limit } => {
                1 + varint::len(u64::from(*lane)) + varint::len(*limit)
            }
            Frame::Reliable { lane, offset, data } => {
                reliable_header_len(*lane, *offset, data.len(), true) + data.len()
            }
            Frame::Unreliable(u) => unreliable_header_len(u, true) + u.data.len(),
        }
    }

    /// Writes the frame.
    pub fn emit(&self, w: &mut Writer<'_>) -> Option<()> {
        self.emit_inner(w, true)
    }

    /// Writes the frame as the last one of a packet: a segment omits its length.
    pub fn emit_last(&self, w: &mut Writer<'_>) -> Option<()> {
        self.emit_inner(w, false)
    }

    fn emit_inner(&self, w: &mut Writer<'_>, with_len: bool) -> Option<()> {
        match self {
            Frame::Padding => w.u8(T_PADDING),
            Frame::Ping => w.u8(T_PING),
            Frame::Ack(a) => {
                let ranges: Vec<(u64, u64)> = a.ranges().collect();
                AckFrame::emit(w, a.delay_us, &ranges)
            }
            Frame::StopWaiting { delta } => {
                w.u8(T_STOP_WAITING)?;
                w.varint(*delta)
            }
            Frame::Close { reason, debug } => {
                w.u8(T_CLOSE)?;
                w.varint(u64::from(*reason))?;
                w.varint(debug.len() as u64)?;
                w.bytes(debug)
            }
            Frame::Stats { quality_permille } => {
                w.u8(T_STATS)?;
                w.varint(u64::from(*quality_permille))
            }
            Frame::MaxData { limit } => {
                w.u8(T_MAX_DATA)?;
                w.varint(*limit)
            }
            Frame::PathChallenge { data } => {
                w.u8(T_PATH_CHALLENGE)?;
                w.bytes(data)
            }
            Frame::PathResponse { data } => {
                w.u8(T_PATH_RESPONSE)?;
                w.bytes(data)
            }
            Frame::MaxLaneData { lane, limit } => {
                w.u8(T_MAX_LANE_DATA)?;
                w.varint(u64::from(*lane))?;
                w.varint(*limit)
            }
            Frame::Reliable { lane, offset, data } => {
                write_reliable_header(w, *lane, *offset, data.len(), with_len)?;
                w.bytes(data)
            }
            Frame::Unreliable(u) => {
                write_unreliable_header(w, u, with_len)?;
                w.bytes(u.data)
            }
        }
    }
}

fn read_lane(r: &mut Reader<'_>) -> Result<u16, WireError> {
    let lane = r.varint()?;
    if lane > MAX_LANE {
        return Err(WireError::BadValue);
    }
    Ok(lane as u16)
}

fn read_data<'a>(r: &mut Reader<'a>, with_len: bool) -> Result<&'a [u8], WireError> {
    if with_len {
        let n = r.varint_len(r.remaining())?;
        r.bytes(n)
    } else {
        Ok(r.take_rest())
    }
}

/// Header bytes of a reliable segment.
pub fn reliable_header_len(lane: u16, offset: u64, len: usize, with_len: bool) -> usize {
    1 + varint::len(u64::from(lane))
        + varint::len(offset)
        + if with_len { varint::len(len as u64) } else { 0 }
}

/// Writes a reliable segment's header; the caller writes `len` data bytes next.
pub fn write_reliable_header(
    w: &mut Writer<'_>,
    lane: u16,
    offset: u64,
    len: usize,
    with_len: bool,
) -> Option<()> {
    w.u8(T_RELIABLE | if with_len { F_LEN } else { 0 })?;
    w.varint(u64::from(lane))?;
    w.varint(offset)?;
    if with_len {
        w.varint(len as u64)?;
    }
    Some(())
}

/// Header bytes of an unreliable segment.
pub fn unreliable_header_len(u: &UnreliableFrame<'_>, with_len: bool) -> usize {
    let fragment = u.data.len() as u64 != u64::from(u.total);
    1 + varint::len(u64::from(u.lane))
        + varint::len(u.msg_num)
        + if fragment {
            varint::len(u64::from(u.offset)) + varint::len(u64::from(u.total))
        } else {
            0
        }
        + if with_len { varint::len(u.data.len() as u64) } else { 0 }
}

/// Writes an unreliable segment's header (a fragment when `data` is not the whole message).
pub fn write_unreliable_header(
    w: &mut Writer<'_>,
    u: &UnreliableFrame<'_>,
    with_len: bool,
) -> Option<()> {
    let fragment = u.data.len() as u64 != u64::from(u.total);
    w.u8(T_UNRELIABLE | if with_len { F_LEN } else { 0 } | if fragment { F_FRAGMENT } else { 0 })?;
    w.varint(u64::from(u.lane))?;
    w.varint(u.msg_num)?;
    if fragment {
        w.varint(u64::from(u.offset))?;
        w.varint(u64::from(u.total))?;
    }
    if with_len {
        w.varint(u.data.len() as u64)?;
    }
    Some(())
}

/// Iterates the frames of a payload. After the first error it yields nothing more: a packet
/// that fails to decode is dropped whole by the caller.
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> FrameReader<'a> {
    /// Frames of `payload`.
    pub fn new(payload: &'a [u8]) -> Self {
        FrameReader { r: Reader::new(payload), failed: false }
    }
}

impl<'a> Iterator for FrameReader<'a> {
    type Item = Result<Frame<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let f = Frame::read(&mut self.r);
        self.failed = f.is_err();
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn parse_all(b: &[u8]) -> Result<Vec<Frame<'_>>, WireError> {
        FrameReader::new(b).collect()
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn literals_both_ways() {
        // ack largest 10, delay 3, ranges [8..=10], [2..=5]: first = 2, gap = 8 - 5 - 2 = 1, len 3.
        let bytes = [0x02, 10, 3, 1, 2, 1, 3];
        let frames = parse_all(&bytes).unwrap();
        let Frame::Ack(a) = &frames[0] else { panic!("not an ack") };
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(8, 10), (2, 5)]);
        let mut out = [0u8; 32];
        let mut w = Writer::new(&mut out);
        AckFrame::emit(&mut w, 3, &[(8, 10), (2, 5)]).unwrap();
        assert_eq!(w.written(), &bytes);
        assert_eq!(AckFrame::buffer_len(3, &[(8, 10), (2, 5)]), bytes.len());

        // reliable lane 1 offset 300 len 2, then unreliable fragment to the end.
        let bytes = [0x11, 1, 0xac, 0x02, 2, b'h', b'i', 0x22, 0, 5, 4, 6, b'y', b'o'];
        let frames = parse_all(&bytes).unwrap();
        assert_eq!(frames[0], Frame::Reliable { lane: 1, offset: 300, data: b"hi" });
        assert_eq!(
            frames[1],
            Frame::Unreliable(UnreliableFrame {
                lane: 0,
                msg_num: 5,
                offset: 4,
                total: 6,
                data: b"yo"
            })
        );
        let mut out = [0u8; 32];
        let mut w = Writer::new(&mut out);
        frames[0].emit(&mut w).unwrap();
        frames[1].emit_last(&mut w).unwrap();
        assert_eq!(w.written(), &bytes);

        let bytes = [0x01, 0x03, 0x05, 0x04, 0xe8, 0x07, 2, b'o', b'k', 0x05, 0xe7, 0x07, 0, 0, 0];
        assert_eq!(
            parse_all(&bytes).unwrap(),
            vec![
                Frame::Ping,
                Frame::StopWaiting { delta: 5 },
                Frame::Close { reason: 1000, debug: b"ok" },
                Frame::Stats { quality_permille: 999 },
                Frame::Padding
            ]
        );

        // max data 1 MiB (LEB128 80 80 40), max lane data lane 3 offset 64.
        let bytes = [0x06, 0x80, 0x80, 0x40, 0x07, 3, 0x40];
        let frames = parse_all(&bytes).unwrap();
        assert_eq!(
            frames,
            vec![Frame::MaxData { limit: 1 << 20 }, Frame::MaxLaneData { lane: 3, limit: 64 }]
        );
        let mut out = [0u8; 32];
        let mut w = Writer::new(&mut out);
        for f in &frames {
            assert!(f.emit(&mut w).is_some());
        }
        assert_eq!(w.written(), &bytes);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rejects_malformed() {
        assert_eq!(parse_all(&[0x02, 1, 0, 0, 2]), Err(WireError::BadValue)); // first > largest
        assert_eq!(parse_all(&[0x02, 5, 0, 1, 0, 4, 0]), Err(WireError::BadValue)); // range underflow
        assert_eq!(parse_all(&[0x02, 5, 0, 200, 1]), Err(WireError::BadLength)); // too many ranges
        assert_eq!(parse_all(&[0x0a]), Err(WireError::UnknownType));
        assert_eq!(parse_all(&[0x08, 1, 2, 3]), Err(WireError::Truncated));
        assert_eq!(parse_all(&[0x06]), Err(WireError::Truncated));
        assert_eq!(parse_all(&[0x07, 0xff, 0x01, 0]), Err(WireError::BadValue)); // lane 255
        assert_eq!(parse_all(&[0x11, 0, 0, 5, 1]), Err(WireError::BadLength)); // length beyond packet
        assert_eq!(parse_all(&[0x10, 0xff, 0x01, 0]), Err(WireError::BadValue)); // lane 255
        assert_eq!(parse_all(&[0x22, 0, 1, 5, 4, 1, 2]), Err(WireError::BadLength)); // offset+len > total
        assert_eq!(parse_all(&[0x05, 0xe9, 0x07]), Err(WireError::BadValue));
        assert_eq!(parse_all(&[0x04, 1, 0x81, 0x01]), Err(WireError::BadLength));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn random_round_trips() {
        let mut rng = Rng::seeded(3);
        let data = [0xabu8; 300];
        for _ in 0..5_000 {
            let mut frames = Vec::new();
            let mut ranges_store = Vec::new();
            for _ in 0..rng.range(1, 6) {
                let f = match rng.range(0, 10) {
                    0 => Frame::Ping,
                    1 => Frame::StopWaiting { delta: rng.u64() >> rng.range(0, 63) },
                    2 => Frame::Close {
                        reason: rng.u32(),
                        debug: &data[..rng.range(0, 128) as usize],
                    },
                    3 => Frame::Stats { quality_permille: rng.range(0, 1000) as u16 },
                    4 => Frame::Reliable {
                        lane: rng.range(0, 254) as u16,
                        offset: rng.u64() >> rng.range(2, 63),
                        data: &data[..rng.range(0, 300) as usize],
                    },
                    5 => {
                        let len = rng.range(0, 300) as u32;
                        let offset = rng.range(0, 1000) as u32;
                        let total = if rng.chance(0.5) {
                            len
                        } else {
                            offset + len + rng.range(1, 100) as u32
                        };
                        let offset = if total == len { 0 } else { offset };
                        Frame::Unreliable(UnreliableFrame {
                            lane: rng.range(0, 254) as u16,
                            msg_num: rng.u64() >> rng.range(1, 63),
                            offset,
                            total,
                            data: &data[..len as usize],
                        })
                    }
                    6 => Frame::MaxData { limit: rng.u64() >> rng.range(1, 63) },
                    7 => Frame::MaxLaneData {
                        lane: rng.range(0, 254) as u16,
                        limit: rng.u64() >> rng.range(1, 63),
                    },
                    8 => Frame::PathChallenge { data: rng.u64().to_le_bytes() },
                    9 => Frame::PathResponse { data: rng.u64().to_le_bytes() },
                    _ => {
                        let mut high = rng.u64() >> rng.range(1, 40);
                        let mut ranges = Vec::new();
                        for _ in 0..rng.range(1, 10) {
                            let low = high.saturating_sub(rng.range(0, 20));
                            ranges.push((low, high));
                            if low < 3 {
                                break;
                            }
                            high = low - 2 - rng.range(0, low.saturating_sub(2).min(50));
                        }
                        ranges_store.push((rng.range(0, 100000), ranges));
                        continue;
                    }
                };
                frames.push(f);
            }
            let mut out = vec![0u8; 4096];
            let mut w = Writer::new(&mut out);
            for (delay, ranges) in &ranges_store {
                AckFrame::emit(&mut w, *delay, ranges).unwrap();
                assert!(AckFrame::buffer_len(*delay, ranges) > 0);
            }
            let last = frames.len().saturating_sub(1);
            let mut expected_len = w.len();
            for (i, f) in frames.iter().enumerate() {
                if i == last {
                    f.emit_last(&mut w).unwrap()
                } else {
                    f.emit(&mut w).unwrap()
                }
                expected_len += f.buffer_len();
            }
            assert!(w.len() <= expected_len);
            let n = w.len();
            let parsed = parse_all(&out[..n]).unwrap();
            let acks: Vec<_> = parsed.iter().filter(|f| matches!(f, Frame::Ack(_))).collect();
            assert_eq!(acks.len(), ranges_store.len());
            for (a, (delay, ranges)) in acks.iter().zip(&ranges_store) {
                let Frame::Ack(a) = a else { unreachable!() };
                assert_eq!(a.delay_us, *delay);
                assert_eq!(&a.ranges().collect::<Vec<_>>(), ranges);
            }
            let rest: Vec<_> = parsed.into_iter().filter(|f| !matches!(f, Frame::Ack(_))).collect();
            assert_eq!(rest, frames);
        }
    }
}
