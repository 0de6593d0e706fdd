//! P2P stress peer: the native half of the browser <-> native stress test
//! (`web/tests/e2e/native.test.mjs`, whose page `web/tests/e2e/native/app.js` is the browser
//! half). It registers an identity at a `lanewire-signaling` server, then either listens on a
//! virtual port and accepts one connection or connects to a peer's identity and port, and
//! exchanges random self-checking messages with that one peer, both ways at once, for a
//! bounded time and count. Then one side closes with a reason and the other must see
//! `ClosedByPeer` with that reason. Any `ProblemDetectedLocally` fails the run.
//!
//! ```text
//! cargo build -p lanewire --features webrtc --example p2p_stress
//! target/debug/examples/p2p_stress ws://127.0.0.1:8787/ws str:native --listen 5 --loopback \
//!     --close 1042 'stress done'
//! target/debug/examples/p2p_stress ws://127.0.0.1:8787/ws str:other --connect str:native 5 \
//!     --loopback --expect-close 1042 'stress done'
//! ```
//!
//! Against the browser: `cargo xtask test` (step `e2e`), or by hand as the header of
//! `web/tests/e2e/native.test.mjs` says (`npm run build`, build the signaling server and the
//! examples, then `node --test web/tests/e2e/native.test.mjs` inside `unshare --net`).
//!
//! Arguments: signaling URL, identity, then `--listen PORT` or `--connect IDENTITY PORT`;
//! options: `--loopback` (ICE on 127.0.0.1 with loopback candidates: one machine, no network),
//! `--seed N` (message choices), `--duration-ms N` (send phase, default 3000),
//! `--max-messages N` (send phase bound, default 50000), `--rate BYTES_PER_S` (both pacer
//! bounds, default 1000000), `--timeout-ms N` (whole run after `ready`, default 30000),
//! `--close REASON DEBUG` (this side closes, with linger after it `--linger-ms`, default
//! 1500) or `--expect-close REASON DEBUG` (the peer must close with exactly these).
//!
//! Output, one line each on stdout: `ready <identity> <registration ms>`,
//! `connected <ms> <route>` (ms from `connect_p2p`, or from the incoming connection, to
//! `Connected`), then `result ok <json>` or `result fail <why> <json>`; exit status 0 or 1
//! (2 for bad arguments). The JSON has the counts: `sentReliable`, `sentUnreliable`,
//! `sentBytes`, `recvReliable`, `recvUnreliable`, `recvBytes`, `peerSentReliable` (from
//! the peer's DONE), `peerAcked`, `connectMs`, `exchangeMs`, `pingMs`, `endReason`,
//! `endDebug` (bytes count every message, DONE and ACK included), and transport figures:
//! `packetsSent`, `packetsLost`, `bytesRetransmitted` (this side's quick status, last seen
//! while connected), `droppedBufferFull` (datagrams the data channel had no room for).
//!
//! # Message format (identical in `web/tests/e2e/native/app.js`)
//!
//! The core stress test's self-checking format (`core/tests/common`), with two control kinds:
//!
//! | bytes | content |
//! | --- | --- |
//! | 0 | kind: 0 unreliable data, 1 reliable data, 2 DONE (reliable), 3 ACK (reliable) |
//! | 1..9 | counter, u64 little-endian: data: the per-kind sequence number (0, 1, 2...); DONE: how many reliable data messages the sender sent before it; ACK: how many reliable data messages the sender received |
//! | 9..13 | the message's total length, u32 little-endian |
//! | 13.. | byte `13 + i` = `(counter * 31 + i * 7) mod 256` |
//!
//! Data sizes: reliable (half the messages) 13 B to 10 KiB (half up to 1200 B), 2 % of them
//! large, 10 KiB to 160 KiB; unreliable 13 B to 10 KiB likewise. Each side keeps up to 256 KiB
//! queued. The receiver checks every message byte by byte, that reliable data arrives
//! exactly once and in order (counter = number received so far), and that unreliable data
//! arrives intact and never twice (it may be lost). After the send phase each side sends DONE;
//! on the peer's DONE (its counter must equal the reliable messages received) it answers ACK
//! (its counter must equal the reliable messages sent). The closer closes once it has the
//! peer's DONE and ACK and its own reliable data is all acknowledged; the other side must
//! have both before `ClosedByPeer`.
//!
//! Choices come from mulberry32 (the same generator as the page's) seeded with `--seed`.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lanewire::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, EndReason, SendError, SendFlags,
    SignalingConfig, Sockets,
};

const KIND_UNRELIABLE: u8 = 0;
const KIND_RELIABLE: u8 = 1;
const KIND_DONE: u8 = 2;
const KIND_ACK: u8 = 3;
const HEADER: usize = 13;
/// Bytes each side keeps queued during the send phase.
const QUEUE: usize = 256 * 1024;
/// Messages queued per loop iteration at most.
const BURST: usize = 64;

/// Builds a message of the format above.
fn make_message(kind: u8, counter: u64, len: usize) -> Vec<u8> {
    let len = len.max(HEADER);
    let mut m = vec![0u8; len];
    m[0] = kind;
    m[1..9].copy_from_slice(&counter.to_le_bytes());
    m[9..13].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, b) in m[HEADER..].iter_mut().enumerate() {
        *b = counter.wrapping_mul(31).wrapping_add(i as u64 * 7) as u8;
    }
    m
}

/// Checks a message of the format above; returns (kind, counter).
fn check_message(m: &[u8]) -> Result<(u8, u64), String> {
    if m.len() < HEADER {
        return Err(format!("truncated message: {} bytes", m.len()));
    }
    let kind = m[0];
    let counter = u64::from_le_bytes(m[1..9].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(m[9..13].try_into().expect("4 bytes")) as usize;
    if kind > KIND_ACK {
        return Err(format!("unknown kind {kind} (counter {counter})"));
    }
    if len != m.len() {
        return Err(format!("kind {kind} #{counter}: header says {len} bytes, got {}", m.len()));
    }
    for (i, &b) in m[HEADER..].iter().enumerate() {
        let want = counter.wrapping_mul(31).wrapping_add(i as u64 * 7) as u8;
        if b != want {
            return Err(format!("kind {kind} #{counter}: byte {i} is {b}, want {want}"));
        }
    }
    Ok((kind, counter))
}

/// mulberry32, as in the page.
struct Rng(u32);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x6d2b_79f5);
        let mut t = self.0;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        t ^ (t >> 14)
    }
    /// In [0, 1).
    fn unit(&mut self) -> f64 {
        f64::from(self.next_u32()) / 4_294_967_296.0
    }
    /// In [lo, hi).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.unit() * (hi - lo) as f64) as usize
    }
    /// (reliable, length) of the next data message.
    fn pick(&mut self) -> (bool, usize) {
        let reliable = self.unit() < 0.5;
        let len = if reliable && self.unit() < 0.02 {
            self.range(10 * 1024, 160 * 1024)
        } else if self.unit() < 0.5 {
            self.range(HEADER, 1200)
        } else {
            self.range(1200, 10 * 1024)
        };
        (reliable, len)
    }
}

enum Mode {
    Listen(u32),
    Connect(String, u32),
}

struct Args {
    url: String,
    identity: String,
    mode: Mode,
    loopback: bool,
    seed: u32,
    duration: Duration,
    max_messages: u64,
    rate: i32,
    timeout: Duration,
    close: Option<(u32, String)>,
    expect_close: Option<(u32, String)>,
    linger: Duration,
}

fn parse_args() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut mode = None;
    let mut a = Args {
        url: String::new(),
        identity: String::new(),
        mode: Mode::Listen(0),
        loopback: false,
        seed: 1,
        duration: Duration::from_millis(3000),
        max_messages: 50_000,
        rate: 1_000_000,
        timeout: Duration::from_millis(30_000),
        close: None,
        expect_close: None,
        linger: Duration::from_millis(1500),
    };
    let mut it = argv.into_iter();
    let num = |v: Option<String>, what: &str| -> Result<u64, String> {
        let v = v.ok_or_else(|| format!("{what} needs a value"))?;
        v.parse().map_err(|_| format!("{what}: not a number: {v:?}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => mode = Some(Mode::Listen(num(it.next(), "--listen")? as u32)),
            "--connect" => {
                let id = it.next().ok_or("--connect needs IDENTITY PORT")?;
                mode = Some(Mode::Connect(id, num(it.next(), "--connect")? as u32));
            }
            "--loopback" => a.loopback = true,
            "--seed" => a.seed = num(it.next(), "--seed")? as u32,
            "--duration-ms" => a.duration = Duration::from_millis(num(it.next(), "--duration-ms")?),
            "--max-messages" => a.max_messages = num(it.next(), "--max-messages")?,
            "--rate" => a.rate = num(it.next(), "--rate")? as i32,
            "--timeout-ms" => a.timeout = Duration::from_millis(num(it.next(), "--timeout-ms")?),
            "--linger-ms" => a.linger = Duration::from_millis(num(it.next(), "--linger-ms")?),
            "--close" | "--expect-close" => {
                let reason = num(it.next(), &arg)? as u32;
                let debug = it.next().ok_or_else(|| format!("{arg} needs REASON DEBUG"))?;
                if arg == "--close" {
                    a.close = Some((reason, debug));
                } else {
                    a.expect_close = Some((reason, debug));
                }
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => positional.push(arg),
        }
    }
    let [url, identity] =
        <[String; 2]>::try_from(positional).map_err(|p| format!("want URL IDENTITY, got {p:?}"))?;
    a.url = url;
    a.identity = identity;
    a.mode = mode.ok_or("want --listen PORT or --connect IDENTITY PORT")?;
    Ok(a)
}

/// Counts of one side.
#[derive(Default)]
struct Counts {
    sent_reliable: u64,
    sent_unreliable: u64,
    sent_bytes: u64,
    recv_reliable: u64,
    recv_unreliable: u64,
    recv_bytes: u64,
    peer_sent_reliable: Option<u64>,
    peer_acked: Option<u64>,
    connect_ms: f64,
    exchange_ms: f64,
    ping_ms: i32,
    end_reason: u32,
    end_debug: String,
    packets_sent: u64,
    packets_lost: u64,
    bytes_retransmitted: u64,
    dropped_buffer_full: u64,
}

impl Counts {
    fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
        format!(
            "{{\"sentReliable\":{},\"sentUnreliable\":{},\"sentBytes\":{},\"recvReliable\":{},\
             \"recvUnreliable\":{},\"recvBytes\":{},\"peerSentReliable\":{},\"peerAcked\":{},\
             \"connectMs\":{:.1},\"exchangeMs\":{:.1},\"pingMs\":{},\"endReason\":{},\
             \"endDebug\":{:?},\"packetsSent\":{},\"packetsLost\":{},\"bytesRetransmitted\":{},\
             \"droppedBufferFull\":{}}}",
            self.sent_reliable,
            self.sent_unreliable,
            self.sent_bytes,
            self.recv_reliable,
            self.recv_unreliable,
            self.recv_bytes,
            opt(self.peer_sent_reliable),
            opt(self.peer_acked),
            self.connect_ms,
            self.exchange_ms,
            self.ping_ms,
            self.end_reason,
            self.end_debug,
            self.packets_sent,
            self.packets_lost,
            self.bytes_retransmitted,
            self.dropped_buffer_full,
        )
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One peer's run; `c` is filled in as it goes so a failure still reports the counts.
struct Run {
    sockets: Sockets,
    args: Args,
    c: Counts,
    rng: Rng,
    conn: Option<ConnectionHandle>,
    unreliable_seen: HashSet<u64>,
    done_sent: bool,
    ack_sent: bool,
}

impl Run {
    /// Sends one message; `Ok(false)` if the send buffer is full (try again later).
    fn send(
        &mut self,
        conn: ConnectionHandle,
        kind: u8,
        counter: u64,
        len: usize,
    ) -> Result<bool, String> {
        let m = make_message(kind, counter, len);
        let flags =
            if kind == KIND_UNRELIABLE { SendFlags::UNRELIABLE } else { SendFlags::RELIABLE };
        match self.sockets.send(conn, &m, flags) {
            Ok(_) => {}
            Err(SendError::LimitExceeded) => return Ok(false),
            Err(e) => {
                return Err(format!("send of kind {kind} #{counter} ({} B) failed: {e}", m.len()));
            }
        }
        self.c.sent_bytes += m.len() as u64;
        Ok(true)
    }

    fn pending(&self, conn: ConnectionHandle) -> Result<(usize, usize), String> {
        let q = self.sockets.quick_status(conn).ok_or("quick_status: no connection")?;
        Ok((q.pending_reliable + q.pending_unreliable, q.sent_unacked_reliable))
    }

    fn top_up(&mut self, conn: ConnectionHandle) -> Result<(), String> {
        for _ in 0..BURST {
            if self.c.sent_reliable + self.c.sent_unreliable >= self.args.max_messages {
                return Ok(());
            }
            let (reliable, len) = self.rng.pick();
            if self.pending(conn)?.0 + len > QUEUE + 16 * 1024 {
                return Ok(());
            }
            if reliable {
                if !self.send(conn, KIND_RELIABLE, self.c.sent_reliable, len)? {
                    return Ok(());
                }
                self.c.sent_reliable += 1;
            } else {
                if !self.send(conn, KIND_UNRELIABLE, self.c.sent_unreliable, len)? {
                    return Ok(());
                }
                self.c.sent_unreliable += 1;
            }
        }
        Ok(())
    }

    fn drain(&mut self, conn: ConnectionHandle) -> Result<(), String> {
        let msgs = self.sockets.receive(conn, usize::MAX).map_err(|e| format!("receive: {e}"))?;
        for m in msgs {
            let (kind, counter) = check_message(m.data())?;
            self.c.recv_bytes += m.data().len() as u64;
            if (kind == KIND_UNRELIABLE) == m.is_reliable() {
                return Err(format!(
                    "kind {kind} #{counter} arrived with reliable={}",
                    m.is_reliable()
                ));
            }
            match kind {
                KIND_UNRELIABLE => {
                    if !self.unreliable_seen.insert(counter) {
                        return Err(format!("unreliable #{counter} arrived twice"));
                    }
                    self.c.recv_unreliable += 1;
                }
                KIND_RELIABLE => {
                    if self.c.peer_sent_reliable.is_some() {
                        return Err(format!("reliable #{counter} after the peer's DONE"));
                    }
                    if counter != self.c.recv_reliable {
                        return Err(format!(
                            "reliable #{counter} arrived when #{} was due (lost, duplicated or \
                             out of order)",
                            self.c.recv_reliable
                        ));
                    }
                    self.c.recv_reliable += 1;
                }
                KIND_DONE => {
                    if self.c.peer_sent_reliable.is_some() {
                        return Err("DONE arrived twice".into());
                    }
                    if counter != self.c.recv_reliable {
                        return Err(format!(
                            "the peer sent {counter} reliable messages, {} arrived",
                            self.c.recv_reliable
                        ));
                    }
                    self.c.peer_sent_reliable = Some(counter);
                    self.ack_sent = self.send(conn, KIND_ACK, counter, HEADER)?;
                }
                _ => {
                    if self.c.peer_acked.is_some() {
                        return Err("ACK arrived twice".into());
                    }
                    if !self.done_sent || counter != self.c.sent_reliable {
                        return Err(format!(
                            "the peer acknowledged {counter} reliable messages, {} were sent",
                            self.c.sent_reliable
                        ));
                    }
                    self.c.peer_acked = Some(counter);
                }
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let deadline = started + self.args.timeout;
        let mut connect_started = started;
        if let Mode::Connect(id, port) = &self.args.mode {
            connect_started = Instant::now();
            let conn = self
                .sockets
                .connect_p2p(id, *port, Config::new())
                .map_err(|e| format!("connect_p2p: {e}"))?;
            self.conn = Some(conn);
        }
        let mut send_until: Option<Instant> = None;
        let mut exchange_started = started;
        loop {
            let now = Instant::now();
            if now > deadline {
                let phase = match (self.conn, send_until) {
                    (None, _) => "waiting for the peer to connect",
                    (Some(_), None) => "connecting",
                    (Some(_), Some(_)) if !self.done_sent => "sending",
                    _ if self.c.peer_sent_reliable.is_none() => "waiting for the peer's DONE",
                    _ if self.c.peer_acked.is_none() => "waiting for the peer's ACK",
                    _ if self.args.close.is_some() => "waiting for our data to be acknowledged",
                    _ => "waiting for the peer to close",
                };
                return Err(format!("timed out after {:?} {phase}", self.args.timeout));
            }
            for ev in self.sockets.events() {
                let state = ev.info.state;
                if state == ConnectionState::ProblemDetectedLocally {
                    return Err(format!(
                        "ProblemDetectedLocally ({} {}) on {:?}",
                        ev.info.end_reason.0, ev.info.end_debug, ev.conn
                    ));
                }
                if ev.is_incoming() {
                    if self.conn.is_none() {
                        self.sockets.accept(ev.conn).map_err(|e| format!("accept: {e}"))?;
                        self.conn = Some(ev.conn);
                        connect_started = Instant::now();
                    } else {
                        let _ = self.sockets.close(ev.conn, EndReason(1999), "busy", false);
                    }
                    continue;
                }
                if Some(ev.conn) != self.conn {
                    continue;
                }
                match state {
                    ConnectionState::Connected => {
                        self.c.connect_ms = ms(connect_started.elapsed());
                        let route = self
                            .sockets
                            .p2p_connection_info(ev.conn)
                            .and_then(|p| p.route)
                            .unwrap_or_default();
                        say(&format!("connected {:.1} {route}", self.c.connect_ms));
                        exchange_started = Instant::now();
                        send_until = Some(exchange_started + self.args.duration);
                    }
                    ConnectionState::ClosedByPeer => {
                        self.drain(ev.conn)?;
                        self.c.end_reason = ev.info.end_reason.0;
                        self.c.end_debug = ev.info.end_debug.clone();
                        let _ = self.sockets.close(ev.conn, EndReason(0), "", false);
                        self.conn = None;
                        return self.closed_by_peer();
                    }
                    _ => {}
                }
            }
            if let (Some(conn), Some(until)) = (self.conn, send_until) {
                if !self.done_sent {
                    if now < until {
                        self.top_up(conn)?;
                    } else if self.send(conn, KIND_DONE, self.c.sent_reliable, HEADER)? {
                        self.done_sent = true;
                        self.c.exchange_ms = ms(exchange_started.elapsed());
                    }
                }
                self.drain(conn)?;
                // DONE and ACK wait while the send buffer is full (retransmissions).
                if let Some(n) = self.c.peer_sent_reliable
                    && !self.ack_sent
                {
                    self.ack_sent = self.send(conn, KIND_ACK, n, HEADER)?;
                }
                if let Some(q) = self.sockets.quick_status(conn) {
                    self.c.ping_ms = q.ping_ms;
                    self.c.packets_sent = q.packets_sent;
                    self.c.packets_lost = q.packets_lost;
                    self.c.bytes_retransmitted = q.bytes_retransmitted;
                }
                if let Some((reason, debug)) = self.args.close.clone()
                    && self.c.peer_acked.is_some()
                    && self.ack_sent
                    && self.pending(conn)? == (0, 0)
                {
                    self.c.exchange_ms = ms(exchange_started.elapsed());
                    self.sockets
                        .close(conn, EndReason(reason), &debug, false)
                        .map_err(|e| format!("close: {e}"))?;
                    self.conn = None;
                    self.c.end_reason = reason;
                    self.c.end_debug = debug;
                    return self.linger(deadline);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// After closing: keep the instance alive for `--linger-ms` so the close reaches the
    /// peer (and fail if anything else happens meanwhile).
    fn linger(&mut self, deadline: Instant) -> Result<(), String> {
        let end = (Instant::now() + self.args.linger).min(deadline + self.args.linger);
        while Instant::now() < end {
            if let Some(ev) = self.sockets.wait_event(Duration::from_millis(50))
                && ev.info.state == ConnectionState::ProblemDetectedLocally
            {
                return Err(format!(
                    "ProblemDetectedLocally after closing ({} {})",
                    ev.info.end_reason.0, ev.info.end_debug
                ));
            }
        }
        Ok(())
    }

    fn closed_by_peer(&mut self) -> Result<(), String> {
        let Some((reason, debug)) = &self.args.expect_close else {
            return Err(format!(
                "closed by the peer ({} {:?}) but this side was to close",
                self.c.end_reason, self.c.end_debug
            ));
        };
        if self.c.peer_sent_reliable.is_none() || self.c.peer_acked.is_none() {
            return Err("closed by the peer before its DONE and ACK arrived".into());
        }
        if (self.c.end_reason, &self.c.end_debug) != (*reason, debug) {
            return Err(format!(
                "closed by the peer with {} {:?}, want {reason} {debug:?}",
                self.c.end_reason, self.c.end_debug
            ));
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("p2p_stress: {e}");
            eprintln!(
                "usage: p2p_stress URL IDENTITY (--listen PORT | --connect IDENTITY PORT) \
                 [--loopback] [--seed N] [--duration-ms N] [--max-messages N] [--rate B] \
                 [--timeout-ms N] [--close REASON DEBUG | --expect-close REASON DEBUG] \
                 [--linger-ms N]"
            );
            return ExitCode::from(2);
        }
    };
    if args.close.is_some() == args.expect_close.is_some() {
        eprintln!("p2p_stress: give exactly one of --close and --expect-close");
        return ExitCode::from(2);
    }
    let mut global = Config::new();
    let set = |g: &mut Config, k, v| g.set_i32(k, v).map_err(|e| format!("config {k:?}: {e}"));
    let configured = set(&mut global, ConfigKey::SendRateMin, args.rate)
        .and_then(|()| set(&mut global, ConfigKey::SendRateMax, args.rate))
        .and_then(|()| set(&mut global, ConfigKey::SendBufferSize, 2 * 1024 * 1024))
        .and_then(|()| set(&mut global, ConfigKey::RecvBufferSize, 16 * 1024 * 1024))
        .and_then(|()| set(&mut global, ConfigKey::RecvBufferMessages, 200_000));
    let started = Instant::now();
    let setup = configured.and_then(|()| {
        let sockets = Sockets::with_config(global).map_err(|e| format!("sockets: {e}"))?;
        let mut sig = SignalingConfig::new(&args.url, &args.identity);
        if args.loopback {
            sig = sig.loopback_only();
        }
        sockets.connect_signaling(sig).map_err(|e| format!("connect_signaling: {e}"))?;
        if let Mode::Listen(port) = args.mode {
            sockets.listen_p2p(port, Config::new()).map_err(|e| format!("listen_p2p: {e}"))?;
        }
        Ok(sockets)
    });
    let sockets = match setup {
        Ok(s) => s,
        Err(e) => {
            say(&format!("result fail {e} {}", Counts::default().json()));
            return ExitCode::FAILURE;
        }
    };
    say(&format!("ready {} {:.1}", args.identity, ms(started.elapsed())));
    let mut run = Run {
        sockets,
        rng: Rng(args.seed),
        args,
        c: Counts::default(),
        conn: None,
        unreliable_seen: HashSet::new(),
        done_sent: false,
        ack_sent: false,
    };
    let result = run.run();
    run.c.dropped_buffer_full = run.sockets.p2p_stats().dropped_buffer_full;
    if let Some(conn) = run.conn {
        let _ = run.sockets.close(conn, EndReason(2000), "p2p_stress failed", false);
    }
    match result {
        Ok(()) => {
            say(&format!("result ok {}", run.c.json()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            say(&format!("result fail {e} {}", run.c.json()));
            ExitCode::FAILURE
        }
    }
}
