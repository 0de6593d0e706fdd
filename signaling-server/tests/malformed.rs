//! Malformed frames get a `malformed` error frame; the sender's session carries on and nobody
//! else notices.

#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::*;
use lanewire_signaling::Limits;
use lanewire_signaling::protocol::ErrorCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_frames_get_errors_and_the_session_survives() {
    let server = start_dev(Limits::default()).await;
    let addr = server.local_addr();
    let mut bob = Client::dev(addr, "str:bob").await;
    let mut alice = Client::dev(addr, "str:alice").await;

    let bad = [
        "",
        "not json",
        "{",
        "[1,2,3]",
        "null",
        r#"{"no_type":1}"#,
        r#"{"type":"hello"}"#,
        r#"{"type":"signal"}"#,
        r#"{"type":"signal","to":"bob","connection":"1","payload":{"type":"bye"}}"#,
        r#"{"type":"signal","to":"str:bob","connection":"","payload":{"type":"bye"}}"#,
        r#"{"type":"signal","to":"str:bob","connection":"1","payload":{"type":"teleport"}}"#,
        r#"{"type":"signal","to":"str:bob","connection":"1","payload":{"type":"offer","sdp":1}}"#,
        r#"{"type":"signal","to":"str:bob","connection":1,"payload":{"type":"bye"}}"#,
        r#"{"type":"register","protocol":4294967296,"identity":"str:x"}"#,
        r#"{"type":"register","protocol":1,"identity":"str:x\u0000"}"#,
        "\u{0}\u{1}\u{2}",
        &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
    ];
    for text in bad {
        alice.send_text(text).await;
        let err = alice.expect_error(ErrorCode::Malformed).await;
        assert!(err.message.len() <= 220, "detail not truncated: {}", err.message);
    }
    alice.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let err = alice.expect_error(ErrorCode::Malformed).await;
    assert!(err.message.contains("binary"), "{}", err.message);

    // Still registered and relaying; Bob saw none of it.
    alice.send(&offer("str:bob", 9)).await;
    let (from, connection, _) = bob.expect_signal().await;
    assert_eq!((from.as_str(), connection.as_str()), ("str:alice", "9"));
    bob.expect_silence(Duration::from_millis(100)).await;
    assert_eq!(server.metrics().rejections(ErrorCode::Malformed), bad.len() as u64 + 1);
}

#[tokio::test]
async fn malformed_frames_before_register_do_not_register() {
    let server = start_dev(Limits::default()).await;
    let mut c = Client::connect(server.local_addr()).await;
    c.send_text(r#"{"type":"register","protocol":1,"identity":"alice"}"#).await;
    c.expect_error(ErrorCode::Malformed).await;
    c.send_text(r#"{"type":"register","protocol":1,"identity":"str:alice","extra":true}"#).await;
    c.expect_error(ErrorCode::Malformed).await;
    assert_eq!(server.metrics().registered, 0);
    c.send(&register_msg("str:alice", None)).await;
    c.expect_registered("str:alice").await;
}
