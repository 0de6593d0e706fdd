//! Nagle: small messages wait up to `NagleTime` to be coalesced into fuller packets.
//!
//! Each message queued without `NO_NAGLE` may wait until `NagleTime` after it was sent (a
//! `NO_NAGLE` message, or `flush`, ends the wait for everything queued before it); a full
//! packet's worth of queued data never waits; and once everything queued has gone, the next
//! message starts a new wait. Pacing, the congestion window and flow control apply on top.

use super::{Connection, MAX_HEADER};
use crate::time::Instant;

impl<A: Clone> Connection<A> {
    /// A message was queued at `now`; `no_nagle` ends the wait for everything queued so far.
    pub(super) fn nagle_on_queued(&mut self, now: Instant, no_nagle: bool) {
        let deadline = if no_nagle { now } else { now + self.config.nagle_time };
        self.nagle_deadline = Some(self.nagle_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// Ends the wait now (`flush`, or lingering on close).
    pub(super) fn nagle_expire(&mut self, now: Instant) {
        self.nagle_deadline = Some(now);
    }

    /// When new data may go as far as Nagle is concerned: at once when a full packet's worth is
    /// queued, else at the deadline. `None` when nothing waits.
    pub(super) fn nagle_ready_at(&self, now: Instant) -> Option<Instant> {
        let deadline = self.nagle_deadline?;
        let room = self.mtu().saturating_sub(MAX_HEADER + self.protection.tag_len());
        Some(if self.pending_bytes() >= room { now } else { deadline })
    }

    /// A packet went out: once everything queued has gone, the next message starts a new wait.
    pub(super) fn nagle_after_packet(&mut self) {
        if !self.send_lanes.iter().any(|l| l.has_new()) {
            self.nagle_deadline = None;
        }
    }
}
