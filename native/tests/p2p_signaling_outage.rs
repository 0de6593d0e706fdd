//! The signaling server is only needed to meet: killed mid-session, it leaves established
//! connections working; restarted, both peers register again by themselves and new
//! connections are made. A lossy, duplicating signaling path still yields exactly one
//! connection per connect.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConnectionState, EndReason, SendFlags, Sockets};
use p2p_common::*;

fn round_trips(
    a: &Sockets,
    ac: lanewire::ConnectionHandle,
    b: &Sockets,
    bc: lanewire::ConnectionHandle,
    n: u32,
) {
    for i in 0..n {
        a.send(ac, &i.to_le_bytes(), SendFlags::RELIABLE_NO_NAGLE).unwrap();
        let m = b.receive_timeout(bc, 1, WAIT).unwrap();
        assert_eq!(m.len(), 1, "message {i} arrived");
        b.send(bc, m[0].data(), SendFlags::RELIABLE_NO_NAGLE).unwrap();
        let m = a.receive_timeout(ac, 1, WAIT).unwrap();
        assert_eq!(m[0].data(), i.to_le_bytes());
    }
}

#[test]
fn server_killed_mid_session() {
    let mut server = SignalingServer::start();
    let addr = server.addr;
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(1, Config::new()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 1, Config::new());
    round_trips(&alice, c, &bob, s, 10);

    server.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alice.is_signaling_connected() || bob.is_signaling_connected() {
        assert!(Instant::now() < deadline, "the clients notice the server is gone");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Established connections carry on for seconds without the server.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        round_trips(&alice, c, &bob, s, 10);
        std::thread::sleep(Duration::from_millis(100));
    }
    for (side, conn) in [(&alice, c), (&bob, s)] {
        assert_eq!(side.connection_info(conn).unwrap().state, ConnectionState::Connected);
    }

    // Back on the same address: both register again (reconnect backoff is at most 5 s), and
    // a second connection is made while the first still works.
    let _server = SignalingServer::start_on(addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(alice.is_signaling_connected() && bob.is_signaling_connected()) {
        assert!(Instant::now() < deadline, "the clients register again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (c2, s2) = connect_p2p(&bob, &alice, "str:bob", 1, Config::new());
    round_trips(&alice, c2, &bob, s2, 5);
    round_trips(&alice, c, &bob, s, 5);
    assert!(alice.p2p_stats().signaling_registrations >= 2);
}

#[test]
fn lossy_duplicating_signaling_connects_exactly_once() {
    let server = SignalingServer::start();
    let url = server.url();
    let lossy = |identity: &str| {
        let mut cfg = sig_config(&url, identity);
        cfg.fake_signal_loss_percent = 30;
        cfg.fake_signal_dup_percent = 50;
        let s = Sockets::new().unwrap();
        s.connect_signaling(cfg).unwrap();
        s
    };
    let alice = lossy("str:alice");
    let bob = lossy("str:bob");
    bob.listen_p2p(1, Config::new()).unwrap();
    let mut took = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let c = alice.connect_p2p("str:bob", 1, Config::new()).unwrap();
        let s = accept_one(&bob, WAIT);
        wait_state(&alice, c, ConnectionState::Connected, WAIT);
        wait_state(&bob, s, ConnectionState::Connected, WAIT);
        took.push(t0.elapsed());
        round_trips(&alice, c, &bob, s, 3);
        conns.push((c, s));
    }
    println!("connect times with 30 % loss and 50 % duplication: {took:?}");
    // Give stray duplicates time to arrive: none may make another connection.
    std::thread::sleep(Duration::from_secs(1));
    let extra: Vec<_> = bob.events().filter(|e| e.is_incoming()).collect();
    assert!(extra.is_empty(), "a duplicate signal made another connection: {extra:?}");
    assert_eq!(bob.p2p_stats().peers_created, 5);
    for (c, s) in conns {
        alice.close(c, EndReason::APP_GENERIC, "", false).unwrap();
        bob.close(s, EndReason::APP_GENERIC, "", false).unwrap();
    }
}
