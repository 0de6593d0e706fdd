//! Symmetric connect over WebRTC through the real signaling server: two peers that connect to
//! each other at the same moment get exactly one connection, which each sees as its own
//! outgoing one; a connect to a peer whose connection is already waiting returns that
//! connection; a second symmetric connect is refused. Also with lossy, duplicating signaling.

mod p2p_common;

use std::time::Duration;

use lanewire::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, ConnectionState, EndReason, HandleError,
    P2pError, SendFlags, SignalingConfig, Sockets, StatusChanged,
};
use p2p_common::*;

fn symmetric() -> Config {
    let mut c = Config::new();
    c.set(ConfigKey::SymmetricConnect, ConfigValue::Int32(1)).unwrap();
    c
}

/// With lossy signaling the rendezvous may need several resends (400 ms, then doubling up to
/// 2 s), and a loaded test machine adds its own delays: a longer connect deadline.
const LOSSY_TIMEOUT_MS: i32 = 25_000;
const LOSSY_WAIT: Duration = Duration::from_secs(30);

/// Every status event queued on `s` now.
fn drain(s: &Sockets) -> Vec<StatusChanged> {
    let mut v = Vec::new();
    while let Some(ev) = s.wait_event(Duration::ZERO) {
        v.push(ev);
    }
    v
}

/// Both peers listen on `port` and connect to each other at once, each sending a reliable
/// message straight away; returns their handles once both are connected and have each
/// other's message, after checking that neither saw an incoming connection.
fn cross_connect(a: &Sockets, b: &Sockets, port: u32) -> (ConnectionHandle, ConnectionHandle) {
    cross_connect_within(a, b, port, WAIT)
}

fn cross_connect_within(
    a: &Sockets,
    b: &Sockets,
    port: u32,
    wait: Duration,
) -> (ConnectionHandle, ConnectionHandle) {
    let la = a.listen_p2p(port, symmetric()).unwrap();
    let lb = b.listen_p2p(port, symmetric()).unwrap();
    // Both offers are out before either arrives (a signaling hop takes far longer than the
    // two calls), so the attempts cross.
    let ca = a.connect_p2p("str:bob", port, symmetric()).expect("alice connects");
    let cb = b.connect_p2p("str:alice", port, symmetric()).expect("bob connects");
    a.send(ca, b"from alice", SendFlags::RELIABLE).unwrap();
    b.send(cb, b"from bob", SendFlags::RELIABLE).unwrap();
    wait_state(a, ca, ConnectionState::Connected, wait);
    wait_state(b, cb, ConnectionState::Connected, wait);
    assert_eq!(b.receive_timeout(cb, 1, wait).unwrap()[0].data(), b"from alice");
    assert_eq!(a.receive_timeout(ca, 1, wait).unwrap()[0].data(), b"from bob");
    for (side, conn) in [(a, ca), (b, cb)] {
        let events = drain(side);
        for ev in &events {
            assert_eq!(ev.conn, conn, "an event for another connection: {ev:?}");
            assert!(!ev.is_incoming(), "an incoming connection appeared: {ev:?}");
        }
        let info = side.connection_info(conn).unwrap();
        assert!(info.listen_socket.is_none());
        assert!(side.p2p_connection_info(conn).unwrap().open);
    }
    a.close_listen_socket(la).unwrap();
    b.close_listen_socket(lb).unwrap();
    (ca, cb)
}

#[test]
fn crossing_connects_make_one_connection() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    for port in 1..=3 {
        let (ca, cb) = cross_connect(&alice, &bob, port);
        // "str:alice" sorts first: her attempt is kept, Bob's connection became its server
        // side.
        let p2p = alice.p2p_connection_info(ca).unwrap();
        assert!(p2p.outgoing, "alice's own attempt carries the connection");
        assert!(!bob.p2p_connection_info(cb).unwrap().outgoing);
        // One ordinary connection: a close with a reason reaches the other side.
        alice.close(ca, EndReason(1000 + port), "round over", false).unwrap();
        let info = wait_ended(&bob, cb, WAIT);
        assert_eq!(info.state, ConnectionState::ClosedByPeer);
        assert_eq!(info.end_reason, EndReason(1000 + port));
        bob.close(cb, EndReason(0), "", false).unwrap();
        drain(&alice);
        drain(&bob);
    }
    // Whether the offers crossed in flight depends on timing (on a loaded machine Alice's
    // offer may reach Bob before he connects, and his connect then takes her connection):
    // the invariants are the ones `cross_connect` checked, and that Alice, whose identity
    // sorts first, never gives way.
    let (sa, sb) = (alice.p2p_stats(), bob.p2p_stats());
    println!("alice {sa:?}\nbob {sb:?}");
    assert_eq!(sa.symmetric_merged, 0, "alice never gives way: {sa:?}");
    assert_eq!(sb.symmetric_kept, 0, "bob never keeps his crossing attempt: {sb:?}");
}

#[test]
fn crossing_connects_survive_lossy_duplicating_signaling() {
    let server = SignalingServer::start();
    let url = server.url();
    let lossy = |identity: &str| {
        let s = Sockets::new().unwrap();
        let mut cfg: SignalingConfig = sig_config(&url, identity);
        cfg.fake_signal_loss_percent = 30;
        cfg.fake_signal_dup_percent = 50;
        s.connect_signaling(cfg).unwrap();
        s.set_global_config(ConfigKey::TimeoutInitial, ConfigValue::Int32(LOSSY_TIMEOUT_MS))
            .unwrap();
        s
    };
    let alice = lossy("str:alice");
    let bob = lossy("str:bob");
    for port in 10..=13 {
        let (ca, cb) = cross_connect_within(&alice, &bob, port, LOSSY_WAIT);
        alice.close(ca, EndReason(0), "", false).unwrap();
        wait_ended(&bob, cb, LOSSY_WAIT);
        bob.close(cb, EndReason(0), "", false).unwrap();
        drain(&alice);
        drain(&bob);
    }
}

#[test]
fn connect_returns_the_waiting_incoming_connection_and_refuses_a_second() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(4, symmetric()).unwrap();
    let ca = alice.connect_p2p("str:bob", 4, symmetric()).unwrap();
    let incoming = wait_event(&bob, WAIT, |e| e.is_incoming());
    // Bob connects instead of accepting: he gets the waiting connection, accepted.
    let cb = bob.connect_p2p("str:alice", 4, symmetric()).expect("connect");
    assert_eq!(cb, incoming.conn);
    wait_state(&alice, ca, ConnectionState::Connected, WAIT);
    wait_state(&bob, cb, ConnectionState::Connected, WAIT);
    // The reference's DuplicateRequest: it was accepted by the connect.
    assert_eq!(bob.accept(cb), Err(HandleError::InvalidState));
    // At most one symmetric connection per identity and port, from either side.
    match alice.connect_p2p("str:bob", 4, symmetric()) {
        Err(P2pError::Duplicate(c)) => assert_eq!(c, ca),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    match bob.connect_p2p("str:alice", 4, symmetric()) {
        Err(P2pError::Duplicate(c)) => assert_eq!(c, cb),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    alice.send(ca, b"one connection", SendFlags::RELIABLE).unwrap();
    assert_eq!(bob.receive_timeout(cb, 1, WAIT).unwrap()[0].data(), b"one connection");
    // A non-symmetric connect is not limited.
    let extra = alice.connect_p2p("str:bob", 4, Config::new()).expect("ordinary connect");
    let ev = wait_event(&bob, WAIT, |e| e.is_incoming());
    bob.accept(ev.conn).unwrap();
    wait_state(&alice, extra, ConnectionState::Connected, Duration::from_secs(15));
}
