//! Bad input at a live server: a burst of random, truncated, bit-flipped and replayed
//! datagrams, from another socket and from the real client's own address, leaves the
//! existing connection working and creates no connection state.
//!
//! The client reaches the server through a small relay in the test, which records real
//! datagrams of both directions for the replays.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{WAIT, accept_one, ping, wait_state};
use lanewire::{Config, ConnectionState, Sockets};

/// Forwards between one client and `server`, recording the first datagrams.
struct Relay {
    socket: Arc<UdpSocket>,
    recorded: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        socket.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, r, st) = (socket.clone(), recorded.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
                let to = if from == server {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client.get_or_insert(from);
                    server
                };
                let mut rec = r.lock().unwrap();
                if rec.len() < 400 {
                    rec.push(buf[..n].to_vec());
                }
                drop(rec);
                let _ = s.send_to(&buf[..n], to);
            }
        });
        Relay { socket, recorded, stop, thread: Some(thread) }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// splitmix64, for reproducible junk.
fn junk(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn junk_and_replays_leave_connections_working() {
    let (server, _l, addr) = common::listen("127.0.0.1:0", Config::new());
    let relay = Relay::start(addr);
    let client = Sockets::new().unwrap();
    let c = client.connect_ip(relay.socket.local_addr().unwrap(), Config::new()).unwrap();
    let s = accept_one(&server, WAIT);
    wait_state(&client, c, ConnectionState::Connected, WAIT);
    wait_state(&server, s, ConnectionState::Connected, WAIT);
    for _ in 0..20 {
        ping(&client, c, &server, s);
    }
    let recorded = relay.recorded.lock().unwrap().clone();
    assert!(recorded.len() > 20, "relay recorded {}", recorded.len());
    server.events().for_each(drop);
    let conns_before = server.stats().connections;

    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut seed = 7u64;
    let mut sent = 0u64;
    let mut send = |sock: &UdpSocket, d: &[u8]| {
        let _ = sock.send_to(d, addr);
        sent += 1;
        if sent.is_multiple_of(200) {
            // Let the server's socket buffer drain so the burst is processed, not dropped.
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // Random datagrams of every size, including the data and control flag bits.
    for _ in 0..3000 {
        let len = (junk(&mut seed) % 1501) as usize;
        let d: Vec<u8> = (0..len).map(|_| junk(&mut seed) as u8).collect();
        send(&attacker, &d);
    }
    for d in &recorded {
        // Replayed whole from another address, truncated at every few bytes, and bit-flipped.
        send(&attacker, d);
        for cut in (0..d.len()).step_by(7) {
            send(&attacker, &d[..cut]);
        }
        let mut flipped = d.clone();
        let i = (junk(&mut seed) as usize) % flipped.len().max(1);
        if let Some(b) = flipped.get_mut(i) {
            *b ^= 1 << (junk(&mut seed) % 8);
        }
        send(&attacker, &flipped);
        // Replayed from the real client's address (the relay's): duplicates of real packets.
        let _ = relay.socket.send_to(d, addr);
        let mut flipped_from_relay = d.clone();
        if let Some(b) = flipped_from_relay.last_mut() {
            *b ^= 0x80;
        }
        let _ = relay.socket.send_to(&flipped_from_relay, addr);
    }
    std::thread::sleep(Duration::from_millis(200));

    // The connection works, nothing new exists, nothing happened that the app must see.
    for _ in 0..5 {
        ping(&client, c, &server, s);
    }
    assert_eq!(server.connection_info(s).unwrap().state, ConnectionState::Connected);
    assert_eq!(client.connection_info(c).unwrap().state, ConnectionState::Connected);
    let stats = server.stats();
    assert_eq!(stats.connections, conns_before, "junk created connection state: {stats:?}");
    let events: Vec<_> = server.events().collect();
    assert!(events.is_empty(), "junk produced events: {events:?}");
    let e = &stats.endpoint;
    println!("sent {sent} junk datagrams; server endpoint counters: {e:?}");
    assert!(e.malformed + e.unknown_connection + e.dropped_by_connection + e.bad_cookie > 1000);
}
