//! The random-message stress test: both sides send a random mix of reliable (20 B to 10 KB,
//! and some up to 512 KiB) and unreliable (20 B to 2 KB) messages in busy phases separated by
//! quiet phases, over a grid of impaired links. Every reliable message arrives exactly once, in
//! order, byte-identical; every unreliable message that arrives is intact; the connection
//! never drops; queues drain in the quiet phases.

mod common;

use core::time::Duration;

use common::Stress;
use lanewire_core::link::{BurstLoss, LinkConfig};

fn run(seed: u64, link: LinkConfig, rate: i32, phases: usize) -> Stress {
    let mut s = Stress::new(seed, link, rate);
    for _ in 0..phases {
        s.phase(Duration::from_secs(2), Duration::from_secs(60));
    }
    let (now, client, cc) = (s.pair.world.now, s.pair.client, s.pair.client_conn);
    let q = s.pair.world.node(client).quick_status(now, cc).unwrap();
    println!(
        "seed {seed}: {:?} virtual, client got {} reliable / {} unreliable ({} B), server got {} / {} ({} B); sent {}/{} and {}/{}; ping {} ms, quality {:.3}/{:.3}",
        s.pair.world.now,
        s.sides[0].recv_reliable,
        s.sides[0].recv_unreliable,
        s.sides[0].bytes_received,
        s.sides[1].recv_reliable,
        s.sides[1].recv_unreliable,
        s.sides[1].bytes_received,
        s.sides[0].sent_reliable,
        s.sides[0].sent_unreliable,
        s.sides[1].sent_reliable,
        s.sides[1].sent_unreliable,
        q.ping_ms,
        q.quality_local,
        q.quality_remote,
    );
    assert!(
        s.sides[0].recv_reliable > 50 && s.sides[1].recv_reliable > 50,
        "too little traffic: {:?}",
        s.sides
    );
    s
}

fn lag(ms: u64) -> LinkConfig {
    LinkConfig { latency: Duration::from_millis(ms), ..LinkConfig::ideal() }
}

both! {
    fn no_impairment() {
        let s = run(1, LinkConfig::ideal(), 2_000_000, 2);
        assert!(s.sides[0].recv_unreliable == s.sides[1].sent_unreliable, "unreliable lost on a perfect link");
    }
}

both! {
    fn loss_10_lag_50_reorder_2() {
        let link = LinkConfig { loss: 0.10, reorder: 0.02, reorder_delay: Duration::from_millis(50), ..lag(50) };
        run(2, link, 1_000_000, 2);
    }
}

both! {
    fn loss_20_lag_100_reorder_4() {
        let link = LinkConfig { loss: 0.20, reorder: 0.04, reorder_delay: Duration::from_millis(50), ..lag(100) };
        run(3, link, 500_000, 2);
    }
}

both! {
    fn reorder_30_without_loss() {
        let link = LinkConfig { reorder: 0.30, reorder_delay: Duration::from_millis(40), ..lag(50) };
        run(4, link, 2_000_000, 2);
    }
}

both! {
    fn duplication_5() {
        let link = LinkConfig { duplicate: 0.05, duplicate_delay_max: Duration::from_millis(10), ..lag(10) };
        run(5, link, 1_000_000, 2);
    }
}

both! {
    fn bursty_loss() {
        let link = LinkConfig { burst_loss: Some(BurstLoss::gilbert(0.05, 4.0)), ..lag(20) };
        run(6, link, 1_000_000, 2);
    }
}
