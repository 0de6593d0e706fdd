//! The random-message stress driver shared by the native stress tests (over UDP and over a
//! WebRTC data channel): self-checking messages (the core stress test's format), busy phases
//! that keep the send buffer nearly full, quiet phases that must drain.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::{Duration, Instant};

use crate::common::{check_message, make_message};
use lanewire::{Config, ConfigKey, ConnectionHandle, ConnectionState, SendFlags, Sockets};
/// The core's seeded RNG: deterministic message choices (timing is real, so runs still differ).
pub use lanewire_core::Rng;
use lanewire_core::sim::random_message;

#[derive(Default, Debug)]
pub struct Side {
    pub sent_reliable: u64,
    pub sent_unreliable: u64,
    pub recv_reliable: u64,
    pub recv_unreliable: u64,
    pub last_unreliable: Option<u64>,
    pub bytes_received: u64,
}

pub const BUFFER: usize = 1024 * 1024;

pub struct Stress {
    pub ends: [(Sockets, ConnectionHandle); 2],
    pub sides: [Side; 2],
    pub rng: Rng,
}

impl Stress {
    pub fn pending(&self, side: usize) -> usize {
        let (s, c) = &self.ends[side];
        let q = s.quick_status(*c).expect("alive");
        q.pending_reliable + q.pending_unreliable
    }

    pub fn top_up(&mut self, side: usize) {
        loop {
            let pending = self.pending(side);
            if pending + 16 * 1024 > BUFFER {
                break;
            }
            let max_big = (512 * 1024).min(BUFFER - pending - 1);
            let (reliable, len) = random_message(&mut self.rng, 0.01, max_big);
            if pending + len > BUFFER {
                break;
            }
            let s = &mut self.sides[side];
            let counter = if reliable { s.sent_reliable } else { s.sent_unreliable };
            let msg = make_message(reliable, counter, len);
            let flags = if reliable { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
            let (sock, conn) = &self.ends[side];
            sock.send(*conn, &msg, flags)
                .unwrap_or_else(|e| panic!("send failed below the buffer limit: {e}"));
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

    pub fn drain(&mut self, side: usize) {
        let (sock, conn) = &self.ends[side];
        let got = sock.receive(*conn, usize::MAX).expect("valid handle");
        let s = &mut self.sides[side];
        for m in got {
            let (reliable, counter) = check_message(m.data());
            assert_eq!(reliable, m.is_reliable() || m.data().len() > lanewire::MAX_UNRELIABLE_SIZE);
            s.bytes_received += m.data().len() as u64;
            if reliable {
                assert_eq!(counter, s.recv_reliable, "reliable message out of order or duplicated");
                s.recv_reliable += 1;
            } else {
                s.recv_unreliable += 1;
                assert_ne!(Some(counter), s.last_unreliable, "unreliable message duplicated");
                s.last_unreliable = Some(counter);
            }
        }
        for (sock, c) in &self.ends {
            let st = sock.connection_info(*c).map(|i| i.state);
            assert_eq!(st, Some(ConnectionState::Connected), "connection dropped");
            if let Some(e) = sock.events().next() {
                panic!("unexpected state change: {e:?}");
            }
        }
    }

    pub fn phase(&mut self, active: Duration, drain_limit: Duration) {
        let tick = Duration::from_millis(10);
        let end = Instant::now() + active;
        while Instant::now() < end {
            self.top_up(0);
            self.top_up(1);
            std::thread::sleep(tick);
            self.drain(0);
            self.drain(1);
        }
        let deadline = Instant::now() + drain_limit;
        loop {
            std::thread::sleep(tick);
            self.drain(0);
            self.drain(1);
            let done = self.sides[0].recv_reliable == self.sides[1].sent_reliable
                && self.sides[1].recv_reliable == self.sides[0].sent_reliable;
            if done && self.pending(0) == 0 && self.pending(1) == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "queues did not drain in the quiet phase: {:?} / {:?}",
                self.sides[0],
                self.sides[1]
            );
        }
    }

    /// One line of what each side sent and got, for the test log; `names` are the two ends.
    pub fn summary(&self, names: [&str; 2]) -> String {
        let [a, b] = &self.sides;
        format!(
            "{} got {} reliable / {} unreliable ({} B), {} got {} / {} ({} B); sent {}/{} and {}/{}",
            names[0],
            a.recv_reliable,
            a.recv_unreliable,
            a.bytes_received,
            names[1],
            b.recv_reliable,
            b.recv_unreliable,
            b.bytes_received,
            a.sent_reliable,
            a.sent_unreliable,
            b.sent_reliable,
            b.sent_unreliable,
        )
    }

    /// Both directions carried real traffic: over 50 reliable messages each way, and more than
    /// 60 % of the unreliable ones (the links lose some).
    pub fn assert_delivered(&self) {
        let s = &self.sides;
        assert!(s[0].recv_reliable > 50 && s[1].recv_reliable > 50, "{s:?}");
        for side in 0..2 {
            let sent = s[1 - side].sent_unreliable as f64;
            let got = s[side].recv_unreliable as f64;
            assert!(got > 0.6 * sent, "unreliable delivery {got}/{sent}");
        }
    }
}

impl Stress {
    /// A server and a client `Sockets` on 127.0.0.1, both with `global`, connected, their
    /// connect events consumed, and the stress state between them (client first).
    pub fn over_loopback(global: Config, seed: u64) -> Stress {
        let server = Sockets::with_config(global.clone()).unwrap();
        let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
        let addr = server.listen_socket_address(l).unwrap();
        let client = Sockets::with_config(global).unwrap();
        let (c, s) = crate::common::connect(&server, &client, addr, Config::new());
        server.events().for_each(drop);
        client.events().for_each(drop);
        Stress {
            ends: [(client, c), (server, s)],
            sides: Default::default(),
            rng: Rng::seeded(seed),
        }
    }
}

/// Global config of both ends: a fixed 1 MB/s rate, large buffers, and the conditioner adding
/// `loss_pct` % loss, `lag_ms` of lag and 2 % reordering by `lag_ms` in each direction.
pub fn impaired_global(loss_pct: f32, lag_ms: i32) -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, 1_000_000).unwrap();
    c.set_i32(ConfigKey::SendRateMax, 1_000_000).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, BUFFER as i32).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 4 * 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 100_000).unwrap();
    c.set_f32(ConfigKey::FakePacketLossSend, loss_pct).unwrap();
    c.set_i32(ConfigKey::FakePacketLagSend, lag_ms).unwrap();
    c.set_f32(ConfigKey::FakePacketReorderSend, 2.0).unwrap();
    c.set_i32(ConfigKey::FakePacketReorderTime, lag_ms).unwrap();
    c
}
