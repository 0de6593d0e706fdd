//! The core's random-message stress test, over real UDP on 127.0.0.1 with the link
//! conditioner set to 10 % loss, 50 ms lag and 2 % reordering in each direction: both sides
//! send a random mix of reliable (20 B to 10 KB, some up to 512 KiB) and unreliable (20 B to
//! 2 KB) messages in busy phases separated by quiet ones. Every reliable message arrives
//! exactly once, in order, byte-identical; every unreliable one that arrives is intact; the
//! connection never drops; queues drain in the quiet phases.

mod common;

use std::time::{Duration, Instant};

use common::{check_message, connect, make_message};
use lanewire::{Config, ConfigKey, ConnectionHandle, ConnectionState, SendFlags, Sockets};

#[derive(Default, Debug)]
struct Side {
    sent_reliable: u64,
    sent_unreliable: u64,
    recv_reliable: u64,
    recv_unreliable: u64,
    last_unreliable: Option<u64>,
    bytes_received: u64,
}

/// xorshift64*: deterministic message choices (timing is real, so runs still differ).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

const BUFFER: usize = 1024 * 1024;

struct Stress {
    ends: [(Sockets, ConnectionHandle); 2],
    sides: [Side; 2],
    rng: Rng,
}

impl Stress {
    fn pending(&self, side: usize) -> usize {
        let (s, c) = &self.ends[side];
        let q = s.quick_status(*c).expect("alive");
        q.pending_reliable + q.pending_unreliable
    }

    fn top_up(&mut self, side: usize) {
        loop {
            let pending = self.pending(side);
            if pending + 16 * 1024 > BUFFER {
                break;
            }
            let reliable = self.rng.chance(0.6);
            let len = if reliable {
                if self.rng.chance(0.01) {
                    let max = (512 * 1024).min(BUFFER - pending - 1);
                    self.rng.range(10_000, max.max(10_001) as u64) as usize
                } else {
                    self.rng.range(20, 10_000) as usize
                }
            } else {
                self.rng.range(20, 2000) as usize
            };
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

    fn drain(&mut self, side: usize) {
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

    fn phase(&mut self, active: Duration, drain_limit: Duration) {
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
}

fn impaired_global() -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, 1_000_000).unwrap();
    c.set_i32(ConfigKey::SendRateMax, 1_000_000).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, BUFFER as i32).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 4 * 1024 * 1024).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 100_000).unwrap();
    c.set_f32(ConfigKey::FakePacketLossSend, 10.0).unwrap();
    c.set_i32(ConfigKey::FakePacketLagSend, 50).unwrap();
    c.set_f32(ConfigKey::FakePacketReorderSend, 2.0).unwrap();
    c.set_i32(ConfigKey::FakePacketReorderTime, 50).unwrap();
    c
}

#[test]
fn loss_10_lag_50_reorder_2_over_udp() {
    let started = Instant::now();
    let server = Sockets::with_config(impaired_global()).unwrap();
    let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
    let addr = server.listen_socket_address(l).unwrap();
    let client = Sockets::with_config(impaired_global()).unwrap();
    let (c, s) = connect(&server, &client, addr, Config::new());
    server.events().for_each(drop);
    client.events().for_each(drop);
    let mut st = Stress {
        ends: [(client.clone(), c), (server.clone(), s)],
        sides: Default::default(),
        rng: Rng(0x5eed_1234_abcd_0001),
    };
    for _ in 0..2 {
        st.phase(Duration::from_secs(2), Duration::from_secs(60));
    }
    let q = client.quick_status(c).unwrap();
    println!(
        "{:?}: client got {} reliable / {} unreliable ({} B), server got {} / {} ({} B); \
         sent {}/{} and {}/{}; ping {} ms, quality {:.3}/{:.3}",
        started.elapsed(),
        st.sides[0].recv_reliable,
        st.sides[0].recv_unreliable,
        st.sides[0].bytes_received,
        st.sides[1].recv_reliable,
        st.sides[1].recv_unreliable,
        st.sides[1].bytes_received,
        st.sides[0].sent_reliable,
        st.sides[0].sent_unreliable,
        st.sides[1].sent_reliable,
        st.sides[1].sent_unreliable,
        q.ping_ms,
        q.quality_local,
        q.quality_remote,
    );
    assert!(st.sides[0].recv_reliable > 50 && st.sides[1].recv_reliable > 50, "{:?}", st.sides);
    // About 10 % of unreliable messages are lost (more for multi-packet ones), not most.
    for side in 0..2 {
        let sent = st.sides[1 - side].sent_unreliable as f64;
        let got = st.sides[side].recv_unreliable as f64;
        assert!(got > 0.6 * sent, "unreliable delivery {got}/{sent}");
    }
    assert!((90..200).contains(&q.ping_ms), "ping {} ms with 50 ms lag each way", q.ping_ms);
}
