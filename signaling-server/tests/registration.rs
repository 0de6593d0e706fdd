//! Registration: tokens (valid, expired, forged, missing, for someone else), protocol version,
//! the registration timeout, dev-insecure mode, and stale registrations being replaced.

#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::*;
use lanewire_signaling::protocol::{ClientMessage, ErrorCode, Payload, ServerMessage};
use lanewire_signaling::token;
use lanewire_signaling::{Auth, Config, Limits, Server, TurnConfig};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn valid_token_registers() {
    let server = start_secure(Limits::default()).await;
    let mut alice = Client::connect(server.local_addr()).await;
    alice.send(&register_msg("str:alice", Some(token_for("str:alice")))).await;
    match alice.recv().await {
        ServerMessage::Registered { identity, protocol, max_frame_bytes, ice_servers } => {
            assert_eq!(identity.as_str(), "str:alice");
            assert_eq!(protocol, 1);
            assert_eq!(max_frame_bytes, 64 * 1024);
            assert!(ice_servers.is_empty(), "no TURN secret, no minted servers");
        }
        other => panic!("{other:?}"),
    }
    let m = server.metrics();
    assert_eq!((m.clients, m.registered, m.registrations_total), (1, 1, 1));
}

#[tokio::test]
async fn registered_carries_minted_turn_credentials() {
    let turn_secret = b"turn-secret-0123456789";
    let config = Config {
        turn: Some(TurnConfig {
            secret: turn_secret.to_vec(),
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into(), "turns:t.example:5349".into()],
            ttl: Duration::from_secs(600),
        }),
        ..Config::new("127.0.0.1:0".parse().expect("addr"), Auth::Secret(SECRET.to_vec()))
    };
    let server = Server::bind(config).await.expect("server starts");
    let mut alice = Client::connect(server.local_addr()).await;
    alice.send(&register_msg("str:alice", Some(token_for("str:alice")))).await;
    let before = unix_now();
    let ServerMessage::Registered { ice_servers, .. } = alice.recv().await else {
        panic!("expected registered");
    };
    assert_eq!(ice_servers.len(), 1);
    let server_entry = &ice_servers[0];
    assert_eq!(server_entry.urls, ["turn:127.0.0.1:3478?transport=udp", "turns:t.example:5349"]);
    let (expiry, identity) = server_entry.username.split_once(':').expect("expiry:identity");
    assert_eq!(identity, "str:alice");
    let expiry: u64 = expiry.parse().expect("unix time");
    assert!((before + 599..=before + 602).contains(&expiry), "{expiry} vs {before}");
    assert_eq!(
        server_entry.credential,
        lanewire_signaling::turn::credential(turn_secret, &server_entry.username)
    );
}

#[tokio::test]
async fn expired_token_is_refused_and_a_fresh_one_then_works() {
    let server = start_secure(Limits::default()).await;
    let mut alice = Client::connect(server.local_addr()).await;
    let expired = token::issue(SECRET, &id("str:alice"), unix_now() - 10);
    alice.send(&register_msg("str:alice", Some(expired))).await;
    let err = alice.expect_error(ErrorCode::TokenExpired).await;
    assert!(err.message.contains("expired"), "{}", err.message);

    // Not terminal: the client may retry with a fresh token on the same connection.
    alice.send(&register_msg("str:alice", Some(token_for("str:alice")))).await;
    alice.expect_registered("str:alice").await;
    assert_eq!(server.metrics().rejections(ErrorCode::TokenExpired), 1);
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let server = start_secure(Limits::default()).await;
    let mut mallory = Client::connect(server.local_addr()).await;
    let genuine = token_for("str:alice");
    let forged = [
        // Signed with another secret.
        token::issue(b"not-the-server-secret-at-all", &id("str:alice"), unix_now() + 3600),
        // A genuine token with its expiry pushed out.
        {
            let parts: Vec<&str> = genuine.split('.').collect();
            format!("{}.{}.{}.{}", parts[0], unix_now() + 999_999, parts[2], parts[3])
        },
        // A genuine token with the last MAC character changed.
        {
            let mut t = genuine.clone();
            let last = t.pop().expect("non-empty");
            t.push(if last == 'A' { 'B' } else { 'A' });
            t
        },
        "not a token".into(),
        String::new(),
    ];
    for token in forged {
        mallory.send(&register_msg("str:alice", Some(token.clone()))).await;
        let err = mallory.expect_error(ErrorCode::BadToken).await;
        assert!(!err.message.is_empty(), "{token}");
    }
    // No token at all.
    mallory.send(&register_msg("str:alice", None)).await;
    mallory.expect_error(ErrorCode::BadToken).await;
    assert_eq!(server.metrics().registered, 0);
}

#[tokio::test]
async fn token_for_another_identity_is_refused() {
    let server = start_secure(Limits::default()).await;
    let mut mallory = Client::connect(server.local_addr()).await;
    // Mallory's own, genuine token cannot register Alice.
    mallory.send(&register_msg("str:alice", Some(token_for("str:mallory")))).await;
    let err = mallory.expect_error(ErrorCode::BadToken).await;
    assert!(err.message.contains("another identity"), "{}", err.message);
}

#[tokio::test]
async fn second_register_on_one_connection_is_refused() {
    let server = start_secure(Limits::default()).await;
    let mut alice = Client::secure(server.local_addr(), "str:alice").await;
    let mut bob = Client::secure(server.local_addr(), "str:bob").await;
    // Even with a valid token for Bob, Alice's connection stays Alice.
    alice.send(&register_msg("str:bob", Some(token_for("str:bob")))).await;
    alice.expect_error(ErrorCode::AlreadyRegistered).await;
    alice.send(&offer("str:bob", 1)).await;
    let (from, _, _) = bob.expect_signal().await;
    assert_eq!(from, "str:alice");
}

#[tokio::test]
async fn unsupported_protocol_is_refused_with_the_server_version() {
    let server = start_dev(Limits::default()).await;
    let mut c = Client::connect(server.local_addr()).await;
    c.send(&ClientMessage::Register { protocol: 99, identity: id("str:a"), token: None }).await;
    let err = c.expect_error(ErrorCode::UnsupportedProtocol).await;
    assert_eq!(err.protocol, Some(1));
}

#[tokio::test]
async fn registration_timeout_closes_silent_clients() {
    let limits = Limits { registration_timeout: Duration::from_millis(200), ..Limits::default() };
    let server = start_dev(limits).await;
    let mut idle = Client::connect(server.local_addr()).await;
    let started = tokio::time::Instant::now();
    idle.expect_error(ErrorCode::RegistrationTimeout).await;
    let close = idle.expect_closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(started.elapsed() >= Duration::from_millis(150));
    eventually("the slot to be freed", || server.metrics().clients == 0).await;

    // A client that registers in time is not affected by the timer.
    let mut alice = Client::dev(server.local_addr(), "str:alice").await;
    alice.expect_silence(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn dev_insecure_accepts_any_identity_without_token() {
    let server = start_dev(Limits::default()).await;
    let mut a = Client::dev(server.local_addr(), "str:anyone").await;
    let mut b = Client::connect(server.local_addr()).await;
    // A token, even garbage, is ignored.
    b.send(&register_msg("steamid:7656", Some("garbage".into()))).await;
    b.expect_registered("steamid:7656").await;
    b.send(&signal("str:anyone", 1, Payload::Bye)).await;
    assert_eq!(a.expect_signal().await.0, "steamid:7656");
}

#[tokio::test]
async fn stale_registration_is_replaced() {
    let server = start_secure(Limits::default()).await;
    let addr = server.local_addr();
    let mut old = Client::secure(addr, "str:alice").await;
    let mut bob = Client::secure(addr, "str:bob").await;

    // Alice reconnects (say, after a network change) while the old socket lingers.
    let mut new = Client::secure(addr, "str:alice").await;
    match old.recv().await {
        ServerMessage::Replaced { identity } => assert_eq!(identity.as_str(), "str:alice"),
        other => panic!("expected replaced, got {other:?}"),
    }
    let close = old.expect_closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Normal);

    // Signals to Alice reach the new connection, also after the old one is gone.
    eventually("the stale client to go", || server.metrics().clients == 2).await;
    bob.send(&offer("str:alice", 5)).await;
    let (from, connection, _) = new.expect_signal().await;
    assert_eq!((from.as_str(), connection.as_str()), ("str:bob", "5"));
    let m = server.metrics();
    assert_eq!((m.registered, m.replacements_total), (2, 1));
}
