//! The core's random-message stress test over a WebRTC data channel between two native
//! peers that found each other through the real signaling server, with the link conditioner
//! adding 5 % loss, 20 ms lag and 2 % reordering on top: both sides send a random mix of
//! reliable (20 B to 10 KB, some up to 512 KiB) and unreliable (20 B to 2 KB) messages in
//! busy phases separated by quiet ones. Every reliable message arrives exactly once, in order,
//! byte-identical; every unreliable one that arrives is intact; the connection never drops;
//! queues drain in the quiet phases. The message format is the core stress test's
//! (`tests/common`).

mod common;
mod p2p_common;
mod stress_driver;

use std::time::{Duration, Instant};

use lanewire::{Config, Sockets};
use p2p_common::{SignalingServer, connect_p2p, sig_config};
use stress_driver::{Rng, Stress, impaired_global};

#[test]
fn random_messages_over_the_data_channel() {
    let started = Instant::now();
    let server = SignalingServer::start();
    let url = server.url();
    let alice = Sockets::with_config(impaired_global(5.0, 20)).unwrap();
    alice.connect_signaling(sig_config(&url, "str:alice")).unwrap();
    let bob = Sockets::with_config(impaired_global(5.0, 20)).unwrap();
    bob.connect_signaling(sig_config(&url, "str:bob")).unwrap();
    bob.listen_p2p(0, Config::new()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 0, Config::new());
    alice.events().for_each(drop);
    bob.events().for_each(drop);
    let mut st = Stress {
        ends: [(alice.clone(), c), (bob.clone(), s)],
        sides: Default::default(),
        rng: Rng::seeded(0x5eed_1234_abcd_0002),
    };
    for _ in 0..3 {
        st.phase(Duration::from_secs(3), Duration::from_secs(60));
    }
    let q = alice.quick_status(c).unwrap();
    let stats = (alice.p2p_stats(), bob.p2p_stats());
    println!(
        "{:?}: {}; ping {} ms, quality {:.3}/{:.3}; transport {:?}",
        started.elapsed(),
        st.summary(["alice", "bob"]),
        q.ping_ms,
        q.quality_local,
        q.quality_remote,
        stats,
    );
    st.assert_delivered();
    assert!((30..150).contains(&q.ping_ms), "ping {} ms with 20 ms lag each way", q.ping_ms);
}
