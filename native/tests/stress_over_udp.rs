//! The core's random-message stress test, over real UDP on 127.0.0.1 with the link
//! conditioner set to 10 % loss, 50 ms lag and 2 % reordering in each direction: both sides
//! send a random mix of reliable (20 B to 10 KB, some up to 512 KiB) and unreliable (20 B to
//! 2 KB) messages in busy phases separated by quiet ones. Every reliable message arrives
//! exactly once, in order, byte-identical; every unreliable one that arrives is intact; the
//! connection never drops; queues drain in the quiet phases.

mod common;
mod stress_driver;

use std::time::{Duration, Instant};

use stress_driver::{Stress, impaired_global};

#[test]
fn loss_10_lag_50_reorder_2_over_udp() {
    let started = Instant::now();
    let mut st = Stress::over_loopback(impaired_global(10.0, 50), 0x5eed_1234_abcd_0001);
    let (client, c) = st.ends[0].clone();
    for _ in 0..2 {
        st.phase(Duration::from_secs(2), Duration::from_secs(60));
    }
    let q = client.quick_status(c).unwrap();
    println!(
        "{:?}: {}; ping {} ms, quality {:.3}/{:.3}",
        started.elapsed(),
        st.summary(["client", "server"]),
        q.ping_ms,
        q.quality_local,
        q.quality_remote,
    );
    // About 10 % of unreliable messages are lost (more for multi-packet ones), not most.
    st.assert_delivered();
    assert!((90..200).contains(&q.ping_ms), "ping {} ms with 50 ms lag each way", q.ping_ms);
}
