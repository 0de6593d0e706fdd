//! Address changes: a NAT rebinding mid-transfer loses nothing, and an address an attacker puts
//! on a copy of a genuine packet is neither followed for good nor sent more than three times
//! what came from it (path validation, `conn/path.rs`).

mod common;

use core::time::Duration;

use common::{check_message, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{Pair, SimAddr};
use lanewire_core::{Config, ConnectionState, Message, SendFlags};

/// Sends `count` reliable 2000-byte messages (and an unreliable one beside every fourth),
/// calling `at_half` once when half the reliable ones arrived; checks order, returns when all
/// arrived (or panics after 30 s).
fn transfer(p: &mut Pair, count: u64, mut at_half: impl FnMut(&mut Pair)) {
    let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.unwrap());
    let (mut sent, mut got, mut halfway) = (0u64, 0u64, false);
    let deadline = p.world.now + Duration::from_secs(30);
    while got < count {
        assert!(p.world.now < deadline, "only {got} of {count} arrived");
        let now = p.world.now;
        while sent < count && sent < got + 64 {
            let m = make_message(true, sent, 2000);
            p.world.node(c).send(now, cc, &m, SendFlags::RELIABLE).unwrap();
            if sent % 4 == 0 {
                let u = make_message(false, sent, 300);
                p.world.node(c).send(now, cc, &u, SendFlags::UNRELIABLE).unwrap();
            }
            sent += 1;
        }
        p.world.step();
        let mut out: Vec<Message> = Vec::new();
        p.world.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        for m in out {
            let (reliable, counter) = check_message(&m.data);
            if reliable {
                assert_eq!(counter, got, "out of order");
                got += 1;
            }
        }
        if !halfway && got >= count / 2 {
            halfway = true;
            at_half(p);
        }
    }
    for (n, h) in [(c, cc), (s, sc)] {
        assert_eq!(p.world.node(n).connection_info(h).unwrap().state, ConnectionState::Connected);
    }
}

both! {
    fn a_nat_rebinding_mid_transfer_loses_nothing() {
        let link = LinkConfig { latency: Duration::from_millis(15), loss: 0.02, ..LinkConfig::ideal() };
        let mut p = Pair::new(51, link, Config::new(), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let new_addr = SimAddr(1000);
        transfer(&mut p, 400, |p| p.world.rebind(p.client, new_addr));
        let sc = p.server_conn.unwrap();
        let info = p.world.node(p.server).connection_info(sc).unwrap();
        assert_eq!(info.remote, new_addr, "the server follows the client to its new address");
        let now = p.world.now;
        let status = p.world.node(p.server).detailed_status(now, sc).unwrap();
        assert!(status.contains("path: moved 1 times, gave up 0\n"), "{status}");
    }
}

both! {
    fn a_spoofed_address_change_is_not_followed_or_amplified() {
        // An attacker on the path copies a genuine packet and delivers it first, from a third
        // party's address (9000, which belongs to nobody here).
        let link = LinkConfig { latency: Duration::from_millis(30), ..LinkConfig::ideal() };
        let mut p = Pair::new(52, link, Config::new(), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        p.world.capture = true;
        let victim = SimAddr(9000);
        let mut injected = 0;
        transfer(&mut p, 300, |p| {
            let c = p.client;
            let (from, to, data) = p
                .world
                .captured
                .iter()
                .rev()
                .find(|(f, _, d)| *f == c && d[0] & 0x80 != 0)
                .cloned()
                .expect("a data packet of the client's in flight");
            assert_eq!(from, c);
            let mut copy = data.clone();
            injected = copy.len() as u64;
            p.world.inject(victim, to, &mut copy);
        });
        let (s, sc) = (p.server, p.server_conn.unwrap());
        let info = p.world.node(s).connection_info(sc).unwrap();
        assert_eq!(info.remote, p.client, "back at the genuine address");
        let to_victim = p.world.link_stats(s, victim).map_or(0, |l| l.sent_bytes);
        assert!(injected > 0);
        let now = p.world.now;
        let status = p.world.node(s).detailed_status(now, sc).unwrap();
        println!("to the spoofed address: {to_victim} B for {injected} B\n{status}");
        assert!(status.contains("path: moved 1 times"), "the copy was taken for a move: {status}");
        assert!(to_victim > 0, "the spoofed address was challenged");
        assert!(
            to_victim <= 3 * injected,
            "{to_victim} bytes went to the spoofed address for the {injected} that came from it"
        );
    }
}
