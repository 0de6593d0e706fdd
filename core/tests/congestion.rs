//! Congestion control on the simulator: bulk flows through a bottleneck with a finite queue
//! (`LinkConfig::rate` and `queue_bytes`), seeded and in virtual time. Each test states the
//! property it checks in its assertion message, with the figures measured.

mod common;

use core::time::Duration;

use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{SimAddr, World, check_message, make_message};
use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, Event, Instant, LocalId, Message,
    SendFlags,
};

/// Bytes per second of `mbit` megabits per second.
fn mbit(mbit: f64) -> u64 {
    (mbit * 1_000_000.0 / 8.0) as u64
}

/// One connection of the bottleneck world: the client's and the server's handles.
#[derive(Clone, Copy)]
struct Flow {
    client: ConnectionHandle,
    server: ConnectionHandle,
}

/// A client and a server; the client -> server direction has the bottleneck.
struct Bottleneck {
    world: World,
    client: SimAddr,
    server: SimAddr,
    flows: Vec<Flow>,
    /// Payload bytes each flow's server received.
    received: Vec<u64>,
    /// Messages each flow sent and received (bulk, checked in order).
    sent_msgs: Vec<u64>,
    recv_msgs: Vec<u64>,
    /// Whether each flow keeps its send buffer full.
    bulk: Vec<bool>,
    /// Queueing delay samples, one per millisecond.
    queue_samples: Vec<Duration>,
    next_sample: Instant,
}

const BULK_MESSAGE: usize = 64 * 1024;

impl Bottleneck {
    /// `flows` connections (with these per-connection `CongestionControl` values) through a
    /// bottleneck of `rate` B/s with `rtt` of base round trip and `queue` bytes of buffer.
    fn new(seed: u64, rate: u64, rtt: Duration, queue: usize, controllers: &[i32]) -> Self {
        let mut world = World::new(seed, LinkConfig::ideal());
        let mut global = Config::new();
        global.set_i32(ConfigKey::SendBufferSize, 4 * 1024 * 1024).unwrap();
        let client = world.add_node(global.clone());
        let server = world.add_node(global);
        let forward =
            LinkConfig { latency: rtt / 2, rate, queue_bytes: queue, ..LinkConfig::ideal() };
        let back = LinkConfig { latency: rtt / 2, ..LinkConfig::ideal() };
        world.set_link(client, server, forward);
        world.set_link(server, client, back);
        world.node(server).create_listen_socket(LocalId(0), Config::new()).unwrap();
        let mut clients = Vec::new();
        for &cc in controllers {
            let mut c = Config::new();
            c.set_i32(ConfigKey::CongestionControl, cc).unwrap();
            let now = world.now;
            clients.push(world.node(client).connect(now, LocalId(0), server, c).unwrap());
        }
        let mut servers = Vec::new();
        let ok = world.run_until(Duration::from_secs(10), |w| {
            let now = w.now;
            while let Some(Event::StatusChanged { conn, info, .. }) = w.node(server).poll_event() {
                if info.state == ConnectionState::Connecting {
                    w.node(server).accept(now, conn).unwrap();
                    servers.push(conn);
                }
            }
            while w.node(client).poll_event().is_some() {}
            servers.len() == clients.len()
                && clients.iter().all(|&c| {
                    w.node(client).connection_info(c).unwrap().state == ConnectionState::Connected
                })
        });
        assert!(ok, "flows did not connect");
        // Each flow pairs a client handle with a server handle; which is which does not matter
        // to these tests (every flow has the same role), only that each flow is one connection.
        let flows: Vec<Flow> =
            clients.iter().zip(&servers).map(|(&c, &s)| Flow { client: c, server: s }).collect();
        let n = flows.len();
        let now = world.now;
        Bottleneck {
            world,
            client,
            server,
            flows,
            received: vec![0; n],
            sent_msgs: vec![0; n],
            recv_msgs: vec![0; n],
            bulk: vec![true; n],
            queue_samples: Vec::new(),
            next_sample: now,
        }
    }

    /// Runs for `d`: bulk flows keep 1 MiB queued, every server reads everything.
    fn run(&mut self, d: Duration) {
        self.run_with(d, |_| {});
    }

    /// As [`Bottleneck::run`], calling `each` at every step too.
    fn run_with(&mut self, d: Duration, mut each: impl FnMut(&mut World)) {
        let (c, s) = (self.client, self.server);
        let flows = self.flows.clone();
        let Bottleneck {
            world,
            received,
            sent_msgs,
            recv_msgs,
            bulk,
            queue_samples,
            next_sample,
            ..
        } = self;
        world.run_until(d, |w| {
            let now = w.now;
            for (i, f) in flows.iter().enumerate() {
                if bulk[i] {
                    let q = w.node(c).quick_status(now, f.client).unwrap();
                    let mut pending = q.pending_reliable;
                    while pending < 1024 * 1024 {
                        let m = make_message(true, sent_msgs[i], BULK_MESSAGE);
                        w.node(c).send(now, f.client, &m, SendFlags::RELIABLE).unwrap();
                        sent_msgs[i] += 1;
                        pending += BULK_MESSAGE;
                    }
                }
                let mut out: Vec<Message> = Vec::new();
                w.node(s).receive(f.server, usize::MAX, &mut out).unwrap();
                for m in out {
                    if m.lane == 0 && m.reliable {
                        assert_eq!(check_message(&m.data).1, recv_msgs[i], "bulk out of order");
                        recv_msgs[i] += 1;
                    }
                    received[i] += m.data.len() as u64;
                }
            }
            while *next_sample <= now {
                queue_samples.push(w.queue_delay(c, s));
                *next_sample += Duration::from_millis(1);
            }
            each(w);
            false
        });
    }

    /// Bytes the bottleneck carried so far.
    fn carried(&self) -> u64 {
        self.world.link_stats(self.client, self.server).map_or(0, |s| s.carried_bytes)
    }

    fn total_received(&self) -> u64 {
        self.received.iter().sum()
    }
}

/// The `p`-th percentile of `v`.
fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

/// Jain's fairness index of `x`.
fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    sum * sum / (x.len() as f64 * sq)
}

/// One bulk flow, default config: >= 85 % of the bottleneck within 5 s, queueing delay p95
/// <= 25 ms, for a buffer of one bandwidth-delay product.
fn single_flow(rate_mbit: f64, rtt_ms: u64) {
    let rate = mbit(rate_mbit);
    let rtt = Duration::from_millis(rtt_ms);
    let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
    let mut b = Bottleneck::new(rtt_ms ^ rate, rate, rtt, bdp.max(3000), &[0]);
    b.run(Duration::from_secs(4));
    let (carried, got) = (b.carried(), b.total_received());
    b.queue_samples.clear();
    b.run(Duration::from_secs(2));
    let secs = 2.0;
    let util = (b.carried() - carried) as f64 / (rate as f64 * secs);
    let goodput = (b.total_received() - got) as f64 / (rate as f64 * secs);
    let p95 = percentile(&mut b.queue_samples, 0.95);
    let now = b.world.now;
    let status = b.world.node(b.client).detailed_status(now, b.flows[0].client).unwrap();
    println!(
        "{rate_mbit} Mbit/s, {rtt_ms} ms: utilisation {util:.3}, goodput {goodput:.3}, queue p95 {p95:?}"
    );
    assert!(
        util >= 0.85,
        "{rate_mbit} Mbit/s {rtt_ms} ms: utilisation {util:.3} in 4-6 s\n{status}"
    );
    assert!(
        p95 <= Duration::from_millis(25),
        "{rate_mbit} Mbit/s {rtt_ms} ms: queueing delay p95 {p95:?}\n{status}"
    );
}

both! {
    fn fills_1_mbit_s_at_20_and_100_ms() {
        single_flow(1.0, 20);
        single_flow(1.0, 100);
    }
}

both! {
    fn fills_5_mbit_s_at_20_and_100_ms() {
        single_flow(5.0, 20);
        single_flow(5.0, 100);
    }
}

both! {
    fn fills_50_mbit_s_at_20_and_100_ms() {
        single_flow(50.0, 20);
        single_flow(50.0, 100);
    }
}

both! {
    fn follows_the_capacity_down_and_up() {
        let rate = mbit(20.0);
        let rtt = Duration::from_millis(40);
        let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
        let mut b = Bottleneck::new(3, rate, rtt, bdp, &[0]);
        b.run(Duration::from_secs(5));
        // Halve the capacity.
        let half = LinkConfig { latency: rtt / 2, rate: rate / 2, queue_bytes: bdp / 2, ..LinkConfig::ideal() };
        b.world.set_link(b.client, b.server, half.clone());
        let mut above_at = Duration::ZERO;
        let start = b.world.now;
        let (c, cc) = (b.client, b.flows[0].client);
        b.run_with(Duration::from_secs(3), |w| {
            let now = w.now;
            let q = w.node(c).quick_status(now, cc).unwrap();
            // The pacing rate above the new capacity (ProbeBW's probe phase may briefly be).
            if q.bandwidth_estimate_bytes_per_sec > rate / 2 * 11 / 10 {
                above_at = now - start;
            }
        });
        println!("halved: estimate above the new capacity until {above_at:?}");
        assert!(
            above_at <= Duration::from_secs(1),
            "the estimate stayed above the halved capacity until {above_at:?}"
        );
        // Double it again (back to 20 Mbit/s): 90 % within 5 s.
        let full = LinkConfig { latency: rtt / 2, rate, queue_bytes: bdp, ..LinkConfig::ideal() };
        b.world.set_link(b.client, b.server, full);
        b.run(Duration::from_secs(4));
        let carried = b.carried();
        b.run(Duration::from_secs(1));
        let util = (b.carried() - carried) as f64 / rate as f64;
        println!("doubled: utilisation {util:.3} in 4-5 s");
        assert!(util >= 0.9, "after doubling, utilisation {util:.3} in 4-5 s");
    }
}

both! {
    fn random_loss_of_2_percent_keeps_70_percent() {
        let rate = mbit(50.0);
        let rtt = Duration::from_millis(20);
        let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
        let mut b = Bottleneck::new(7, rate, rtt, bdp, &[0]);
        let lossy = LinkConfig { latency: rtt / 2, rate, queue_bytes: bdp, loss: 0.02, ..LinkConfig::ideal() };
        b.world.set_link(b.client, b.server, lossy);
        b.run(Duration::from_secs(3));
        let got = b.total_received();
        b.run(Duration::from_secs(3));
        let goodput = (b.total_received() - got) as f64 / (rate as f64 * 3.0);
        println!("2 % random loss: goodput {goodput:.3}");
        assert!(goodput >= 0.70, "goodput {goodput:.3} of 50 Mbit/s through 2 % random loss");
    }
}

/// Shares of the bottleneck over the last `window` of a `total` run.
fn shares(b: &mut Bottleneck, total: Duration, window: Duration) -> Vec<f64> {
    b.run(total - window);
    let before = b.received.clone();
    b.run(window);
    b.received.iter().zip(&before).map(|(a, z)| (a - z) as f64).collect()
}

both! {
    fn two_and_four_flows_share_fairly() {
        for n in [2usize, 4] {
            let rate = mbit(20.0);
            let rtt = Duration::from_millis(40);
            let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
            let mut b = Bottleneck::new(11 + n as u64, rate, rtt, bdp, &vec![0; n]);
            let s = shares(&mut b, Duration::from_secs(20), Duration::from_secs(5));
            let j = jain(&s);
            println!("{n} flows: Jain's index {j:.3}");
            assert!(j >= 0.9, "{n} flows: Jain's index {j:.3} over 15-20 s, bytes {s:?}");
        }
    }
}

both! {
    fn holds_its_own_against_a_loss_based_flow() {
        let rate = mbit(20.0);
        let rtt = Duration::from_millis(40);
        let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
        let mut b = Bottleneck::new(21, rate, rtt, bdp, &[0, 1]);
        let s = shares(&mut b, Duration::from_secs(20), Duration::from_secs(10));
        let share = s[0] / (s[0] + s[1]);
        println!("share against NewReno: {share:.3}");
        assert!(
            (0.25..=0.75).contains(&share),
            "Lanewire's share against NewReno {share:.3} over 10-20 s, bytes {s:?}"
        );
    }
}

both! {
    fn a_latency_lane_stays_fast_under_bulk() {
        // Lane 0 (priority 0): 200 B unreliable at 60 Hz with its send time; lane 1
        // (priority 1): a 16 MiB reliable transfer. 5 Mbit/s, 100 KB buffer, 40 ms RTT.
        let rate = mbit(5.0);
        let rtt = Duration::from_millis(40);
        let mut b = Bottleneck::new(31, rate, rtt, 100_000, &[0]);
        b.bulk[0] = false;
        let (c, s, f) = (b.client, b.server, b.flows[0]);
        let now = b.world.now;
        b.world.node(c).configure_lanes(f.client, &[0, 1], &[1, 1]).unwrap();
        const BULK: u64 = 16 * 1024 * 1024;
        let (mut bulk_sent, mut bulk_got, mut next_tick) = (0u64, 0u64, now);
        let mut delays = Vec::new();
        let start = now;
        let mut done_at = None;
        b.world.run_until(Duration::from_secs(60), |w| {
            let now = w.now;
            while bulk_sent < BULK {
                let q = w.node(c).quick_status(now, f.client).unwrap();
                if q.pending_reliable > 1024 * 1024 {
                    break;
                }
                let m = make_message(true, bulk_sent / BULK_MESSAGE as u64, BULK_MESSAGE);
                w.node(c).send_on_lane(now, f.client, 1, &m, SendFlags::RELIABLE).unwrap();
                bulk_sent += BULK_MESSAGE as u64;
            }
            if now >= next_tick {
                next_tick += Duration::from_micros(16_667);
                let mut m = vec![0u8; 200];
                m[..8].copy_from_slice(&now.as_micros().to_le_bytes());
                w.node(c).send_on_lane(now, f.client, 0, &m, SendFlags::UNRELIABLE_NO_NAGLE).unwrap();
            }
            let mut out: Vec<Message> = Vec::new();
            w.node(s).receive(f.server, usize::MAX, &mut out).unwrap();
            for m in out {
                if m.lane == 0 {
                    let sent = u64::from_le_bytes(m.data[..8].try_into().unwrap());
                    // Only while bulk runs.
                    if bulk_got < BULK {
                        let d = Duration::from_micros(m.received_at.as_micros() - sent);
                        delays.push(d);
                    }
                } else {
                    bulk_got += m.data.len() as u64;
                }
            }
            if bulk_got >= BULK && done_at.is_none() {
                done_at = Some(now - start);
            }
            done_at.is_some()
        });
        let took = done_at.expect("the bulk transfer did not complete in 60 s");
        let base = rtt / 2;
        let p99 = percentile(&mut delays, 0.99);
        let bulk_share = BULK as f64 / took.as_secs_f64() / rate as f64;
        println!("mixed lanes: 60 Hz one-way p99 {p99:?} (base {base:?}), bulk {bulk_share:.3}");
        assert!(
            p99 <= base + Duration::from_millis(30),
            "60 Hz lane one-way delay p99 {p99:?} (base {base:?}) under bulk"
        );
        assert!(bulk_share >= 0.8, "bulk goodput {bulk_share:.3} of capacity ({took:?})");
    }
}

both! {
    fn a_burst_after_a_long_app_limited_period_is_fast() {
        // 60 s of 60 Hz small messages, then 3 MiB at once, on 30 Mbit/s with 40 ms RTT.
        let rate = mbit(30.0);
        let rtt = Duration::from_millis(40);
        let bdp = (rate as u128 * rtt.as_micros() / 1_000_000) as usize;
        let mut b = Bottleneck::new(41, rate, rtt, bdp, &[0]);
        b.bulk[0] = false;
        let (c, f) = (b.client, b.flows[0]);
        let mut next_tick = b.world.now;
        b.run_with(Duration::from_secs(60), |w| {
            let now = w.now;
            if now >= next_tick {
                next_tick += Duration::from_micros(16_667);
                w.node(c).send(now, f.client, &[7u8; 100], SendFlags::UNRELIABLE).unwrap();
            }
        });
        let got = b.total_received();
        let now = b.world.now;
        let start = now;
        for i in 0..48u64 {
            let m = make_message(true, i, BULK_MESSAGE);
            b.world.node(c).send(now, f.client, &m, SendFlags::RELIABLE).unwrap();
        }
        b.sent_msgs[0] = 48;
        let target = got + 48 * BULK_MESSAGE as u64;
        let mut took = None;
        let s = b.server;
        let mut received = got;
        b.world.run_until(Duration::from_secs(10), |w| {
            let mut out: Vec<Message> = Vec::new();
            w.node(s).receive(f.server, usize::MAX, &mut out).unwrap();
            received += out.iter().map(|m| m.data.len() as u64).sum::<u64>();
            if received >= target && took.is_none() {
                took = Some(w.now - start);
            }
            took.is_some()
        });
        let took = took.expect("the burst did not complete in 10 s");
        println!("3 MiB burst after 60 s app-limited: {took:?}");
        assert!(took <= Duration::from_millis(1500), "3 MiB after 60 s app-limited took {took:?}");
    }
}
