//! Lanewire over WebRTC data channels against the raw data channels of the same stack
//! (webrtc 0.21), in one run, on 127.0.0.1: `cargo bench -p lanewire --features webrtc --bench
//! p2p`.
//!
//! | workload | what | reported |
//! | --- | --- | --- |
//! | C | connect 20 times through the real signaling server (Lanewire), open 20 channels with the SDP handed over in-process (raw) | p50 / p99 / max ms |
//! | W1 | 64 B unreliable flood for 3 s | delivered msg/s, % delivered |
//! | W2 | 64 B reliable flood for 3 s | msg/s received in order |
//! | W4 | 64 B ping-pong, 2000 round trips | p50 / p99 µs |
//!
//! Lanewire: two `Sockets` in this process registered at a `lanewire-signaling` process,
//! send rate fixed at 16 MB/s (see [`RATE`]), unreliable = `UNRELIABLE` (Nagle batches small messages into one datagram), reliable =
//! `RELIABLE`, ping-pong = `RELIABLE_NO_NAGLE`, over one unordered `maxRetransmits: 0`
//! channel. Raw: two peer connections with the same ICE settings, one negotiated channel,
//! unordered with `maxRetransmits: 0` (unreliable) or ordered and reliable (reliable), one
//! data-channel message per application message. Arguments: workload names (`c`, `w1`,
//! `w2`, `w4`) to run a subset; `--quick` for 1 s floods and 500 round trips; `--runs=N`
//! runs W1, W2 and W4 N times (default 2) and keeps the best run of each side.
#![allow(missing_docs, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use lanewire::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, EndReason, SendError, SendFlags,
    SignalingConfig, Sockets,
};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCSessionDescription, SettingEngineBuilder,
};

const MSG: usize = 64;
const WAIT: Duration = Duration::from_secs(15);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let quick = args.iter().any(|a| a == "--quick");
    let works: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let want = |w: &str| works.is_empty() || works.contains(&w);
    let flood = Duration::from_secs(if quick { 1 } else { 3 });
    let trips = if quick { 500 } else { 2000 };
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--runs=").and_then(|n| n.parse().ok()))
        .unwrap_or(2);
    // Best of `runs` for the floods (highest rate) and the ping-pongs (lowest p50).
    let best_rate = |f: &mut dyn FnMut() -> (f64, f64)| {
        (0..runs).map(|_| f()).fold((0.0, 0.0), |b, r| if r.0 > b.0 { r } else { b })
    };
    let best_rtt = |f: &mut dyn FnMut() -> Vec<f64>| {
        (0..runs)
            .map(|_| f())
            .min_by(|a, b| summary(a.clone()).0.total_cmp(&summary(b.clone()).0))
            .unwrap()
    };

    let server = Signaling::start();
    let url = format!("ws://{}/ws", server.addr);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("Lanewire over WebRTC vs raw webrtc 0.21 data channels, 127.0.0.1, 64 B messages");
    if want("c") {
        let lw = connect_times(&url, 20);
        let raw: Vec<f64> = (0..20).map(|_| rt.block_on(raw_open_time())).collect();
        println!("C  connect  lanewire (signaling + ICE + DTLS + SCTP + handshake) {}", ms(lw));
        println!("C  connect  raw channel open (SDP in-process)                    {}", ms(raw));
    }
    if want("w1") {
        let (rate, pct) = best_rate(&mut || lanewire_flood(&url, flood, false));
        println!("W1 unreliable lanewire   {rate:>10.0} msg/s  ({pct:.1} % delivered)");
        let (rate, pct) = best_rate(&mut || rt.block_on(raw_flood(flood, false)));
        println!("W1 unreliable raw        {rate:>10.0} msg/s  ({pct:.1} % delivered)");
    }
    if want("w2") {
        let (rate, _) = best_rate(&mut || lanewire_flood(&url, flood, true));
        println!("W2 reliable   lanewire   {rate:>10.0} msg/s");
        let (rate, _) = best_rate(&mut || rt.block_on(raw_flood(flood, true)));
        println!("W2 reliable   raw        {rate:>10.0} msg/s");
    }
    if want("w4") {
        let lw = best_rtt(&mut || lanewire_ping_pong(&url, trips));
        println!("W4 ping-pong  lanewire   {}", us(lw));
        let raw = best_rtt(&mut || rt.block_on(raw_ping_pong(trips, true)));
        println!("W4 ping-pong  raw rel.   {}", us(raw));
        let raw = best_rtt(&mut || rt.block_on(raw_ping_pong(trips, false)));
        println!("W4 ping-pong  raw unrel. {}", us(raw));
    }
}

// ---------------------------------------------------------------------------- reporting

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&v, 0.5), percentile(&v, 0.99), *v.last().unwrap())
}

fn ms(v: Vec<f64>) -> String {
    let (p50, p99, max) = summary(v);
    format!("p50 {p50:.1} ms  p99 {p99:.1} ms  max {max:.1} ms")
}

fn us(v: Vec<f64>) -> String {
    let (p50, p99, _) = summary(v);
    format!("p50 {p50:>6.0} µs  p99 {p99:>6.0} µs")
}

fn msg(seq: u64) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

fn seq_of(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().unwrap())
}

// ---------------------------------------------------------------------------- signaling

struct Signaling {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Signaling {
    /// The real server binary next to this benchmark's profile directory (built if missing).
    fn start() -> Signaling {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
        let bin: PathBuf = dir.join("lanewire-signaling");
        if !bin.exists() {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.args(["build", "-q", "-p", "lanewire-signaling", "--bin", "lanewire-signaling"]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "building lanewire-signaling failed");
        }
        let mut child = Command::new(bin)
            .args(["--dev-insecure", "--bind", "127.0.0.1:0", "--log", "warn"])
            .args(["--rate", "100000", "--burst", "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap().parse().unwrap();
        Signaling { child, addr }
    }
}

impl Drop for Signaling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------- lanewire

/// The fixed send rate of the floods: 16 MB/s, below what one data channel carries on this
/// machine (~20 MB/s of 1.2 KB datagrams; above it the channel's send buffer overflows and
/// drops, as a UDP socket buffer would). `LW_RATE=<bytes/s>` overrides it.
const RATE: i32 = 16_000_000;

/// Send rate bounds raised (the reference's default is 256 KiB/s), large queues.
fn fast() -> Config {
    let mut c = Config::new();
    let rate: i32 = std::env::var("LW_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(RATE);
    c.set_i32(ConfigKey::SendRateMin, rate).unwrap();
    c.set_i32(ConfigKey::SendRateMax, rate).unwrap();
    c.set_i32(ConfigKey::SendBufferSize, 16 << 20).unwrap();
    c.set_i32(ConfigKey::RecvBufferSize, 256 << 20).unwrap();
    c.set_i32(ConfigKey::RecvBufferMessages, 4_000_000).unwrap();
    c
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

struct Pair {
    server: Sockets,
    client: Sockets,
    s: ConnectionHandle,
    c: ConnectionHandle,
}

fn peers(url: &str, cfg: Config) -> (Sockets, Sockets, String) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (format!("str:bench-a{n}"), format!("str:bench-b{n}"));
    let client = Sockets::with_config(cfg.clone()).unwrap();
    client.connect_signaling(SignalingConfig::new(url, &a).loopback_only()).unwrap();
    let server = Sockets::with_config(cfg).unwrap();
    server.connect_signaling(SignalingConfig::new(url, &b).loopback_only()).unwrap();
    server.listen_p2p(0, Config::new()).unwrap();
    (server, client, b)
}

fn connect(server: &Sockets, client: &Sockets, to: &str) -> (ConnectionHandle, ConnectionHandle) {
    let c = client.connect_p2p(to, 0, Config::new()).unwrap();
    let deadline = Instant::now() + WAIT;
    let s = loop {
        let ev = server.wait_event(WAIT).expect("incoming connection");
        if ev.is_incoming() {
            server.accept(ev.conn).unwrap();
            break ev.conn;
        }
        assert!(Instant::now() < deadline);
    };
    while client.connection_info(c).map(|i| i.state) != Some(ConnectionState::Connected) {
        assert!(Instant::now() < deadline, "{:?}", client.connection_info(c));
        std::thread::sleep(Duration::from_micros(200));
    }
    (c, s)
}

fn pair(url: &str) -> Pair {
    let (server, client, to) = peers(url, fast());
    let (c, s) = connect(&server, &client, &to);
    Pair { server, client, s, c }
}

/// Time from `connect_p2p` to `Connected` at the connecting side, `n` times over one pair of
/// instances (each connection closed before the next).
fn connect_times(url: &str, n: usize) -> Vec<f64> {
    let (server, client, to) = peers(url, Config::new());
    let mut out = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let (c, s) = connect(&server, &client, &to);
        out.push(t.elapsed().as_secs_f64() * 1e3);
        client.close(c, EndReason::APP_GENERIC, "", false).unwrap();
        server.close(s, EndReason::APP_GENERIC, "", false).unwrap();
        server.events().for_each(drop);
    }
    out
}

/// W1 / W2: the client sends 64 B messages as fast as the API takes them for `dur`; the
/// server counts (for reliable, checks the order of) what arrives. Returns (msg/s received
/// in the window, % of sent delivered).
fn lanewire_flood(url: &str, dur: Duration, reliable: bool) -> (f64, f64) {
    let p = pair(url);
    let stop = Arc::new(AtomicBool::new(false));
    let in_window = Arc::new(AtomicU64::new(0));
    let window_open = Arc::new(AtomicBool::new(true));
    let receiver = {
        let (server, s, stop, in_window, window_open) =
            (p.server.clone(), p.s, stop.clone(), in_window.clone(), window_open.clone());
        std::thread::spawn(move || {
            let mut got = 0u64;
            loop {
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
            }
        })
    };
    let flags = if reliable { SendFlags::RELIABLE } else { SendFlags::UNRELIABLE };
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        for _ in 0..256 {
            match p.client.send(p.c, &msg(sent), flags) {
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
    let drain_until = Instant::now()
        + if reliable { Duration::from_secs(60) } else { Duration::from_millis(500) };
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
    if reliable {
        assert_eq!(
            received,
            sent,
            "every reliable message arrives; sender transport {:?}, receiver {:?}",
            p.client.p2p_stats(),
            p.server.stats().endpoint
        );
    }
    let rate = in_window.load(Ordering::Relaxed) as f64 / secs;
    (rate, 100.0 * received as f64 / sent.max(1) as f64)
}

/// W4: the client sends 64 B, the server's loop sends it back; both block in
/// `receive_timeout` between messages.
fn lanewire_ping_pong(url: &str, n: usize) -> Vec<f64> {
    let p = pair(url);
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
    for i in 0..(n + 100) as u64 {
        let t = Instant::now();
        p.client.send(p.c, &msg(i), SendFlags::RELIABLE_NO_NAGLE).unwrap();
        let got = p.client.receive_timeout(p.c, 1, WAIT).unwrap();
        let m = got.into_iter().next().unwrap_or_else(|| panic!("no echo in {WAIT:?}"));
        assert_eq!(seq_of(m.data()), i);
        if i >= 100 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    rtts
}

// ---------------------------------------------------------------------------- raw webrtc

struct Trickle(tokio::sync::mpsc::UnboundedSender<RTCIceCandidateInit>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Trickle {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(c) = event.candidate.to_json() {
            let _ = self.0.send(c);
        }
    }
}

type Pc = Arc<dyn PeerConnection>;

/// The same settings as Lanewire's peer connections (see `src/p2p/peer.rs`).
async fn raw_pc(
    tx: tokio::sync::mpsc::UnboundedSender<RTCIceCandidateInit>,
    send_limit: usize,
) -> Pc {
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true)
        .with_host_acceptance_min_wait(Some(Duration::ZERO))
        .with_ice_connection_attempts(Some(Duration::from_millis(20)), Some(70))
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(se)
        .with_handler(Arc::new(Trickle(tx)))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .with_data_channel_send_buffer_limit(send_limit)
        .build()
        .await
        .unwrap();
    Arc::new(pc)
}

/// Two connected peer connections with one negotiated channel each; returns once both
/// channels are open, with the time that took.
async fn raw_pair(reliable: bool) -> (Pc, Pc, Arc<dyn DataChannel>, Arc<dyn DataChannel>, f64) {
    let t = Instant::now();
    let (ta, mut ra) = tokio::sync::mpsc::unbounded_channel();
    let (tb, mut rb) = tokio::sync::mpsc::unbounded_channel();
    let a = raw_pc(ta, 1 << 20).await;
    let b = raw_pc(tb, 1 << 20).await;
    let init = RTCDataChannelInit {
        ordered: reliable,
        max_retransmits: if reliable { None } else { Some(0) },
        negotiated: Some(0),
        ..Default::default()
    };
    let da = a.create_data_channel("raw", Some(init.clone())).await.unwrap();
    let db = b.create_data_channel("raw", Some(init)).await.unwrap();
    let offer = a.create_offer(None).await.unwrap();
    a.set_local_description(offer.clone()).await.unwrap();
    b.set_remote_description(RTCSessionDescription::offer(offer.sdp).unwrap()).await.unwrap();
    let answer = b.create_answer(None).await.unwrap();
    b.set_local_description(answer.clone()).await.unwrap();
    a.set_remote_description(RTCSessionDescription::answer(answer.sdp).unwrap()).await.unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    let trickle = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(c) = ra.recv() => { let _ = b2.add_ice_candidate(c).await; }
                Some(c) = rb.recv() => { let _ = a2.add_ice_candidate(c).await; }
                else => break,
            }
        }
    });
    for dc in [&da, &db] {
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = dc.poll().await {
                if matches!(ev, DataChannelEvent::OnOpen) {
                    return;
                }
            }
        })
        .await
        .expect("raw channel opens");
    }
    let took = t.elapsed().as_secs_f64() * 1e3;
    trickle.abort();
    (a, b, da, db, took)
}

async fn raw_open_time() -> f64 {
    let (a, b, _, _, took) = raw_pair(false).await;
    let _ = a.close().await;
    let _ = b.close().await;
    took
}

async fn raw_flood(dur: Duration, reliable: bool) -> (f64, f64) {
    let (a, b, da, db, _) = raw_pair(reliable).await;
    let window_open = Arc::new(AtomicBool::new(true));
    let in_window = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (w, iw, d) = (window_open.clone(), in_window.clone(), done.clone());
    let receiver = tokio::spawn(async move {
        let mut got = 0u64;
        loop {
            match tokio::time::timeout(Duration::from_millis(500), db.poll()).await {
                // A stall of the channel mid-flood is not the end.
                Err(_) if !d.load(Ordering::Relaxed) => {}
                Ok(Some(DataChannelEvent::OnMessage(m))) => {
                    if reliable {
                        assert_eq!(seq_of(&m.data), got, "raw reliable flood out of order");
                    }
                    got += 1;
                    if w.load(Ordering::Relaxed) {
                        iw.store(got, Ordering::Relaxed);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return got,
            }
        }
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        // Blocks while the channel holds 1 MiB unacknowledged (the send-buffer limit).
        da.send(BytesMut::from(&msg(sent)[..])).await.unwrap();
        sent += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    window_open.store(false, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    let received = receiver.await.unwrap();
    let _ = a.close().await;
    let _ = b.close().await;
    let rate = in_window.load(Ordering::Relaxed) as f64 / secs;
    (rate, 100.0 * received as f64 / sent.max(1) as f64)
}

async fn raw_ping_pong(n: usize, reliable: bool) -> Vec<f64> {
    let (a, b, da, db, _) = raw_pair(reliable).await;
    let echo = tokio::spawn(async move {
        while let Some(ev) = db.poll().await {
            if let DataChannelEvent::OnMessage(m) = ev {
                let _ = db.send(m.data).await;
            }
        }
    });
    let mut rtts = Vec::with_capacity(n);
    let mut i = 0u64;
    while rtts.len() < n {
        let t = Instant::now();
        da.send(BytesMut::from(&msg(i)[..])).await.unwrap();
        // Unreliable: a lost ping or pong is retried after 100 ms (not counted).
        let got = tokio::time::timeout(Duration::from_millis(100), async {
            loop {
                match da.poll().await {
                    Some(DataChannelEvent::OnMessage(m)) if seq_of(&m.data) == i => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
        if got == Ok(true) && i >= 100 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
        i += 1;
    }
    echo.abort();
    let _ = a.close().await;
    let _ = b.close().await;
    rtts
}
