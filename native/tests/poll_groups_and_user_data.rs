//! Poll groups gather many connections' messages into one receive call; user data and names
//! travel with connections and their messages; status events arrive through `run_callbacks`
//! and the `events` iterator; config values resolve through global, listen-socket and
//! connection scopes.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{WAIT, accept_one, listen, receive_n, wait_state};
use lanewire::{
    Config, ConfigKey, ConfigValue, ConnectionState, EndReason, OutgoingMessage, SendFlags, Sockets,
};

#[test]
fn poll_group_receives_from_many_connections_with_user_data() {
    let mut listen_cfg = Config::new();
    listen_cfg.set_i32(ConfigKey::NagleTime, 0).unwrap();
    let (server, listen_h, addr) = listen("127.0.0.1:0", listen_cfg);
    assert_eq!(
        server.listen_socket_config_value(listen_h, ConfigKey::NagleTime),
        Some(ConfigValue::Int32(0))
    );
    let group = server.create_poll_group();
    let client = Sockets::new().unwrap();
    let mut conns = Vec::new();
    for i in 0..5i64 {
        let c = client.connect_ip(addr, Config::new()).unwrap();
        let s = accept_one(&server, WAIT);
        // Inherited from the listen socket.
        assert_eq!(
            server.connection_config_value(s, ConfigKey::NagleTime),
            Some(ConfigValue::Int32(0))
        );
        server.set_connection_user_data(s, 100 + i).unwrap();
        server.set_connection_name(s, &format!("player {i}")).unwrap();
        server.set_poll_group(s, Some(group)).unwrap();
        conns.push((c, s));
    }
    for &(c, s) in &conns {
        wait_state(&client, c, ConnectionState::Connected, WAIT);
        wait_state(&server, s, ConnectionState::Connected, WAIT);
    }
    // Each client sends three messages; the group gets all fifteen, in order per connection.
    for (i, &(c, _)) in conns.iter().enumerate() {
        for k in 0..3u8 {
            client.send(c, &[i as u8, k], SendFlags::RELIABLE_NO_NAGLE).unwrap();
        }
    }
    let deadline = Instant::now() + WAIT;
    let mut got: HashMap<i64, Vec<u8>> = HashMap::new();
    let mut n = 0;
    while n < 15 {
        assert!(Instant::now() < deadline, "group got {n} of 15: {got:?}");
        for m in
            server.receive_on_poll_group_timeout(group, 64, Duration::from_millis(100)).unwrap()
        {
            let i = m.user_data - 100;
            assert_eq!(m.data()[0] as i64, i, "user data travels with the message");
            assert_eq!(server.connection_name(m.conn).unwrap(), format!("player {i}"));
            got.entry(m.user_data).or_default().push(m.data()[1]);
            n += 1;
        }
    }
    for v in got.values() {
        assert_eq!(v, &[0, 1, 2], "per-connection order");
    }
    // Out of the group, a connection's messages come through per-connection receive.
    let (c0, s0) = conns[0];
    server.set_poll_group(s0, None).unwrap();
    client.send(c0, b"direct", SendFlags::RELIABLE_NO_NAGLE).unwrap();
    assert_eq!(receive_n(&server, s0, 1, WAIT)[0].data(), b"direct");
    assert!(server.receive_on_poll_group(group, 10).unwrap().is_empty());
    server.destroy_poll_group(group).unwrap();
    assert!(server.receive_on_poll_group(group, 10).is_err(), "destroyed group");
    assert_eq!(server.connection_user_data(s0), 100);
}

#[test]
fn status_events_through_callbacks_and_iterator() {
    let (server, _l, addr) = listen("127.0.0.1:0", Config::new());
    let client = Sockets::new().unwrap();
    let c = client.connect_ip(addr, Config::new()).unwrap();
    // The server accepts from a callback on this thread.
    let deadline = Instant::now() + WAIT;
    let mut server_conn = None;
    while server_conn.is_none() {
        assert!(Instant::now() < deadline, "no incoming connection");
        server.run_callbacks(|ev| {
            if ev.is_incoming() {
                server.accept(ev.conn).unwrap();
                server_conn = Some(ev.conn);
            }
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    let s = server_conn.unwrap();
    wait_state(&client, c, ConnectionState::Connected, WAIT);
    let states: Vec<_> = client.events().map(|e| (e.old, e.info.state)).collect();
    assert_eq!(
        states,
        [
            (ConnectionState::None, ConnectionState::Connecting),
            (ConnectionState::Connecting, ConnectionState::Connected)
        ]
    );
    wait_state(&server, s, ConnectionState::Connected, WAIT);
    let q = client.quick_status(c).unwrap();
    assert_eq!(q.state, Some(ConnectionState::Connected));
    assert!(client.detailed_status(c).unwrap().contains("127.0.0.1"));

    // Batch send, then flush.
    let payloads: Vec<[u8; 1]> = (0..4u8).map(|i| [i]).collect();
    let msgs: Vec<_> = payloads
        .iter()
        .map(|p| OutgoingMessage { conn: c, lane: 0, flags: SendFlags::RELIABLE, data: p })
        .collect();
    let numbers: Vec<_> =
        client.send_messages(&msgs).into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    client.flush(c).unwrap();
    let got = receive_n(&server, s, 4, WAIT);
    assert_eq!(got.iter().map(|m| m.data()[0]).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(got.iter().all(|m| m.received_at <= Instant::now()));

    // Lanes: lane 1 exists after configuring two.
    client.configure_lanes(c, &[0, 0], &[1, 1]).unwrap();
    client.send_on_lane(c, 1, b"lane one", SendFlags::RELIABLE_NO_NAGLE).unwrap();
    let m = receive_n(&server, s, 1, WAIT);
    assert_eq!((m[0].lane, m[0].number), (1, 1));

    // The server closes with an app exception code; the client sees it as an event.
    server.close(s, EndReason(2001), "kicked", false).unwrap();
    let ev = client.wait_event(WAIT).expect("close event");
    assert_eq!((ev.conn, ev.info.state), (c, ConnectionState::ClosedByPeer));
    assert_eq!(ev.info.end_reason, EndReason(2001));
    assert_eq!(ev.info.end_debug, "kicked");
    client.close(c, EndReason(0), "", false).unwrap();
}

#[test]
fn config_values_at_every_scope() {
    let mut global = Config::new();
    global.set_i32(ConfigKey::TimeoutConnected, 7000).unwrap();
    let s = Sockets::with_config(global).unwrap();
    assert_eq!(s.global_config_value(ConfigKey::TimeoutConnected), ConfigValue::Int32(7000));
    s.set_global_config(ConfigKey::FakePacketLagSend, ConfigValue::Int32(5)).unwrap();
    assert_eq!(s.global_config_value(ConfigKey::FakePacketLagSend), ConfigValue::Int32(5));
    let (a, _b) = s.socket_pair(false).unwrap();
    assert_eq!(
        s.connection_config_value(a, ConfigKey::TimeoutConnected),
        Some(ConfigValue::Int32(7000))
    );
    s.set_connection_config(a, ConfigKey::TimeoutConnected, ConfigValue::Int32(3000)).unwrap();
    assert_eq!(
        s.connection_config_value(a, ConfigKey::TimeoutConnected),
        Some(ConfigValue::Int32(3000))
    );
    assert!(
        s.set_connection_config(a, ConfigKey::FakePacketLossSend, ConfigValue::Float(1.0)).is_err()
    );
    let mut with_user_data = Config::new();
    with_user_data.set(ConfigKey::ConnectionUserData, ConfigValue::Int64(42)).unwrap();
    let (srv, _l, addr) = listen("127.0.0.1:0", Config::new());
    let c = s.connect_ip(addr, with_user_data).unwrap();
    assert_eq!(s.connection_user_data(c), 42, "user data bound at creation");
    let sc = accept_one(&srv, WAIT);
    wait_state(&s, c, ConnectionState::Connected, WAIT);
    let _ = sc;
}
