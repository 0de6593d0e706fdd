//! Socket pairs, in memory and through 127.0.0.1 UDP: both sides connected on return with no
//! status events shown, messages of every size both ways, and a close seen by the peer.

mod common;

use std::time::Duration;

use common::{WAIT, check_message, make_message, ping, receive_n, wait_state};
use lanewire::{ConnectionState, EndReason, SendFlags, Sockets};

fn exercise(loopback: bool) {
    let s = Sockets::with_config(common::fast_config(50_000_000)).unwrap();
    let (a, b) = s.socket_pair(loopback).expect("pair");
    for h in [a, b] {
        assert_eq!(s.connection_info(h).unwrap().state, ConnectionState::Connected);
    }
    assert_eq!(s.events().count(), 0, "a pair's set-up is not announced");
    if loopback {
        assert!(s.connection_info(a).unwrap().remote.ip().is_loopback());
    }
    ping(&s, a, &s, b);

    // Sizes from tiny to the 512 KiB maximum, reliable, in order.
    let sizes = [13, 100, 1200, 1300, 5000, 65_536, 512 * 1024];
    for (i, &len) in sizes.iter().enumerate() {
        s.send(a, &make_message(true, i as u64, len), SendFlags::RELIABLE).unwrap();
    }
    let got = receive_n(&s, b, sizes.len(), WAIT);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(check_message(m.data()), (true, i as u64));
        assert!(m.is_reliable());
        assert_eq!(m.conn, b);
        assert_eq!(m.number, i as u64 + 2, "message numbers count from 1 (ping was 1)");
    }

    // Close with a reason; the peer sees it.
    s.close(a, EndReason(1234), "bye", true).unwrap();
    wait_state(&s, b, ConnectionState::ClosedByPeer, WAIT);
    let info = s.connection_info(b).unwrap();
    assert_eq!(info.end_reason, EndReason(1234));
    assert_eq!(info.end_debug, "bye");
    s.close(b, EndReason(0), "", false).unwrap();
    let ev: Vec<_> = s.events().collect();
    assert!(
        ev.iter().any(|e| e.conn == b && e.info.state == ConnectionState::ClosedByPeer),
        "the peer's close is an event: {ev:?}"
    );
}

#[test]
fn in_memory_pair() {
    exercise(false);
}

#[test]
fn loopback_pair() {
    exercise(true);
}

#[test]
fn many_pairs_of_both_kinds() {
    let s = Sockets::new().unwrap();
    let mut pairs = Vec::new();
    for i in 0..20 {
        pairs.push(s.socket_pair(i % 2 == 0).expect("pair"));
    }
    for &(a, b) in &pairs {
        ping(&s, a, &s, b);
    }
    for (a, b) in pairs {
        s.close(a, EndReason(0), "", false).unwrap();
        s.close(b, EndReason(0), "", false).unwrap();
    }
    // Nothing about pairs leaks out as an event, except the closes of peers.
    for e in s.events() {
        assert!(e.info.state.is_ended(), "unexpected event {e:?}");
    }
    std::thread::sleep(Duration::from_millis(10));
}
