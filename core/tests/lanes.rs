//! Lane scheduling, on the simulator, in virtual time: lanes of equal priority share a fixed
//! send rate in proportion to their weights while all of them are backlogged, and a lane of
//! higher priority (a lower number) goes first, strictly. The rate is set explicitly
//! (SendRateMin = SendRateMax), so the shares measured do not depend on the congestion
//! controller or the default rates.

mod common;

use core::time::Duration;

use common::{check_message, global_config, make_message};
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, Instant, Message, SendFlags};

/// The fixed send rate, bytes per second: the bottleneck of the path.
const RATE: i32 = 200_000;
/// Size of each reliable bulk message.
const MESSAGE: usize = 500;
/// Each lane's queue is topped up to at least this many unsent bytes, so no lane ever runs
/// dry and each one always competes.
const BACKLOG: usize = 24 * 1024;
/// Delivered bytes are counted from this long after the start (once the queues are full and
/// the pipe is steady)...
const WARM_UP: Duration = Duration::from_millis(300);
/// ...for this long: about 200 KB at [`RATE`], 400 messages.
const WINDOW: Duration = Duration::from_secs(1);

/// A connected pair over a 5 ms link (no loss: the shares are the scheduler's alone) with a
/// fixed rate and `priorities` / `weights` on the client's lanes.
fn pair(seed: u64, priorities: &[i32], weights: &[u16]) -> Pair {
    let link = LinkConfig { latency: Duration::from_millis(5), ..LinkConfig::ideal() };
    let mut p = Pair::new(seed, link, global_config(RATE), Config::new(), Config::new());
    assert!(p.connect(Duration::from_secs(5)), "did not connect");
    p.world.node(p.client).configure_lanes(p.client_conn, priorities, weights).unwrap();
    p
}

/// Sends from the client and receives at the server, lane by lane.
struct Lanes {
    p: Pair,
    /// Messages sent per lane (the next one's counter).
    sent: Vec<u64>,
    /// Messages received per lane, checked in order.
    got: Vec<u64>,
    /// Every received message: (lane, bytes, when it was complete).
    log: Vec<(u16, usize, Instant)>,
}

impl Lanes {
    fn new(p: Pair, lanes: usize) -> Lanes {
        Lanes { p, sent: vec![0; lanes], got: vec![0; lanes], log: Vec::new() }
    }

    /// Queues reliable bulk on `lane` until it has [`BACKLOG`] bytes unsent.
    fn top_up(&mut self, lane: usize) {
        let (c, cc) = (self.p.client, self.p.client_conn);
        loop {
            let now = self.p.world.now;
            let q = self.p.world.node(c).quick_status(now, cc).expect("alive");
            if q.lanes[lane].pending_reliable >= BACKLOG {
                return;
            }
            let m = make_message(true, self.sent[lane], MESSAGE);
            self.p
                .world
                .node(c)
                .send_on_lane(now, cc, lane as u16, &m, SendFlags::RELIABLE)
                .unwrap();
            self.sent[lane] += 1;
        }
    }

    /// Receives everything waiting at the server, checking each lane's order.
    fn drain(&mut self) {
        let (s, sc) = (self.p.server, self.p.server_conn.expect("accepted"));
        let mut out: Vec<Message> = Vec::new();
        self.p.world.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        for m in out {
            let lane = usize::from(m.lane);
            assert_eq!(check_message(&m.data).1, self.got[lane], "lane {lane} out of order");
            self.got[lane] += 1;
            self.log.push((m.lane, m.data.len(), m.received_at));
        }
    }

    /// Runs for `d` of virtual time, keeping the lanes in `backlogged` full and receiving
    /// everything, step by step.
    fn run(&mut self, d: Duration, backlogged: &[usize]) {
        let deadline = self.p.world.now + d;
        loop {
            for &lane in backlogged {
                self.top_up(lane);
            }
            self.drain();
            if self.p.world.now >= deadline {
                return;
            }
            if !self.p.world.step() {
                // Nothing scheduled at all: idle until the deadline.
                self.p.world.now = deadline;
            }
        }
    }

    /// Bytes received per lane among messages completed in `[from, to)`.
    fn bytes_between(&self, from: Instant, to: Instant) -> Vec<usize> {
        let mut bytes = vec![0; self.sent.len()];
        for &(lane, len, at) in &self.log {
            if at >= from && at < to {
                bytes[usize::from(lane)] += len;
            }
        }
        bytes
    }
}

/// Keeps every lane of a pair configured with equal priorities and `weights` backlogged, and
/// checks that each lane's share of the bytes delivered in the window is within 10 % of its
/// weight's share.
fn assert_shares_follow_weights(seed: u64, weights: &[u16]) {
    let n = weights.len();
    let mut l = Lanes::new(pair(seed, &vec![0; n], weights), n);
    let all: Vec<usize> = (0..n).collect();
    let start = l.p.world.now;
    l.run(WARM_UP + WINDOW + Duration::from_millis(100), &all);
    let bytes = l.bytes_between(start + WARM_UP, start + WARM_UP + WINDOW);
    let total: usize = bytes.iter().sum();
    // At least 80 % of the fixed rate got through: the lanes were really backlogged.
    let expected_total = RATE as f64 * WINDOW.as_secs_f64();
    assert!(
        total as f64 > 0.8 * expected_total,
        "only {total} bytes in {WINDOW:?} at {RATE} B/s: {bytes:?}"
    );
    println!("weights {weights:?}: bytes per lane in {WINDOW:?}: {bytes:?} ({total} in all)");
    let weight_sum: u32 = weights.iter().map(|&w| u32::from(w)).sum();
    for (lane, (&b, &w)) in bytes.iter().zip(weights).enumerate() {
        let share = b as f64 / total as f64;
        let want = f64::from(w) / f64::from(weight_sum);
        assert!(
            (share - want).abs() <= 0.1 * want,
            "weights {weights:?}: lane {lane} got {:.1} % of {total} bytes, its weight's share \
             is {:.1} % (bytes per lane: {bytes:?})",
            share * 100.0,
            want * 100.0
        );
    }
}

both! {
    fn equal_priority_lanes_share_by_weight_one_to_three() {
        assert_shares_follow_weights(81, &[1, 3]);
    }
}

both! {
    fn equal_priority_lanes_share_by_weight_one_one_two() {
        assert_shares_follow_weights(82, &[1, 1, 2]);
    }
}

both! {
    fn higher_priority_lane_goes_first() {
        // Lane 1 has the higher priority (lower number goes first); lane 0 is queued first,
        // so lane order or queueing order would send lane 0 first.
        let mut l = Lanes::new(pair(83, &[5, 0], &[1, 1]), 2);
        let (c, cc) = (l.p.client, l.p.client_conn);
        let now = l.p.world.now;
        for lane in [0u16, 1] {
            for i in 0..40 {
                let m = make_message(true, i, MESSAGE);
                l.p.world.node(c).send_on_lane(now, cc, lane, &m, SendFlags::RELIABLE).unwrap();
            }
            l.sent[usize::from(lane)] = 40;
        }
        l.run(Duration::from_secs(1), &[]);
        assert_eq!(l.got, [40, 40], "everything arrives");
        let last_high = l.log.iter().filter(|e| e.0 == 1).map(|e| e.2).max().unwrap();
        let first_low = l.log.iter().filter(|e| e.0 == 0).map(|e| e.2).min().unwrap();
        assert!(
            last_high <= first_low,
            "a lane-0 message arrived at {first_low:?}, before the last message of the \
             higher-priority lane 1 at {last_high:?}"
        );

        // Both backlogged: the higher-priority lane takes the whole rate, the other waits
        // (whatever its weight)...
        let mut l = Lanes::new(pair(84, &[5, 0], &[100, 1]), 2);
        let start = l.p.world.now;
        l.run(Duration::from_millis(700), &[0, 1]);
        let bytes = l.bytes_between(start, l.p.world.now);
        assert!(bytes[1] > 80_000, "the high-priority lane was backlogged: {bytes:?}");
        assert_eq!(bytes[0], 0, "the low-priority lane sent while a higher one had data");
        // ...and gets it once the higher-priority lane has nothing left to send.
        let idle = l.p.world.now + Duration::from_millis(300);
        l.run(Duration::from_millis(800), &[0]);
        let bytes = l.bytes_between(idle, l.p.world.now);
        assert!(bytes[0] > 80_000, "the low-priority lane did not take over the rate: {bytes:?}");
    }
}
