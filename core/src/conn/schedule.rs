//! Lane scheduling: what goes into a packet's room, in which order. Retransmissions first,
//! highest-priority lane first; then new data by strict priority and, among lanes of equal
//! priority, weighted fair queueing (each lane's virtual time grows by bytes sent / weight,
//! and the lane with the least goes next; an idle lane does not bank credit, see
//! `Connection::send`). New reliable data only within the peer's flow-control credit. The same
//! rule gives each lane's queue time in the quick status.

use crate::prelude::*;

use super::ack::{MAX_SEGS_PER_PACKET, SegRef, SentPacket};
use super::send;
use super::{Connection, MAX_HEADER, MIN_SEGMENT_ROOM};
use crate::time::Instant;
use crate::types::LaneStatus;
use crate::wire::{self, UnreliableFrame, Writer};

impl<A: Clone> Connection<A> {
    /// Fills the packet with retransmissions, then new data by lane priority and weight.
    pub(super) fn write_segments(
        &mut self,
        w: &mut Writer<'_>,
        record: &mut SentPacket,
        _now: Instant,
    ) -> bool {
        let mut wrote = false;
        // Retransmissions first, highest priority lane first.
        // Lanes in priority order; with one lane (the common case) no sorting or allocation.
        let order = [0usize; 1];
        let mut many = Vec::new();
        let lanes: &[usize] = if self.send_lanes.len() == 1 {
            &order[..]
        } else {
            // Insertion by priority, equal priorities in lane order (as a stable sort, without
            // its code: lanes are few).
            for i in 0..self.send_lanes.len() {
                let p = self.send_lanes[i].priority;
                let at = many.partition_point(|&j: &usize| self.send_lanes[j].priority <= p);
                many.insert(at, i);
            }
            &many
        };
        for &i in lanes {
            while self.send_lanes[i].has_retransmit()
                && usize::from(record.nsegs) < MAX_SEGS_PER_PACKET
            {
                let lane = i as u16;
                let Some(max) =
                    room_for_reliable(w.remaining(), lane, self.send_lanes[i].stream_end())
                else {
                    break;
                };
                let Some((off, len)) = self.send_lanes[i].take_retransmit(max as u64) else {
                    break;
                };
                self.bytes_retransmitted += len;
                self.write_reliable(w, record, i, off, len);
                wrote = true;
            }
        }
        // New data.
        loop {
            if usize::from(record.nsegs) >= MAX_SEGS_PER_PACKET || w.remaining() < MIN_SEGMENT_ROOM
            {
                break;
            }
            let Some(i) = self.pick_lane() else { break };
            let lane = i as u16;
            let before = w.len();
            if self.send_lanes[i].next_is_reliable() {
                let Some(max) =
                    room_for_reliable(w.remaining(), lane, self.send_lanes[i].stream_end())
                else {
                    break;
                };
                let credit = self.send_lanes[i].credit_room(self.conn_credit_room());
                let Some((off, len)) =
                    self.send_lanes[i].take_new_reliable((max as u64).min(credit))
                else {
                    break;
                };
                self.write_reliable(w, record, i, off, len);
            } else {
                let room = w.remaining();
                let l = &mut self.send_lanes[i];
                let Some(c) = l.peek_unreliable(u32::MAX) else { break };
                // Header with an explicit length; for a fragment, offsets too.
                let probe = UnreliableFrame {
                    lane,
                    msg_num: c.num,
                    offset: c.offset,
                    total: c.total,
                    data: &[],
                };
                let hdr_frag = wire::unreliable_header_len(
                    &UnreliableFrame { total: c.total.max(1), ..probe.clone() },
                    true,
                ) + 2 * wire::varint::MAX_LEN;
                let whole_left = (c.total - c.offset) as usize;
                let hdr_whole = wire::unreliable_header_len(
                    &UnreliableFrame { total: c.total, offset: 0, ..probe.clone() },
                    true,
                ) + wire::varint::len(c.total as u64);
                let len = if c.offset == 0 && whole_left + hdr_whole <= room {
                    whole_left
                } else if room > hdr_frag + MIN_SEGMENT_ROOM {
                    // Only fragment a message that cannot fit a packet of its own; otherwise wait
                    // for the next packet so small messages stay whole.
                    let fresh_room =
                        self.mtu().saturating_sub(MAX_HEADER + self.protection.tag_len() + 32);
                    if c.offset == 0
                        && whole_left + hdr_whole <= fresh_room
                        && w.len() > MAX_HEADER + 8
                    {
                        break;
                    }
                    whole_left.min(room - hdr_frag)
                } else {
                    break;
                };
                let chunk = send::UnrelChunk { len: len as u32, ..c };
                let f = UnreliableFrame {
                    lane,
                    msg_num: c.num,
                    offset: c.offset,
                    total: c.total,
                    data: &[],
                };
                let frag = UnreliableFrame { data: &[0u8; 0], ..f };
                // Write the header for `len` bytes, then the bytes straight from the queue.
                let hdr = UnreliableFrameHeader { f: frag, len };
                if hdr.write(w).is_none() {
                    break;
                }
                let Some(dst) = w.reserve(len) else { break };
                self.send_lanes[i].take_unreliable(chunk, dst);
            }
            let sent = (w.len() - before) as u64;
            let l = &mut self.send_lanes[i];
            l.vtime += sent * 65536 / u64::from(l.weight);
            wrote = true;
        }
        wrote
    }

    fn write_reliable(
        &mut self,
        w: &mut Writer<'_>,
        record: &mut SentPacket,
        lane: usize,
        off: u64,
        len: u64,
    ) {
        let l = lane as u16;
        // Room was checked by room_for_reliable: these writes cannot fail.
        if wire::write_reliable_header(w, l, off, len as usize, true).is_none() {
            self.send_lanes[lane].on_lost(off, len);
            return;
        }
        let Some(dst) = w.reserve(len as usize) else {
            self.send_lanes[lane].on_lost(off, len);
            return;
        };
        self.send_lanes[lane].copy_stream(off, dst);
        let i = usize::from(record.nsegs);
        record.segs[i] = SegRef { lane: l, len: len as u32, offset: off };
        record.nsegs += 1;
    }

    /// The lane to send new data from: strict priority, then least virtual time.
    pub(super) fn pick_lane(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        let room = self.conn_credit_room();
        for (i, l) in self.send_lanes.iter().enumerate() {
            if !l.sendable(room) {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let o = &self.send_lanes[b];
                    if (l.priority, l.vtime) < (o.priority, o.vtime) { Some(i) } else { Some(b) }
                }
            };
        }
        best
    }

    /// Per-lane status, with queue times that account for priority and weight: a lane waits
    /// for every higher-priority lane's queue, and shares the rate with its equal-priority
    /// peers in proportion to weight while they have data.
    pub(super) fn lane_status(&self) -> Vec<LaneStatus> {
        let n = self.send_lanes.len();
        let mut out = vec![LaneStatus::default(); n];
        for (i, l) in self.send_lanes.iter().enumerate() {
            out[i].pending_reliable = l.pending_reliable();
            out[i].pending_unreliable = l.pending_unreliable();
            out[i].sent_unacked_reliable = l.sent_unacked();
        }
        for (i, l) in self.send_lanes.iter().enumerate() {
            let mine = l.pending() as f64;
            let mut before = 0.0;
            for (j, o) in self.send_lanes.iter().enumerate() {
                if j == i {
                    continue;
                }
                let theirs = o.pending() as f64;
                if o.priority < l.priority {
                    before += theirs;
                } else if o.priority == l.priority && theirs > 0.0 {
                    // While both have data, they share by weight; the other lane gets
                    // w_o / w_l bytes for each of ours, until it runs out.
                    let share = f64::from(o.weight) / f64::from(l.weight);
                    before += theirs.min(mine * share);
                }
            }
            out[i].queue_time = self.pacer.time_for((mine + before) as usize);
        }
        out
    }
}

/// The largest reliable segment that fits in `room` bytes for `lane`.
fn room_for_reliable(room: usize, lane: u16, max_offset: u64) -> Option<usize> {
    // Header: type, lane, offset (at most the stream's end) and a length of at most `room`.
    let hdr = 1
        + wire::varint::len(u64::from(lane))
        + wire::varint::len(max_offset)
        + wire::varint::len(room as u64);
    let n = room.checked_sub(hdr)?;
    (n >= 1 && room >= MIN_SEGMENT_ROOM).then_some(n)
}

/// Header of an unreliable segment carrying `len` bytes.
struct UnreliableFrameHeader<'a> {
    f: UnreliableFrame<'a>,
    len: usize,
}

impl UnreliableFrameHeader<'_> {
    fn write(&self, w: &mut Writer<'_>) -> Option<()> {
        // The frame writer decides "fragment" by comparing data length with total, so describe
        // the chunk with a stand-in slice of the right length without copying anything.
        let whole = self.f.offset == 0 && self.len as u32 == self.f.total;
        let t = 0x20u8 | 0x01 | if whole { 0 } else { 0x02 };
        w.u8(t)?;
        w.varint(u64::from(self.f.lane))?;
        w.varint(self.f.msg_num)?;
        if !whole {
            w.varint(u64::from(self.f.offset))?;
            w.varint(u64::from(self.f.total))?;
        }
        w.varint(self.len as u64)
    }
}
