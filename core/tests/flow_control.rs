//! Flow control: the receiver's credit bounds what the sender sends, so a sender faster than
//! the path or the receiver slows down instead of locking up.
//!
//! The first test is the W5 benchmark workload that used to stall for good: 16 MiB in 64 KiB
//! reliable messages at a fixed 100 MB/s, with 5 % loss and 10 ms of lag each way. Before flow
//! control, the receiver refused every packet that reached past its reassembly window, and a
//! packet that carried the retransmission filling a gap together with such data was refused
//! whole, again and again: 0 of 256 messages after 120 s, the connection still `Connected`.

mod common;

use core::time::Duration;

use common::{check_message, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConfigKey, ConnectionState, Message, SendFlags};

/// Sends `count` reliable messages of `size` bytes from the client as the send buffer allows,
/// reads them on the server every step (or every `read_every` of virtual time), and returns
/// the virtual time the transfer took, or `None` if it did not finish within `limit`.
fn transfer(
    p: &mut Pair,
    count: u64,
    size: usize,
    limit: Duration,
    read_every: Duration,
) -> Option<Duration> {
    let (c, s, cc, sc) = (p.client, p.server, p.client_conn, p.server_conn.expect("accepted"));
    let start = p.world.now;
    let (mut sent, mut got) = (0u64, 0u64);
    let mut next_read = start;
    let done = p.world.run_until(limit, |w| {
        let now = w.now;
        while sent < count {
            match w.node(c).send(now, cc, &make_message(true, sent, size), SendFlags::RELIABLE) {
                Ok(_) => sent += 1,
                Err(_) => break, // send buffer full: later
            }
        }
        if now >= next_read {
            next_read = now + read_every;
            let mut out: Vec<Message> = Vec::new();
            w.node(s).receive(sc, usize::MAX, &mut out).expect("valid handle");
            for m in out {
                assert_eq!(check_message(&m.data).1, got, "reliable message out of order");
                got += 1;
            }
        }
        for (n, h) in [(c, cc), (s, sc)] {
            let state = w.node(n).connection_info(h).map(|i| i.state);
            assert_eq!(state, Some(ConnectionState::Connected));
        }
        got == count
    });
    done.then(|| p.world.now - start)
}

fn fixed_rate(rate: i32) -> Config {
    let mut g = Config::new();
    g.set_i32(ConfigKey::SendRateMin, rate).unwrap();
    g.set_i32(ConfigKey::SendRateMax, rate).unwrap();
    g.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).unwrap();
    g
}

both! {
    fn w5_livelock_fixed_100_mb_s_with_loss_and_lag_completes() {
        let link = LinkConfig {
            latency: Duration::from_millis(10),
            loss: 0.05,
            ..LinkConfig::ideal()
        };
        let mut p = Pair::new(5, link, fixed_rate(100_000_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let took = transfer(&mut p, 256, 64 * 1024, Duration::from_secs(60), Duration::ZERO);
        let took = took.expect("16 MiB at a fixed 100 MB/s through 5 % loss did not complete");
        let (c, cc) = (p.client, p.client_conn);
        let now = p.world.now;
        let q = p.world.node(c).quick_status(now, cc).unwrap();
        assert_eq!(q.send_rate_bytes_per_sec, 100_000_000, "the fixed rate is kept");
        let refused = p.world.node(p.server).stats().refused_by_connection;
        assert_eq!(refused, 0, "an honest sender never goes beyond the credit");
        // 16 MiB through a 1 MiB-per-lane credit and 20 ms of RTT: bounded by the credit, not
        // by the rate, but it moves.
        assert!(took < Duration::from_secs(20), "took {took:?}");
    }
}

both! {
    fn a_slow_reader_slows_the_sender_down_without_loss_or_refusal() {
        // The application reads only every 200 ms: the sender must wait for credit, not
        // flood the receiver until it refuses packets.
        let link = LinkConfig { latency: Duration::from_millis(5), ..LinkConfig::ideal() };
        let mut p = Pair::new(9, link, fixed_rate(50_000_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let took = transfer(&mut p, 64, 100_000, Duration::from_secs(30), Duration::from_millis(200));
        assert!(took.is_some(), "the transfer stalled");
        let stats = p.world.node(p.server).stats();
        assert_eq!(stats.refused_by_connection, 0);
        let now = p.world.now;
        let q = p.world.node(p.client).quick_status(now, p.client_conn).unwrap();
        // The sender held back: nothing it sent was wasted on a receiver without room.
        assert_eq!(q.bytes_retransmitted, 0, "{q:?}");
    }
}

both! {
    fn lost_credit_updates_are_said_again() {
        // Heavy loss on the path back: the frames that carry new credit are lost often, and
        // the transfer must still finish (limits are said again when their packet is lost).
        let mut p = Pair::new(13, LinkConfig::ideal(), fixed_rate(20_000_000), Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let back = LinkConfig { loss: 0.4, latency: Duration::from_millis(15), ..LinkConfig::ideal() };
        p.world.set_link(p.server, p.client, back);
        let took = transfer(&mut p, 48, 128 * 1024, Duration::from_secs(60), Duration::ZERO);
        assert!(took.is_some(), "stalled waiting for credit");
    }
}

both! {
    fn a_peer_beyond_its_credit_is_refused_without_losing_data() {
        // A receive buffer of 4 KiB still grants 1 MiB per lane (two largest messages), and a
        // 512 KiB message goes through.
        let mut g = fixed_rate(10_000_000);
        g.set_i32(ConfigKey::RecvBufferSize, 4096).unwrap();
        let mut p = Pair::new(17, LinkConfig::ideal(), g, Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let took = transfer(&mut p, 6, 512 * 1024, Duration::from_secs(30), Duration::ZERO);
        assert!(took.is_some());
    }
}

both! {
    fn w5_with_default_config_is_fast() {
        // The same workload with the default config (congestion control on, credit from the
        // default receive buffer): the benchmark's goal is >= 30 MB/s.
        let link = LinkConfig {
            latency: Duration::from_millis(10),
            loss: 0.05,
            ..LinkConfig::ideal()
        };
        let mut g = Config::new();
        g.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).unwrap();
        let mut p = Pair::new(5, link, g, Config::new(), Config::new());
        assert!(p.connect(Duration::from_secs(10)));
        let took = transfer(&mut p, 256, 64 * 1024, Duration::from_secs(60), Duration::ZERO)
            .expect("did not complete");
        let rate = 16.0 * 1024.0 * 1024.0 / took.as_secs_f64() / 1e6;
        let now = p.world.now;
        let status = p.world.node(p.client).detailed_status(now, p.client_conn).unwrap();
        let dropped = p.world.link_stats(p.client, p.server).map_or(0, |s| s.lost_random);
        println!("W5 default config in the simulator: {rate:.1} MB/s; link dropped {dropped}\n{status}");
        assert!(rate >= 30.0, "{rate:.1} MB/s\n{status}");
    }
}
