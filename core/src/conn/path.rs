//! Address changes with path validation (RFC 9000 section 8.2 and 9, in small).
//!
//! An authenticated packet with the highest packet number so far, from an address other than
//! the peer's, means the peer moved (a NAT rebinding, a new network). The connection follows at
//! once, so that nothing stalls, but until the new address proves that it receives what we send
//! (it echoes a random `path challenge` in a `path response`), we send it at most
//! [`AMPLIFICATION_FACTOR`] times the bytes that came from it: a third party whose address an
//! attacker put on a replayed packet gets almost nothing. A challenge unanswered
//! [`MAX_CHALLENGES`] times sends the connection back to the last validated address. A packet
//! with the highest number from that old address while the new one is being validated moves it
//! back at once.

use super::Connection;
#[cfg(feature = "crypto")]
use super::Phase;
use crate::time::Instant;

/// Bytes sent to an unvalidated address per byte received from it (RFC 9000: 3).
#[cfg(feature = "crypto")]
pub(crate) const AMPLIFICATION_FACTOR: u64 = 3;
/// Challenges sent, one per retransmission timeout, before the new address is given up.
#[cfg(feature = "crypto")]
pub(crate) const MAX_CHALLENGES: u32 = 3;

/// A connection's address-change state (with the `crypto` feature only: without our AEAD no
/// packet is authenticated, so a connection never follows a new address; the endpoint drops
/// packets from elsewhere).
#[cfg(feature = "crypto")]
#[derive(Debug)]
pub(crate) struct PathState<A> {
    /// The new address being validated.
    validating: Option<PathValidation<A>>,
    /// A path challenge of the peer's to echo.
    response: Option<[u8; 8]>,
    /// Address changes followed, and new addresses given up (for the detailed status).
    moves: u64,
    failures: u64,
}

#[cfg(feature = "crypto")]
impl<A> Default for PathState<A> {
    fn default() -> Self {
        PathState { validating: None, response: None, moves: 0, failures: 0 }
    }
}

/// A new peer address being validated.
#[cfg(feature = "crypto")]
#[derive(Debug, Clone)]
pub(crate) struct PathValidation<A> {
    /// The last validated address: the connection goes back to it if this one fails.
    pub(crate) old: A,
    challenge: [u8; 8],
    /// When the last challenge went out, and how many did.
    sent_at: Option<Instant>,
    tries: u32,
    /// Bytes received from and sent to the new address.
    received: u64,
    sent: u64,
}

#[cfg(feature = "crypto")]
impl<A: Clone + PartialEq> Connection<A> {
    /// An authenticated packet of `len` bytes with the highest packet number so far came from
    /// `from`, which is not the peer's address: follow it, and validate it with `challenge`.
    pub(crate) fn on_address_change(&mut self, from: A, len: usize, challenge: [u8; 8]) {
        if self.path.validating.as_ref().is_some_and(|v| v.old == from) {
            // Back to the validated address (a reordered packet, or a failed move).
            self.remote = from;
            self.path.validating = None;
            return;
        }
        let previous = core::mem::replace(&mut self.remote, from);
        let old = match self.path.validating.take() {
            Some(v) => v.old,
            None => previous,
        };
        self.path.validating = Some(PathValidation {
            old,
            challenge,
            sent_at: None,
            tries: 0,
            received: len as u64,
            sent: 0,
        });
        self.path.moves += 1;
    }
}

#[cfg(feature = "crypto")]
impl<A: Clone> Connection<A> {
    /// A datagram of `len` bytes from the peer's current address was taken.
    pub(crate) fn on_path_bytes(&mut self, len: usize) {
        if let Some(v) = &mut self.path.validating {
            v.received += len as u64;
        }
    }

    /// Bytes that may still go to an unvalidated address (`usize::MAX` when validated).
    pub(crate) fn amplification_budget(&self) -> usize {
        match &self.path.validating {
            None => usize::MAX,
            Some(v) => {
                (v.received.saturating_mul(AMPLIFICATION_FACTOR).saturating_sub(v.sent)) as usize
            }
        }
    }

    /// `len` bytes went to the peer's current address.
    pub(crate) fn on_path_sent(&mut self, len: usize) {
        if let Some(v) = &mut self.path.validating {
            v.sent += len as u64;
        }
    }

    /// The challenge to put in the next packet, if one is due.
    pub(crate) fn path_challenge_due(&self, now: Instant) -> Option<[u8; 8]> {
        let v = self.path.validating.as_ref()?;
        let due = v.sent_at.is_none_or(|t| now >= t + self.sent.rtt.rto());
        (due && v.tries < MAX_CHALLENGES).then_some(v.challenge)
    }

    /// A packet carrying the challenge went out.
    pub(crate) fn on_path_challenge_sent(&mut self, now: Instant) {
        if let Some(v) = &mut self.path.validating {
            v.sent_at = Some(now);
            v.tries += 1;
        }
    }

    /// When the path needs attention: a challenge to send, or the last one's time running out.
    pub(crate) fn path_timer(&self) -> Option<Instant> {
        let v = self.path.validating.as_ref()?;
        if !matches!(self.phase, Phase::Connected | Phase::Linger) {
            return None;
        }
        Some(v.sent_at.map_or(self.phase_entered, |t| t + self.sent.rtt.rto()))
    }

    /// Gives the new address up once every challenge went unanswered.
    pub(crate) fn check_path(&mut self, now: Instant) {
        let Some(v) = &self.path.validating else { return };
        let expired = v.sent_at.is_some_and(|t| now >= t + self.sent.rtt.rto());
        if v.tries >= MAX_CHALLENGES
            && expired
            && let Some(v) = self.path.validating.take()
        {
            self.remote = v.old;
            self.path.failures += 1;
        }
    }

    /// The peer echoed a challenge.
    pub(crate) fn on_path_response(&mut self, data: [u8; 8]) {
        if self.path.validating.as_ref().is_some_and(|v| v.challenge == data) {
            self.path.validating = None;
        }
    }
}

#[cfg(feature = "crypto")]
impl<A: Clone> Connection<A> {
    /// The peer challenged our address: echo it in the next packet.
    pub(crate) fn on_path_challenge(&mut self, data: [u8; 8]) {
        self.path.response = Some(data);
    }

    /// A path response to send, if one is pending.
    pub(crate) fn path_response_due(&self) -> Option<[u8; 8]> {
        self.path.response
    }

    /// The path response went out.
    pub(crate) fn on_path_response_sent(&mut self) {
        self.path.response = None;
    }

    /// The detailed status's line.
    pub(crate) fn path_status(&self) -> alloc::string::String {
        crate::text!(
            "path: moved ",
            self.path.moves,
            " times, gave up ",
            self.path.failures,
            if self.path.validating.is_some() { "; validating the new address\n" } else { "\n" }
        )
    }
}

/// Without our AEAD nothing is authenticated, so no address change is ever followed: every
/// query has its constant answer.
#[cfg(not(feature = "crypto"))]
impl<A: Clone> Connection<A> {
    pub(crate) fn on_path_bytes(&mut self, _: usize) {}
    pub(crate) fn amplification_budget(&self) -> usize {
        usize::MAX
    }
    pub(crate) fn on_path_sent(&mut self, _: usize) {}
    pub(crate) fn path_challenge_due(&self, _: Instant) -> Option<[u8; 8]> {
        None
    }
    pub(crate) fn on_path_challenge_sent(&mut self, _: Instant) {}
    pub(crate) fn path_timer(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn check_path(&mut self, _: Instant) {}
    pub(crate) fn on_path_response(&mut self, _: [u8; 8]) {}
    pub(crate) fn on_path_challenge(&mut self, _: [u8; 8]) {}
    pub(crate) fn path_response_due(&self) -> Option<[u8; 8]> {
        None
    }
    pub(crate) fn on_path_response_sent(&mut self) {}
    pub(crate) fn path_status(&self) -> alloc::string::String {
        alloc::string::String::new()
    }
}
