//! Limits: oversize frames, floods, too many clients, idle clients and slow readers each get a
//! clear error frame, and the other clients keep working.

#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::*;
use lanewire_signaling::Limits;
use lanewire_signaling::protocol::{
    ClientMessage, ConnectionId, ErrorCode, Payload, ServerMessage,
};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// An offer from the test to `to` whose JSON is exactly `len` bytes.
fn offer_of_len(to: &str, len: usize) -> String {
    let base = ClientMessage::Signal {
        to: id(to),
        connection: ConnectionId::from(1),
        payload: Payload::Offer { sdp: String::new(), port: 0 },
    }
    .to_json();
    let padded = ClientMessage::Signal {
        to: id(to),
        connection: ConnectionId::from(1),
        payload: Payload::Offer { sdp: "x".repeat(len - base.len()), port: 0 },
    }
    .to_json();
    assert_eq!(padded.len(), len);
    padded
}

#[tokio::test]
async fn oversize_frame_gets_an_error_and_a_close_and_others_keep_working() {
    let limits = Limits { max_frame_bytes: 4096, ..Limits::default() };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    let mut bob = Client::dev(addr, "str:bob").await;
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut big = Client::dev(addr, "str:big").await;

    // Exactly at the limit is fine.
    big.send_text(&offer_of_len("str:bob", 4096)).await;
    assert_eq!(bob.expect_signal().await.0, "str:big");

    // One byte over is not.
    big.send_text(&offer_of_len("str:bob", 4097)).await;
    let err = big.expect_error(ErrorCode::FrameTooLarge).await;
    assert!(err.message.contains("4096"), "{}", err.message);
    let close = big.expect_closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Size);
    bob.expect_silence(Duration::from_millis(100)).await;

    alice.send(&offer("str:bob", 2)).await;
    assert_eq!(bob.expect_signal().await.0, "str:alice");
    assert_eq!(server.metrics().rejections(ErrorCode::FrameTooLarge), 1);
}

#[tokio::test]
async fn flood_is_rate_limited_and_others_keep_working() {
    let limits = Limits { rate_per_sec: 10, rate_burst: 20, ..Limits::default() };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    let mut bob = Client::dev(addr, "str:bob").await;
    let mut carol = Client::dev(addr, "str:carol").await;
    // The register message took one token: 19 left in the burst.
    let mut flooder = Client::dev(addr, "str:flooder").await;

    for i in 0..200 {
        flooder.send(&offer("str:bob", i)).await;
    }
    // One error frame for the whole flood, not one per dropped message.
    let err = flooder.expect_error(ErrorCode::RateLimited).await;
    let retry = err.retry_after_ms.expect("retry_after_ms");
    assert!((1..=100).contains(&retry), "retry after {retry} ms");
    flooder.expect_silence(Duration::from_millis(200)).await;

    // Bob got the burst, in order, and then nothing: the rest were dropped.
    let mut relayed = 0u64;
    while let Some(Next::Msg(msg)) = bob.next_within(Duration::from_millis(300)).await {
        match msg {
            ServerMessage::Signal { connection, .. } => {
                assert_eq!(connection.as_str(), relayed.to_string());
                relayed += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    // 19 from the burst, plus the few refilled (10/s) while the flood was being read.
    assert!((19..=30).contains(&relayed), "relayed {relayed}");
    eventually("every flood message to be relayed or dropped", || {
        relayed + server.metrics().rejections(ErrorCode::RateLimited) == 200
    })
    .await;

    // Others are unaffected, and the flooder recovers once it slows down.
    carol.send(&offer("str:bob", 500)).await;
    assert_eq!(bob.expect_signal().await.0, "str:carol");
    tokio::time::sleep(Duration::from_millis(250)).await;
    flooder.send(&offer("str:bob", 501)).await;
    assert_eq!(bob.expect_signal().await.0, "str:flooder");
}

#[tokio::test]
async fn too_many_clients_get_server_full_and_others_keep_working() {
    let limits = Limits { max_clients: 2, ..Limits::default() };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut bob = Client::dev(addr, "str:bob").await;

    let mut third = Client::connect(addr).await;
    third.expect_error(ErrorCode::ServerFull).await;
    let close = third.expect_closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Again);

    alice.send(&offer("str:bob", 1)).await;
    assert_eq!(bob.expect_signal().await.0, "str:alice");

    // A freed slot can be taken again.
    alice.close().await;
    eventually("alice's slot to be freed", || server.metrics().clients == 1).await;
    let mut carol = Client::dev(addr, "str:carol").await;
    carol.send(&offer("str:bob", 2)).await;
    assert_eq!(bob.expect_signal().await.0, "str:carol");
    assert_eq!(server.metrics().rejections(ErrorCode::ServerFull), 1);
}

#[tokio::test]
async fn idle_clients_time_out_and_live_ones_stay() {
    let limits = Limits {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..Limits::default()
    };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    let mut live = Client::dev(addr, "str:live").await;
    let mut idle = Client::dev(addr, "str:idle").await;

    // `live` keeps reading, so its client answers the pings; `idle` does not read at all.
    live.expect_silence(Duration::from_millis(900)).await;

    idle.expect_error(ErrorCode::IdleTimeout).await;
    let close = idle.expect_closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Away);

    live.send(&offer("str:live", 1)).await;
    assert_eq!(live.expect_signal().await.0, "str:live");
}

#[tokio::test]
async fn slow_reader_makes_senders_get_peer_busy_not_unbounded_memory() {
    let limits = Limits {
        max_frame_bytes: 8 * 1024,
        max_queued_bytes: 16 * 1024,
        rate_per_sec: 100_000,
        rate_burst: 100_000,
        ..Limits::default()
    };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    // A recipient with a tiny receive window that never reads.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let tcp =
        tokio::time::timeout(WAIT, socket.connect(addr)).await.expect("in time").expect("connect");
    let mut slow = Client::handshake(addr, tcp).await;
    slow.send(&register_msg("str:slow", None)).await;
    slow.expect_registered("str:slow").await;

    let mut sender = Client::dev(addr, "str:sender").await;
    let sdp = "x".repeat(4000);
    let mut busy = None;
    // Kernel buffers hold some hundreds of KiB; 2000 x 4 KB is far more than they and the
    // 16 KiB queue can take.
    for i in 0..2000u64 {
        let payload = Payload::Offer { sdp: sdp.clone(), port: 0 };
        sender.send(&signal("str:slow", i, payload)).await;
        if let Some(Next::Msg(ServerMessage::Error(err))) =
            sender.next_within(Duration::from_millis(1)).await
        {
            busy = Some(err);
            break;
        }
    }
    let err = match busy {
        Some(err) => err,
        None => sender.expect_error(ErrorCode::PeerBusy).await,
    };
    assert_eq!(err.code, ErrorCode::PeerBusy);
    assert_eq!(err.to.map(String::from).as_deref(), Some("str:slow"));

    // The sender and everyone else still work.
    let mut bob = Client::dev(addr, "str:bob").await;
    sender.send(&offer("str:bob", 1)).await;
    assert_eq!(bob.expect_signal().await.0, "str:sender");
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_get_429_at_accept() {
    let limits = Limits { max_connections_per_ip: 3, cap_loopback: true, ..Limits::default() };
    let server = start_dev(limits).await;
    let addr = server.local_addr();
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut bob = Client::dev(addr, "str:bob").await;
    let idle = Client::connect(addr).await;

    // The fourth connection from 127.0.0.1, WebSocket or plain HTTP, is refused before
    // anything is read.
    for _ in 0..2 {
        let (status, _, body) = http_get(addr, "/healthz").await;
        assert_eq!(status, 429);
        assert_eq!(body, b"too many connections from this address\n");
    }
    assert_eq!(server.metrics().ip_limit_rejections_total, 2);
    // Other addresses are counted apart (all of 127.0.0.0/8 is loopback on Linux).
    let other = TcpSocket::new_v4().expect("socket");
    other.bind("127.0.0.2:0".parse().expect("addr")).expect("bind 127.0.0.2");
    let tcp =
        tokio::time::timeout(WAIT, other.connect(addr)).await.expect("in time").expect("connect");
    let mut carol = Client::handshake(addr, tcp).await;
    carol.send(&register_msg("str:carol", None)).await;
    carol.expect_registered("str:carol").await;

    // The refused connections hurt nobody.
    alice.send(&offer("str:bob", 1)).await;
    assert_eq!(bob.expect_signal().await.0, "str:alice");
    assert_eq!(server.metrics().connections_total, 4);

    // A closed connection frees its place.
    idle.close().await;
    let mut dave = None;
    for _ in 0..50 {
        let (status, _, _) = http_get(addr, "/healthz").await;
        if status == 200 {
            dave = Some(());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dave.is_some(), "the place was not freed");
}

#[tokio::test]
async fn loopback_is_exempt_from_the_per_ip_cap_by_default() {
    let limits = Limits { max_connections_per_ip: 1, ..Limits::default() };
    let server = start_dev(limits).await;
    let _alice = Client::dev(server.local_addr(), "str:alice").await;
    let _bob = Client::dev(server.local_addr(), "str:bob").await;
    assert_eq!(http_get(server.local_addr(), "/healthz").await.0, 200);
    assert_eq!(server.metrics().ip_limit_rejections_total, 0);
}
