//! Per-connection transmit pause (`Endpoint::set_transmit_paused`), on the simulator: a paused
//! connection sends nothing and keeps its reliable data queued, its timers do not spin, the
//! endpoint's other connections go on, and on resuming everything arrives in order.

mod common;

use core::time::Duration;

use common::{check_message, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{SimAddr, World};
use lanewire_core::{
    Config, ConnectionHandle, ConnectionState, Event, HandleError, LocalId, Message, SendFlags,
};

/// A server and two clients, each connection accepted and connected.
fn star(seed: u64) -> (World, SimAddr, [(SimAddr, ConnectionHandle); 2]) {
    let mut world = World::new(seed, LinkConfig { loss: 0.05, ..LinkConfig::ideal() });
    let server = world.add_node(Config::new());
    world.node(server).create_listen_socket(LocalId(0), Config::new()).unwrap();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let c = world.add_node(Config::new());
        let now = world.now;
        let h = world.node(c).connect(now, LocalId(0), server, Config::new()).unwrap();
        clients.push((c, h));
    }
    let ok = world.run_until(Duration::from_secs(10), |w| {
        let now = w.now;
        while let Some(Event::StatusChanged { conn, info, .. }) = w.node(server).poll_event() {
            if info.state == ConnectionState::Connecting && info.listen_socket.is_some() {
                w.node(server).accept(now, conn).unwrap();
            }
        }
        clients.iter().all(|&(c, h)| {
            w.node(c).connection_info(h).is_some_and(|i| i.state == ConnectionState::Connected)
        })
    });
    assert!(ok, "connected");
    (world, server, [clients[0], clients[1]])
}

/// Everything the server has received, by the client it came from.
fn drain_server(w: &mut World, server: SimAddr, got: &mut Vec<(SimAddr, Message)>) {
    for conn in w.node(server).connections() {
        let remote = w.node(server).connection_info(conn).unwrap().remote;
        let mut out = Vec::new();
        w.node(server).receive(conn, usize::MAX, &mut out).unwrap();
        got.extend(out.into_iter().map(|m| (remote, m)));
    }
}

both! {
    fn a_paused_connection_keeps_its_data_and_the_others_go_on() {
        let (mut world, server, [(c1, h1), (c2, h2)]) = star(3);
        let now = world.now;
        world.node(c1).set_transmit_paused(now, h1, true).unwrap();
        for i in 0..40 {
            world.node(c1).send(now, h1, &make_message(true, i, 900), SendFlags::RELIABLE).unwrap();
            world.node(c2).send(now, h2, &make_message(true, i, 900), SendFlags::RELIABLE).unwrap();
        }
        // Two seconds paused (well inside TimeoutConnected): the other client's messages all
        // arrive, the paused one's stay queued. The simulator's livelock guard would stop a
        // timer that fires without progress.
        let mut got = Vec::new();
        world.run_for(Duration::from_secs(2));
        drain_server(&mut world, server, &mut got);
        assert_eq!(got.iter().filter(|(from, _)| *from == c2).count(), 40);
        assert_eq!(got.iter().filter(|(from, _)| *from == c1).count(), 0);
        let now = world.now;
        let q = world.node(c1).quick_status(now, h1).unwrap();
        assert!(q.pending_reliable >= 40 * 900, "queued: {q:?}");
        assert_eq!(world.node(c1).connection_info(h1).unwrap().state, ConnectionState::Connected);

        // Resumed: all of it, in order and intact.
        world.node(c1).set_transmit_paused(now, h1, false).unwrap();
        let ok = world.run_until(Duration::from_secs(10), |w| {
            drain_server(w, server, &mut got);
            got.iter().filter(|(from, _)| *from == c1).count() == 40
        });
        assert!(ok, "delivered after resuming");
        let from_c1: Vec<_> = got.iter().filter(|(from, _)| *from == c1).collect();
        for (i, (_, m)) in from_c1.iter().enumerate() {
            assert_eq!(check_message(&m.data), (true, i as u64));
        }
    }
}

both! {
    fn pausing_needs_a_valid_handle_and_survives_closing() {
        let (mut world, _server, [(c1, h1), _]) = star(4);
        let now = world.now;
        world.node(c1).set_transmit_paused(now, h1, true).unwrap();
        world.node(c1).close(now, h1, lanewire_core::EndReason(1000), "", false).unwrap();
        // The closing connection can still be resumed (its close goes out), then it is freed.
        world.node(c1).set_transmit_paused(now, h1, false).unwrap();
        world.run_for(Duration::from_secs(10));
        let now = world.now;
        assert_eq!(
            world.node(c1).set_transmit_paused(now, h1, true),
            Err(HandleError::InvalidHandle)
        );
    }
}
