//! The core's random-message stress test over a WebRTC data channel between two native
//! peers that found each other through the real signaling server, with the link conditioner
//! adding 5 % loss, 20 ms lag and 2 % reordering on top: both sides send a random mix of
//! reliable (20 B to 10 KB, some up to 512 KiB) and unreliable (20 B to 2 KB) messages in
//! busy phases separated by quiet ones. Every reliable message arrives exactly once, in order,
//! byte-identical; every unreliable one that arrives is intact; the connection never drops;
//! queues drain in the quiet phases. The message format is the core stress test's
//! (`tests/common`).
#![cfg(feature = "webrtc")]

mod common;
mod p2p_common;

use std::time::{Duration, Instant};

use common::{check_message, make_message};
use lanewire::{Config, ConfigKey, ConnectionHandle, ConnectionState, SendFlags, Sockets};
use p2p_common::{SignalingServer, connect_p2p, sig_config};

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
    c.set_f32(ConfigKey::FakePacketLossSend, 5.0).unwrap();
    c.set_i32(ConfigKey::FakePacketLagSend, 20).unwrap();
    c.set_f32(ConfigKey::FakePacketReorderSend, 2.0).unwrap();
    c.set_i32(ConfigKey::FakePacketReorderTime, 20).unwrap();
    c
}

#[test]
fn random_messages_over_the_data_channel() {
    let started = Instant::now();
    let server = SignalingServer::start();
    let url = server.url();
    let alice = Sockets::with_config(impaired_global()).unwrap();
    alice.connect_signaling(sig_config(&url, "str:alice")).unwrap();
    let bob = Sockets::with_config(impaired_global()).unwrap();
    bob.connect_signaling(sig_config(&url, "str:bob")).unwrap();
    bob.listen_p2p(0, Config::new()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 0, Config::new());
    alice.events().for_each(drop);
    bob.events().for_each(drop);
    let mut st = Stress {
        ends: [(alice.clone(), c), (bob.clone(), s)],
        sides: Default::default(),
        rng: Rng(0x5eed_1234_abcd_0002),
    };
    for _ in 0..3 {
        st.phase(Duration::from_secs(3), Duration::from_secs(60));
    }
    let q = alice.quick_status(c).unwrap();
    let stats = (alice.p2p_stats(), bob.p2p_stats());
    println!(
        "{:?}: alice got {} reliable / {} unreliable ({} B), bob got {} / {} ({} B); \
         sent {}/{} and {}/{}; ping {} ms, quality {:.3}/{:.3}; transport {:?}",
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
        stats,
    );
    assert!(st.sides[0].recv_reliable > 50 && st.sides[1].recv_reliable > 50, "{:?}", st.sides);
    for side in 0..2 {
        let sent = st.sides[1 - side].sent_unreliable as f64;
        let got = st.sides[side].recv_unreliable as f64;
        assert!(got > 0.6 * sent, "unreliable delivery {got}/{sent}");
    }
    assert!((30..150).contains(&q.ping_ms), "ping {} ms with 20 ms lag each way", q.ping_ms);
}
