//! Shared helpers for the behaviour tests: self-checking messages and the random-message
//! stress driver.
#![allow(dead_code, unreachable_pub, missing_docs)]

use core::time::Duration;

use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{Pair, SimAddr, random_message};
use lanewire_core::{
    Config, ConfigKey, ConfigValue, ConnectionHandle, ConnectionState, Event, Message, Rng,
    SendFlags,
};

/// Runs a test on native (`#[test]`) and wasm32 (`wasm_bindgen_test`).
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        fn $name() $body
    };
}

pub use lanewire_core::sim::{check_message, make_message};

pub fn global_config(rate: i32) -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, rate).unwrap();
    c.set_i32(ConfigKey::SendRateMax, rate).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 4 * 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 100_000).unwrap();
    c
}

/// Per-direction bookkeeping of the stress test.
#[derive(Default, Debug)]
pub struct Side {
    pub sent_reliable: u64,
    pub sent_unreliable: u64,
    pub recv_reliable: u64,
    pub recv_unreliable: u64,
    pub last_unreliable: Option<u64>,
    pub bytes_received: u64,
}

pub struct Stress {
    pub pair: Pair,
    pub conns: [(SimAddr, ConnectionHandle); 2],
    pub sides: [Side; 2],
    rng: Rng,
    pub max_big: usize,
    pub big_chance: f64,
}

impl Stress {
    pub fn new(seed: u64, link: LinkConfig, rate: i32) -> Stress {
        let g = global_config(rate);
        let mut pair = Pair::new(seed, link, g, Config::new(), Config::new());
        assert!(pair.connect(Duration::from_secs(30)), "did not connect");
        let server_conn = pair.server_conn.unwrap();
        let conns = [(pair.client, pair.client_conn), (pair.server, server_conn)];
        Stress {
            pair,
            conns,
            sides: Default::default(),
            rng: Rng::seeded(seed ^ 0x5eed),
            max_big: 512 * 1024,
            big_chance: 0.01,
        }
    }

    fn pending(&mut self, side: usize) -> usize {
        let (node, conn) = self.conns[side];
        let now = self.pair.world.now;
        let q = self.pair.world.node(node).quick_status(now, conn).expect("alive");
        q.pending_reliable + q.pending_unreliable
    }

    /// Sends random messages from `side` while its queue has room.
    fn top_up(&mut self, side: usize) {
        let (node, conn) = self.conns[side];
        let buffer = 1024 * 1024;
        loop {
            let pending = self.pending(side);
            if pending + 16 * 1024 > buffer {
                break;
            }
            let max_big = self.max_big.min(buffer - pending - 1);
            let (reliable, len) = random_message(&mut self.rng, self.big_chance, max_big);
            if pending + len > buffer {
                break;
            }
            let s = &mut self.sides[side];
            let counter = if reliable { s.sent_reliable } else { s.sent_unreliable };
            let msg = make_message(reliable, counter, len);
            let flags = if reliable { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            let now = self.pair.world.now;
            self.pair
                .world
                .node(node)
                .send(now, conn, &msg, flags)
                .unwrap_or_else(|e| panic!("send failed below the buffer limit: {e}"));
            let s = &mut self.sides[side];
            if reliable {
                s.sent_reliable += 1;
            } else {
                s.sent_unreliable += 1;
            }
            if self.rng.chance(0.3) {
                break;
            }
        }
    }

    /// Receives and checks everything waiting at `side`.
    fn drain(&mut self, side: usize) {
        let (node, conn) = self.conns[side];
        let mut out: Vec<Message> = Vec::new();
        self.pair.world.node(node).receive(conn, usize::MAX, &mut out).expect("valid handle");
        let s = &mut self.sides[side];
        for m in out {
            let (reliable, counter) = check_message(&m.data);
            assert_eq!(reliable, m.reliable || m.data.len() > lanewire_core::MAX_UNRELIABLE_SIZE);
            s.bytes_received += m.data.len() as u64;
            if reliable {
                assert_eq!(counter, s.recv_reliable, "reliable message out of order or duplicated");
                s.recv_reliable += 1;
            } else {
                s.recv_unreliable += 1;
                if let Some(last) = s.last_unreliable {
                    assert_ne!(counter, last, "unreliable message duplicated");
                }
                s.last_unreliable = Some(counter);
            }
        }
        for (n, c) in self.conns {
            let st = self.pair.world.node(n).connection_info(c).map(|i| i.state);
            assert_eq!(
                st,
                Some(ConnectionState::Connected),
                "connection dropped: {:?}",
                self.pair.world.node(n).connection_info(c)
            );
        }
    }

    fn events_are_quiet(&mut self) {
        for (n, _) in self.conns {
            if let Some(Event::StatusChanged { old, info, .. }) =
                self.pair.world.node(n).poll_event()
            {
                panic!(
                    "unexpected state change {old:?} -> {:?}: {} {}",
                    info.state, info.end_reason, info.end_debug
                );
            }
        }
    }

    /// One active phase of `active` virtual time, then a quiet phase until every reliable
    /// message has arrived (bounded by `drain_limit`).
    pub fn phase(&mut self, active: Duration, drain_limit: Duration) {
        let tick = Duration::from_millis(10);
        let end = self.pair.world.now + active;
        while self.pair.world.now < end {
            self.top_up(0);
            self.top_up(1);
            self.pair.world.run_for(tick);
            self.drain(0);
            self.drain(1);
            self.events_are_quiet();
        }
        let deadline = self.pair.world.now + drain_limit;
        loop {
            self.pair.world.run_for(tick);
            self.drain(0);
            self.drain(1);
            self.events_are_quiet();
            let done = self.sides[0].recv_reliable == self.sides[1].sent_reliable
                && self.sides[1].recv_reliable == self.sides[0].sent_reliable;
            if done && self.pending(0) == 0 && self.pending(1) == 0 {
                break;
            }
            assert!(
                self.pair.world.now < deadline,
                "queues did not drain in the quiet phase: {:?} / {:?}",
                self.sides[0],
                self.sides[1]
            );
        }
    }

    pub fn set_config(&mut self, key: ConfigKey, v: ConfigValue) {
        for (n, _) in self.conns {
            self.pair.world.node(n).set_config(key, v.clone()).unwrap();
        }
    }
}

impl Stress {
    pub fn phase_tick_for_diag(&mut self) {
        self.top_up(0);
        self.top_up(1);
        let mut steps = 0;
        let end = self.pair.world.now + Duration::from_millis(10);
        while self.pair.world.now < end && steps < 200_000 {
            self.pair.world.step();
            steps += 1;
        }
        eprintln!("  steps {steps}");
        self.drain(0);
        self.drain(1);
    }
}
