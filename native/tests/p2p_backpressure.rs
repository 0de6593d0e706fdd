//! A data channel that fills up is backpressure, not loss: a burst far larger than the
//! channel's buffer (the pacer set far above what the channel carries) makes the driver pause
//! the connection until SCTP has released half of it, as a UDP driver waits for a socket to
//! become writable. Every reliable message arrives, in order, and no datagram is dropped for a
//! full buffer.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConfigKey, ConfigValue, SendFlags};
use p2p_common::*;

#[test]
fn a_full_channel_pauses_the_connection_instead_of_dropping() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    let mut fast = Config::new();
    for (key, v) in [
        (ConfigKey::SendRateMin, 16 << 20),
        (ConfigKey::SendRateMax, 16 << 20),
        (ConfigKey::SendBufferSize, 4 << 20),
        (ConfigKey::RecvBufferSize, 16 << 20),
    ] {
        fast.set(key, ConfigValue::Int32(v)).unwrap();
    }
    bob.listen_p2p(2, fast.clone()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 2, fast);

    // 1.5 MB at once: six times the 256 KiB the channel may hold.
    const N: u32 = 1500;
    for i in 0..N {
        let mut m = vec![(i % 251) as u8; 1000];
        m[..4].copy_from_slice(&i.to_le_bytes());
        alice.send(c, &m, SendFlags::RELIABLE).unwrap();
    }
    let start = Instant::now();
    let mut next = 0u32;
    while next < N {
        assert!(start.elapsed() < Duration::from_secs(45), "only {next} of {N} arrived");
        for m in bob.receive_timeout(s, 256, Duration::from_millis(200)).unwrap() {
            let d = m.data();
            assert_eq!(u32::from_le_bytes(d[..4].try_into().unwrap()), next, "in order");
            assert!(d[4..].iter().all(|&b| b == (next % 251) as u8), "intact");
            next += 1;
        }
    }
    let stats = alice.p2p_stats();
    println!("{N} messages in {:?}; {stats:?}", start.elapsed());
    assert!(stats.channel_full > 0, "the burst filled the channel: {stats:?}");
    assert_eq!(stats.dropped_buffer_full, 0, "nothing dropped for a full channel: {stats:?}");
}
