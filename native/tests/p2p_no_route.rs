//! When ICE cannot find a route, the connect fails fast and cleanly with
//! `MISC_P2P_NAT_FIREWALL` and a debug text that says why: relay-only without a TURN server,
//! ICE disabled, and no candidate the candidate policy lets us share.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConfigKey, ConnectionState, EndReason};
use p2p_common::*;

fn fails_with(config: Config, expect: &str) {
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(0, Config::new()).unwrap();
    let t0 = Instant::now();
    let c = alice.connect_p2p("str:bob", 0, config).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    assert_eq!(info.state, ConnectionState::ProblemDetectedLocally);
    assert_eq!(info.end_reason, EndReason::MISC_P2P_NAT_FIREWALL, "{}", info.end_debug);
    assert!(info.end_debug.contains(expect), "{:?} does not say {expect:?}", info.end_debug);
    assert!(t0.elapsed() < Duration::from_secs(2), "fails fast: {:?}", t0.elapsed());
    // The peer was told to give up: it never shows a connection.
    std::thread::sleep(Duration::from_millis(300));
    assert!(bob.events().all(|e| !e.is_incoming()));
}

#[test]
fn relay_only_without_turn_server() {
    let mut c = Config::new();
    c.set_i32(ConfigKey::P2PTransportIceEnable, 1).unwrap();
    fails_with(c, "no TURN server configured");
}

#[test]
fn ice_disabled() {
    let mut c = Config::new();
    c.set_i32(ConfigKey::P2PTransportIceEnable, 0).unwrap();
    fails_with(c, "ICE is disabled");
}

#[test]
fn no_candidate_allowed_by_policy() {
    // Public candidates only, but on loopback every candidate is a private host candidate.
    let mut c = Config::new();
    c.set_i32(ConfigKey::P2PTransportIceEnable, 4).unwrap();
    fails_with(c, "no usable ICE candidate");
}
