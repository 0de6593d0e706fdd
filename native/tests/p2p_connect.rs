//! Two native peers find each other by identity through the real signaling server and run
//! Lanewire over a WebRTC data channel: both see one connection, messages pass both ways
//! reliably and unreliably, connection info reports DTLS instead of the core's AEAD and the
//! peer's identity, and poll groups and user data work as over UDP.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConnectionState, SendFlags};
use p2p_common::*;

#[test]
fn connect_by_identity_and_exchange_messages() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    assert!(alice.is_signaling_connected());
    let listen = bob.listen_p2p(7, Config::new()).expect("listen on virtual port 7");

    let t0 = Instant::now();
    let c = alice.connect_p2p("str:bob", 7, Config::new()).expect("connect");
    // Reliable messages sent before the connection is up wait for it.
    alice.send(c, b"early", SendFlags::RELIABLE).expect("queue before connected");
    let incoming = wait_event(&bob, WAIT, |e| e.is_incoming());
    assert_eq!(incoming.info.listen_socket, Some(listen));
    assert_eq!(incoming.info.remote_identity.as_deref(), Some("str:alice"));
    let s = incoming.conn;
    bob.accept(s).expect("accept");
    wait_state(&alice, c, ConnectionState::Connected, WAIT);
    wait_state(&bob, s, ConnectionState::Connected, WAIT);
    println!("connected in {:?}", t0.elapsed());

    for (side, conn, identity) in [(&alice, c, "str:bob"), (&bob, s, "str:alice")] {
        let info = side.connection_info(conn).expect("info");
        assert!(info.transport_encrypted, "DTLS encrypts the data channel");
        assert!(!info.encrypted, "the core skips its own AEAD on this transport");
        assert!(!info.relayed, "loopback host candidates: a direct route");
        assert_eq!(info.remote_identity.as_deref(), Some(identity));
        let p2p = side.p2p_connection_info(conn).expect("a P2P connection");
        assert_eq!(p2p.identity, identity);
        assert_eq!(p2p.virtual_port, 7);
        assert!(p2p.open && !p2p.relayed);
        let route = p2p.route.expect("route known once open");
        assert!(route.contains("127.0.0.1") && route.contains("host"), "{route}");
    }

    let m = bob.receive_timeout(s, 1, WAIT).expect("receive");
    assert_eq!(m[0].data(), b"early");
    assert!(m[0].is_reliable());

    // Both directions, both kinds, through a poll group with user data.
    let group = bob.create_poll_group();
    bob.set_poll_group(s, Some(group)).unwrap();
    bob.set_connection_user_data(s, 42).unwrap();
    for i in 0..100u32 {
        alice.send(c, &i.to_le_bytes(), SendFlags::RELIABLE).unwrap();
    }
    alice.flush(c).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 100 && Instant::now() < deadline {
        for m in bob.receive_on_poll_group_timeout(group, 100, Duration::from_millis(100)).unwrap()
        {
            assert_eq!(m.user_data, 42);
            got.push(u32::from_le_bytes(m.data().try_into().unwrap()));
        }
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>(), "reliable messages in order, exactly once");

    let mut unreliable = 0;
    for i in 0..20u32 {
        bob.send(s, &i.to_le_bytes(), SendFlags::UNRELIABLE_NO_NAGLE).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while unreliable < 20 && Instant::now() < deadline {
        unreliable += alice.receive_timeout(c, 20, Duration::from_millis(100)).unwrap().len();
    }
    assert!(unreliable >= 15, "{unreliable} of 20 unreliable messages over loopback");

    let q = alice.quick_status(c).expect("status");
    assert!(q.ping_ms >= 0 && q.ping_ms < 100, "ping {} ms on loopback", q.ping_ms);
    assert!(alice.p2p_stats().peers_created == 1 && bob.p2p_stats().peers_created == 1);
}
