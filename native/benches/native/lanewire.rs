//! Lanewire's side of the benchmark: two `Sockets` instances (server and client, each with
//! its IO thread) in this process, the server's application loop on its own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanewire::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, EndReason, SendError, SendFlags, Sockets,
};

use crate::{
    BULK_MSG, Flood, IMPAIRED_MSG, LAG_MS, LOSS_PCT, Latency, Row, Sizes, attempt, best_flood,
    best_latency, best_rate, bulk, check_bulk, heap, percentiles, seq_of, set_seq, small,
};

const WAIT: Duration = Duration::from_secs(10);

/// Global config for the unimpaired workloads: the send rate bounds raised to the maximum
/// (the reference's default is a fixed 256 KiB/s), large queues at both ends.
fn fast() -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, i32::MAX).unwrap();
    c.set_i32(ConfigKey::SendRateMax, i32::MAX).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, 16 << 20).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 256 << 20).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 4_000_000).unwrap();
    c
}

struct Pair {
    server: Sockets,
    client: Sockets,
    s: ConnectionHandle,
    c: ConnectionHandle,
}

fn pair(server_cfg: Config, client_cfg: Config, via: Option<SocketAddr>) -> (Pair, SocketAddr) {
    let server = Sockets::with_config(server_cfg).unwrap();
    let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
    let addr = server.listen_socket_address(l).unwrap();
    let client = Sockets::with_config(client_cfg).unwrap();
    let c = client.connect_ip(via.unwrap_or(addr), Config::new()).unwrap();
    let deadline = Instant::now() + WAIT;
    let s = loop {
        assert!(Instant::now() < deadline, "no incoming connection");
        if let Some(ev) = server.wait_event(Duration::from_millis(100))
            && ev.is_incoming()
        {
            server.accept(ev.conn).unwrap();
            break ev.conn;
        }
    };
    let up =
        |x: &Sockets, h| x.connection_info(h).map(|i| i.state) == Some(ConnectionState::Connected);
    while !(up(&client, c) && up(&server, s)) {
        assert!(Instant::now() < deadline, "not connected");
        std::thread::sleep(Duration::from_millis(1));
    }
    (Pair { server, client, s, c }, addr)
}

pub fn run(works: &[&str], sizes: Sizes) -> Row {
    let mut row = Row::default();
    let n = &mut row.notes;
    for w in works {
        match *w {
            "w1" => {
                // Unreliable data has no flow control and the core no congestion control
                // yet: a flood at an unlimited rate overruns the receiver's socket buffer.
                // Like a game, W1 sets the send rate (GNS's default is a fixed rate too).
                row.w1 = best_flood(n, "W1", || flood(sizes.flood, false, Some(W1_RATE)));
                if let Some(f) = attempt(n, "W1 unlimited", || flood(sizes.flood, false, None)) {
                    n.push(format!(
                        "W1 at SendRate {} MB/s; at an unlimited rate: {:.2} M msg/s, {:.1} % delivered",
                        W1_RATE / 1_000_000,
                        f.rate() / 1e6,
                        f.delivered_pct()
                    ));
                }
            }
            "w2" => row.w2 = best_flood(n, "W2", || flood(sizes.flood, true, None)),
            "w3" => {
                row.w3 =
                    best_rate(n, "W3", || bulk_transfer(fast(), sizes.bulk_bytes, BULK_MSG, None))
            }
            "w4" => row.w4 = best_latency(n, "W4", || ping_pong(sizes.round_trips)),
            "w5" => {
                // Default config: only the impairment is set; congestion control finds the rate.
                let c = Config::new();
                row.w5 = attempt(n, "W5", || {
                    bulk_transfer(impaired(c.clone()), sizes.impaired_bytes, IMPAIRED_MSG, None)
                });
                row.w5_relay = attempt(n, "W5 via relay", || {
                    bulk_transfer(c, sizes.impaired_bytes, IMPAIRED_MSG, Some(()))
                });
                // The workload that used to lock up for good: a fixed 100 MB/s through the same
                // impairment (flow control keeps it moving; the fixed rate is kept).
                let mut fixed = fast();
                fixed.set_i32(ConfigKey::SendRateMin, 100_000_000).unwrap();
                fixed.set_i32(ConfigKey::SendRateMax, 100_000_000).unwrap();
                if let Some(v) = attempt(n, "W5 fixed 100 MB/s", || {
                    bulk_transfer(impaired(fixed), sizes.impaired_bytes, IMPAIRED_MSG, None)
                }) {
                    n.push(format!(
                        "W5 at a fixed 100 MB/s (SendRateMin = SendRateMax): {v:.1} MB/s"
                    ));
                }
            }
            "w7" => {
                row.w7 = best_rate(n, "W7", || {
                    bulk_transfer(Config::new(), sizes.bulk_bytes, BULK_MSG, None)
                })
            }
            "w8" => row.w8 = attempt(n, "W8", || (lane_latency(false), lane_latency(true))),
            "w6" => row.w6 = attempt(n, "W6", || memory(sizes.connections)),
            _ => {}
        }
    }
    row
}

/// `c` with W5's impairment on the client's sends (loss and lag; the server's sends get the
/// same through its own `Sockets`, which share the global config).
fn impaired(mut c: Config) -> Config {
    c.set_f32(ConfigKey::FakePacketLossSend, LOSS_PCT as f32).unwrap();
    c.set_i32(ConfigKey::FakePacketLagSend, LAG_MS as i32).unwrap();
    c
}

/// W8: lane 0 (priority 0) carries 200 B unreliable messages at 60 Hz for 3 s, each with its
/// send time; with `bulk`, lane 1 (priority 1) carries 64 KiB reliable messages as fast as the
/// default config goes meanwhile. One-way latency of lane 0 (client and server share this
/// process's clock).
fn lane_latency(bulk: bool) -> Latency {
    let (p, _) = pair(Config::new(), Config::new(), None);
    p.client.configure_lanes(p.c, &[0, 1], &[1, 1]).unwrap();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (server, s, stop) = (p.server.clone(), p.s, stop.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for m in server.receive_timeout(s, 256, Duration::from_millis(20)).unwrap() {
                    if m.lane == 0 {
                        let sent = epoch + Duration::from_micros(seq_of(m.data()));
                        lat.push(m.received_at.saturating_duration_since(sent).as_secs_f64() * 1e6);
                    }
                }
            }
            lat
        })
    };
    let bulk_thread = bulk.then(|| {
        let (client, c, stop) = (p.client.clone(), p.c, stop.clone());
        std::thread::spawn(move || {
            let m = vec![0x5au8; IMPAIRED_MSG];
            while !stop.load(Ordering::Relaxed) {
                match client.send_on_lane(c, 1, &m, SendFlags::RELIABLE) {
                    Ok(_) => {}
                    Err(SendError::LimitExceeded) => std::thread::sleep(Duration::from_micros(200)),
                    Err(e) => panic!("send: {e}"),
                }
            }
        })
    });
    let start = Instant::now();
    let mut tick = 0u32;
    while start.elapsed() < Duration::from_secs(3) {
        let at = start + Duration::from_micros(16_667) * tick;
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut m = [0u8; 200];
        m[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_le_bytes());
        p.client.send_on_lane(p.c, 0, &m, SendFlags::UNRELIABLE_NO_NAGLE).unwrap();
        tick += 1;
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = bulk_thread {
        t.join().unwrap();
    }
    let lat = receiver.join().unwrap();
    assert!(lat.len() > 150, "only {} of 180 lane-0 messages arrived", lat.len());
    percentiles(lat)
}

/// W1 / W2: the client sends 64 B messages as fast as the API takes them for `dur`; the
/// server counts (and for reliable, checks the order of) what arrives.
/// W1's send rate, bytes per second (about 2.6 M messages of 64 B per second with headers).
const W1_RATE: i32 = 200_000_000;

fn flood(dur: Duration, reliable: bool, rate: Option<i32>) -> Flood {
    let mut cfg = fast();
    if let Some(r) = rate {
        cfg.set_i32(ConfigKey::SendRateMin, r).unwrap();
        cfg.set_i32(ConfigKey::SendRateMax, r).unwrap();
    }
    let (p, _) = pair(cfg.clone(), cfg, None);
    let stop = Arc::new(AtomicBool::new(false));
    let in_window = Arc::new(AtomicU64::new(0));
    let window_open = Arc::new(AtomicBool::new(true));
    let receiver = {
        let (server, s, stop, in_window, window_open) =
            (p.server.clone(), p.s, stop.clone(), in_window.clone(), window_open.clone());
        std::thread::spawn(move || {
            let mut got = 0u64;
            let mut out = Vec::with_capacity(4096);
            loop {
                out.clear();
                let msgs = server.receive_timeout(s, 4096, Duration::from_millis(20)).unwrap();
                if msgs.is_empty() && stop.load(Ordering::Relaxed) {
                    return got;
                }
                for m in &msgs {
                    if reliable {
                        assert_eq!(seq_of(m.data()), got, "reliable flood out of order");
                    }
                    got += 1;
                }
                if window_open.load(Ordering::Relaxed) {
                    in_window.store(got, Ordering::Relaxed);
                }
                out.extend(msgs);
            }
        })
    };
    let flags = if reliable { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        for _ in 0..256 {
            match p.client.send(p.c, &small(sent), flags) {
                Ok(_) => sent += 1,
                Err(SendError::LimitExceeded) => {
                    std::thread::yield_now();
                    break;
                }
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    window_open.store(false, Ordering::Relaxed);
    // Drain: unreliable stragglers for a moment, reliable until all arrived.
    let drain_until = Instant::now()
        + if reliable { Duration::from_secs(30) } else { Duration::from_millis(500) };
    while Instant::now() < drain_until {
        let q = p.client.quick_status(p.c).unwrap();
        if q.pending_reliable + q.pending_unreliable + q.sent_unacked_reliable == 0 {
            std::thread::sleep(Duration::from_millis(100));
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let received = receiver.join().unwrap();
    Flood { sent, received_in_window: in_window.load(Ordering::Relaxed), received, secs }
}

/// W3 / W5: `total` bytes in `msg`-byte reliable messages; MB/s from the first send to the
/// last byte received. `relay`: through the loss/lag relay instead of the conditioner.
pub fn bulk_transfer(cfg: Config, total: usize, msg: usize, relay: Option<()>) -> f64 {
    let (p, _relay) = if relay.is_some() {
        let server = Sockets::with_config(cfg.clone()).unwrap();
        let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
        let addr = server.listen_socket_address(l).unwrap();
        let relay = crate::impair::Relay::start(addr, crate::LOSS_PCT, crate::LAG_MS);
        let client = Sockets::with_config(cfg).unwrap();
        let c = client.connect_ip(relay.addr(), Config::new()).unwrap();
        let mut s = None;
        let deadline = Instant::now() + WAIT;
        while s.is_none() {
            assert!(Instant::now() < deadline, "no incoming connection");
            if let Some(ev) = server.wait_event(Duration::from_millis(100))
                && ev.is_incoming()
            {
                server.accept(ev.conn).unwrap();
                s = Some(ev.conn);
            }
        }
        let s = s.unwrap();
        while client.connection_info(c).map(|i| i.state) != Some(ConnectionState::Connected) {
            assert!(Instant::now() < deadline, "not connected");
            std::thread::sleep(Duration::from_millis(1));
        }
        (Pair { server, client, s, c }, Some(relay))
    } else {
        (pair(cfg.clone(), cfg, None).0, None)
    };
    let count = total / msg;
    let receiver = {
        let (server, s) = (p.server.clone(), p.s);
        std::thread::spawn(move || {
            let mut got = 0u64;
            let deadline = Instant::now() + Duration::from_secs(120);
            while (got as usize) < count {
                assert!(Instant::now() < deadline, "bulk stalled at {got} of {count}");
                for m in server.receive_timeout(s, 64, Duration::from_millis(100)).unwrap() {
                    check_bulk(m.data(), got, msg);
                    got += 1;
                }
            }
            Instant::now()
        })
    };
    let mut m = bulk(0, msg);
    let start = Instant::now();
    for i in 0..count as u64 {
        set_seq(&mut m, i);
        loop {
            match p.client.send(p.c, &m, SendFlags::RELIABLE) {
                Ok(_) => break,
                Err(SendError::LimitExceeded) => std::thread::sleep(Duration::from_micros(200)),
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    let end = receiver.join().unwrap();
    let _ = p.client.close(p.c, EndReason(0), "", false);
    total as f64 / (end - start).as_secs_f64() / 1e6
}

/// W4: the client sends 64 B, the server's loop sends it back; both block in
/// `receive_timeout` between messages.
fn ping_pong(n: usize) -> Latency {
    let (p, _) = pair(fast(), fast(), None);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let (server, s, stop) = (p.server.clone(), p.s, stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for m in server.receive_timeout(s, 16, Duration::from_millis(50)).unwrap() {
                    server.send(s, m.data(), SendFlags::RELIABLE_NO_NAGLE).unwrap();
                }
            }
        })
    };
    let mut rtts = Vec::with_capacity(n);
    for i in 0..(n + 200) as u64 {
        let t = Instant::now();
        p.client.send(p.c, &small(i), SendFlags::RELIABLE_NO_NAGLE).unwrap();
        let got = p.client.receive_timeout(p.c, 1, WAIT).unwrap();
        let m = got.into_iter().next().unwrap_or_else(|| panic!("no echo in {WAIT:?}"));
        assert_eq!(seq_of(m.data()), i);
        if i >= 200 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    percentiles(rtts)
}

/// W6: heap per connection end with `n` connections up (client and server in this process).
fn memory(n: usize) -> f64 {
    let server = Sockets::new().unwrap();
    let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
    let addr = server.listen_socket_address(l).unwrap();
    let client = Sockets::new().unwrap();
    // Bind the client socket and let both IO threads allocate their buffers first.
    let (a, b) = client.socket_pair(true).unwrap();
    client.close(a, EndReason(0), "", false).unwrap();
    client.close(b, EndReason(0), "", false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = heap();
    let conns: Vec<_> = (0..n).map(|_| client.connect_ip(addr, Config::new()).unwrap()).collect();
    let mut accepted = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted < n {
        assert!(Instant::now() < deadline, "accepted {accepted} of {n}");
        if let Some(ev) = server.wait_event(Duration::from_millis(100))
            && ev.is_incoming()
        {
            server.accept(ev.conn).unwrap();
            accepted += 1;
        }
    }
    let up =
        |x: &Sockets, h| x.connection_info(h).map(|i| i.state) == Some(ConnectionState::Connected);
    while !conns.iter().all(|&c| up(&client, c)) {
        assert!(Instant::now() < deadline, "not all connected");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    client.events().for_each(drop);
    server.events().for_each(drop);
    let per_end = (heap() - before) as f64 / (2 * n) as f64 / 1024.0;
    drop(client);
    drop(server);
    per_end
}
