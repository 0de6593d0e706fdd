//! Reordering is not loss: a packet that arrives late, after the sender already declared it
//! lost and told us to stop acking it, still delivers what it carries (its unreliable messages;
//! its reliable data when still missing). Duplicates are told by a replay window of 4,096
//! packet numbers, not by the acknowledgement floor.

mod common;

use core::time::Duration;
use std::collections::HashSet;

use common::{check_message, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConnectionState, Message, SendFlags};

/// 200-byte unreliable messages at 1 kHz for 5 s with a reliable stream beside them (so that
/// the sender's loss detection runs), through a link with `latency_ms` of one-way delay that
/// holds back `reorder` of the packets by `delay_ms`. Returns the share of unreliable messages
/// delivered.
fn delivered_share(seed: u64, reorder: f64, latency_ms: u64, delay_ms: u64) -> f64 {
    let link = LinkConfig {
        latency: Duration::from_millis(latency_ms),
        reorder,
        reorder_delay: Duration::from_millis(delay_ms),
        ..LinkConfig::ideal()
    };
    let mut p = Pair::new(seed, link, Config::new(), Config::new(), Config::new());
    assert!(p.connect(Duration::from_secs(10)));
    let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
    let start = p.world.now;
    let (mut sent, mut next, mut reliable_sent, mut reliable_got) = (0u64, start, 0u64, 0u64);
    let mut got = HashSet::new();
    p.world.run_until(Duration::from_secs(6), |w| {
        let now = w.now;
        if now < start + Duration::from_secs(5) && now >= next {
            next += Duration::from_millis(1);
            let m = make_message(false, sent, 200);
            w.node(c).send(now, cc, &m, SendFlags::UNRELIABLE_NO_NAGLE).unwrap();
            sent += 1;
            if sent % 10 == 0 {
                let r = make_message(true, reliable_sent, 3000);
                w.node(c).send(now, cc, &r, SendFlags::RELIABLE).unwrap();
                reliable_sent += 1;
            }
        }
        let mut out: Vec<Message> = Vec::new();
        w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        for m in out {
            let (reliable, counter) = check_message(&m.data);
            if reliable {
                assert_eq!(counter, reliable_got, "reliable out of order");
                reliable_got += 1;
            } else {
                assert!(got.insert(counter), "unreliable message {counter} delivered twice");
            }
        }
        false
    });
    let now = p.world.now;
    let status = p.world.node(c).detailed_status(now, cc).unwrap();
    assert_eq!(reliable_got, reliable_sent, "reliable messages missing\n{status}");
    for (n, h) in [(c, cc), (s, sc)] {
        assert_eq!(p.world.node(n).connection_info(h).unwrap().state, ConnectionState::Connected);
    }
    got.len() as f64 / sent as f64
}

both! {
    fn reordering_alone_loses_no_unreliable_message() {
        for (seed, reorder) in [(1, 0.02), (2, 0.10), (3, 0.30)] {
            let share = delivered_share(seed, reorder, 10, 15);
            println!("reorder {:.0} %: {:.2} % of unreliable messages delivered", reorder * 100.0, share * 100.0);
            assert!(share >= 0.995, "reorder {reorder}: only {:.2} % delivered", share * 100.0);
        }
    }
}

both! {
    fn packets_later_than_any_loss_threshold_still_deliver() {
        // Held back 60 ms on a 10 ms round trip: beyond the largest time threshold (twice the
        // RTT), so the sender declares them lost and stops waiting for them before they
        // arrive. The replay window, not the acknowledgement floor, says they are new.
        let share = delivered_share(4, 0.05, 5, 60);
        println!("reorder 5 % by 60 ms: {:.2} % delivered", share * 100.0);
        assert!(share >= 0.995, "only {:.2} % delivered", share * 100.0);
    }
}
