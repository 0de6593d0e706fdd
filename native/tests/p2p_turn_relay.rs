//! ICE through a TURN relay: coturn on 127.0.0.1 with long-term credentials, peers set to
//! relay-only candidates (`P2PTransportIceEnable` = 1) with the server in
//! `P2PTurnServerList` and the credentials in `P2PTurnUserList` / `P2PTurnPassList`. The
//! connection works and reports the relayed route; a wrong password fails cleanly with a
//! NAT/firewall reason that names TURN.
//!
//! Needs coturn (`apt-get install -y coturn`; `cargo xtask setup` installs it): reported as
//! skipped (`LANEWIRE-SKIP:`) when it is missing, and failed when `CI=true`.

mod p2p_common;

use std::time::{Duration, Instant};

use lanewire::{Config, ConfigKey, ConfigValue, ConnectionState, EndReason, SendFlags};
use p2p_common::*;

fn relay_only(turn: &Coturn, pass: &str) -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::P2PTransportIceEnable, 1).unwrap();
    c.set(ConfigKey::P2PTurnServerList, ConfigValue::String(turn.server())).unwrap();
    c.set(ConfigKey::P2PTurnUserList, ConfigValue::String(TURN_USER.into())).unwrap();
    c.set(ConfigKey::P2PTurnPassList, ConfigValue::String(pass.into())).unwrap();
    c
}

#[test]
fn relay_only_through_coturn() {
    let Some(turn) = Coturn::start("relay_only_through_coturn") else { return };
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(5, relay_only(&turn, TURN_PASS)).unwrap();
    let t0 = Instant::now();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 5, relay_only(&turn, TURN_PASS));
    println!("connected through TURN in {:?}", t0.elapsed());
    for (side, conn) in [(&alice, c), (&bob, s)] {
        let info = side.connection_info(conn).unwrap();
        assert!(info.relayed, "the route goes through the relay: {info:?}");
        let p2p = side.p2p_connection_info(conn).unwrap();
        assert!(p2p.relayed);
        let route = p2p.route.unwrap();
        assert!(route.contains("relay"), "{route}");
        println!("route: {route}");
    }
    for i in 0..200u32 {
        alice.send(c, &i.to_le_bytes(), SendFlags::RELIABLE).unwrap();
    }
    alice.flush(c).unwrap();
    let mut got = 0;
    let deadline = Instant::now() + WAIT;
    while got < 200 && Instant::now() < deadline {
        got += bob.receive_timeout(s, 200, Duration::from_millis(100)).unwrap().len();
    }
    assert_eq!(got, 200);
    bob.send(s, b"back", SendFlags::RELIABLE_NO_NAGLE).unwrap();
    assert_eq!(alice.receive_timeout(c, 1, WAIT).unwrap()[0].data(), b"back");
    assert_eq!(alice.connection_info(c).unwrap().state, ConnectionState::Connected);
}

/// The signaling server mints the credentials (`--turn-secret`, coturn `use-auth-secret`): the
/// peers configure no TURN server at all, only relay-only ICE, and still connect through coturn.
#[test]
fn relay_with_credentials_minted_by_the_signaling_server() {
    const SECRET: &str = "turn-rest-secret-0123456789";
    let Some(turn) =
        Coturn::start_with_secret("relay_with_credentials_minted_by_the_signaling_server", SECRET)
    else {
        return;
    };
    let turn_url = format!("turn:{}", turn.server());
    let server = SignalingServer::start_with(
        "127.0.0.1:0".parse().unwrap(),
        &["--turn-secret", SECRET, "--turn-url", &turn_url, "--turn-ttl", "600"],
    );
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    let relay_only = || {
        let mut c = Config::new();
        c.set_i32(ConfigKey::P2PTransportIceEnable, 1).unwrap();
        c
    };
    bob.listen_p2p(5, relay_only()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 5, relay_only());
    for (side, conn) in [(&alice, c), (&bob, s)] {
        let p2p = side.p2p_connection_info(conn).unwrap();
        assert!(p2p.relayed, "{p2p:?}");
    }
    alice.send(c, b"through the minted relay", SendFlags::RELIABLE_NO_NAGLE).unwrap();
    assert_eq!(bob.receive_timeout(s, 1, WAIT).unwrap()[0].data(), b"through the minted relay");
}

#[test]
fn wrong_turn_password_fails_cleanly() {
    let Some(turn) = Coturn::start("wrong_turn_password_fails_cleanly") else { return };
    let server = SignalingServer::start();
    let url = server.url();
    let alice = peer(&url, "str:alice");
    let bob = peer(&url, "str:bob");
    bob.listen_p2p(5, Config::new()).unwrap();
    let mut config = relay_only(&turn, "not-the-password");
    config.set_i32(ConfigKey::TimeoutInitial, 5000).unwrap();
    let t0 = Instant::now();
    let c = alice.connect_p2p("str:bob", 5, config).unwrap();
    let info = wait_ended(&alice, c, WAIT);
    println!("failed in {:?}: {}", t0.elapsed(), info.end_debug);
    assert_eq!(info.state, ConnectionState::ProblemDetectedLocally);
    assert_eq!(info.end_reason, EndReason::MISC_P2P_NAT_FIREWALL);
    assert!(info.end_debug.to_lowercase().contains("turn"), "{}", info.end_debug);
    assert!(t0.elapsed() <= Duration::from_secs(5), "within TimeoutInitial");
    // Bob never saw a connection (the handshake never came through).
    std::thread::sleep(Duration::from_millis(200));
    assert!(bob.events().all(|e| !e.is_incoming()));
}
