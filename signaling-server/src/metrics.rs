//! Counters and gauges behind `/metrics` (Prometheus text format) and
//! [`crate::RunningServer::metrics`]. Plain atomics: every update is one relaxed add.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::protocol::ErrorCode;

#[derive(Default)]
pub(crate) struct Metrics {
    /// Open WebSocket sessions, registered or not.
    pub(crate) clients: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    pub(crate) registrations_total: AtomicU64,
    pub(crate) replacements_total: AtomicU64,
    pub(crate) messages_received_total: AtomicU64,
    pub(crate) messages_relayed_total: AtomicU64,
    pub(crate) http_requests_total: AtomicU64,
    pub(crate) ip_limit_rejections_total: AtomicU64,
    /// 1 while connected to Redis (cluster mode only).
    pub(crate) redis_connected: AtomicU64,
    pub(crate) redis_connects_total: AtomicU64,
    pub(crate) redis_errors_total: AtomicU64,
    pub(crate) cluster_signals_out_total: AtomicU64,
    pub(crate) cluster_signals_in_total: AtomicU64,
    pub(crate) cluster_dropped_total: AtomicU64,
    pub(crate) cluster_malformed_total: AtomicU64,
    rejections: [AtomicU64; ErrorCode::ALL.len()],
}

/// A copy of the server's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// WebSocket clients connected now, registered or not.
    pub clients: u64,
    /// Identities registered now.
    pub registered: u64,
    /// WebSocket sessions accepted since start.
    pub connections_total: u64,
    /// Successful registrations since start.
    pub registrations_total: u64,
    /// Registrations that replaced an older connection of the same identity.
    pub replacements_total: u64,
    /// Frames received from clients (text, binary and pings), including refused ones.
    pub messages_received_total: u64,
    /// Signals forwarded to their recipient.
    pub messages_relayed_total: u64,
    /// Plain HTTP responses sent (healthz, metrics, static files, and errors such as 404, or
    /// 400 for a broken WebSocket upgrade).
    pub http_requests_total: u64,
    /// TCP connections refused at accept because their address had
    /// `Limits::max_connections_per_ip` open already.
    pub ip_limit_rejections_total: u64,
    /// 1 while connected to Redis, else 0 (always 0 without `--redis-url`).
    pub redis_connected: u64,
    /// Successful (re)connections to Redis.
    pub redis_connects_total: u64,
    /// Redis calls that failed or timed out, and failed connection attempts.
    pub redis_errors_total: u64,
    /// Signals published to another instance.
    pub cluster_signals_out_total: u64,
    /// Signals received from another instance.
    pub cluster_signals_in_total: u64,
    /// Signals from another instance dropped here: the recipient left or its queue was full.
    pub cluster_dropped_total: u64,
    /// Messages from Redis that did not parse (dropped).
    pub cluster_malformed_total: u64,
    /// Refusals by error code, in the order of [`ErrorCode::ALL`].
    pub rejections: Vec<(ErrorCode, u64)>,
}

impl MetricsSnapshot {
    /// Refusals with `code` since start.
    pub fn rejections(&self, code: ErrorCode) -> u64 {
        self.rejections.iter().find(|(c, _)| *c == code).map_or(0, |(_, n)| *n)
    }
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn reject(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.rejections[i].fetch_add(1, Relaxed);
        }
    }

    /// Takes a client slot if fewer than `max` are in use.
    pub(crate) fn try_add_client(&self, max: usize) -> bool {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        self.clients.fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1)).is_ok()
    }

    pub(crate) fn remove_client(&self) {
        self.clients.fetch_sub(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, registered: usize) -> MetricsSnapshot {
        MetricsSnapshot {
            clients: self.clients.load(Relaxed),
            registered: registered as u64,
            connections_total: self.connections_total.load(Relaxed),
            registrations_total: self.registrations_total.load(Relaxed),
            replacements_total: self.replacements_total.load(Relaxed),
            messages_received_total: self.messages_received_total.load(Relaxed),
            messages_relayed_total: self.messages_relayed_total.load(Relaxed),
            http_requests_total: self.http_requests_total.load(Relaxed),
            ip_limit_rejections_total: self.ip_limit_rejections_total.load(Relaxed),
            redis_connected: self.redis_connected.load(Relaxed),
            redis_connects_total: self.redis_connects_total.load(Relaxed),
            redis_errors_total: self.redis_errors_total.load(Relaxed),
            cluster_signals_out_total: self.cluster_signals_out_total.load(Relaxed),
            cluster_signals_in_total: self.cluster_signals_in_total.load(Relaxed),
            cluster_dropped_total: self.cluster_dropped_total.load(Relaxed),
            cluster_malformed_total: self.cluster_malformed_total.load(Relaxed),
            rejections: ErrorCode::ALL
                .iter()
                .zip(&self.rejections)
                .map(|(code, n)| (*code, n.load(Relaxed)))
                .collect(),
        }
    }
}

impl MetricsSnapshot {
    /// The Prometheus text exposition format (version 0.0.4).
    pub(crate) fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "# HELP lanewire_signaling_{name} {help}\n# TYPE lanewire_signaling_{name} {kind}\n\
                 lanewire_signaling_{name} {value}\n"
            );
        };
        metric("clients", "gauge", "WebSocket clients connected now.", self.clients);
        metric("registered", "gauge", "Identities registered now.", self.registered);
        metric(
            "connections_total",
            "counter",
            "WebSocket sessions accepted.",
            self.connections_total,
        );
        metric(
            "registrations_total",
            "counter",
            "Successful registrations.",
            self.registrations_total,
        );
        metric(
            "replacements_total",
            "counter",
            "Registrations that replaced a stale connection.",
            self.replacements_total,
        );
        metric(
            "messages_received_total",
            "counter",
            "Frames received from clients.",
            self.messages_received_total,
        );
        metric(
            "messages_relayed_total",
            "counter",
            "Signals forwarded to their recipient.",
            self.messages_relayed_total,
        );
        metric(
            "http_requests_total",
            "counter",
            "Plain HTTP responses sent.",
            self.http_requests_total,
        );
        metric(
            "ip_limit_rejections_total",
            "counter",
            "Connections refused at accept by the per-IP cap.",
            self.ip_limit_rejections_total,
        );
        metric("redis_connected", "gauge", "1 while connected to Redis.", self.redis_connected);
        metric(
            "redis_connects_total",
            "counter",
            "Successful (re)connections to Redis.",
            self.redis_connects_total,
        );
        metric(
            "redis_errors_total",
            "counter",
            "Failed Redis calls and connection attempts.",
            self.redis_errors_total,
        );
        metric(
            "cluster_signals_out_total",
            "counter",
            "Signals published to another instance.",
            self.cluster_signals_out_total,
        );
        metric(
            "cluster_signals_in_total",
            "counter",
            "Signals received from another instance.",
            self.cluster_signals_in_total,
        );
        metric(
            "cluster_dropped_total",
            "counter",
            "Signals from another instance whose recipient left or was busy.",
            self.cluster_dropped_total,
        );
        metric(
            "cluster_malformed_total",
            "counter",
            "Messages from Redis that did not parse.",
            self.cluster_malformed_total,
        );
        out.push_str(
            "# HELP lanewire_signaling_rejections_total Refusals by error code.\n\
             # TYPE lanewire_signaling_rejections_total counter\n",
        );
        for (code, n) in &self.rejections {
            let _ = writeln!(out, "lanewire_signaling_rejections_total{{kind=\"{code}\"}} {n}");
        }
        out
    }
}
