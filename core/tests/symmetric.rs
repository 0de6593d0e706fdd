//! Symmetric connect on the simulator: both peers connect to each other at once, the driver
//! tells one side to give way (`Endpoint::merge_incoming`), and exactly one connection results,
//! which both applications see as their own outgoing connection.

mod common;

use core::time::Duration;

use common::{check_message, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{SimAddr, World};
use lanewire_core::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, ConnectionState, EndReason, Event,
    HandleError, LocalId, Message, SendFlags,
};

/// Two nodes, each listening on local socket 0 with `SymmetricConnect`, each connecting to the
/// other with it, and each queueing `queued` reliable messages before anything is sent.
struct Sym {
    world: World,
    a: SimAddr,
    b: SimAddr,
    ha: ConnectionHandle,
    hb: ConnectionHandle,
}

fn symmetric() -> Config {
    let mut c = Config::new();
    c.set(ConfigKey::SymmetricConnect, ConfigValue::Int32(1)).unwrap();
    c
}

impl Sym {
    fn new(seed: u64, link: LinkConfig, queued: u64) -> Sym {
        let mut world = World::new(seed, link);
        let a = world.add_node(Config::new());
        let b = world.add_node(Config::new());
        let now = world.now;
        let mut handles = Vec::new();
        for (me, peer) in [(a, b), (b, a)] {
            world.node(me).create_listen_socket(LocalId(0), symmetric()).unwrap();
            let h = world.node(me).connect(now, LocalId(0), peer, symmetric()).unwrap();
            for i in 0..queued {
                let m = make_message(true, i, 100 + 37 * i as usize);
                world.node(me).send(now, h, &m, SendFlags::RELIABLE).unwrap();
            }
            handles.push(h);
        }
        Sym { world, a, b, ha: handles[0], hb: handles[1] }
    }

    fn state(&mut self, node: SimAddr, h: ConnectionHandle) -> Option<ConnectionState> {
        self.world.node(node).connection_info(h).map(|i| i.state)
    }

    /// Every status event of `node`: (handle, old, new, listen socket set).
    fn events(
        &mut self,
        node: SimAddr,
    ) -> Vec<(ConnectionHandle, ConnectionState, ConnectionState, bool)> {
        let mut v = Vec::new();
        while let Some(Event::StatusChanged { conn, old, info }) =
            self.world.node(node).poll_event()
        {
            v.push((conn, old, info.state, info.listen_socket.is_some()));
        }
        v
    }
}

fn receive_all(w: &mut World, node: SimAddr, conn: ConnectionHandle) -> Vec<Message> {
    let mut out = Vec::new();
    w.node(node).receive(conn, usize::MAX, &mut out).expect("valid handle");
    out
}

both! {
    fn simultaneous_connects_merge_into_one_connection() {
        // 20 % loss both ways: the handshake packets of both attempts cross and get lost.
        for seed in 1..=8 {
            let link = LinkConfig { loss: 0.2, latency: Duration::from_millis(20), ..LinkConfig::ideal() };
            let mut s = Sym::new(seed, link, 20);
            // B gives way, as the driver decides by an order both sides agree on.
            let (a, b, ha, hb) = (s.a, s.b, s.ha, s.hb);
            let now = s.world.now;
            s.world.node(b).merge_incoming(now, hb, a).unwrap();
            let done = s.world.run_until(Duration::from_secs(10), |w| {
                let ca = w.node(a).connection_info(ha).is_some_and(|i| i.state == ConnectionState::Connected);
                let cb = w.node(b).connection_info(hb).is_some_and(|i| i.state == ConnectionState::Connected);
                ca && cb
            });
            assert!(done, "seed {seed}: A {:?} B {:?}", s.state(a, ha), s.state(b, hb));
            // Each side saw its own outgoing connection connect, and nothing else: no incoming
            // connection to accept on either listen socket.
            for (node, h) in [(a, ha), (b, hb)] {
                let ev = s.events(node);
                let expect = vec![
                    (h, ConnectionState::None, ConnectionState::Connecting, false),
                    (h, ConnectionState::Connecting, ConnectionState::Connected, false),
                ];
                assert_eq!(ev, expect, "seed {seed}");
                assert_eq!(s.world.node(node).connections(), vec![h], "seed {seed}: one connection");
            }
            // The messages queued before the merge arrive, in order, both ways.
            let mut got = [Vec::new(), Vec::new()];
            let ok = s.world.run_until(Duration::from_secs(20), |w| {
                got[0].extend(receive_all(w, a, ha));
                got[1].extend(receive_all(w, b, hb));
                got.iter().all(|g| g.len() == 20)
            });
            assert!(ok, "seed {seed}: received {} and {}", got[0].len(), got[1].len());
            for g in &got {
                for (i, m) in g.iter().enumerate() {
                    assert_eq!(check_message(&m.data), (true, i as u64));
                }
            }
            // And it is one ordinary connection: a close with a reason reaches the other side.
            let now = s.world.now;
            s.world.node(a).close(now, ha, EndReason(1001), "done", false).unwrap();
            assert!(s.world.run_until(Duration::from_secs(10), |w| {
                w.node(b).connection_info(hb).is_some_and(|i| i.state == ConnectionState::ClosedByPeer)
            }));
            let info = s.world.node(b).connection_info(hb).unwrap();
            assert_eq!((info.end_reason, info.end_debug.as_str()), (EndReason(1001), "done"));
        }
    }
}

both! {
    fn merge_works_without_a_listen_socket_and_counts_timeout_from_the_connect() {
        let mut world = World::new(3, LinkConfig::ideal());
        let a = world.add_node(Config::new());
        let b = world.add_node(Config::new());
        let now = world.now;
        let ha = world.node(a).connect(now, LocalId(0), b, symmetric()).unwrap();
        let hb = world.node(b).connect(now, LocalId(0), a, symmetric()).unwrap();
        world.node(b).merge_incoming(now, hb, a).unwrap();
        assert!(world.run_until(Duration::from_secs(5), |w| {
            [(a, ha), (b, hb)].iter().all(|&(n, h)| {
                w.node(n).connection_info(h).is_some_and(|i| i.state == ConnectionState::Connected)
            })
        }));
        assert!(world.node(b).connection_info(hb).unwrap().listen_socket.is_none());

        // A merge that the peer never completes times out like any connect.
        let mut world = World::new(4, LinkConfig::ideal());
        let a = world.add_node(Config::new());
        let b = world.add_node(Config::new());
        let now = world.now;
        let hb = world.node(b).connect(now, LocalId(0), a, symmetric()).unwrap();
        world.node(b).merge_incoming(now, hb, a).unwrap();
        assert!(world.run_until(Duration::from_secs(30), |w| {
            w.node(b).connection_info(hb).is_some_and(|i| i.state == ConnectionState::ProblemDetectedLocally)
        }));
        let info = world.node(b).connection_info(hb).unwrap();
        assert_eq!(info.end_reason, EndReason::MISC_TIMEOUT);
        // Timed out 10 s (the default TimeoutInitial) after the connect, not after the merge.
        assert!(world.now <= lanewire_core::Instant::ZERO + Duration::from_millis(10_100), "{:?}", world.now);
        // Nothing was ever sent to A, which was not listening and has no state.
        assert!(world.node(a).connections().is_empty());
    }
}

both! {
    fn merge_is_refused_outside_the_handshake() {
        let mut s = Sym::new(5, LinkConfig::ideal(), 0);
        let (a, b, ha, hb) = (s.a, s.b, s.ha, s.hb);
        let now = s.world.now;
        s.world.node(b).merge_incoming(now, hb, a).unwrap();
        assert!(s.world.run_until(Duration::from_secs(5), |w| {
            w.node(a).connection_info(ha).is_some_and(|i| i.state == ConnectionState::Connected)
        }));
        let now = s.world.now;
        assert_eq!(s.world.node(a).merge_incoming(now, ha, b), Err(HandleError::InvalidState));
        assert_eq!(s.world.node(b).merge_incoming(now, hb, a), Err(HandleError::InvalidState));
        s.world.node(a).close(now, ha, EndReason(1000), "", false).unwrap();
        assert_eq!(s.world.node(a).merge_incoming(now, ha, b), Err(HandleError::InvalidHandle));
    }
}

both! {
    fn no_linger_on_symmetric_connections() {
        let mut s = Sym::new(6, LinkConfig::ideal(), 0);
        let (a, b, ha, hb) = (s.a, s.b, s.ha, s.hb);
        let now = s.world.now;
        s.world.node(b).merge_incoming(now, hb, a).unwrap();
        assert!(s.world.run_until(Duration::from_secs(5), |w| {
            w.node(b).connection_info(hb).is_some_and(|i| i.state == ConnectionState::Connected)
        }));
        // Queue reliable data on B (Nagle holds it) and close with linger: a symmetric
        // connection does not linger, so the data is dropped and the close goes out at once.
        let now = s.world.now;
        s.world.node(b).send(now, hb, &[7u8; 3000], SendFlags::RELIABLE).unwrap();
        s.world.node(b).close(now, hb, EndReason(1002), "bye", true).unwrap();
        assert!(s.world.run_until(Duration::from_secs(5), |w| {
            w.node(a).connection_info(ha).is_some_and(|i| i.state == ConnectionState::ClosedByPeer)
        }));
        assert!(receive_all(&mut s.world, a, ha).is_empty(), "no lingering delivery");
    }
}

both! {
    fn symmetric_claim_accepts_merges_or_refuses() {
        use lanewire_core::SymmetricClaim;
        // The peer's attempt has not arrived yet: the claim merges into it.
        let mut world = World::new(7, LinkConfig::ideal());
        let a = world.add_node(Config::new());
        let b = world.add_node(Config::new());
        let now = world.now;
        let ha = world.node(a).connect(now, LocalId(0), b, symmetric()).unwrap();
        let claim = world.node(b).symmetric_claim(now, LocalId(0), a, None, true, &symmetric());
        let Ok(SymmetricClaim::Merged(hb)) = claim else { panic!("{claim:?}") };
        assert!(world.run_until(Duration::from_secs(5), |w| {
            [(a, ha), (b, hb)].iter().all(|&(n, h)| {
                w.node(n).connection_info(h).is_some_and(|i| i.state == ConnectionState::Connected)
            })
        }));
        assert_eq!(world.node(b).connections(), vec![hb]);
        // A live connection: a second claim is a duplicate; a path we opened ourselves with
        // nothing on it is nothing.
        let now = world.now;
        let again = world.node(b).symmetric_claim(now, LocalId(0), a, Some(hb), true, &symmetric());
        assert_eq!(again, Ok(SymmetricClaim::Duplicate(hb)));
        let none = world.node(b).symmetric_claim(now, LocalId(0), a, None, false, &symmetric());
        assert_eq!(none, Ok(SymmetricClaim::Nothing));

        // The peer's connection waits to be accepted: the claim accepts it.
        let mut world = World::new(8, LinkConfig::ideal());
        let a = world.add_node(Config::new());
        let b = world.add_node(Config::new());
        world.node(b).create_listen_socket(LocalId(0), symmetric()).unwrap();
        let now = world.now;
        let ha = world.node(a).connect(now, LocalId(0), b, symmetric()).unwrap();
        assert!(world.run_until(Duration::from_secs(5), |w| w.node(b).connections().len() == 1));
        let waiting = world.node(b).connections()[0];
        let now = world.now;
        let claim = world.node(b).symmetric_claim(now, LocalId(0), a, Some(waiting), true, &symmetric());
        assert_eq!(claim, Ok(SymmetricClaim::Accepted(waiting)));
        assert!(world.run_until(Duration::from_secs(5), |w| {
            w.node(a).connection_info(ha).is_some_and(|i| i.state == ConnectionState::Connected)
        }));
        // Ended connections are nothing.
        let now = world.now;
        world.node(a).close(now, ha, EndReason(1000), "", false).unwrap();
        assert!(world.run_until(Duration::from_secs(5), |w| {
            w.node(b).connection_info(waiting).is_some_and(|i| i.state.is_ended())
        }));
        let now = world.now;
        let ended = world.node(b).symmetric_claim(now, LocalId(0), a, Some(waiting), true, &symmetric());
        assert_eq!(ended, Ok(SymmetricClaim::Nothing));
    }
}
