//! Path MTU discovery on the simulator: packets start at 1200 bytes and probes find what the
//! path carries, up to `MtuPacketSize`; a path that silently drops large datagrams (a tunnel, a
//! VPN, a route change) makes the connection fall back and search again instead of timing out.

mod common;

use core::time::Duration;

use common::{check_message, global_config, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConnectionState, SendFlags};

/// Keeps `n` reliable 3000-byte messages flowing client -> server for up to `limit`, checking
/// order; calls `each` every step with the largest datagram the client sent so far.
fn transfer(p: &mut Pair, n: u64, limit: Duration) -> bool {
    let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
    let now = p.world.now;
    for i in 0..n {
        p.world.node(c).send(now, cc, &make_message(true, i, 3000), SendFlags::RELIABLE).unwrap();
    }
    let mut got = 0;
    p.world.run_until(limit, |w| {
        let mut out = Vec::new();
        w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        for m in out {
            assert_eq!(check_message(&m.data).1, got);
            got += 1;
        }
        got == n
    })
}

/// The largest datagram the client sent since `from` (from the captured traffic).
fn largest_sent(p: &Pair, from: usize) -> usize {
    p.world.captured[from..]
        .iter()
        .filter(|(f, _, _)| *f == p.client)
        .map(|(_, _, d)| d.len())
        .max()
        .unwrap_or(0)
}

both! {
    fn mtu_black_hole_falls_back_to_small_packets() {
        let link = LinkConfig { mtu: 1232, latency: Duration::from_millis(20), loss: 0.02, ..LinkConfig::ideal() };
        let mut p = Pair::new(31, link, global_config(500_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)), "handshake packets are 512 bytes: they pass");
        assert!(transfer(&mut p, 200, Duration::from_secs(30)), "not all of 200 arrived through the black hole");
        let (c, cc) = (p.client, p.client_conn);
        assert_eq!(p.world.node(c).connection_info(cc).unwrap().state, ConnectionState::Connected);
    }
}

both! {
    fn a_1500_byte_path_reaches_full_size_packets_within_a_second() {
        // A 1,500-byte Ethernet path carries 1,472 bytes of UDP payload (IPv4); the default
        // MtuPacketSize is 1,452 (what IPv6 carries), the upper bound of the search.
        let link = LinkConfig {
            mtu: 1472,
            latency: Duration::from_millis(20),
            rate: 500_000,
            queue_bytes: 40_000,
            ..LinkConfig::ideal()
        };
        let mut g = Config::new();
        g.set_i32(lanewire_core::ConfigKey::SendBufferSize, 1 << 20).unwrap();
        let mut p = Pair::new(32, link, g, Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        p.world.capture = true;
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        for i in 0..300 {
            p.world.node(c).send(now, cc, &make_message(true, i, 3000), SendFlags::RELIABLE).unwrap();
        }
        let mut got = 0;
        let mut read = |w: &mut lanewire_core::sim::World| {
            let mut out = Vec::new();
            w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
            for m in out {
                assert_eq!(check_message(&m.data).1, got);
                got += 1;
            }
            got == 300
        };
        assert!(!p.world.run_until(Duration::from_secs(1), &mut read), "300 x 3000 B outlast a second");
        let largest = largest_sent(&p, 0);
        let now = p.world.now;
        let status = p.world.node(c).detailed_status(now, cc).unwrap();
        assert!(largest >= 1400, "largest packet in the first second: {largest} B\n{status}");
        assert!(p.world.run_until(Duration::from_secs(10), &mut read));
    }
}

both! {
    fn a_path_whose_mtu_drops_recovers_within_3_s() {
        let link = LinkConfig { mtu: 1472, latency: Duration::from_millis(20), ..LinkConfig::ideal() };
        let mut p = Pair::new(33, link.clone(), global_config(2_000_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        assert!(transfer(&mut p, 200, Duration::from_secs(10)));
        // The route changes to a tunnel that carries 1,280 bytes at most, both ways.
        let tunnel = LinkConfig { mtu: 1280, ..link };
        let (c, s) = (p.client, p.server);
        p.world.set_link(c, s, tunnel.clone());
        p.world.set_link(s, c, tunnel);
        let start = p.world.now;
        assert!(transfer(&mut p, 300, Duration::from_secs(20)), "stalled after the MTU dropped");
        let (cc, sc) = (p.client_conn, p.server_conn.unwrap());
        for (n, h) in [(c, cc), (s, sc)] {
            assert_eq!(p.world.node(n).connection_info(h).unwrap().state, ConnectionState::Connected);
        }
        let took = p.world.now - start;
        // 300 x 3000 B at 2 MB/s is 0.45 s of sending: the rest is recovery.
        assert!(took <= Duration::from_secs(3), "recovery and transfer took {took:?}");
    }
}
