//! A path that silently drops datagrams above 1232 bytes (a tunnel, a VPN): full-size packets
//! vanish, so the connection must notice and fall back to smaller packets instead of timing
//! out.

mod common;

use core::time::Duration;

use common::{check_message, global_config, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConnectionState, SendFlags};

both! {
    fn mtu_black_hole_falls_back_to_small_packets() {
        let link = LinkConfig { mtu: 1232, latency: Duration::from_millis(20), loss: 0.02, ..LinkConfig::ideal() };
        let mut p = Pair::new(31, link, global_config(500_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)), "handshake packets are 512 bytes: they pass");
        let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
        let now = p.world.now;
        for i in 0..200 {
            p.world.node(c).send(now, cc, &make_message(true, i, 3000), SendFlags::RELIABLE).unwrap();
        }
        let mut got = 0;
        let done = p.world.run_until(Duration::from_secs(30), |w| {
            let mut out = Vec::new();
            w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
            for m in out {
                assert_eq!(check_message(&m.data).1, got);
                got += 1;
            }
            got == 200
        });
        assert!(done, "only {got} of 200 arrived through the black hole");
        assert_eq!(p.world.node(c).connection_info(cc).unwrap().state, ConnectionState::Connected);
    }
}
