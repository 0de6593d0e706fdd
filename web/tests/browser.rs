//! Lanewire in real Chromium: two instances in one page, connected through a real signaling
//! server (started by `cargo xtask test` in the same network namespace, on the address in
//! `LANEWIRE_TEST_SIGNALING_URL` at build time).
//!
//! One test binary, because each costs seconds of browser start-up. Every wait is bounded.
//! Run by hand (after `cargo build -p lanewire-signaling`):
//!
//! ```sh
//! cargo xtask test-browser          # or see web/README.md for the raw commands
//! ```
#![cfg(target_arch = "wasm32")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use lanewire_web::{
    Config, ConfigKey, ConnectionState, EndReason, ErrorCode, MAX_MESSAGE_SIZE, SendFlags,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn connect_exchange_and_close_with_reason() {
    let (a, b, ca, cb) = connected_pair("basic", Config::new()).await;
    let ia = a.lw.connection_info(ca).expect("info");
    let ib = b.lw.connection_info(cb).expect("info");
    assert!(ia.transport_encrypted && ib.transport_encrypted, "DTLS: {ia:?}");
    assert!(!ia.encrypted && !ib.encrypted, "the core's AEAD is skipped on WebRTC: {ia:?}");
    assert_eq!(ia.peer_identity.as_deref(), Some(b.lw.identity().as_str()));
    assert_eq!(ib.peer_identity.as_deref(), Some(a.lw.identity().as_str()));
    assert_eq!((ia.virtual_port, ib.virtual_port), (7, 7));
    assert!(ib.listen_socket.is_some() && ia.listen_socket.is_none());

    a.lw.send(ca, b"hello", SendFlags::RELIABLE).expect("send");
    a.lw.send(ca, b"datagram", SendFlags::UNRELIABLE_NO_NAGLE).expect("send");
    b.lw.send(cb, b"", SendFlags::RELIABLE).expect("empty messages are messages");
    let got = b.receive_n(cb, 2, 5000).await;
    assert_eq!(&*got[0].data, b"hello");
    assert!(got[0].reliable);
    assert_eq!(&*got[1].data, b"datagram");
    let got = a.receive_n(ca, 1, 5000).await;
    assert!(got[0].data.is_empty());

    let q = a.lw.quick_status(ca).expect("status");
    assert_eq!(q.state, Some(ConnectionState::Connected));
    assert!(b.lw.detailed_status(cb).expect("status").contains("webrtc#"));

    // Close with an application reason: the peer sees it, with the debug text.
    a.lw.close(ca, EndReason(1234), "bye bye", false).expect("close");
    assert_eq!(
        a.lw.connection_info(ca).expect_err("closed handles are invalid").code(),
        ErrorCode::InvalidHandle
    );
    wait_for("ClosedByPeer", 5000, || b.state(cb) == ConnectionState::ClosedByPeer).await;
    let ib = b.lw.connection_info(cb).expect("info");
    assert_eq!((ib.end_reason, ib.end_debug.as_str()), (EndReason(1234), "bye bye"));
    assert_eq!(
        b.lw.send(cb, b"x", SendFlags::RELIABLE).expect_err("ended").code(),
        ErrorCode::NoConnection
    );
    b.lw.close(cb, EndReason(0), "", false).expect("close the ended connection");
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn unknown_identity_and_refusals_fail_cleanly() {
    let a = Node::new("refuse-a", Config::new(), false).await;
    let b = Node::new("refuse-b", Config::new(), false).await;
    b.lw.listen_p2p(7, Config::new()).expect("listen");

    // Nobody registered under that identity: the signaling server says so at once.
    let start = now_ms();
    let c = a.lw.connect_p2p("str:nobody-here", 7, Config::new()).expect("starts");
    wait_for("unknown peer failure", 3000, || {
        a.state(c) == ConnectionState::ProblemDetectedLocally
    })
    .await;
    let took = now_ms() - start;
    let info = a.lw.connection_info(c).expect("info");
    assert_eq!(info.end_reason, EndReason::MISC_P2P_RENDEZVOUS, "{info:?}");
    assert!(info.end_debug.contains("not registered"), "{}", info.end_debug);
    assert!(took < 1000.0, "unknown peer took {took} ms to fail");
    a.lw.close(c, EndReason(0), "", false).expect("close");

    // Registered, but nobody listens on that port: the peer refuses.
    let c = a.lw.connect_p2p(&b.lw.identity(), 99, Config::new()).expect("starts");
    wait_for("refusal", 3000, || a.state(c) == ConnectionState::ProblemDetectedLocally).await;
    let info = a.lw.connection_info(c).expect("info");
    assert_eq!(info.end_reason, EndReason::MISC_P2P_RENDEZVOUS);
    assert!(info.end_debug.contains("port 99"), "{}", info.end_debug);
    a.lw.close(c, EndReason(0), "", false).expect("close");

    // The application refuses an incoming connection with a reason of its own.
    let c = a.lw.connect_p2p(&b.lw.identity(), 7, Config::new()).expect("starts");
    wait_for("incoming", 5000, || b.incoming().is_some()).await;
    let incoming = b.incoming().expect("incoming");
    b.lw.close(incoming, EndReason(1500), "go away", false).expect("reject");
    wait_for("ClosedByPeer", 5000, || a.state(c) == ConnectionState::ClosedByPeer).await;
    let info = a.lw.connection_info(c).expect("info");
    assert_eq!((info.end_reason, info.end_debug.as_str()), (EndReason(1500), "go away"));
    a.lw.close(c, EndReason(0), "", false).expect("close");

    // Bad arguments are errors with codes, not panics.
    let e = a.lw.connect_p2p("no kind", 7, Config::new()).expect_err("bad identity");
    assert_eq!(e.code(), ErrorCode::InvalidParam);
    let e = a.lw.connect_p2p(&a.lw.identity(), 7, Config::new()).expect_err("self");
    assert_eq!(e.code(), ErrorCode::InvalidParam);
    let e = b.lw.listen_p2p(7, Config::new()).expect_err("twice");
    assert_eq!(e.code(), ErrorCode::InvalidState);
    let mut global_only = Config::new();
    global_only.set_f32(ConfigKey::FakePacketLossSend, 5.0).expect("valid");
    let e = a.lw.connect_p2p(&b.lw.identity(), 7, global_only).expect_err("scope");
    assert_eq!(e.code(), ErrorCode::BadConfig);

    // Registration failures.
    let mut o = lanewire_web::Options::new("ws://127.0.0.1:9/ws", unique("x"));
    o.timeout = core::time::Duration::from_secs(3);
    let e = lanewire_web::Lanewire::connect(o).await.expect_err("nothing listens on port 9");
    assert_eq!(e.code(), ErrorCode::Signaling, "{e}");
    let o = lanewire_web::Options::new(signaling_url(), "nokind");
    let e = lanewire_web::Lanewire::connect(o).await.expect_err("bad identity");
    assert_eq!(e.code(), ErrorCode::InvalidParam);
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn reliable_messages_of_512_kib() {
    let mut config = Config::new();
    config.set_i32(ConfigKey::SendRateMin, 8_000_000).expect("valid");
    config.set_i32(ConfigKey::SendRateMax, 8_000_000).expect("valid");
    config.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).expect("valid");
    config.set_i32(ConfigKey::RecvBufferSize, 8 * 1024 * 1024).expect("valid");
    let (a, b, ca, cb) = connected_pair("big", config).await;
    let count = 4u64;
    for i in 0..count {
        a.lw.send(ca, &make_message(true, i, MAX_MESSAGE_SIZE), SendFlags::RELIABLE).expect("a");
        b.lw.send(cb, &make_message(true, i, MAX_MESSAGE_SIZE), SendFlags::RELIABLE).expect("b");
    }
    let e = a.lw.send(ca, &vec![0; MAX_MESSAGE_SIZE + 1], SendFlags::RELIABLE).expect_err("big");
    assert_eq!(e.code(), ErrorCode::MessageTooBig);
    let at_b = b.receive_n(cb, count as usize, 30_000).await;
    let at_a = a.receive_n(ca, count as usize, 30_000).await;
    for (i, (x, y)) in at_b.iter().zip(&at_a).enumerate() {
        assert_eq!(x.data.len(), MAX_MESSAGE_SIZE);
        assert_eq!(check_message(&x.data), (true, i as u64));
        assert_eq!(check_message(&y.data), (true, i as u64));
    }
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn poll_groups_lanes_and_user_data() {
    let (a, b, ca, cb) = connected_pair("groups", Config::new()).await;
    let group = b.lw.create_poll_group();
    b.lw.set_poll_group(cb, Some(group)).expect("group");
    b.lw.set_user_data(cb, 42).expect("user data");
    a.lw.configure_lanes(ca, &[0, 1], &[1, 1]).expect("lanes");
    a.lw.send_on_lane(ca, 1, b"lane one", SendFlags::RELIABLE_NO_NAGLE).expect("send");
    a.lw.send_on_lane(ca, 0, b"lane zero", SendFlags::RELIABLE_NO_NAGLE).expect("send");
    let got = Rc::new(RefCell::new(Vec::new()));
    let g2 = got.clone();
    wait_for("two messages on the group", 5000, || {
        let mut msgs = b.lw.receive_on_poll_group(group, 10).expect("group");
        g2.borrow_mut().append(&mut msgs);
        g2.borrow().len() == 2
    })
    .await;
    let got = got.borrow();
    assert!(got.iter().all(|m| m.conn == cb && m.user_data == 42));
    let mut lanes: Vec<(u16, &[u8])> = got.iter().map(|m| (m.lane, &*m.data)).collect();
    lanes.sort();
    assert_eq!(lanes, [(0, &b"lane zero"[..]), (1, &b"lane one"[..])]);
    let e = a.lw.send_on_lane(ca, 5, b"x", SendFlags::RELIABLE).expect_err("lane");
    assert_eq!(e.code(), ErrorCode::InvalidLane);
    b.lw.destroy_poll_group(group).expect("destroy");
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn random_messages_with_fake_loss_and_lag() {
    // The conditioner in the browser: 10 % loss and 30 ms lag on every packet each side
    // sends, on top of the real data channel.
    let mut config = Config::new();
    config.set_f32(ConfigKey::FakePacketLossSend, 10.0).expect("valid");
    config.set_i32(ConfigKey::FakePacketLagSend, 30).expect("valid");
    config.set_i32(ConfigKey::SendRateMin, 1_000_000).expect("valid");
    config.set_i32(ConfigKey::SendRateMax, 1_000_000).expect("valid");
    config.set_i32(ConfigKey::SendBufferSize, 1024 * 1024).expect("valid");
    config.set_i32(ConfigKey::RecvBufferSize, 4 * 1024 * 1024).expect("valid");
    config.set_i32(ConfigKey::RecvBufferMessages, 100_000).expect("valid");
    let (a, b, ca, cb) = connected_pair("stress", config).await;
    let mut stress = Stress::new([(&a, ca), (&b, cb)], 0x5eed);
    let active_ms = 8000.0;
    let start = now_ms();
    while now_ms() - start < active_ms {
        stress.top_up(0);
        stress.top_up(1);
        stress.drain();
        sleep(5.0).await;
    }
    let deadline = now_ms() + 30_000.0;
    while !stress.all_reliable_arrived() {
        assert!(now_ms() < deadline, "reliable messages missing after 30 s: {:?}", stress.sides);
        stress.drain();
        sleep(10.0).await;
    }
    stress.drain();
    let [sa, sb] = &stress.sides;
    console_log!(
        "stress (10% loss, 30 ms lag, {} s): a->b {} reliable + {}/{} unreliable, {} KiB; \
         b->a {} reliable + {}/{} unreliable, {} KiB",
        active_ms / 1000.0,
        sb.recv_reliable,
        sb.recv_unreliable,
        sa.sent_unreliable,
        sb.bytes_received / 1024,
        sa.recv_reliable,
        sa.recv_unreliable,
        sb.sent_unreliable,
        sa.bytes_received / 1024
    );
    assert!(sb.recv_reliable > 100 && sa.recv_reliable > 100, "{:?}", stress.sides);
    // 10 % loss: most unreliable messages arrive, not all.
    let ratio = sb.recv_unreliable as f64 / sa.sent_unreliable.max(1) as f64;
    assert!((0.6..0.99).contains(&ratio), "unreliable delivery {ratio}");
    for n in [&a, &b] {
        assert!(n.unexpected_events().is_empty(), "{:?}", n.unexpected_events());
    }
    a.shutdown();
    b.shutdown();
}

/// The figures through the Rust API, in this debug build: a smoke test of throughput,
/// callbacks and ping-pong (the reported figures come from the optimized package in
/// `tests/e2e`).
#[wasm_bindgen_test]
async fn figures() {
    let f = measure_figures().await;
    console_log!("{f}");
    assert!(f.lanewire_mb_s > 0.1 && f.reliable_mb_s > 0.1, "{f}");
    assert!(f.ping_p50_ms < 100.0, "{f}");
}

#[wasm_bindgen_test]
async fn connect_again_after_closing() {
    let (a, b, ca, cb) = connected_pair("again", Config::new()).await;
    let e = a.lw.send(ca, &vec![0; MAX_MESSAGE_SIZE + 1], SendFlags::RELIABLE).expect_err("big");
    assert_eq!(e.code(), ErrorCode::MessageTooBig);
    // Reliable data still unacknowledged when the connection closes: its ack comes back
    // while the core resends its close notice.
    a.lw.send(ca, b"unacked", SendFlags::RELIABLE_NO_NAGLE).expect("send");
    a.lw.close(ca, EndReason(1000), "", false).expect("close");
    wait_for("ClosedByPeer", 5000, || b.state(cb) == ConnectionState::ClosedByPeer).await;
    sleep(100.0).await;
    let c = a.lw.connect_p2p("str:nobody-here", 7, Config::new()).expect("starts");
    wait_for("failure", 3000, || a.state(c) == ConnectionState::ProblemDetectedLocally).await;
    let c = a.lw.connect_p2p(&b.lw.identity(), 7, Config::new()).expect("starts");
    wait_for("connected again", 5000, || a.state(c) == ConnectionState::Connected).await;
    a.shutdown();
    b.shutdown();
}

#[wasm_bindgen_test]
async fn symmetric_connects_merge_into_one_connection() {
    let mut sym = Config::new();
    sym.set_i32(ConfigKey::SymmetricConnect, 1).expect("valid");
    let a = Node::new("sym-a", Config::new(), false).await;
    let b = Node::new("sym-b", Config::new(), false).await;
    a.lw.listen_p2p(9, sym.clone()).expect("listen");
    b.lw.listen_p2p(9, sym.clone()).expect("listen");
    // Both offers leave before either arrives: the attempts cross.
    let ca = a.lw.connect_p2p(&b.lw.identity(), 9, sym.clone()).expect("a connects");
    let cb = b.lw.connect_p2p(&a.lw.identity(), 9, sym.clone()).expect("b connects");
    a.lw.send(ca, b"from a", SendFlags::RELIABLE).expect("queue");
    b.lw.send(cb, b"from b", SendFlags::RELIABLE).expect("queue");
    wait_for("both connected", 5000, || {
        a.state(ca) == ConnectionState::Connected && b.state(cb) == ConnectionState::Connected
    })
    .await;
    assert_eq!(&*b.receive_n(cb, 1, 5000).await[0].data, b"from a");
    assert_eq!(&*a.receive_n(ca, 1, 5000).await[0].data, b"from b");
    // One connection, which each side sees as its own outgoing one.
    for (n, c) in [(&a, ca), (&b, cb)] {
        assert!(n.incoming().is_none(), "no incoming connection appears");
        assert!(n.events.borrow().iter().all(|(_, e)| e.conn == c), "events of one handle only");
        assert!(n.lw.connection_info(c).expect("info").listen_socket.is_none());
    }
    let (sa, sb) = (a.lw.transport_stats(), b.lw.transport_stats());
    // Whether the offers crossed in flight depends on timing; if they did, exactly one side
    // gave way, and never the one whose identity sorts first.
    assert!(sa.symmetric_merged + sb.symmetric_merged <= 1, "{sa:?} {sb:?}");
    let a_first = a.lw.identity().as_bytes() < b.lw.identity().as_bytes();
    let first = if a_first { &sa } else { &sb };
    assert_eq!(first.symmetric_merged, 0, "the identity that sorts first never gives way");
    // At most one symmetric connection per peer and port.
    let e = a.lw.connect_p2p(&b.lw.identity(), 9, sym).expect_err("a second one");
    assert_eq!(e.code(), ErrorCode::InvalidState);
    a.lw.close(ca, EndReason(1000), "", false).expect("close");
    wait_for("ClosedByPeer", 5000, || b.state(cb) == ConnectionState::ClosedByPeer).await;
    a.shutdown();
    b.shutdown();
}
