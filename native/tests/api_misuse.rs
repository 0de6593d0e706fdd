//! API misuse gets a clear error value, never a panic: invalid and stale handles, double
//! close, send after close, oversize messages, wrong states, bad config values, bad
//! addresses, ports in use.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{WAIT, connect, listen};
use lanewire::{
    Config, ConfigError, ConfigKey, ConfigValue, ConnectionHandle, EndReason, HandleError,
    ListenSocketHandle, MAX_MESSAGE_SIZE, PollGroupHandle, SendError, SendFlags, SocketError,
    Sockets,
};

#[test]
fn invalid_handles_are_errors() {
    let s = Sockets::new().unwrap();
    let bogus = ConnectionHandle::from_bits(0xdead_beef_0000_0007);
    assert_eq!(s.send(bogus, b"x", SendFlags::RELIABLE), Err(SendError::InvalidHandle));
    assert_eq!(s.accept(bogus), Err(HandleError::InvalidHandle));
    assert_eq!(s.close(bogus, EndReason(0), "", false), Err(HandleError::InvalidHandle));
    assert_eq!(s.flush(bogus), Err(HandleError::InvalidHandle));
    assert!(s.receive(bogus, 10).is_err());
    assert!(s.receive_timeout(bogus, 10, Duration::from_millis(1)).is_err());
    assert!(s.connection_info(bogus).is_none());
    assert!(s.quick_status(bogus).is_none());
    assert!(s.detailed_status(bogus).is_none());
    assert_eq!(s.connection_user_data(bogus), -1);
    assert!(s.set_connection_user_data(bogus, 1).is_err());
    assert!(s.set_connection_name(bogus, "x").is_err());
    assert!(s.connection_name(bogus).is_none());
    assert!(s.configure_lanes(bogus, &[0], &[1]).is_err());
    assert_eq!(
        s.set_connection_config(bogus, ConfigKey::NagleTime, ConfigValue::Int32(0)),
        Err(ConfigError::InvalidHandle)
    );
    assert!(s.connection_config_value(bogus, ConfigKey::NagleTime).is_none());
    let group = PollGroupHandle::from_bits(99);
    assert!(s.receive_on_poll_group(group, 1).is_err());
    assert!(s.destroy_poll_group(group).is_err());
    assert!(s.set_poll_group(bogus, None).is_err());
    let listen = ListenSocketHandle::from_bits(5);
    assert_eq!(s.close_listen_socket(listen), Err(HandleError::InvalidHandle));
    assert!(s.listen_socket_address(listen).is_none());
    assert!(s.listen_socket_config_value(listen, ConfigKey::NagleTime).is_none());
}

#[test]
fn close_twice_send_after_close_oversize() {
    let s = Sockets::new().unwrap();
    let (a, b) = s.socket_pair(false).unwrap();
    let too_big = vec![0u8; MAX_MESSAGE_SIZE + 1];
    assert_eq!(s.send(a, &too_big, SendFlags::RELIABLE), Err(SendError::MessageTooBig));
    assert_eq!(s.send(a, &too_big, SendFlags::UNRELIABLE), Err(SendError::MessageTooBig));
    assert_eq!(s.send_on_lane(a, 3, b"x", SendFlags::RELIABLE), Err(SendError::InvalidLane));
    assert_eq!(s.accept(a), Err(HandleError::InvalidState), "not an incoming connection");
    assert!(s.configure_lanes(a, &[], &[]).is_err(), "zero lanes");

    // A full send buffer is an error, never a silent drop.
    let chunk = vec![1u8; MAX_MESSAGE_SIZE];
    let mut full = false;
    for _ in 0..8 {
        match s.send(a, &chunk, SendFlags::RELIABLE) {
            Ok(_) => {}
            Err(SendError::LimitExceeded) => {
                full = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full, "the default 512 KiB send buffer must fill");

    s.close(a, EndReason(0), "", true).unwrap();
    assert_eq!(s.close(a, EndReason(0), "", false), Err(HandleError::InvalidHandle));
    assert_eq!(s.send(a, b"late", SendFlags::RELIABLE), Err(SendError::InvalidHandle));
    assert!(s.receive(a, 1).is_err());
    // An out-of-range close reason is replaced, not refused.
    s.close(b, EndReason(7), "", false).unwrap();
    assert_eq!(s.close(b, EndReason(0), "", false), Err(HandleError::InvalidHandle));
}

#[test]
fn send_to_a_closed_peer_is_no_connection() {
    let (server, _l, addr) = listen("127.0.0.1:0", Config::new());
    let client = Sockets::new().unwrap();
    let (c, s) = connect(&server, &client, addr, Config::new());
    server.close(s, EndReason(0), "bye", false).unwrap();
    common::wait_state(&client, c, lanewire::ConnectionState::ClosedByPeer, WAIT);
    assert_eq!(client.send(c, b"x", SendFlags::RELIABLE), Err(SendError::NoConnection));
    assert_eq!(client.flush(c), Err(HandleError::InvalidState));
    client.close(c, EndReason(0), "", false).unwrap();
}

#[test]
fn bad_config_and_addresses() {
    let s = Sockets::new().unwrap();
    assert!(matches!(
        s.set_global_config(ConfigKey::NagleTime, ConfigValue::Float(1.0)),
        Err(ConfigError::WrongType { .. })
    ));
    assert!(matches!(
        s.set_global_config(ConfigKey::NagleTime, ConfigValue::Int32(1_000_000)),
        Err(ConfigError::OutOfRange { .. })
    ));
    let mut global_key = Config::new();
    global_key.set_f32(ConfigKey::FakePacketLossSend, 1.0).unwrap();
    assert!(matches!(
        s.listen_ip("127.0.0.1:0".parse().unwrap(), global_key.clone()),
        Err(SocketError::Config(ConfigError::WrongScope(_)))
    ));
    assert!(matches!(
        s.connect_ip("127.0.0.1:9".parse().unwrap(), global_key),
        Err(SocketError::Config(ConfigError::WrongScope(_)))
    ));
    for bad in ["127.0.0.1:0", "0.0.0.0:9", "[::]:9"] {
        let a: SocketAddr = bad.parse().unwrap();
        assert!(matches!(s.connect_ip(a, Config::new()), Err(SocketError::InvalidAddress(_))));
    }
    // The same port twice.
    let l = s.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
    let taken = s.listen_socket_address(l).unwrap();
    let e = s.listen_ip(taken, Config::new()).unwrap_err();
    assert!(matches!(&e, SocketError::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse), "{e}");
    assert!(!e.to_string().is_empty());
    // Closing a listen socket twice.
    s.close_listen_socket(l).unwrap();
    assert_eq!(s.close_listen_socket(l), Err(HandleError::InvalidHandle));
    // And its port is free again.
    let again = s.listen_ip(taken, Config::new()).unwrap();
    assert_eq!(s.listen_socket_address(again), Some(taken));
}

#[test]
fn handles_stay_invalid_after_use_from_other_threads() {
    let s = Sockets::new().unwrap();
    let (a, b) = s.socket_pair(false).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                // Racing closes: exactly one succeeds per handle.
                let ra = s.close(a, EndReason(0), "", false).is_ok();
                let rb = s.close(b, EndReason(0), "", false).is_ok();
                (ra as u32, rb as u32)
            })
        })
        .collect();
    let (mut na, mut nb) = (0, 0);
    for t in threads {
        let (x, y) = t.join().unwrap();
        na += x;
        nb += y;
    }
    assert_eq!((na, nb), (1, 1));
}

/// Closing without linger while reliable data is unacknowledged, then receiving the peer's
/// acks, must not panic.
#[test]
fn close_without_linger_with_data_in_flight() {
    let s = Sockets::with_config(common::fast_config(1_000_000)).unwrap();
    let (a, b) = s.socket_pair(false).unwrap();
    s.send(a, &vec![7u8; 300_000], SendFlags::RELIABLE_NO_NAGLE).unwrap();
    s.close(a, EndReason(0), "", false).unwrap();
    common::wait_state(&s, b, lanewire::ConnectionState::ClosedByPeer, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    // The IO thread is alive: a new pair still connects.
    let (c, d) = s.socket_pair(false).unwrap();
    common::ping(&s, c, &s, d);
}
