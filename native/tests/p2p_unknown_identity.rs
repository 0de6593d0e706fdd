//! P2P connects that cannot succeed fail cleanly, within `TimeoutInitial`, with a reason
//! that says why: an identity nobody registered, a signaling server that went away, and
//! calls that are wrong from the start.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConfigKey, ConnectionState, EndReason, P2pError, SignalingConfig, Sockets};
use p2p_common::*;

#[test]
fn unknown_identity_fails_fast() {
    let server = SignalingServer::start();
    let alice = peer(&server.url(), "str:alice");
    let t0 = Instant::now();
    let c = alice.connect_p2p("str:nobody", 0, Config::new()).unwrap();
    let ev = wait_event(&alice, WAIT, |e| e.conn == c && e.info.state.is_ended());
    assert_eq!(ev.info.state, ConnectionState::ProblemDetectedLocally);
    assert_eq!(ev.info.end_reason, EndReason::MISC_P2P_RENDEZVOUS);
    assert!(ev.info.end_debug.contains("unknown_peer"), "{}", ev.info.end_debug);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the server says so at once: {:?}",
        t0.elapsed()
    );
    alice.close(c, EndReason::APP_GENERIC, "", false).unwrap();
    let deadline = Instant::now() + WAIT;
    while alice.p2p_stats().peers_freed != 1 {
        assert!(Instant::now() < deadline, "{:?}", alice.p2p_stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn signaling_server_gone_fails_within_timeout_initial() {
    let mut server = SignalingServer::start();
    let alice = peer(&server.url(), "str:alice");
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alice.is_signaling_connected() {
        assert!(Instant::now() < deadline, "the client notices the server is gone");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut config = Config::new();
    config.set_i32(ConfigKey::TimeoutInitial, 3000).unwrap();
    let t0 = Instant::now();
    let c = alice.connect_p2p("str:bob", 0, config).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    let took = t0.elapsed();
    assert_eq!(info.state, ConnectionState::ProblemDetectedLocally);
    assert_eq!(info.end_reason, EndReason::MISC_P2P_RENDEZVOUS);
    assert!(info.end_debug.contains("Signaling server unreachable"), "{}", info.end_debug);
    assert!(took <= Duration::from_millis(3000), "within TimeoutInitial: {took:?}");
    assert!(took >= Duration::from_millis(2000), "not before the deadline: {took:?}");
}

#[test]
fn calls_that_cannot_work() {
    let s = Sockets::new().unwrap();
    assert!(matches!(s.connect_p2p("str:bob", 0, Config::new()), Err(P2pError::NoSignaling)));
    let r = s.connect_signaling(SignalingConfig::new("ws://127.0.0.1:1/ws", "alice"));
    assert!(matches!(r, Err(P2pError::InvalidIdentity(_))), "{r:?}");
    // Nothing listens on port 1: unreachable within the registration timeout.
    let mut cfg = SignalingConfig::new("ws://127.0.0.1:1/ws", "str:alice");
    cfg.timeout = Duration::from_millis(500);
    let t0 = Instant::now();
    let r = s.connect_signaling(cfg);
    assert!(matches!(r, Err(P2pError::Unreachable(_))), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(!s.is_signaling_connected());

    let server = SignalingServer::start();
    s.connect_signaling(sig_config(&server.url(), "str:alice")).expect("a later attempt works");
    assert!(matches!(
        s.connect_signaling(sig_config(&server.url(), "str:alice")),
        Err(P2pError::AlreadyConnected)
    ));
    assert!(matches!(s.connect_p2p("str:alice", 0, Config::new()), Err(P2pError::OwnIdentity)));
    assert!(matches!(s.connect_p2p("bob", 0, Config::new()), Err(P2pError::InvalidIdentity(_))));
    assert!(matches!(
        s.connect_p2p("str:bob", u32::MAX, Config::new()),
        Err(P2pError::InvalidPort(_))
    ));
    let mut global = Config::new();
    global.set_i32(ConfigKey::FakePacketLagSend, 5).unwrap();
    assert!(matches!(s.connect_p2p("str:bob", 0, global), Err(P2pError::Config(_))));
}
