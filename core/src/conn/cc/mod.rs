//! Congestion control: how fast a connection sends and how much it keeps in flight.
//!
//! The connection paces packets at [`CongestionController::pacing_rate`], clamped to
//! `[SendRateMin, SendRateMax]`, and sends only while the bytes in flight stay below
//! [`CongestionController::window`]. The config value `CongestionControl` chooses the
//! controller per connection:
//!
//! | value | controller | what it does |
//! | --- | --- | --- |
//! | 0 (default) | [`Bbr`] | model-based: paces at the measured bottleneck bandwidth, keeps the standing queue short, ignores a few percent of random loss |
//! | 1 | [`NewReno`] | loss-based (RFC 9002's NewReno): halves its window on loss, fills buffers |
//! | 2 | [`FixedRate`] | none: always `SendRateMax`, no window (the reference's behaviour) |
//!
//! With `SendRateMin == SendRateMax` the rate is fixed whatever the controller says and no
//! window applies: that is exactly the reference's fixed-rate sender.
//!
//! Inputs come from loss recovery (`ack.rs`): every ack with a delivery-rate sample
//! ([`AckSample`]), every loss ([`LossSample`]), every packet sent.

mod bbr;
#[cfg(feature = "newreno")]
mod newreno;

use core::time::Duration;

pub use self::bbr::Bbr;
#[cfg(feature = "newreno")]
pub use self::newreno::NewReno;
pub use super::ack::RateSample;
use crate::prelude::*;
use crate::time::Instant;

/// What an ack told the controller.
#[derive(Debug, Clone, Copy)]
pub struct AckSample {
    /// Bytes newly acknowledged.
    pub acked_bytes: u64,
    /// Bytes in flight after the ack.
    pub in_flight: u64,
    /// Bytes acknowledged since the connection began, this ack included.
    pub delivered: u64,
    /// The RTT measured by this ack, if it measured one.
    pub rtt: Option<Duration>,
    /// The smoothed RTT.
    pub srtt: Duration,
    /// The delivery-rate sample of this ack, if any.
    pub rate: Option<RateSample>,
}

/// What loss detection told the controller.
#[derive(Debug, Clone, Copy)]
pub struct LossSample {
    /// Bytes declared lost.
    pub lost_bytes: u64,
    /// Packets declared lost.
    pub lost_packets: u64,
    /// When the most recently sent of them was sent.
    pub newest_sent: Instant,
    /// Bytes in flight after the loss.
    pub in_flight: u64,
    /// A retransmission timeout: nothing was acknowledged for long.
    pub timeout: bool,
}

/// Chooses how fast a connection sends and how much it keeps in flight. The connection paces
/// at [`pacing_rate`](Self::pacing_rate) clamped to `[SendRateMin, SendRateMax]` and sends only
/// while its bytes in flight stay below [`window`](Self::window); with `SendRateMin ==
/// SendRateMax` neither applies (the fixed rate of the reference). The config value
/// `CongestionControl` chooses the implementation per connection: 0 `Bbr`, 1 `NewReno`
/// (feature `newreno`; without it, `Bbr`), 2 [`FixedRate`].
pub trait CongestionController: Send {
    /// A packet of `bytes` went out; `in_flight` includes it.
    fn on_sent(&mut self, now: Instant, bytes: u64, in_flight: u64);
    /// An ack acknowledged packets.
    fn on_ack(&mut self, now: Instant, ack: &AckSample);
    /// Packets were declared lost.
    fn on_loss(&mut self, now: Instant, loss: &LossSample);
    /// Pacing rate it wants, bytes per second.
    fn pacing_rate(&self) -> u64;
    /// Bytes it allows in flight (`u64::MAX`: no limit).
    fn window(&self) -> u64;
    /// Its estimate of the path's bandwidth, bytes per second (0 before any).
    fn bandwidth_estimate(&self) -> u64;
    /// Its name and state, for the detailed status.
    fn describe(&self) -> String;
}

/// By name only: a `Debug` supertrait would put every controller's `Debug` code (and
/// `core::fmt` with it) in the vtable, and so in the browser's .wasm.
impl core::fmt::Debug for dyn CongestionController {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CongestionController")
    }
}

/// No congestion control: always asks for the maximum, so `SendRateMax` decides, and no
/// window.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedRate;

impl CongestionController for FixedRate {
    fn on_sent(&mut self, _: Instant, _: u64, _: u64) {}
    fn on_ack(&mut self, _: Instant, _: &AckSample) {}
    fn on_loss(&mut self, _: Instant, _: &LossSample) {}
    fn pacing_rate(&self) -> u64 {
        u64::MAX
    }
    fn window(&self) -> u64 {
        u64::MAX
    }
    fn bandwidth_estimate(&self) -> u64 {
        0
    }
    fn describe(&self) -> String {
        "fixed rate".into()
    }
}

/// The controller the config value `CongestionControl` chooses, for packets of `mtu` bytes.
pub(crate) fn from_config(choice: u8, now: Instant, mtu: usize) -> Box<dyn CongestionController> {
    match choice {
        #[cfg(feature = "newreno")]
        1 => Box::new(NewReno::new(mtu)),
        2 => Box::new(FixedRate),
        _ => Box::new(Bbr::new(now, mtu)),
    }
}

/// Bytes per second that `bytes` every `time` make.
pub(crate) fn rate_of(bytes: u64, time: Duration) -> u64 {
    let us = (time.as_micros() as u64).max(1);
    bytes.saturating_mul(1_000_000) / us
}

/// Bytes that `rate` bytes per second carry in `time`.
pub(crate) fn bytes_in(rate: u64, time: Duration) -> u64 {
    rate.saturating_mul(time.as_micros() as u64) / 1_000_000
}
