//! Soaks over real UDP on 127.0.0.1: the random-message stress driver (reliable messages
//! checked exactly once, in order, byte for byte; unreliable ones intact) for a long time per
//! link, through the link conditioner, with the default config (congestion control on). Run by
//! `cargo xtask soak` (these tests are `#[ignore]`d, so `cargo test` skips them, and are
//! counted as ignored, not passed). `LANEWIRE_SOAK_MINUTES` sets the minutes per link
//! (default 10).

mod common;
mod stress_driver;

use std::time::{Duration, Instant};

use lanewire::{Config, ConfigKey, ConnectionState};
use stress_driver::{BUFFER, Stress};

/// One impaired link of the matrix (both directions alike).
struct Link {
    loss_pct: f32,
    lag_ms: i32,
    reorder_pct: f32,
    dup_pct: f32,
}

fn global(l: &Link) -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendBufferSize, BUFFER as i32).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 100_000).unwrap();
    c.set_f32(ConfigKey::FakePacketLossSend, l.loss_pct).unwrap();
    c.set_i32(ConfigKey::FakePacketLagSend, l.lag_ms).unwrap();
    c.set_f32(ConfigKey::FakePacketReorderSend, l.reorder_pct).unwrap();
    c.set_i32(ConfigKey::FakePacketReorderTime, 15).unwrap();
    c.set_f32(ConfigKey::FakePacketDupSend, l.dup_pct).unwrap();
    c
}

fn minutes() -> f64 {
    std::env::var("LANEWIRE_SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10.0)
}

fn soak(name: &str, link: Link, seed: u64) {
    let started = Instant::now();
    let mut st = Stress::over_loopback(global(&link), seed);
    let [(client, c), (server, s)] = st.ends.clone();
    let run_for = Duration::from_secs_f64(60.0 * minutes());
    let mut phases = 0;
    // At least one phase, however short the soak was asked to be.
    while phases == 0 || started.elapsed() < run_for {
        st.phase(Duration::from_secs(5), Duration::from_secs(120));
        phases += 1;
        for (x, h) in [(&client, c), (&server, s)] {
            assert_eq!(x.connection_info(h).map(|i| i.state), Some(ConnectionState::Connected));
        }
    }
    st.assert_delivered();
    let q = client.quick_status(c).unwrap();
    println!(
        "soak {name}: {:?}, {phases} phases: {}; ping {} ms, lost {} of {} packets, {} B resent",
        started.elapsed(),
        st.summary(["client", "server"]),
        q.ping_ms,
        q.packets_lost,
        q.packets_sent,
        q.bytes_retransmitted,
    );
}

#[test]
#[ignore = "a long soak: cargo xtask soak"]
fn soak_loss_20_lag_100() {
    soak(
        "20 % loss + 100 ms",
        Link { loss_pct: 20.0, lag_ms: 100, reorder_pct: 0.0, dup_pct: 0.0 },
        1,
    );
}

#[test]
#[ignore = "a long soak: cargo xtask soak"]
fn soak_reorder_30() {
    soak("30 % reordering", Link { loss_pct: 0.0, lag_ms: 20, reorder_pct: 30.0, dup_pct: 0.0 }, 2);
}

#[test]
#[ignore = "a long soak: cargo xtask soak"]
fn soak_duplicate_5() {
    soak("5 % duplication", Link { loss_pct: 1.0, lag_ms: 20, reorder_pct: 0.0, dup_pct: 5.0 }, 3);
}
