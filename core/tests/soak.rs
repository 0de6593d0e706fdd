//! Long soaks: the random-message stress test over many seeds and links, including the GNS
//! soak matrix (20 % loss, 200 ms round trip, heavy reordering). Ignored by default; run with
//! `cargo xtask soak` (release build).

mod common;

use core::time::Duration;

use common::Stress;
use lanewire_core::link::{BurstLoss, LinkConfig};

fn links() -> Vec<(&'static str, LinkConfig, i32)> {
    let lag = |ms| LinkConfig { latency: Duration::from_millis(ms), ..LinkConfig::ideal() };
    vec![
        ("lan", LinkConfig::lan(), 4_000_000),
        ("wifi", LinkConfig::wifi(), 1_000_000),
        ("cellular", LinkConfig::cellular(), 500_000),
        ("bad", LinkConfig::bad(), 100_000),
        (
            "20% loss 100 ms 4% reorder",
            LinkConfig {
                loss: 0.2,
                reorder: 0.04,
                reorder_delay: Duration::from_millis(30),
                ..lag(100)
            },
            500_000,
        ),
        (
            "30% reorder 40 ms",
            LinkConfig { reorder: 0.3, reorder_delay: Duration::from_millis(40), ..lag(50) },
            2_000_000,
        ),
        (
            "bursty 10%",
            LinkConfig { burst_loss: Some(BurstLoss::gilbert(0.1, 8.0)), ..lag(30) },
            1_000_000,
        ),
        (
            "dup 10% jitter",
            LinkConfig {
                duplicate: 0.1,
                jitter_avg: Duration::from_millis(5),
                jitter_pct: 0.5,
                ..lag(20)
            },
            1_000_000,
        ),
    ]
}

#[test]
#[ignore = "long: run with cargo xtask soak"]
fn soak_many_seeds() {
    let seeds: u64 =
        std::env::var("LANEWIRE_SOAK_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    for (name, link, rate) in links() {
        for seed in 0..seeds {
            let mut s = Stress::new(1000 + seed, link.clone(), rate);
            for _ in 0..4 {
                s.phase(Duration::from_secs(3), Duration::from_secs(120));
            }
            println!(
                "{name:>28} seed {seed}: {} / {} reliable, {} / {} unreliable",
                s.sides[0].recv_reliable,
                s.sides[1].recv_reliable,
                s.sides[0].recv_unreliable,
                s.sides[1].recv_unreliable
            );
        }
    }
}
