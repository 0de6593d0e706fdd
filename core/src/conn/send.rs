//! The send side of a lane: a reliable byte stream carrying framed messages, and a queue of
//! unreliable messages, both numbered from one shared message sequence.
//!
//! Reliable messages are framed into the lane's stream as `varint number-delta, varint size,
//! bytes` and the stream is cut into segments wherever packets need it; a lost packet's
//! segments go back on the retransmit set, minus whatever was acked since. Bytes leave the
//! buffer only when acknowledged, so reliable data is never dropped.

use crate::prelude::*;
use alloc::collections::VecDeque;

use super::ranges::RangeSet;
use crate::wire::varint;

/// One queued unreliable message.
#[derive(Debug, Clone, Copy)]
struct UnrelMsg {
    num: u64,
    len: u32,
    /// Bytes of it already sent (fragments go out in order).
    sent: u32,
}

/// A chunk of unreliable message to put in a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnrelChunk {
    pub(crate) num: u64,
    pub(crate) offset: u32,
    pub(crate) total: u32,
    pub(crate) len: u32,
}

/// Send state of one lane.
#[derive(Debug)]
pub(crate) struct SendLane {
    pub(crate) priority: i32,
    pub(crate) weight: u16,
    /// Weighted-fair-queueing virtual time: grows by bytes sent / weight.
    pub(crate) vtime: u64,
    last_msg_num: u64,
    last_reliable_num: u64,
    /// Stream bytes from `stream_base` (lowest unacked) to `stream_base + stream.len()`.
    stream: ByteQueue,
    stream_base: u64,
    next_unsent: u64,
    acked: RangeSet,
    retransmit: RangeSet,
    /// End offsets and numbers of reliable messages not yet fully sent.
    reliable_msgs: VecDeque<(u64, u64)>,
    unrel_data: ByteQueue,
    unrel_msgs: VecDeque<UnrelMsg>,
    /// Flow control: the peer accepts this lane's stream bytes below this offset.
    pub(crate) credit: u64,
}

impl SendLane {
    pub(crate) fn new(priority: i32, weight: u16) -> Self {
        SendLane {
            priority,
            weight: weight.max(1),
            vtime: 0,
            last_msg_num: 0,
            last_reliable_num: 0,
            stream: ByteQueue::default(),
            stream_base: 0,
            next_unsent: 0,
            acked: RangeSet::new(),
            retransmit: RangeSet::new(),
            reliable_msgs: VecDeque::new(),
            unrel_data: ByteQueue::default(),
            unrel_msgs: VecDeque::new(),
            credit: super::flow::INITIAL_LANE_CREDIT,
        }
    }

    /// The offset of the first stream byte never sent: the highest offset sent so far.
    pub(crate) fn next_unsent(&self) -> u64 {
        self.next_unsent
    }

    /// True if new data can go now: the next item is an unreliable message, or stream bytes
    /// within the lane's credit while the connection has `conn_room` credit left.
    pub(crate) fn sendable(&self, conn_room: u64) -> bool {
        if !self.has_new() {
            return false;
        }
        !self.next_is_reliable() || (self.next_unsent < self.credit && conn_room > 0)
    }

    /// New stream bytes flow control lets go now, at most `conn_room`.
    pub(crate) fn credit_room(&self, conn_room: u64) -> u64 {
        self.credit.saturating_sub(self.next_unsent).min(conn_room)
    }

    pub(crate) fn stream_end(&self) -> u64 {
        self.stream_base + self.stream.len() as u64
    }

    /// Reliable bytes queued for (re)transmission.
    pub(crate) fn pending_reliable(&self) -> usize {
        (self.stream_end() - self.next_unsent + self.retransmit.total()) as usize
    }

    /// Unreliable bytes queued.
    pub(crate) fn pending_unreliable(&self) -> usize {
        self.unrel_data.len()
    }

    /// Reliable bytes sent and not yet acknowledged.
    pub(crate) fn sent_unacked(&self) -> usize {
        let sent = self.next_unsent - self.stream_base;
        (sent - self.acked.total()).saturating_sub(self.retransmit.total()) as usize
    }

    /// Bytes that would be sent if the pacer allowed everything now.
    pub(crate) fn pending(&self) -> usize {
        self.pending_reliable() + self.pending_unreliable()
    }

    pub(crate) fn has_new(&self) -> bool {
        self.next_unsent < self.stream_end() || !self.unrel_msgs.is_empty()
    }

    pub(crate) fn has_retransmit(&self) -> bool {
        !self.retransmit.is_empty()
    }

    /// Frames a reliable message into the stream; returns its number.
    pub(crate) fn queue_reliable(&mut self, data: &[u8]) -> u64 {
        self.last_msg_num += 1;
        let num = self.last_msg_num;
        let mut hdr = [0u8; 2 * varint::MAX_LEN];
        // Infallible: two varints fit in 20 bytes.
        let a = varint::write(&mut hdr, num - self.last_reliable_num).unwrap_or(0);
        let b = varint::write(&mut hdr[a..], data.len() as u64).unwrap_or(0);
        self.stream.push(&hdr[..a + b]);
        self.stream.push(data);
        self.last_reliable_num = num;
        self.reliable_msgs.push_back((self.stream_end(), num));
        num
    }

    /// Queues an unreliable message; returns its number.
    pub(crate) fn queue_unreliable(&mut self, data: &[u8]) -> u64 {
        self.last_msg_num += 1;
        let num = self.last_msg_num;
        self.unrel_data.push(data);
        self.unrel_msgs.push_back(UnrelMsg { num, len: data.len() as u32, sent: 0 });
        num
    }

    /// Whether the next new item should be reliable stream data (by message order).
    pub(crate) fn next_is_reliable(&self) -> bool {
        match (self.reliable_msgs.front(), self.unrel_msgs.front()) {
            (Some(&(_, rn)), Some(u)) => rn < u.num,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // Stream bytes left with no message record: a message already split across
            // packets; keep sending it.
            (None, None) => self.next_unsent < self.stream_end(),
        }
    }

    /// Takes up to `max` bytes of retransmission: the range to resend.
    pub(crate) fn take_retransmit(&mut self, max: u64) -> Option<(u64, u64)> {
        let r = self.retransmit.pop_front(max)?;
        Some((r.start, r.end - r.start))
    }

    /// Takes up to `max` new stream bytes.
    pub(crate) fn take_new_reliable(&mut self, max: u64) -> Option<(u64, u64)> {
        let len = (self.stream_end() - self.next_unsent).min(max);
        if len == 0 {
            return None;
        }
        let off = self.next_unsent;
        self.next_unsent += len;
        while self.reliable_msgs.front().is_some_and(|&(end, _)| end <= self.next_unsent) {
            self.reliable_msgs.pop_front();
        }
        Some((off, len))
    }

    /// Copies stream bytes `[offset, offset + out.len())` into `out`.
    pub(crate) fn copy_stream(&self, offset: u64, out: &mut [u8]) {
        let start = (offset - self.stream_base) as usize;
        out.copy_from_slice(&self.stream.bytes()[start..start + out.len()]);
    }

    /// The next unreliable chunk of at most `max` bytes (a whole message or a fragment).
    pub(crate) fn peek_unreliable(&self, max: u32) -> Option<UnrelChunk> {
        let m = self.unrel_msgs.front()?;
        let left = m.len - m.sent;
        Some(UnrelChunk { num: m.num, offset: m.sent, total: m.len, len: left.min(max) })
    }

    /// Copies the chunk's bytes into `out` and consumes them.
    pub(crate) fn take_unreliable(&mut self, chunk: UnrelChunk, out: &mut [u8]) {
        let n = chunk.len as usize;
        out[..n].copy_from_slice(&self.unrel_data.bytes()[..n]);
        self.unrel_data.consume(n);
        if let Some(m) = self.unrel_msgs.front_mut() {
            m.sent += chunk.len;
            if m.sent >= m.len {
                self.unrel_msgs.pop_front();
            }
        }
    }

    /// Drops queued unreliable messages (for example when the connection closes).
    pub(crate) fn clear_unreliable(&mut self) {
        self.unrel_data.clear();
        self.unrel_msgs.clear();
    }

    /// A segment was acknowledged.
    pub(crate) fn on_acked(&mut self, offset: u64, len: u64) {
        // Clamped to what this lane has sent: a segment of a stream the connection already
        // discarded (closed without linger) must not touch the new, empty one.
        let start = offset.max(self.stream_base);
        let end = offset.saturating_add(len).min(self.next_unsent);
        if end <= start {
            return;
        }
        self.acked.insert(start..end);
        self.retransmit.remove(start..end);
        while let Some(first) = self.acked.first() {
            if first.start != self.stream_base {
                break;
            }
            let n = (first.end - first.start) as usize;
            self.stream.consume(n);
            self.stream_base = first.end;
            self.acked.drop_first();
        }
    }

    /// A segment was lost: queue what of it is not yet acknowledged.
    pub(crate) fn on_lost(&mut self, offset: u64, len: u64) {
        let start = offset.max(self.stream_base);
        let end = offset.saturating_add(len).min(self.next_unsent);
        if end <= start {
            return;
        }
        self.retransmit.insert(start..end);
        // The acked set above the base is small (it only holds islands past a gap).
        let overlaps: Vec<_> =
            self.acked.iter().filter(|r| r.start < end && r.end > start).cloned().collect();
        for r in overlaps {
            self.retransmit.remove(r);
        }
    }

    /// True when every reliable byte has been acknowledged.
    pub(crate) fn all_reliable_acked(&self) -> bool {
        self.stream.is_empty()
    }

    /// Bytes of memory held (for accounting).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.stream.len() + self.unrel_data.len()
    }
}

/// A FIFO of bytes: appended at the back, consumed from the front, always one slice. A `Vec`
/// and a read offset, compacted once the consumed front is at least half of it (so each byte
/// moves at most once on average); `VecDeque<u8>`'s wrap-around code is about 2 KB of the
/// browser's .wasm.
#[derive(Debug, Default)]
struct ByteQueue {
    buf: Vec<u8>,
    head: usize,
}

impl ByteQueue {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queued bytes, oldest first.
    fn bytes(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Drops the `n` oldest bytes (at most all of them).
    fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head >= self.buf.len() / 2 {
            self.buf.copy_within(self.head.., 0);
            self.buf.truncate(self.buf.len() - self.head);
            self.head = 0;
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn byte_queue_is_a_fifo_through_compactions() {
        let mut q = ByteQueue::default();
        let mut model: alloc::collections::VecDeque<u8> = alloc::collections::VecDeque::new();
        let mut rng = crate::rng::Rng::seeded(5);
        let mut next = 0u8;
        for _ in 0..2000 {
            if rng.chance(0.5) {
                let n = rng.range(0, 300) as usize;
                let data: Vec<u8> = (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect();
                q.push(&data);
                model.extend(&data);
            } else {
                let n = rng.range(0, 400) as usize;
                q.consume(n);
                model.drain(..n.min(model.len()));
            }
            assert_eq!(q.len(), model.len());
            assert!(q.bytes().iter().eq(model.iter()));
            assert!(q.head == 0 || q.head < q.buf.len() / 2, "compacted once half is consumed");
        }
        q.clear();
        assert!(q.is_empty() && q.bytes().is_empty());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn stream_framing_ack_and_loss() {
        let mut l = SendLane::new(0, 1);
        assert_eq!(l.queue_reliable(b"hello"), 1);
        assert_eq!(l.queue_unreliable(b"u"), 2);
        assert_eq!(l.queue_reliable(b"world"), 3);
        // Stream: [1, 5, hello, 2, 5, world]: the second delta is 2 because 2 was unreliable.
        assert_eq!(l.pending_reliable(), 14);
        assert!(l.next_is_reliable());
        let (off, len) = l.take_new_reliable(10).unwrap();
        assert_eq!((off, len), (0, 10));
        let mut out = [0u8; 10];
        l.copy_stream(0, &mut out);
        assert_eq!(&out[..7], &[1, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(&out[7..], &[2, 5, b'w']);
        assert!(!l.next_is_reliable(), "unreliable #2 is older than what is left of #3");
        let c = l.peek_unreliable(100).unwrap();
        let mut u = [0u8; 1];
        l.take_unreliable(c, &mut u);
        assert_eq!((c.num, &u), (2, b"u"));
        let (off2, len2) = l.take_new_reliable(100).unwrap();
        assert_eq!((off2, len2), (10, 4));
        assert_eq!(l.sent_unacked(), 14);
        // Lose the first segment, ack the second.
        l.on_lost(0, 10);
        l.on_acked(10, 4);
        assert_eq!(l.pending_reliable(), 10);
        assert_eq!(l.take_retransmit(6), Some((0, 6)));
        assert_eq!(l.take_retransmit(6), Some((6, 4)));
        l.on_acked(0, 6);
        l.on_lost(0, 6); // late loss report after the ack: nothing to resend
        assert_eq!(l.pending_reliable(), 0);
        l.on_acked(6, 4);
        assert!(l.all_reliable_acked());
    }
}
