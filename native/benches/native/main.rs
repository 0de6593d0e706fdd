//! Lanewire against real peers over 127.0.0.1, in one run, measured the same way for every
//! library: `cargo bench -p lanewire --bench native` (or `cargo xtask bench native`).
//!
//! | workload | what | reported |
//! | --- | --- | --- |
//! | W1 | 64 B unreliable flood for 5 s | delivered msg/s, % delivered |
//! | W2 | 64 B reliable flood for 5 s | msg/s received in order |
//! | W3 | 256 MiB in 512 KiB reliable messages | MB/s |
//! | W4 | 64 B reliable ping-pong, 10k round trips | p50 / p99 µs |
//! | W5 | 16 MiB in 64 KiB reliable messages, 5 % loss + 10 ms lag each way | MB/s |
//! | W6 | 1000 connections to one listener | heap KiB per connection end |
//! | W7 | 256 MiB in 512 KiB reliable messages, default config (no tuning) | MB/s |
//! | W8 | 200 B unreliable at 60 Hz on a high-priority lane, alone and while W7-style bulk runs on another lane | one-way p50 / p99 µs |
//!
//! W5 runs Lanewire with its default config (congestion control on, only the impairment set);
//! W7 and W8 are Lanewire-only rows (no peer has lanes, and the peers' defaults are their own).
//!
//! Peers: ENet (`rusty_enet`), QUIC (`quinn`: datagrams for unreliable, one stream for
//! reliable, with TLS 1.3), and plain UDP `send_to` / `recv_from` as the floor. Every library
//! runs its client and server in this process (server on its own thread or task), every wait
//! blocks on readiness (no library busy-polls its socket), and message payloads carry a
//! sequence number checked at the receiver. W5 impairs Lanewire with its own link conditioner
//! (its config values) and the peers with a small loss/lag relay on 127.0.0.1 (`impair.rs`);
//! Lanewire through the same relay is reported too.
//!
//! Arguments: workload names (`w1` ... `w6`) and/or library names (`lanewire`, `enet`,
//! `quinn`, `udp`) to run a subset; `--quick` shortens W1/W2 to 2 s and W3 to 64 MiB;
//! `--runs=N` runs W1 to W4 N times (default 2) and keeps the best run, for every library.
// A counting global allocator (W6) needs `unsafe impl GlobalAlloc`; it forwards to `System`.
#![allow(unsafe_code, missing_docs, unreachable_pub)]

mod enet;
mod impair;
mod lanewire;
mod quic;
mod udp;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; we only count bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes live now.
pub fn heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Workload sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub flood: Duration,
    pub bulk_bytes: usize,
    pub round_trips: usize,
    pub impaired_bytes: usize,
    pub connections: usize,
}

pub const MSG: usize = 64;
pub const BULK_MSG: usize = 512 * 1024;
pub const IMPAIRED_MSG: usize = 64 * 1024;
pub const LOSS_PCT: f64 = 5.0;
pub const LAG_MS: u64 = 10;

/// A 64-byte message carrying `seq`.
pub fn small(seq: u64) -> [u8; MSG] {
    let mut m = [0xa5u8; MSG];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

/// The sequence number of a message made by [`small`] (or any message starting with one).
pub fn seq_of(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[..8].try_into().expect("messages are at least 8 bytes"))
}

/// The byte at `i` of every bulk message (after the sequence number).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 9)) as u8
}

/// A bulk message: sequence number, then a fixed pattern (send it with [`set_seq`]).
pub fn bulk(seq: u64, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len).map(pattern).collect();
    set_seq(&mut m, seq);
    m
}

/// Rewrites a message's sequence number.
pub fn set_seq(m: &mut [u8], seq: u64) {
    m[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks a bulk message: size, order, and a stride through the pattern.
pub fn check_bulk(m: &[u8], seq: u64, len: usize) {
    assert_eq!(m.len(), len, "message {seq} has the wrong size");
    assert_eq!(seq_of(m), seq, "message out of order");
    for i in (8..len).step_by(997).chain([len - 1]) {
        assert_eq!(m[i], pattern(i), "message {seq} corrupt at byte {i}");
    }
}

/// A flood's outcome.
#[derive(Debug, Clone, Copy)]
pub struct Flood {
    pub sent: u64,
    /// Received during the flood window.
    pub received_in_window: u64,
    /// Received in total (after a short drain).
    pub received: u64,
    pub secs: f64,
}

impl Flood {
    pub fn rate(&self) -> f64 {
        self.received_in_window as f64 / self.secs
    }
    pub fn delivered_pct(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { 100.0 * self.received as f64 / self.sent as f64 }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

pub fn percentiles(mut us: Vec<f64>) -> Latency {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    Latency { p50: at(0.50), p99: at(0.99) }
}

/// One library's results (None: not applicable or failed, with a note).
#[derive(Debug, Default)]
pub struct Row {
    pub w1: Option<Flood>,
    pub w2: Option<Flood>,
    pub w3: Option<f64>,
    pub w4: Option<Latency>,
    /// Plain UDP only: W4 with Lanewire's thread shape (a receive thread handing datagrams to
    /// the application thread, which sends itself).
    pub w4_shaped: Option<Latency>,
    pub w5: Option<f64>,
    pub w5_relay: Option<f64>,
    pub w6: Option<f64>,
    /// Lanewire only: default-config bulk MB/s.
    pub w7: Option<f64>,
    /// Lanewire only: the 60 Hz lane's one-way latency, idle and under bulk.
    pub w8: Option<(Latency, Latency)>,
    pub notes: Vec<String>,
}

/// Runs `f`, turning a panic into a note (a peer failing must not hide the others).
pub fn attempt<T>(notes: &mut Vec<String>, what: &str, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            notes.push(format!("{what} failed: {msg}"));
            None
        }
    }
}

/// How many times each short workload (W1 to W4) runs; the best run counts, for every
/// library alike (the machine is shared, and a run that another process slowed says little).
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(2);

fn runs() -> usize {
    RUNS.load(Ordering::Relaxed).max(1)
}

/// The best of [`runs`] floods (highest delivered rate).
pub fn best_flood(notes: &mut Vec<String>, what: &str, f: impl Fn() -> Flood) -> Option<Flood> {
    (0..runs())
        .filter_map(|_| attempt(notes, what, &f))
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
}

/// The best of [`runs`] latency measurements (lowest median).
pub fn best_latency(
    notes: &mut Vec<String>,
    what: &str,
    f: impl Fn() -> Latency,
) -> Option<Latency> {
    (0..runs()).filter_map(|_| attempt(notes, what, &f)).min_by(|a, b| a.p50.total_cmp(&b.p50))
}

/// The best of [`runs`] throughputs (highest).
pub fn best_rate(notes: &mut Vec<String>, what: &str, f: impl Fn() -> f64) -> Option<f64> {
    (0..runs()).filter_map(|_| attempt(notes, what, &f)).max_by(f64::total_cmp)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(n) = args.iter().find_map(|a| a.strip_prefix("--runs=")) {
        RUNS.store(n.parse().expect("--runs=N"), Ordering::Relaxed);
    }
    let libs = ["lanewire", "enet", "quinn", "udp"];
    let works = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"];
    let pick_libs: Vec<&str> =
        libs.iter().copied().filter(|l| args.iter().any(|a| a == l)).collect();
    let pick_works: Vec<&str> =
        works.iter().copied().filter(|w| args.iter().any(|a| a == w)).collect();
    let libs: Vec<&str> = if pick_libs.is_empty() { libs.to_vec() } else { pick_libs };
    let works: Vec<&str> = if pick_works.is_empty() { works.to_vec() } else { pick_works };
    let sizes = Sizes {
        flood: Duration::from_secs(if quick { 2 } else { 5 }),
        bulk_bytes: if quick { 64 << 20 } else { 256 << 20 },
        round_trips: 10_000,
        impaired_bytes: 16 << 20,
        connections: 1000,
    };
    let mut rows = Vec::new();
    for lib in &libs {
        eprintln!("== {lib}");
        let row = match *lib {
            "lanewire" => lanewire::run(&works, sizes),
            "enet" => enet::run(&works, sizes),
            "quinn" => quic::run(&works, sizes),
            _ => udp::run(&works, sizes),
        };
        eprintln!("   {row:?}");
        rows.push((*lib, row));
    }
    println!("{}", table(&rows, sizes));
}

fn table(rows: &[(&str, Row)], sizes: Sizes) -> String {
    let lw = rows.iter().find(|(l, _)| *l == "lanewire").map(|(_, r)| r);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nLanewire native benchmark over 127.0.0.1 ({} cores; W1/W2 {} s, W3 {} MiB; W1-W4 best of {}); ratio = Lanewire / peer\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sizes.flood.as_secs(),
        sizes.bulk_bytes >> 20,
        runs(),
    );
    let _ = writeln!(
        out,
        "| library | W1 unrel. 64 B msg/s (% deliv.) | W2 rel. 64 B msg/s | W3 bulk MB/s | W4 RTT p50 / p99 µs | W5 5 % loss + 10 ms MB/s | W6 KiB/conn |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
    let f = |x: Option<f64>, fmt: &dyn Fn(f64) -> String| x.map_or("-".to_string(), fmt);
    let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 && a > 0.0 => format!(" ({:.2}x)", a / b),
        _ => String::new(),
    };
    for (lib, r) in rows {
        let is_lw = *lib == "lanewire";
        let rt = |ours: Option<f64>, theirs: Option<f64>| {
            if is_lw { String::new() } else { ratio(ours, theirs) }
        };
        let w1 = r.w1.map(|x| x.rate());
        let w1s = f(w1, &|v| {
            format!("{:.2} M ({:.1} %)", v / 1e6, r.w1.map_or(0.0, |x| x.delivered_pct()))
        }) + &rt(lw.and_then(|l| l.w1.map(|x| x.rate())), w1);
        let w2 = r.w2.map(|x| x.rate());
        let w2s = f(w2, &|v| format!("{:.2} M", v / 1e6))
            + &rt(lw.and_then(|l| l.w2.map(|x| x.rate())), w2);
        let w3s = f(r.w3, &|v| format!("{v:.0}")) + &rt(lw.and_then(|l| l.w3), r.w3);
        let mut w4s = r.w4.map_or("-".into(), |l| format!("{:.0} / {:.0}", l.p50, l.p99))
            + &rt(lw.and_then(|l| l.w4.map(|x| x.p50)), r.w4.map(|x| x.p50));
        if let Some(l) = r.w4_shaped {
            let _ = write!(
                w4s,
                "; same shape {:.0} / {:.0}{}",
                l.p50,
                l.p99,
                rt(lw.and_then(|l| l.w4.map(|x| x.p50)), Some(l.p50))
            );
        }
        let mut w5s =
            f(r.w5, &|v| format!("{v:.1}")) + &rt(lw.and_then(|l| l.w5_relay.or(l.w5)), r.w5);
        if is_lw && let Some(v) = r.w5_relay {
            let _ = write!(w5s, "; via relay {v:.1}");
        }
        let w6s = f(r.w6, &|v| format!("{v:.2}")) + &rt(lw.and_then(|l| l.w6), r.w6);
        let _ = writeln!(out, "| {lib} | {w1s} | {w2s} | {w3s} | {w4s} | {w5s} | {w6s} |");
    }
    let _ = writeln!(
        out,
        "\nRatios: throughput columns are Lanewire / peer (above 1 = Lanewire faster); W4 and W6 \
         are Lanewire / peer too (below 1 = Lanewire lower latency / less memory). W5 ratios use \
         Lanewire through the same relay as the peers."
    );
    if let Some(r) = lw
        && (r.w7.is_some() || r.w8.is_some())
    {
        let _ = writeln!(
            out,
            "\n| Lanewire only | W7 default-config bulk MB/s | W8 60 Hz lane one-way p50 / p99 µs: idle / under bulk |"
        );
        let _ = writeln!(out, "| --- | --- | --- |");
        let w7 = f(r.w7, &|v| format!("{v:.0}"));
        let w8 = r.w8.map_or("-".into(), |(idle, busy)| {
            format!("{:.0} / {:.0} / {:.0} / {:.0}", idle.p50, idle.p99, busy.p50, busy.p99)
        });
        let _ = writeln!(out, "| lanewire | {w7} | {w8} |");
    }
    for (lib, r) in rows {
        for n in &r.notes {
            let _ = writeln!(out, "- {lib}: {n}");
        }
    }
    out
}
