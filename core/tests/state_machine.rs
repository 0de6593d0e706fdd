//! Connection states, transitions and the errors of each call, on the simulator.

mod common;

use core::time::Duration;

use common::{check_message, global_config, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{Pair, SimAddr, World};
use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, EndReason, Event, LocalId, Message,
    SendError, SendFlags,
};

type Ev = (ConnectionHandle, ConnectionState, ConnectionState, EndReason, String);

fn events(w: &mut World, node: SimAddr) -> Vec<Ev> {
    let mut v = Vec::new();
    while let Some(Event::StatusChanged { conn, old, info }) = w.node(node).poll_event() {
        v.push((conn, old, info.state, info.end_reason, info.end_debug));
    }
    v
}

fn connected_pair(seed: u64, link: LinkConfig, global: Config) -> Pair {
    let mut p = Pair::new(seed, link, global, Config::new(), Config::new());
    assert!(p.connect(Duration::from_secs(20)));
    p
}

fn receive_all(w: &mut World, node: SimAddr, conn: ConnectionHandle) -> Vec<Message> {
    let mut out = Vec::new();
    w.node(node).receive(conn, usize::MAX, &mut out).expect("valid handle");
    out
}

both! {
    fn accept_posts_events_with_listen_socket() {
        let mut p = Pair::new(1, LinkConfig::ideal(), Config::new(), Config::new(), Config::new());
        let (c, s) = (p.client, p.server);
        let client_events = {
            p.world.run_until(Duration::from_secs(5), |w| w.node(s).connections().len() == 1);
            events(&mut p.world, c)
        };
        assert_eq!(client_events[0].1, ConnectionState::None);
        assert_eq!(client_events[0].2, ConnectionState::Connecting);
        let server_events = events(&mut p.world, s);
        assert_eq!(server_events.len(), 1);
        let (conn, old, new, ..) = server_events[0].clone();
        assert_eq!((old, new), (ConnectionState::None, ConnectionState::Connecting));
        assert!(p.world.node(s).connection_info(conn).unwrap().listen_socket.is_some());
        let now = p.world.now;
        p.world.node(s).accept(now, conn).unwrap();
        assert_eq!(p.world.node(s).accept(now, conn), Err(lanewire_core::HandleError::InvalidState));
        let cc = p.client_conn;
        assert!(p.world.run_until(Duration::from_secs(5), |w| {
            w.node(c).connection_info(cc).unwrap().state == ConnectionState::Connected
        }));
        let ev = events(&mut p.world, c);
        assert_eq!(ev.last().map(|e| (e.1, e.2)), Some((ConnectionState::Connecting, ConnectionState::Connected)));
        let ev = events(&mut p.world, s);
        assert_eq!(ev.last().map(|e| (e.1, e.2)), Some((ConnectionState::Connecting, ConnectionState::Connected)));
        // An outgoing connection cannot be accepted.
        assert_eq!(p.world.node(c).accept(now, cc), Err(lanewire_core::HandleError::InvalidState));
    }
}

both! {
    fn reject_with_reason_reaches_the_client() {
        let mut p = Pair::new(2, LinkConfig { loss: 0.2, ..LinkConfig::ideal() }, Config::new(), Config::new(), Config::new());
        let (c, s, cc) = (p.client, p.server, p.client_conn);
        assert!(p.world.run_until(Duration::from_secs(10), |w| w.node(s).connections().len() == 1));
        let conn = events(&mut p.world, s)[0].0;
        let now = p.world.now;
        p.world.node(s).close(now, conn, EndReason(1234), "server full", false).unwrap();
        assert!(p.world.node(s).connection_info(conn).is_none(), "handle invalid after close");
        assert!(p.world.run_until(Duration::from_secs(10), |w| w.node(c).connection_info(cc).unwrap().state == ConnectionState::ClosedByPeer));
        let info = p.world.node(c).connection_info(cc).unwrap();
        assert_eq!(info.end_reason, EndReason(1234));
        assert_eq!(info.end_debug, "server full");
        assert_eq!(p.world.node(c).send(now, cc, b"x", SendFlags::RELIABLE), Err(SendError::NoConnection));
    }
}

both! {
    fn connect_to_nobody_times_out_after_timeout_initial() {
        let mut w = World::new(3, LinkConfig::ideal());
        let a = w.add_node(Config::new());
        let b = w.add_node(Config::new()); // no listen socket
        let now = w.now;
        let conn = w.node(a).connect(now, LocalId(0), b, Config::new()).unwrap();
        let failed = w.run_until(Duration::from_secs(30), |w| {
            w.node(a).connection_info(conn).unwrap().state == ConnectionState::ProblemDetectedLocally
        });
        assert!(failed);
        let t = w.now.as_micros() as f64 / 1e6;
        assert!((9.9..=10.1).contains(&t), "timed out at {t} s, expected TimeoutInitial = 10 s");
        let info = w.node(a).connection_info(conn).unwrap();
        assert_eq!(info.end_reason, EndReason::MISC_TIMEOUT);
        assert_eq!(w.node(b).connection_count(), 0, "a server without a listen socket keeps no state");
    }
}

both! {
    fn vanished_peer_times_out_after_timeout_connected() {
        let mut p = connected_pair(4, LinkConfig::ideal(), Config::new());
        let (c, s, cc) = (p.client, p.server, p.client_conn);
        events(&mut p.world, c);
        let start = p.world.now;
        p.world.set_link(s, c, LinkConfig { loss: 1.0, ..LinkConfig::ideal() });
        p.world.set_link(c, s, LinkConfig { loss: 1.0, ..LinkConfig::ideal() });
        assert!(p.world.run_until(Duration::from_secs(30), |w| {
            w.node(c).connection_info(cc).unwrap().state == ConnectionState::ProblemDetectedLocally
        }));
        let took = (p.world.now - start).as_secs_f64();
        assert!((9.5..=10.5).contains(&took), "timed out after {took} s, expected TimeoutConnected = 10 s");
        let ev = events(&mut p.world, c);
        assert_eq!(ev.last().map(|e| (e.1, e.2, e.3)), Some((ConnectionState::Connected, ConnectionState::ProblemDetectedLocally, EndReason::MISC_TIMEOUT)));
        // The application frees it; the handle is then invalid.
        let now = p.world.now;
        p.world.node(c).close(now, cc, EndReason::APP_GENERIC, "", false).unwrap();
        assert!(p.world.node(c).connection_info(cc).is_none());
        assert_eq!(p.world.node(c).connection_count(), 0);
        assert_eq!(p.world.node(c).close(now, cc, EndReason::APP_GENERIC, "", false), Err(lanewire_core::HandleError::InvalidHandle));
    }
}

both! {
    fn linger_delivers_everything_before_closed_by_peer() {
        let link = LinkConfig { loss: 0.1, latency: Duration::from_millis(30), ..LinkConfig::ideal() };
        let mut p = connected_pair(5, link, global_config(500_000));
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        let n = 300;
        for i in 0..n {
            let m = make_message(true, i, 1000 + (i as usize * 37) % 3000);
            p.world.node(c).send(now, cc, &m, SendFlags::RELIABLE).unwrap();
        }
        p.world.node(c).close(now, cc, EndReason(1001), "bye now", true).unwrap();
        assert!(p.world.node(c).connection_info(cc).is_none(), "handle invalid at once");
        assert_eq!(p.world.node(c).send(now, cc, b"x", SendFlags::RELIABLE), Err(SendError::InvalidHandle));
        let mut got = 0u64;
        let closed = p.world.run_until(Duration::from_secs(60), |w| {
            for m in receive_all(w, s, sc) {
                let (_, counter) = check_message(&m.data);
                assert_eq!(counter, got);
                got += 1;
            }
            w.node(s).connection_info(sc).unwrap().state == ConnectionState::ClosedByPeer
        });
        assert!(closed, "peer never saw the close");
        // Everything was delivered before the close became visible (nothing arrives after).
        let late = receive_all(&mut p.world, s, sc).len() as u64;
        assert_eq!(got + late, n);
        let info = p.world.node(s).connection_info(sc).unwrap();
        assert_eq!((info.end_reason, info.end_debug.as_str()), (EndReason(1001), "bye now"));
        // The closing side's state goes away once the close is acknowledged.
        assert!(p.world.run_until(Duration::from_secs(10), |w| w.node(c).connection_count() == 0));
    }
}

both! {
    fn close_without_linger_and_reason_codes() {
        let mut p = connected_pair(6, LinkConfig::ideal(), Config::new());
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        // Codes outside the application ranges are replaced, as in the reference.
        p.world.node(c).close(now, cc, EndReason(42), "whatever", false).unwrap();
        assert!(p.world.run_until(Duration::from_secs(5), |w| w.node(s).connection_info(sc).unwrap().state == ConnectionState::ClosedByPeer));
        let info = p.world.node(s).connection_info(sc).unwrap();
        assert_eq!(info.end_reason, EndReason::APP_MAX);
        assert_eq!(info.end_debug, "Invalid numeric reason code");
    }
}

both! {
    fn no_delay_is_ignored_when_not_ready() {
        let mut p = Pair::new(7, LinkConfig::ideal(), global_config(100_000), Config::new(), Config::new());
        let (c, cc) = (p.client, p.client_conn);
        let now = p.world.now;
        assert_eq!(p.world.node(c).send(now, cc, b"voice", SendFlags::UNRELIABLE_NO_DELAY), Err(SendError::Ignored));
        // Reliable sends queue while connecting.
        assert_eq!(p.world.node(c).send(now, cc, b"hello", SendFlags::RELIABLE), Ok(1));
        assert!(p.connect(Duration::from_secs(5)));
        let now = p.world.now;
        assert!(p.world.node(c).send(now, cc, b"voice", SendFlags::UNRELIABLE_NO_DELAY).is_ok());
        // Queue more than 20 ms of data at 100 kB/s: voice is dropped rather than delayed.
        for _ in 0..10 {
            p.world.node(c).send(now, cc, &[0u8; 1000], SendFlags::RELIABLE).unwrap();
        }
        assert_eq!(p.world.node(c).send(now, cc, b"voice", SendFlags::UNRELIABLE_NO_DELAY), Err(SendError::Ignored));
    }
}

both! {
    fn full_send_buffer_is_limit_exceeded_and_nothing_is_lost() {
        let mut g = Config::new();
        g.set_i32(ConfigKey::SendBufferSize, 64 * 1024).unwrap();
        let mut p = connected_pair(8, LinkConfig { latency: Duration::from_millis(20), ..LinkConfig::ideal() }, g);
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        let mut accepted = 0u64;
        let err = loop {
            match p.world.node(c).send(now, cc, &make_message(true, accepted, 10_000), SendFlags::RELIABLE) {
                Ok(_) => accepted += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, SendError::LimitExceeded);
        assert_eq!(accepted, 6);
        assert_eq!(p.world.node(c).send(now, cc, &[0u8; 600 * 1024], SendFlags::RELIABLE), Err(SendError::MessageTooBig));
        assert_eq!(p.world.node(c).send_on_lane(now, cc, 3, b"x", SendFlags::RELIABLE), Err(SendError::InvalidLane));
        let mut got = 0;
        assert!(p.world.run_until(Duration::from_secs(30), |w| {
            for m in receive_all(w, s, sc) {
                assert_eq!(check_message(&m.data).1, got);
                got += 1;
            }
            got == accepted
        }));
    }
}

both! {
    fn stalled_receiver_does_not_kill_the_connection() {
        let mut g = global_config(256 * 1024);
        g.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).unwrap();
        let link = LinkConfig { loss: 0.05, reorder: 0.1, reorder_delay: Duration::from_millis(20), latency: Duration::from_millis(10), ..LinkConfig::ideal() };
        let mut p = Pair::new(9, link, g, Config::new(), {
            let mut l = Config::new();
            l.set_i32(ConfigKey::RecvBufferMessages, 32).unwrap();
            l
        });
        assert!(p.connect(Duration::from_secs(10)));
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        for i in 0..2000 {
            p.world.node(c).send(now, cc, &make_message(true, i, 1000), SendFlags::RELIABLE).unwrap();
        }
        // The server does not read for 6 s while both sides keep sending small unreliables.
        for _ in 0..60 {
            let now = p.world.now;
            p.world.node(c).send(now, cc, b"tick", SendFlags::UNRELIABLE).unwrap();
            p.world.node(s).send(now, sc, b"tock", SendFlags::UNRELIABLE).unwrap();
            p.world.run_for(Duration::from_millis(100));
            assert_eq!(p.world.node(c).connection_info(cc).unwrap().state, ConnectionState::Connected);
            assert_eq!(p.world.node(s).connection_info(sc).unwrap().state, ConnectionState::Connected);
        }
        let now = p.world.now;
        let q = p.world.node(s).quick_status(now, sc).unwrap();
        assert!(q.state == Some(ConnectionState::Connected));
        // Now read: everything arrives, in order.
        let mut got = 0;
        assert!(p.world.run_until(Duration::from_secs(60), |w| {
            for m in receive_all(w, s, sc) {
                if m.reliable {
                    assert_eq!(check_message(&m.data).1, got);
                    got += 1;
                }
            }
            got == 2000
        }));
    }
}

both! {
    fn lanes_priority_and_numbering() {
        let mut p = connected_pair(10, LinkConfig { latency: Duration::from_millis(5), ..LinkConfig::ideal() }, global_config(200_000));
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        p.world.node(c).configure_lanes(cc, &[1, 0], &[1, 1]).unwrap();
        assert!(p.world.node(c).configure_lanes(cc, &[1], &[1]).is_err(), "lane count cannot shrink");
        let now = p.world.now;
        // 200 kB of bulk on lane 0 (priority 1), then one urgent message on lane 1 (priority 0).
        for i in 0..20 {
            assert_eq!(p.world.node(c).send_on_lane(now, cc, 0, &make_message(true, i, 10_000), SendFlags::RELIABLE), Ok(i + 1));
        }
        assert_eq!(p.world.node(c).send_on_lane(now, cc, 1, b"urgent", SendFlags::RELIABLE), Ok(1));
        let mut order = Vec::new();
        assert!(p.world.run_until(Duration::from_secs(10), |w| {
            for m in receive_all(w, s, sc) {
                order.push((m.lane, m.number));
            }
            order.len() == 21
        }));
        let urgent = order.iter().position(|&(lane, _)| lane == 1).unwrap();
        assert!(urgent <= 2, "urgent lane message arrived at position {urgent}: {order:?}");
        let bulk: Vec<u64> = order.iter().filter(|x| x.0 == 0).map(|x| x.1).collect();
        assert_eq!(bulk, (1..=20).collect::<Vec<_>>());
    }
}

both! {
    fn poll_group_gathers_connections() {
        let mut w = World::new(11, LinkConfig::ideal());
        let server = w.add_node(Config::new());
        w.node(server).create_listen_socket(LocalId(0), Config::new()).unwrap();
        let clients: Vec<SimAddr> = (0..3).map(|_| w.add_node(Config::new())).collect();
        let group = w.node(server).create_poll_group();
        let mut conns = Vec::new();
        for &c in &clients {
            let now = w.now;
            conns.push(w.node(c).connect(now, LocalId(0), server, Config::new()).unwrap());
        }
        let mut accepted = Vec::new();
        assert!(w.run_until(Duration::from_secs(5), |w| {
            let now = w.now;
            while let Some(Event::StatusChanged { conn, info, .. }) = w.node(server).poll_event() {
                if info.state == ConnectionState::Connecting {
                    w.node(server).accept(now, conn).unwrap();
                    w.node(server).set_poll_group(conn, Some(group)).unwrap();
                    w.node(server).set_user_data(conn, 100 + accepted.len() as i64).unwrap();
                    accepted.push(conn);
                }
            }
            accepted.len() == 3 && conns.iter().zip(&clients).all(|(&cc, &c)| w.node(c).connection_info(cc).unwrap().state == ConnectionState::Connected)
        }));
        for (i, (&cc, &c)) in conns.iter().zip(&clients).enumerate() {
            let now = w.now;
            for j in 0..5 {
                w.node(c).send(now, cc, format!("{i}:{j}").as_bytes(), SendFlags::RELIABLE_NO_NAGLE).unwrap();
            }
        }
        let mut got = Vec::new();
        assert!(w.run_until(Duration::from_secs(5), |w| {
            w.node(server).receive_on_poll_group(group, 100, &mut got).unwrap();
            got.len() == 15
        }));
        for i in 0..3 {
            let mine: Vec<String> = got.iter().filter(|m| m.user_data == 100 + i).map(|m| String::from_utf8(m.data.to_vec()).unwrap()).collect();
            assert_eq!(mine.len(), 5);
            let j0: Vec<String> = (0..5).map(|j| format!("{}:{j}", mine[0].split(':').next().unwrap())).collect();
            assert_eq!(mine, j0, "per-connection order kept");
        }
        w.node(server).destroy_poll_group(group).unwrap();
        let mut none = Vec::new();
        assert!(w.node(server).receive_on_poll_group(group, 10, &mut none).is_err());
    }
}

both! {
    fn quick_and_detailed_status() {
        let link = LinkConfig { latency: Duration::from_millis(25), loss: 0.05, ..LinkConfig::ideal() };
        let mut p = connected_pair(12, link, global_config(1_000_000));
        let (c, cc) = (p.client, p.client_conn);
        for _ in 0..30 {
            let now = p.world.now;
            p.world.node(c).send(now, cc, &[1u8; 5000], SendFlags::RELIABLE).unwrap();
            p.world.run_for(Duration::from_millis(100));
        }
        let now = p.world.now;
        let q = p.world.node(c).quick_status(now, cc).unwrap();
        assert!((45..=70).contains(&q.ping_ms), "ping {} ms for 50 ms RTT", q.ping_ms);
        assert!(q.out_bytes_per_sec > 30_000.0 && q.out_bytes_per_sec < 80_000.0, "{q:?}");
        assert!(q.quality_remote > 0.85 && q.quality_remote < 1.0, "{q:?}");
        assert_eq!(q.send_rate_bytes_per_sec, 1_000_000);
        let text = p.world.node(c).detailed_status(now, cc).unwrap();
        assert!(text.contains("ping") && text.contains("lane 0"), "{text}");
    }
}

both! {
    fn restarted_server_is_noticed_at_once() {
        let mut p = connected_pair(13, LinkConfig { latency: Duration::from_millis(10), ..LinkConfig::ideal() }, Config::new());
        let (c, s, cc) = (p.client, p.server, p.client_conn);
        // The server process restarts: a fresh endpoint at the same address knows nothing.
        p.world.nodes[s.0 as usize] = lanewire_core::Endpoint::new(Config::new(), [9; 32]);
        let start = p.world.now;
        let now = p.world.now;
        p.world.node(c).send(now, cc, b"anyone there?", SendFlags::RELIABLE_NO_NAGLE).unwrap();
        assert!(p.world.run_until(Duration::from_secs(5), |w| w.node(c).connection_info(cc).unwrap().state == ConnectionState::ClosedByPeer));
        assert!(p.world.now - start < Duration::from_secs(1), "took {:?}", p.world.now - start);
        assert_eq!(p.world.node(c).connection_info(cc).unwrap().end_reason, EndReason::MISC_PEER_SENT_NO_CONNECTION);
    }
}

both! {
    fn acks_after_a_close_without_linger_are_harmless() {
        // Found over real sockets: acks for data in flight reached a connection whose send
        // queues the close had discarded, and the ack bookkeeping panicked.
        let mut p = connected_pair(14, LinkConfig { latency: Duration::from_millis(10), ..LinkConfig::ideal() }, global_config(10_000_000));
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        for i in 0..30 {
            p.world.node(c).send(now, cc, &make_message(true, i, 10_000), SendFlags::RELIABLE_NO_NAGLE).unwrap();
        }
        p.world.run_for(Duration::from_millis(12));
        let now = p.world.now;
        p.world.node(c).close(now, cc, EndReason::APP_GENERIC, "bye", false).unwrap();
        assert!(p.world.run_until(Duration::from_secs(10), |w| {
            w.node(s).connection_info(sc).is_some_and(|i| i.state == ConnectionState::ClosedByPeer)
        }));
        p.world.run_for(Duration::from_secs(6));
        assert_eq!(p.world.node(c).connection_count(), 0);
    }
}
