//! Relaying signals: every payload type arrives intact and stamped with the sender's identity,
//! in order; impersonation is refused; unknown peers and unregistered senders get errors.

#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::*;
use lanewire_signaling::Limits;
use lanewire_signaling::protocol::{ErrorCode, Payload};

#[tokio::test]
async fn every_payload_type_is_relayed_with_from_stamped() {
    let server = start_secure(Limits::default()).await;
    let mut alice = Client::secure(server.local_addr(), "str:alice").await;
    let mut bob = Client::secure(server.local_addr(), "str:bob").await;
    let payloads = [
        Payload::Offer { sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(), port: 7 },
        Payload::Answer { sdp: "v=0\r\n".into() },
        Payload::Candidate {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        },
        Payload::Candidate { candidate: String::new(), sdp_mid: None, sdp_mline_index: None },
        Payload::Reject { reason: "nobody listens on port 7".into() },
        Payload::Bye,
    ];
    for (i, payload) in payloads.iter().enumerate() {
        alice.send(&signal("str:bob", 42, payload.clone())).await;
        let (from, connection, got) = bob.expect_signal().await;
        assert_eq!(from, "str:alice", "payload {i}");
        assert_eq!(connection, "42");
        assert_eq!(&got, payload);
    }
    // And back.
    bob.send(&signal("str:alice", 42, Payload::Bye)).await;
    assert_eq!(alice.expect_signal().await.0, "str:bob");
    assert_eq!(server.metrics().messages_relayed_total, payloads.len() as u64 + 1);
}

#[tokio::test]
async fn relay_preserves_order_per_sender() {
    let server = start_dev(Limits::default()).await;
    let addr = server.local_addr();
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut carol = Client::dev(addr, "str:carol").await;
    let mut bob = Client::dev(addr, "str:bob").await;
    // Two senders interleave; each one's signals must arrive in its own order. 150 is within
    // the default burst of 200.
    for i in 0..150u64 {
        alice.send(&offer("str:bob", i)).await;
        carol.send(&offer("str:bob", 1000 + i)).await;
    }
    let (mut next_alice, mut next_carol) = (0u64, 1000u64);
    for _ in 0..300 {
        let (from, connection, _) = bob.expect_signal().await;
        let n: u64 = connection.parse().expect("numeric id");
        match from.as_str() {
            "str:alice" => {
                assert_eq!(n, next_alice);
                next_alice += 1;
            }
            "str:carol" => {
                assert_eq!(n, next_carol);
                next_carol += 1;
            }
            other => panic!("unexpected sender {other}"),
        }
    }
    assert_eq!((next_alice, next_carol), (150, 1150));
    bob.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn impersonation_is_refused() {
    let server = start_secure(Limits::default()).await;
    let addr = server.local_addr();
    let mut mallory = Client::secure(addr, "str:mallory").await;
    let mut bob = Client::secure(addr, "str:bob").await;
    let _alice = Client::secure(addr, "str:alice").await;

    // A `from` field is not part of a client's signal: refused, nothing forwarded.
    mallory
        .send_text(
            r#"{"type":"signal","from":"str:alice","to":"str:bob","connection":"1",
                "payload":{"type":"offer","sdp":"v=0","port":0}}"#,
        )
        .await;
    let err = mallory.expect_error(ErrorCode::Malformed).await;
    assert!(err.message.contains("from"), "{}", err.message);
    bob.expect_silence(Duration::from_millis(200)).await;

    // Server-only message types cannot be sent by a client either.
    mallory
        .send_text(
            r#"{"type":"registered","identity":"str:alice","protocol":1,"max_frame_bytes":1}"#,
        )
        .await;
    mallory.expect_error(ErrorCode::Malformed).await;

    // Whatever Mallory sends arrives as Mallory.
    mallory.send(&offer("str:bob", 2)).await;
    assert_eq!(bob.expect_signal().await.0, "str:mallory");
}

#[tokio::test]
async fn unknown_peer_is_reported_with_to_and_connection() {
    let server = start_dev(Limits::default()).await;
    let mut alice = Client::dev(server.local_addr(), "str:alice").await;
    alice.send(&offer("str:nobody", 77)).await;
    let err = alice.expect_error(ErrorCode::UnknownPeer).await;
    assert_eq!(err.to.map(String::from).as_deref(), Some("str:nobody"));
    assert_eq!(err.connection.map(String::from).as_deref(), Some("77"));

    // A peer that leaves becomes unknown again.
    let bob = Client::dev(server.local_addr(), "str:bob").await;
    bob.close().await;
    eventually("bob to unregister", || server.metrics().registered == 1).await;
    alice.send(&offer("str:bob", 78)).await;
    let err = alice.expect_error(ErrorCode::UnknownPeer).await;
    assert_eq!(err.connection.map(String::from).as_deref(), Some("78"));
    assert_eq!(server.metrics().rejections(ErrorCode::UnknownPeer), 2);
}

#[tokio::test]
async fn signals_before_register_are_refused() {
    let server = start_dev(Limits::default()).await;
    let mut bob = Client::dev(server.local_addr(), "str:bob").await;
    let mut anon = Client::connect(server.local_addr()).await;
    anon.send(&offer("str:bob", 3)).await;
    let err = anon.expect_error(ErrorCode::NotRegistered).await;
    assert_eq!(err.connection.map(String::from).as_deref(), Some("3"));
    bob.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn signal_to_self_is_delivered() {
    let server = start_dev(Limits::default()).await;
    let mut alice = Client::dev(server.local_addr(), "str:alice").await;
    alice.send(&offer("str:alice", 1)).await;
    assert_eq!(alice.expect_signal().await.0, "str:alice");
}
