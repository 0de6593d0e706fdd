//! The connection's timers, in one table: [`Connection::timers`] names each timer that is
//! armed and when it is due; `poll_timeout` is the earliest of them, and `handle_timeout`
//! (in `mod.rs`) runs what is due. Timers that lead to sending are armed only when sending can
//! happen (the congestion window is open, the transport is not paused): otherwise they would
//! fire again and again while nothing can go.

use super::{Connection, FIN_WAIT, KEEPALIVE_INTERVAL, Phase};
use crate::time::Instant;

/// One of a connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Resend the client's handshake packet.
    HandshakeResend,
    /// Connecting, or waiting to be accepted, for `TimeoutInitial`.
    ConnectTimeout,
    /// The peer silent for `TimeoutConnected`.
    IdleTimeout,
    /// Ping a quiet peer.
    Keepalive,
    /// Loss detection: the time threshold, or the retransmission timeout.
    Loss,
    /// Send the ack we hold.
    Ack,
    /// Something to send at once: a connect-OK, a ping, a close, new credit.
    Immediate,
    /// Retransmissions, when pacing lets them go.
    Retransmit,
    /// A path MTU probe, when pacing lets it go.
    MtuProbe,
    /// New data, when Nagle and pacing let it go.
    NewData,
    /// Resend the close until it is acked.
    CloseResend,
    /// A new peer address: send its challenge, or give it up when unanswered.
    PathChallenge,
    /// Fin-wait is over.
    FinWait,
    /// The connection can be freed.
    Free,
}

impl Timer {
    /// Its name, for the detailed status.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Timer::HandshakeResend => "handshake resend",
            Timer::ConnectTimeout => "connect timeout",
            Timer::IdleTimeout => "idle timeout",
            Timer::Keepalive => "keepalive",
            Timer::Loss => "loss detection",
            Timer::Ack => "ack",
            Timer::Immediate => "immediate",
            Timer::Retransmit => "retransmit",
            Timer::MtuProbe => "MTU probe",
            Timer::NewData => "new data",
            Timer::CloseResend => "close resend",
            Timer::PathChallenge => "path challenge",
            Timer::FinWait => "fin-wait",
            Timer::Free => "free",
        }
    }
}

impl<A: Clone> Connection<A> {
    /// Calls `f` with each armed timer and when it is due.
    pub(crate) fn timers(&self, now: Instant, mut f: impl FnMut(Timer, Instant)) {
        let timeout_initial = self.phase_entered + self.config.timeout_initial;
        let idle = self.last_recv + self.config.timeout_connected;
        if self.tx_paused || self.amplification_blocked() {
            // Only the time-outs (and giving up an unanswered new address); the rest are due
            // at once on resuming.
            match self.phase {
                Phase::Handshake | Phase::AwaitAccept => f(Timer::ConnectTimeout, timeout_initial),
                Phase::Connected | Phase::Linger => {
                    f(Timer::IdleTimeout, idle);
                    if let Some(t) = self.path_timer() {
                        f(Timer::PathChallenge, t);
                    }
                }
                Phase::FinWait => f(Timer::FinWait, self.phase_entered + FIN_WAIT),
                Phase::ClosedByPeer | Phase::ProblemDetected => {}
                Phase::Dead => f(Timer::Free, now),
            }
            return;
        }
        if self.close_via_control {
            f(Timer::Immediate, now);
            return;
        }
        match self.phase {
            Phase::Handshake => {
                if self.merge_from.is_none() {
                    f(Timer::HandshakeResend, self.next_handshake_send);
                }
                f(Timer::ConnectTimeout, timeout_initial);
            }
            Phase::AwaitAccept => f(Timer::ConnectTimeout, timeout_initial),
            Phase::Connected | Phase::Linger => {
                f(Timer::IdleTimeout, idle);
                // With packets in flight the loss timer probes; otherwise a quiet peer is pinged.
                if !self.sent.has_outstanding_eliciting() {
                    f(Timer::Keepalive, self.last_recv + KEEPALIVE_INTERVAL);
                }
                if let Some(t) = self.sent.loss_timer() {
                    f(Timer::Loss, t);
                }
                if let Some(t) = self.recv_tracker.ack_deadline {
                    f(Timer::Ack, t);
                }
                if self.connect_ok_pending
                    || self.ping_pending
                    || self.close_frame_pending
                    || self.credit_due()
                    || self.path_response_due().is_some()
                {
                    f(Timer::Immediate, now);
                }
                if let Some(t) = self.path_timer() {
                    f(Timer::PathChallenge, t);
                }
                if self.window_open() {
                    let paced = self.pacer.next_send_time(now);
                    if self.send_lanes.iter().any(|l| l.has_retransmit()) {
                        f(Timer::Retransmit, paced);
                    }
                    if let Some(t) = self.pmtu.next_probe()
                        && self.phase == Phase::Connected
                    {
                        f(Timer::MtuProbe, t.max(paced));
                    }
                    if let Some(t) = self.nagle_ready_at(now)
                        && self.has_sendable()
                    {
                        f(Timer::NewData, t.max(paced));
                    }
                }
            }
            Phase::FinWait => {
                f(Timer::FinWait, self.phase_entered + FIN_WAIT);
                if let Some(t) = self.close_resend_at {
                    f(Timer::CloseResend, t);
                }
                if let Some(t) = self.sent.loss_timer() {
                    f(Timer::Loss, t);
                }
            }
            Phase::ClosedByPeer | Phase::ProblemDetected => {
                if self.close_frame_pending {
                    f(Timer::Immediate, now);
                }
                if let Some(t) = self.recv_tracker.ack_deadline {
                    f(Timer::Ack, t);
                }
            }
            Phase::Dead => f(Timer::Free, now),
        }
    }

    /// The earliest timer: which, and when.
    pub(crate) fn next_timer(&self, now: Instant) -> Option<(Timer, Instant)> {
        let mut next: Option<(Timer, Instant)> = None;
        self.timers(now, |timer, at| {
            if next.is_none_or(|(_, t)| at < t) {
                next = Some((timer, at));
            }
        });
        next
    }

    /// The earliest time something is due.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.next_timer(now).map(|(_, at)| at)
    }
}
