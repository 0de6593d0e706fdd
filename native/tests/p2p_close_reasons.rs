//! Ends of P2P connections carry their reasons to the peer: an application close with its
//! code and debug text, a lingering close after its reliable data, an incoming connection the
//! application refuses, and a connect to a virtual port nobody listens on.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConnectionState, EndReason, SendFlags};
use p2p_common::*;

#[test]
fn application_close_reason_reaches_the_peer() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(1, Config::new()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 1, Config::new());

    // Bob sends reliable data and closes with linger: Alice gets all of it, then the close.
    for i in 0..50u32 {
        bob.send(s, &i.to_le_bytes(), SendFlags::RELIABLE).unwrap();
    }
    bob.close(s, EndReason(1234), "game over", true).unwrap();
    let ev = wait_event(&alice, WAIT, |e| e.conn == c && e.info.state.is_ended());
    assert_eq!(ev.info.state, ConnectionState::ClosedByPeer);
    assert_eq!(ev.info.end_reason, EndReason(1234));
    assert_eq!(ev.info.end_debug, "game over");
    let got = alice.receive(c, 100).unwrap();
    let numbers: Vec<u32> =
        got.iter().map(|m| u32::from_le_bytes(m.data().try_into().unwrap())).collect();
    assert_eq!(numbers, (0..50).collect::<Vec<_>>(), "linger delivered everything first");
    alice.close(c, EndReason::APP_GENERIC, "", false).unwrap();

    // The peer connections are freed once both sides closed (FIN_WAIT plus a margin).
    let deadline = Instant::now() + Duration::from_secs(10);
    while (alice.p2p_stats().peers_freed, bob.p2p_stats().peers_freed) != (1, 1) {
        assert!(Instant::now() < deadline, "{:?} / {:?}", alice.p2p_stats(), bob.p2p_stats());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn refused_incoming_connection() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(1, Config::new()).unwrap();
    let c = alice.connect_p2p("str:bob", 1, Config::new()).unwrap();
    let incoming = wait_event(&bob, WAIT, |e| e.is_incoming());
    bob.close(incoming.conn, EndReason(1500), "lobby full", false).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    assert_eq!(info.state, ConnectionState::ClosedByPeer);
    assert_eq!(info.end_reason, EndReason(1500));
    assert_eq!(info.end_debug, "lobby full");
}

#[test]
fn nobody_listens_on_the_port() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(1, Config::new()).unwrap();
    let t0 = Instant::now();
    let c = alice.connect_p2p("str:bob", 9, Config::new()).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    assert_eq!(info.state, ConnectionState::ProblemDetectedLocally);
    assert_eq!(info.end_reason, EndReason::MISC_P2P_RENDEZVOUS);
    assert!(info.end_debug.contains("nobody listens on virtual port 9"), "{}", info.end_debug);
    assert!(t0.elapsed() < Duration::from_secs(2), "a refusal fails fast: {:?}", t0.elapsed());
    assert!(bob.events().all(|e| !e.is_incoming()), "bob never saw a connection");
    // Sends fail as on any ended connection; the handle stays valid until closed.
    assert!(alice.send(c, b"x", SendFlags::RELIABLE).is_err());
    alice.close(c, EndReason::APP_GENERIC, "", false).unwrap();
    assert!(alice.connection_info(c).is_none());
}

#[test]
fn closed_listen_socket_refuses() {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    let l = bob.listen_p2p(3, Config::new()).unwrap();
    assert!(matches!(
        bob.listen_p2p(3, Config::new()),
        Err(lanewire::P2pError::AlreadyListening(3))
    ));
    bob.close_listen_socket(l).unwrap();
    let c = alice.connect_p2p("str:bob", 3, Config::new()).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    assert_eq!(info.end_reason, EndReason::MISC_P2P_RENDEZVOUS);
    assert!(info.end_debug.contains("nobody listens"), "{}", info.end_debug);
}
