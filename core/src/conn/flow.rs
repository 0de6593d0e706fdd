//! Flow control: the receiver says how much reliable data it will take, and the sender never
//! sends beyond it.
//!
//! Credit is counted in stream bytes, as absolute offsets that only grow (QUIC's
//! `MAX_STREAM_DATA` and `MAX_DATA`):
//!
//! - **per lane**: the sender may send a lane's stream bytes below the lane's limit, which the
//!   receiver sets to what the application has read of that lane plus the lane window
//!   (`max(RecvBufferSize, 1 MiB)`);
//! - **per connection**: the sum over lanes of the highest offset sent stays below the
//!   connection's limit, what the application has read of all lanes plus twice the lane window.
//!   So one lane can never take the whole connection's memory, and a latency lane keeps moving
//!   while a bulk lane waits for a retransmission to fill a hole.
//!
//! Both sides start from the same initial credit ([`INITIAL_LANE_CREDIT`],
//! [`INITIAL_CONN_CREDIT`]), which every receiver can honour (its window is never smaller), so
//! nothing needs negotiating in the handshake. A receiver raises its limits as the application
//! reads messages, and while its receive queue holds fewer than `RecvBufferMessages` messages; it
//! advertises them in `max data` / `max lane data` frames (`WIRE_FORMAT.md` 5.9, 5.10) once they moved
//! by an eighth of the window, in ack-eliciting packets, and advertises them all again when
//! such a packet is lost.
//!
//! Because an honest sender stays within the credit, a receiver never has to refuse a packet for
//! want of room; a segment beyond the credit comes from a broken or hostile peer, and is refused
//! (not acked) without affecting the rest of its packet (see `Connection::handle_data`).

use crate::prelude::*;
use alloc::collections::VecDeque;

use super::MAX_MESSAGE_SIZE;
use crate::wire::{Frame, Writer, varint};

/// Credit of a lane before the receiver said anything: two largest messages, the smallest lane
/// window a receiver has.
pub(crate) const INITIAL_LANE_CREDIT: u64 = 2 * MAX_MESSAGE_SIZE as u64;
/// Credit of the connection before the receiver said anything.
pub(crate) const INITIAL_CONN_CREDIT: u64 = 2 * INITIAL_LANE_CREDIT;

/// The lane window for a receive buffer of `recv_buffer_size` bytes: never below two largest
/// messages, so a message always fits.
pub(crate) fn lane_window(recv_buffer_size: usize) -> u64 {
    (recv_buffer_size as u64).max(INITIAL_LANE_CREDIT)
}

#[derive(Debug, Clone, Copy)]
struct LaneCredit {
    /// Offset below which data is accepted (never shrinks).
    limit: u64,
    /// The limit the peer last heard of.
    advertised: u64,
    /// Stream bytes the application has read.
    released: u64,
    /// Highest stream offset received.
    max_end: u64,
}

impl Default for LaneCredit {
    fn default() -> Self {
        LaneCredit {
            limit: INITIAL_LANE_CREDIT,
            advertised: INITIAL_LANE_CREDIT,
            released: 0,
            max_end: 0,
        }
    }
}

/// The receive side's credit.
#[derive(Debug)]
pub(crate) struct RecvCredit {
    lanes: Vec<LaneCredit>,
    conn_limit: u64,
    conn_advertised: u64,
    /// Sum of the lanes' `released`.
    released_total: u64,
    /// Sum of the lanes' `max_end`.
    received_total: u64,
    /// The reliable messages in the receive queue, oldest first: lane and the stream offset of
    /// the message's end. Reading one releases its lane up to there.
    queued: VecDeque<(u16, u64)>,
    /// Advertise every limit again: a packet that carried some was lost.
    resend_all: bool,
}

impl Default for RecvCredit {
    fn default() -> Self {
        RecvCredit {
            lanes: vec![LaneCredit::default()],
            conn_limit: INITIAL_CONN_CREDIT,
            conn_advertised: INITIAL_CONN_CREDIT,
            released_total: 0,
            received_total: 0,
            queued: VecDeque::new(),
            resend_all: false,
        }
    }
}

impl RecvCredit {
    fn lane(&mut self, lane: u16) -> &mut LaneCredit {
        let i = usize::from(lane);
        if self.lanes.len() <= i {
            self.lanes.resize(i + 1, LaneCredit::default());
        }
        &mut self.lanes[i]
    }

    /// True if stream bytes of `lane` up to `end` are within what we granted.
    pub(crate) fn allows(&self, lane: u16, end: u64) -> bool {
        let l = self.lanes.get(usize::from(lane)).copied().unwrap_or_default();
        end <= l.limit
            && (end <= l.max_end || self.received_total + (end - l.max_end) <= self.conn_limit)
    }

    /// Stream bytes of `lane` up to `end` were taken.
    pub(crate) fn on_received(&mut self, lane: u16, end: u64) {
        let l = self.lane(lane);
        if end > l.max_end {
            let grew = end - l.max_end;
            l.max_end = end;
            self.received_total += grew;
        }
    }

    /// A reliable message of `lane` ending at stream offset `end` joined the receive queue.
    pub(crate) fn on_queued(&mut self, lane: u16, end: u64) {
        self.queued.push_back((lane, end));
    }

    /// The application took a message off the receive queue.
    pub(crate) fn on_read(&mut self, reliable: bool) {
        if !reliable {
            return;
        }
        let Some((lane, end)) = self.queued.pop_front() else { return };
        let l = self.lane(lane);
        if end > l.released {
            let grew = end - l.released;
            l.released = end;
            self.released_total += grew;
        }
    }

    /// The receive queue was discarded (the application closed the connection).
    pub(crate) fn on_queue_cleared(&mut self) {
        self.queued.clear();
    }

    /// Raises the limits to what has been read plus the windows. `room` is false while the
    /// receive queue holds too many messages: then no new credit is granted until it drains.
    pub(crate) fn update(&mut self, window: u64, room: bool) {
        if !room {
            return;
        }
        for l in &mut self.lanes {
            l.limit = l.limit.max(l.released + window);
        }
        self.conn_limit = self.conn_limit.max(self.released_total + 2 * window);
    }

    /// True if the peer should hear of new limits: they grew by an eighth of the window since
    /// it last did, or a packet carrying them was lost.
    pub(crate) fn due(&self, window: u64) -> bool {
        let step = (window / 8).max(1);
        self.resend_all
            || self.conn_limit - self.conn_advertised >= step
            || self.lanes.iter().any(|l| l.limit - l.advertised >= step)
    }

    /// Writes the limits the peer should hear of; returns true if it wrote any. What does not
    /// fit waits for the next packet.
    pub(crate) fn write(&mut self, w: &mut Writer<'_>, window: u64) -> bool {
        let step = (window / 8).max(1);
        let all = self.resend_all;
        let mut wrote = false;
        let mut complete = true;
        // Each frame is written only where it fits whole (a failed write would leave part of it).
        if all || self.conn_limit - self.conn_advertised >= step {
            let f = Frame::MaxData { limit: self.conn_limit };
            if w.remaining() > varint::len(self.conn_limit) && f.emit(w).is_some() {
                self.conn_advertised = self.conn_limit;
                wrote = true;
            } else {
                complete = false;
            }
        }
        for (i, l) in self.lanes.iter_mut().enumerate() {
            let moved = l.limit - l.advertised >= step || (all && l.limit > INITIAL_LANE_CREDIT);
            if !moved {
                continue;
            }
            let f = Frame::MaxLaneData { lane: i as u16, limit: l.limit };
            let len = 1 + varint::len(i as u64) + varint::len(l.limit);
            if w.remaining() >= len && f.emit(w).is_some() {
                l.advertised = l.limit;
                wrote = true;
            } else {
                complete = false;
            }
        }
        if complete {
            self.resend_all = false;
        }
        wrote
    }

    /// A packet that carried limits was lost: say them all again.
    pub(crate) fn on_lost(&mut self) {
        self.resend_all = true;
    }

    /// Reliable bytes received and not yet read by the application, over all lanes.
    pub(crate) fn held(&self) -> u64 {
        self.received_total - self.released_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn credit_follows_what_the_application_reads() {
        let window = lane_window(0);
        assert_eq!(window, INITIAL_LANE_CREDIT);
        let mut c = RecvCredit::default();
        assert!(c.allows(0, INITIAL_LANE_CREDIT));
        assert!(!c.allows(0, INITIAL_LANE_CREDIT + 1), "beyond the lane's credit");
        // Two lanes fill the connection's credit; a third finds none.
        c.on_received(0, INITIAL_LANE_CREDIT);
        c.on_received(1, INITIAL_LANE_CREDIT);
        assert!(!c.allows(2, 1), "beyond the connection's credit");
        assert!(c.allows(0, 100), "old data is always allowed");
        // The application reads one message of lane 0 ending at 600 KB.
        c.on_queued(0, 600_000);
        c.on_read(false);
        c.update(window, true);
        assert!(!c.due(window), "an unreliable message releases nothing");
        c.on_read(true);
        c.update(window, false);
        assert!(!c.due(window), "no credit while the receive queue is full");
        c.update(window, true);
        assert!(c.due(window));
        assert!(c.allows(0, 600_000 + window));
        assert!(c.allows(2, 600_000));
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        assert!(c.write(&mut w, window));
        assert!(!c.due(window));
        c.on_lost();
        assert!(c.due(window));
        let n = w.len();
        assert!(c.write(&mut w, window));
        assert!(w.len() > n);
        assert_eq!(c.held(), 2 * INITIAL_LANE_CREDIT - 600_000);
    }
}
