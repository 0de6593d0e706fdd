//! Key updates: at a lowered key limit, both directions move to new keys again and again under
//! loss and reordering, without a pause and without losing or duplicating anything (the stress
//! harness checks every message); and a peer that never updates is cut off at the limit
//! instead of the AEAD being used past it.

mod common;

use core::time::Duration;

use common::{Stress, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConnectionState, SendFlags};

/// The number after `label` in the detailed status.
fn status_number(status: &str, label: &str) -> u64 {
    let at = status.find(label).unwrap_or_else(|| panic!("no {label:?} in {status}"));
    status[at + label.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

both! {
    fn keys_update_under_loss_and_reordering_without_losing_anything() {
        let link = LinkConfig {
            latency: Duration::from_millis(15),
            loss: 0.05,
            reorder: 0.05,
            duplicate: 0.02,
            ..LinkConfig::ideal()
        };
        for seed in 0..8u64 {
            let mut s = Stress::new(100 + seed, link.clone(), 1_000_000);
            for (n, c) in s.conns {
                // Update every 300 packets; a key may protect 400 at most.
                s.pair.world.node(n).set_key_limits(c, 300, 400).unwrap();
            }
            for _ in 0..3 {
                s.phase(Duration::from_secs(2), Duration::from_secs(60));
            }
            let now = s.pair.world.now;
            for (n, c) in s.conns {
                let status = s.pair.world.node(n).detailed_status(now, c).unwrap();
                let updates = status_number(&status, "keys: ");
                assert!(updates >= 4, "seed {seed}: only {updates} key updates\n{status}");
            }
            assert!(s.sides[0].recv_reliable > 50 && s.sides[1].recv_reliable > 50);
        }
    }
}

both! {
    fn a_peer_that_never_updates_is_cut_off_at_the_limit() {
        let mut p = Pair::new(7, LinkConfig::ideal(), Config::new(), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        p.world.node(c).set_key_limits(cc, 300, 400).unwrap();
        p.world.node(s).set_key_limits(sc, u64::MAX, u64::MAX).unwrap();
        let mut i = 0;
        let ended = p.world.run_until(Duration::from_secs(30), |w| {
            let now = w.now;
            for (n, h) in [(s, sc), (c, cc)] {
                let _ = w.node(n).send(now, h, &make_message(true, i, 100), SendFlags::RELIABLE_NO_NAGLE);
            }
            i += 1;
            let mut out = Vec::new();
            let _ = w.node(c).receive(cc, usize::MAX, &mut out);
            let _ = w.node(s).receive(sc, usize::MAX, &mut out);
            w.node(c).connection_info(cc).is_some_and(|i| i.state == ConnectionState::ProblemDetectedLocally)
        });
        assert!(ended, "the connection went on past the key limit");
        let info = p.world.node(c).connection_info(cc).unwrap();
        assert!(info.end_debug.contains("did not update its key"), "{}", info.end_debug);
    }
}
