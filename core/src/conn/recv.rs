//! The receive side: per-lane reliable stream reassembly and message parsing, and unreliable
//! fragment reassembly. Memory is bounded: stream data is accepted only within a window above
//! what has been delivered, partial unreliable messages are few and small, and a message larger
//! than `RecvMaxMessageSize` is a protocol error rather than an allocation.

use crate::prelude::*;
use alloc::collections::VecDeque;

use super::ranges::RangeSet;
use crate::wire::varint;

/// Why received data broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// A message bigger than the configured maximum.
    MessageTooBig,
    /// A malformed message header in the reliable stream.
    BadFraming,
}

#[derive(Debug)]
enum Parser {
    Header { buf: [u8; 2 * varint::MAX_LEN], len: usize },
    Body { num: u64, data: Vec<u8>, need: usize },
}

/// Out-of-order pieces held per lane at most; beyond it packets with more are refused (not
/// acked) until the gap fills. 1024 pieces cover a 1.3 MB window of full-size segments.
pub(crate) const MAX_OOO_PIECES: usize = 1024;
/// What each held piece costs besides its bytes (queue entry and vector header), for accounting.
const PIECE_OVERHEAD: usize = 64;

/// A message completed by the receive side: (number, bytes, stream offset of its end).
pub(crate) type Completed = (u64, Vec<u8>, u64);

/// Reliable receive state of one lane.
#[derive(Debug)]
pub(crate) struct RecvLane {
    next_offset: u64,
    /// Out-of-order pieces (offset, bytes), sorted by offset and never overlapping. A sorted
    /// queue rather than a B-tree: at most [`MAX_OOO_PIECES`], consumed from the front, and
    /// about 6 KB less code in the browser's .wasm.
    ooo: VecDeque<(u64, Vec<u8>)>,
    ooo_bytes: usize,
    parser: Parser,
    last_num: u64,
}

impl Default for RecvLane {
    fn default() -> Self {
        RecvLane {
            next_offset: 0,
            ooo: VecDeque::new(),
            ooo_bytes: 0,
            parser: Parser::Header { buf: [0; 2 * varint::MAX_LEN], len: 0 },
            last_num: 0,
        }
    }
}

impl RecvLane {
    /// True if a segment at `offset` can be held: the table of out-of-order pieces has room,
    /// or the segment continues the stream (flow control decides about its bytes).
    pub(crate) fn fits(&self, offset: u64) -> bool {
        // A segment at or before the delivered offset fills the gap: it can only free memory,
        // and refusing it would stall the stream for good.
        self.fills_gap(offset) || self.ooo.len() < MAX_OOO_PIECES
    }

    /// True if a segment at `offset` continues the delivered stream.
    pub(crate) fn fills_gap(&self, offset: u64) -> bool {
        offset <= self.next_offset
    }

    /// Bytes held out of order.
    /// Bytes held, counting each out-of-order piece's bookkeeping too, so many tiny pieces
    /// cannot hide behind a small byte count.
    pub(crate) fn buffered(&self) -> usize {
        self.ooo_bytes
            + self.ooo.len() * PIECE_OVERHEAD
            + if let Parser::Body { data, .. } = &self.parser { data.capacity() } else { 0 }
    }

    /// Takes a segment; completed messages go to `out`.
    pub(crate) fn on_segment(
        &mut self,
        offset: u64,
        data: &[u8],
        max_msg: usize,
        out: &mut Vec<Completed>,
    ) -> Result<(), ProtocolError> {
        let end = offset + data.len() as u64;
        if end <= self.next_offset {
            return Ok(()); // all duplicate
        }
        if offset > self.next_offset {
            // Out of order: keep only the bytes no held piece covers, so what is held never
            // exceeds the window however the peer overlaps its segments.
            self.hold(offset, data);
            return Ok(());
        }
        let skip = (self.next_offset - offset) as usize;
        self.feed(&data[skip..], max_msg, out)?;
        // Drain held pieces that now connect.
        while self.ooo.front().is_some_and(|(off, _)| *off <= self.next_offset) {
            let Some((off, piece)) = self.ooo.pop_front() else { break };
            self.ooo_bytes -= piece.len();
            let pend = off + piece.len() as u64;
            if pend > self.next_offset {
                let skip = (self.next_offset - off) as usize;
                self.feed(&piece[skip..], max_msg, out)?;
            }
        }
        Ok(())
    }

    fn hold(&mut self, mut offset: u64, mut data: &[u8]) {
        // Trim the front against the piece before.
        let before = self.ooo.partition_point(|(o, _)| *o <= offset);
        if let Some((po, piece)) = before.checked_sub(1).and_then(|i| self.ooo.get(i)) {
            let pend = po + piece.len() as u64;
            if pend >= offset + data.len() as u64 {
                return; // wholly covered
            }
            if pend > offset {
                data = &data[(pend - offset) as usize..];
                offset = pend;
            }
        }
        let end = offset + data.len() as u64;
        // Remove pieces wholly inside, trim the back against the first that sticks out.
        let at = self.ooo.partition_point(|(o, _)| *o < offset);
        while let Some((o, piece)) = self.ooo.get(at) {
            let (o, len) = (*o, piece.len() as u64);
            if o >= end {
                break;
            }
            if o + len <= end {
                if let Some((_, old)) = self.ooo.remove(at) {
                    self.ooo_bytes -= old.len();
                }
            } else {
                data = &data[..(o - offset) as usize];
                break;
            }
        }
        if data.is_empty() {
            return;
        }
        self.ooo_bytes += data.len();
        let end = offset + data.len() as u64;
        // Contiguous pieces merge, so that the table holds about one piece per hole, however
        // many packets arrived after it.
        let prev = at.checked_sub(1).filter(|&i| {
            self.ooo.get(i).is_some_and(|(po, piece)| po + piece.len() as u64 == offset)
        });
        let at = match prev {
            Some(i) => {
                self.ooo[i].1.extend_from_slice(data);
                i
            }
            None => {
                self.ooo.insert(at, (offset, data.to_vec()));
                at
            }
        };
        if self.ooo.get(at + 1).is_some_and(|(o, _)| *o == end)
            && let Some((_, next)) = self.ooo.remove(at + 1)
        {
            self.ooo[at].1.extend_from_slice(&next);
        }
    }

    fn feed(
        &mut self,
        mut input: &[u8],
        max_msg: usize,
        out: &mut Vec<Completed>,
    ) -> Result<(), ProtocolError> {
        // The stream offset just past `input` as it shrinks: where a message completed in it ends.
        let stop = self.next_offset + input.len() as u64;
        self.next_offset = stop;
        let end = |input: &[u8]| stop - input.len() as u64;
        while !input.is_empty() {
            match &mut self.parser {
                Parser::Header { buf, len } => {
                    // Try to parse straight from the input when nothing is buffered.
                    let (delta, size, used) = if *len == 0 {
                        match parse_header(input)? {
                            Some(h) => h,
                            None => {
                                let n = input.len().min(buf.len());
                                buf[..n].copy_from_slice(&input[..n]);
                                *len = n;
                                input = &input[n..];
                                if !input.is_empty() {
                                    return Err(ProtocolError::BadFraming);
                                }
                                continue;
                            }
                        }
                    } else {
                        let n = (buf.len() - *len).min(input.len());
                        buf[*len..*len + n].copy_from_slice(&input[..n]);
                        let have = *len + n;
                        match parse_header(&buf[..have])? {
                            Some((d, s, used_total)) => {
                                let from_input = used_total - *len;
                                (d, s, from_input)
                            }
                            None => {
                                if have == buf.len() {
                                    return Err(ProtocolError::BadFraming);
                                }
                                *len = have;
                                input = &input[n..];
                                continue;
                            }
                        }
                    };
                    input = &input[used..];
                    if delta == 0 {
                        return Err(ProtocolError::BadFraming);
                    }
                    let size = usize::try_from(size).map_err(|_| ProtocolError::MessageTooBig)?;
                    if size > max_msg {
                        return Err(ProtocolError::MessageTooBig);
                    }
                    let num = self.last_num.saturating_add(delta);
                    self.last_num = num;
                    if size == 0 {
                        out.push((num, Vec::new(), end(input)));
                        self.parser = Parser::Header { buf: [0; 2 * varint::MAX_LEN], len: 0 };
                    } else if input.len() >= size {
                        // Whole body present: one allocation, one copy.
                        let body = input[..size].to_vec();
                        input = &input[size..];
                        out.push((num, body, end(input)));
                        self.parser = Parser::Header { buf: [0; 2 * varint::MAX_LEN], len: 0 };
                    } else {
                        // Grow with what arrives, never with what the header claims: the
                        // size is the peer's word, the bytes in hand are not.
                        let mut data = Vec::with_capacity(input.len());
                        data.extend_from_slice(input);
                        let need = size - input.len();
                        input = &[];
                        self.parser = Parser::Body { num, data, need };
                    }
                }
                Parser::Body { num, data, need } => {
                    let n = (*need).min(input.len());
                    data.extend_from_slice(&input[..n]);
                    *need -= n;
                    input = &input[n..];
                    if *need == 0 {
                        let num = *num;
                        let data = core::mem::take(data);
                        out.push((num, data, end(input)));
                        self.parser = Parser::Header { buf: [0; 2 * varint::MAX_LEN], len: 0 };
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses `varint delta, varint size` at the front of `b`: `None` if incomplete.
fn parse_header(b: &[u8]) -> Result<Option<(u64, u64, usize)>, ProtocolError> {
    let (delta, a) = match varint::read(b) {
        Ok(x) => x,
        Err(crate::wire::WireError::Truncated) => return Ok(None),
        Err(_) => return Err(ProtocolError::BadFraming),
    };
    match varint::read(&b[a..]) {
        Ok((size, c)) => Ok(Some((delta, size, a + c))),
        Err(crate::wire::WireError::Truncated) => Ok(None),
        Err(_) => Err(ProtocolError::BadFraming),
    }
}

/// Most unreliable messages reassembled at once per connection (GNS keeps 20 segments).
pub(crate) const MAX_PARTIAL_UNRELIABLE: usize = 8;

#[derive(Debug)]
struct Partial {
    lane: u16,
    num: u64,
    data: Vec<u8>,
    have: RangeSet,
}

/// Reassembly of fragmented unreliable messages. A message whose fragment is lost is dropped
/// whole when newer messages push it out.
#[derive(Debug, Default)]
pub(crate) struct UnreliableReassembly {
    partials: Vec<Partial>,
    /// Messages dropped incomplete.
    pub(crate) dropped: u64,
}

impl UnreliableReassembly {
    /// Takes a fragment; returns the whole message when complete. `total` was checked by the
    /// caller against the size limits.
    pub(crate) fn on_fragment(
        &mut self,
        lane: u16,
        num: u64,
        offset: u32,
        total: u32,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        let i = match self.partials.iter().position(|p| p.lane == lane && p.num == num) {
            Some(i) => i,
            None => {
                if self.partials.len() >= MAX_PARTIAL_UNRELIABLE {
                    // Evict the oldest message of the lane with the most waiting, else the oldest.
                    self.partials.remove(0);
                    self.dropped += 1;
                }
                self.partials.push(Partial {
                    lane,
                    num,
                    data: vec![0; total as usize],
                    have: RangeSet::new(),
                });
                self.partials.len() - 1
            }
        };
        let p = &mut self.partials[i];
        if p.data.len() != total as usize {
            return None; // inconsistent totals: ignore the fragment
        }
        let start = offset as usize;
        p.data[start..start + data.len()].copy_from_slice(data);
        p.have.insert(u64::from(offset)..u64::from(offset) + data.len() as u64);
        if p.have.total() == u64::from(total) {
            let p = self.partials.remove(i);
            return Some(p.data);
        }
        None
    }

    /// Bytes held.
    pub(crate) fn buffered(&self) -> usize {
        self.partials.iter().map(|p| p.data.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn frame(msgs: &[(u64, &[u8])]) -> Vec<u8> {
        let mut s = Vec::new();
        let mut last = 0;
        for (num, data) in msgs {
            varint::put(&mut s, num - last);
            varint::put(&mut s, data.len() as u64);
            s.extend_from_slice(data);
            last = *num;
        }
        s
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn reassembles_any_segmentation_and_order() {
        let big = vec![7u8; 3000];
        let msgs: Vec<(u64, &[u8])> = vec![(1, b"a"), (2, b""), (5, &big), (6, b"xyz")];
        let stream = frame(&msgs);
        let mut rng = Rng::seeded(11);
        for _ in 0..500 {
            let mut segs = Vec::new();
            let mut off = 0;
            while off < stream.len() {
                let n = (rng.range(1, 400) as usize).min(stream.len() - off);
                segs.push((off, n));
                off += n;
            }
            // Shuffle and duplicate some.
            for i in (1..segs.len()).rev() {
                let j = rng.range(0, i as u64) as usize;
                segs.swap(i, j);
            }
            let dups: Vec<_> = segs.iter().filter(|_| rng.chance(0.2)).cloned().collect();
            segs.extend(dups);
            // And windows cut anywhere, overlapping the others' edges (a retransmission
            // segmented differently), at random places in the order.
            for _ in 0..rng.range(0, 8) {
                let o = rng.range(0, stream.len() as u64 - 1) as usize;
                let n = (rng.range(1, 900) as usize).min(stream.len() - o);
                let at = rng.range(0, segs.len() as u64) as usize;
                segs.insert(at, (o, n));
            }
            let mut lane = RecvLane::default();
            let mut out = Vec::new();
            for (o, n) in segs {
                lane.on_segment(o as u64, &stream[o..o + n], 1 << 20, &mut out).unwrap();
                // Held pieces stay sorted, disjoint, and counted.
                let mut end = 0;
                for (po, piece) in &lane.ooo {
                    assert!(*po > end || end == 0, "pieces are disjoint and not adjacent");
                    assert!(*po > lane.next_offset && !piece.is_empty());
                    end = po + piece.len() as u64;
                }
                assert_eq!(lane.ooo_bytes, lane.ooo.iter().map(|(_, p)| p.len()).sum::<usize>());
            }
            let got: Vec<(u64, &[u8])> = out.iter().map(|(n, d, _)| (*n, d.as_slice())).collect();
            assert_eq!(got, msgs);
            // Each message's end offset is where the next one's header starts.
            let ends: Vec<u64> = out.iter().map(|m| m.2).collect();
            let mut expect = Vec::new();
            let mut at = 0;
            for (n, d) in &msgs {
                let prev = expect.len().checked_sub(1).map_or(0, |i| msgs[i].0);
                at += varint::len(n - prev) + varint::len(d.len() as u64) + d.len();
                expect.push(at as u64);
            }
            assert_eq!(ends, expect);
            assert_eq!(lane.buffered(), 0);
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn refuses_oversize_and_bad_framing() {
        let mut out = Vec::new();
        let s = frame(&[(1, &[0u8; 100])]);
        assert_eq!(
            RecvLane::default().on_segment(0, &s, 50, &mut out),
            Err(ProtocolError::MessageTooBig)
        );
        assert_eq!(
            RecvLane::default().on_segment(0, &[0, 1, 1], 50, &mut out),
            Err(ProtocolError::BadFraming)
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_full_piece_table_still_takes_the_gap() {
        // Found over WebRTC: with the out-of-order table full, the segment that fills the gap
        // was refused too and the stream stalled for good.
        let mut lane = RecvLane::default();
        let mut out = Vec::new();
        for i in 0..MAX_OOO_PIECES as u64 {
            lane.on_segment(10 + 2 * i, &[0], 1 << 20, &mut out).unwrap();
        }
        assert!(!lane.fits(5000), "more out-of-order pieces are refused");
        assert!(lane.fits(0), "the gap-filling segment is always taken");
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn unreliable_fragments() {
        let mut r = UnreliableReassembly::default();
        assert_eq!(r.on_fragment(0, 1, 3, 6, b"def"), None);
        assert_eq!(r.on_fragment(0, 1, 0, 6, b"abc").as_deref(), Some(&b"abcdef"[..]));
        // A message missing a fragment is eventually evicted.
        r.on_fragment(0, 2, 0, 6, b"abc");
        for n in 3..3 + MAX_PARTIAL_UNRELIABLE as u64 {
            r.on_fragment(0, n, 0, 4, b"ab");
        }
        assert_eq!(r.dropped, 1);
        assert!(r.buffered() <= MAX_PARTIAL_UNRELIABLE * 6);
    }
}
