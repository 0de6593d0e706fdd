//! Throughput of the protocol core alone: messages through two endpoints joined back to back in
//! one thread, with no network, no simulator and no impairment.
//!
//! The client keeps its send queue full (it sends until `LimitExceeded`), datagrams move from
//! one endpoint's `poll_transmit` straight into the other's `handle_datagram`, and the server
//! drains its receive queue and checks the order of what arrives. Time is the real clock
//! converted to the core's [`Instant`], because pacing is real-time based; the send rate is
//! set to its maximum so that the pacer is not what is measured.
//!
//! Each workload runs twice: with the default packet protection (AES-256-GCM, a 16-byte tag on
//! every packet) and in plaintext (`Unencrypted` = 3 on both ends), to separate the protocol's
//! cost from the cipher's.
//!
//! Run with `cargo bench -p lanewire-core --features sim --bench core`. Each workload runs for
//! [`DURATION`] (or the seconds in `LANEWIRE_BENCH_SECS`) after a short warm-up. CPU time comes
//! from `/proc/thread-self/schedstat` where it exists (Linux), else it is the wall time (the
//! bench is single-threaded, so the two agree on an idle machine).

use std::fmt::Write as _;
use std::time::Duration;

use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, Endpoint, Event, Instant, LocalId,
    MAX_DATAGRAM, Message, SendError, SendFlags,
};

/// How long each workload is measured.
const DURATION: Duration = Duration::from_secs(2);
/// Warm-up before measuring (allocator, caches, RTT estimate).
const WARMUP: Duration = Duration::from_millis(300);
/// Datagrams moved client → server between two drains of the server's receive queue. A full
/// packet holds about 19 messages of 64 B; 32 packets keep the receive queue far below
/// `RecvBufferMessages` while amortising the drain.
const BURST: usize = 32;
/// Targets from the project brief.
const TARGET_SMALL_MSGS_PER_SEC: f64 = 3e6;
const TARGET_BULK_BYTES_PER_SEC: f64 = 1e9;

/// The remote address type: just which of the two endpoints.
type Addr = u8;
const CLIENT: Addr = 0;
const SERVER: Addr = 1;

/// The driver's clock, as the core's [`Instant`].
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
}

/// Thread CPU time in ns, or `None` where the kernel does not expose it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Two endpoints with one connected connection between them.
struct Bench {
    clock: Clock,
    client: Endpoint<Addr>,
    server: Endpoint<Addr>,
    cc: ConnectionHandle,
    sc: ConnectionHandle,
    buf: Vec<u8>,
}

/// Moves at most `max` datagrams from `from` into `to`; returns how many.
fn pump(
    now: Instant,
    from: &mut Endpoint<Addr>,
    from_addr: Addr,
    to: &mut Endpoint<Addr>,
    buf: &mut [u8],
    max: usize,
) -> usize {
    let mut n = 0;
    while n < max {
        let Some(t) = from.poll_transmit(now, buf) else { break };
        to.handle_datagram(now, LocalId(0), from_addr, &mut buf[..t.len]);
        n += 1;
    }
    n
}

fn run_timers(now: Instant, ep: &mut Endpoint<Addr>) {
    if ep.poll_timeout().is_some_and(|t| t <= now) {
        ep.handle_timeout(now);
    }
}

impl Bench {
    fn new(encrypted: bool) -> Bench {
        let mut g = Config::new();
        let set = |g: &mut Config, k, v| g.set_i32(k, v).expect("value in range");
        // 3: plaintext required (both ends, so the handshake agrees on the Null cipher).
        set(&mut g, ConfigKey::Unencrypted, if encrypted { 0 } else { 3 });
        set(&mut g, ConfigKey::SendRateMin, i32::MAX);
        set(&mut g, ConfigKey::SendRateMax, i32::MAX);
        // Room for several 512 KiB messages on both sides of the connection.
        set(&mut g, ConfigKey::SendBufferSize, 4 * 1024 * 1024);
        set(&mut g, ConfigKey::RecvBufferSize, 64 * 1024 * 1024);
        set(&mut g, ConfigKey::RecvBufferMessages, 1 << 20);
        let clock = Clock(std::time::Instant::now());
        let mut client = Endpoint::new(g.clone(), [1; 32]);
        let mut server = Endpoint::new(g, [2; 32]);
        server.create_listen_socket(LocalId(0), Config::new()).expect("fresh endpoint");
        let now = clock.now();
        let cc = client.connect(now, LocalId(0), SERVER, Config::new()).expect("valid config");
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut sc = None;
        let connected = |ep: &Endpoint<Addr>, c: Option<ConnectionHandle>| {
            c.and_then(|c| ep.connection_info(c))
                .is_some_and(|i| i.state == ConnectionState::Connected)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !(connected(&client, Some(cc)) && connected(&server, sc)) {
            assert!(std::time::Instant::now() < deadline, "handshake did not finish");
            let now = clock.now();
            run_timers(now, &mut client);
            run_timers(now, &mut server);
            pump(now, &mut client, CLIENT, &mut server, &mut buf, usize::MAX);
            while let Some(Event::StatusChanged { conn, info, .. }) = server.poll_event() {
                if info.state == ConnectionState::Connecting && info.listen_socket.is_some() {
                    server.accept(now, conn).expect("just announced");
                    sc = Some(conn);
                }
            }
            pump(now, &mut server, SERVER, &mut client, &mut buf, usize::MAX);
            while client.poll_event().is_some() {}
        }
        Bench { clock, client, server, cc, sc: sc.expect("connected"), buf }
    }

    /// Runs `kind` for `warmup + duration`; returns what was delivered during `duration`.
    fn run(&mut self, kind: &Workload, warmup: Duration, duration: Duration) -> Sample {
        let mut msg = vec![0xa5u8; kind.size];
        let mut next_counter = 0u64;
        let mut expect_counter = 0u64;
        let mut last_number = 0u64;
        let mut received: Vec<Message> = Vec::with_capacity(4096);
        let mut measuring = false;
        let (mut msgs, mut bytes) = (0u64, 0u64);
        let (mut datagrams_base, mut cpu0) = (0u64, None);
        let mut t0 = self.clock.now();
        let start = t0;
        loop {
            let now = self.clock.now();
            if !measuring && now - start >= warmup {
                measuring = true;
                (msgs, bytes) = (0, 0);
                t0 = now;
                cpu0 = thread_cpu_ns();
                datagrams_base = self.client.stats().datagrams_out;
            }
            if measuring && now - t0 >= duration {
                let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b - a);
                let wall = now - t0;
                let datagrams = self.client.stats().datagrams_out - datagrams_base;
                return Sample { msgs, bytes, wall, cpu, datagrams };
            }
            // Keep the queue full.
            loop {
                msg[..8].copy_from_slice(&next_counter.to_le_bytes());
                match self.client.send(now, self.cc, &msg, kind.flags) {
                    Ok(_) => next_counter += 1,
                    Err(SendError::LimitExceeded) => break,
                    Err(e) => panic!("send failed: {e:?}"),
                }
            }
            run_timers(now, &mut self.client);
            run_timers(now, &mut self.server);
            pump(now, &mut self.client, CLIENT, &mut self.server, &mut self.buf, BURST);
            self.server.receive(self.sc, usize::MAX, &mut received).expect("live connection");
            for m in received.drain(..) {
                let counter = u64::from_le_bytes(m.data[..8].try_into().expect("8 bytes"));
                assert_eq!(m.data.len(), kind.size, "message size changed");
                assert!(m.number > last_number, "message numbers went backwards");
                if kind.flags.is_reliable() {
                    assert_eq!(counter, expect_counter, "reliable message out of order");
                    assert_eq!(m.number, last_number + 1, "reliable message number skipped");
                } else {
                    assert!(counter >= expect_counter, "unreliable message duplicated");
                }
                expect_counter = counter + 1;
                last_number = m.number;
                msgs += 1;
                bytes += m.data.len() as u64;
            }
            pump(now, &mut self.server, SERVER, &mut self.client, &mut self.buf, usize::MAX);
        }
    }
}

/// One row of the table.
struct Workload {
    name: &'static str,
    size: usize,
    flags: SendFlags,
    encrypted: bool,
}

/// What one workload delivered while measured.
struct Sample {
    msgs: u64,
    bytes: u64,
    wall: Duration,
    cpu: Option<u64>,
    datagrams: u64,
}

impl Sample {
    fn msgs_per_sec(&self) -> f64 {
        self.msgs as f64 / self.wall.as_secs_f64()
    }
    fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.wall.as_secs_f64()
    }
    fn cpu_ns(&self) -> f64 {
        self.cpu.map_or(self.wall.as_nanos() as f64, |c| c as f64)
    }
    fn ns_per_msg(&self) -> f64 {
        self.cpu_ns() / self.msgs.max(1) as f64
    }
    /// Messages per second of CPU time (what one core can do).
    fn msgs_per_cpu_sec(&self) -> f64 {
        self.msgs as f64 * 1e9 / self.cpu_ns()
    }
    fn bytes_per_cpu_sec(&self) -> f64 {
        self.bytes as f64 * 1e9 / self.cpu_ns()
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects workloads by name.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let duration = std::env::var("LANEWIRE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(DURATION, Duration::from_secs_f64);
    let shapes = [
        ("64 B unreliable", 64, SendFlags::UNRELIABLE),
        ("64 B reliable", 64, SendFlags::RELIABLE),
        ("512 KiB reliable", 512 * 1024, SendFlags::RELIABLE),
    ];
    let workloads: Vec<Workload> = [true, false]
        .into_iter()
        .flat_map(|encrypted| {
            shapes.iter().map(move |&(name, size, flags)| Workload { name, size, flags, encrypted })
        })
        .collect();
    let cpu_source = if thread_cpu_ns().is_some() { "thread CPU time" } else { "wall time" };
    println!(
        "lanewire-core: one thread, two endpoints back to back, unimpaired, {duration:?} each"
    );
    println!("(CPU figures from {cpu_source}; MB = 10^6 bytes)\n");
    println!(
        "{:<18} {:<9} {:>11} {:>9} {:>11} {:>11} {:>9} {:>8}",
        "workload", "cipher", "msgs/s", "MB/s", "CPU ns/msg", "msgs/CPU-s", "pkts/s", "msgs/pkt"
    );
    let mut verdicts = String::new();
    for w in &workloads {
        let cipher = if w.encrypted { "aes-gcm" } else { "plaintext" };
        let label = format!("{} {cipher}", w.name);
        if !filter.is_empty() && !filter.iter().any(|f| label.contains(f.as_str())) {
            continue;
        }
        // A fresh connection per workload, so that no queue carries over.
        let mut b = Bench::new(w.encrypted);
        let s = b.run(w, WARMUP, duration);
        let pkts_per_sec = s.datagrams as f64 / s.wall.as_secs_f64();
        println!(
            "{:<18} {cipher:<9} {:>11.0} {:>9.1} {:>11.1} {:>11.0} {:>9.0} {:>8.1}",
            w.name,
            s.msgs_per_sec(),
            s.bytes_per_sec() / 1e6,
            s.ns_per_msg(),
            s.msgs_per_cpu_sec(),
            pkts_per_sec,
            s.msgs as f64 / s.datagrams.max(1) as f64,
        );
        let (value, target, unit, got) = if w.size == 64 {
            let v = s.msgs_per_cpu_sec();
            (v / 1e6, TARGET_SMALL_MSGS_PER_SEC / 1e6, "M msgs/s per core", v)
        } else {
            let v = s.bytes_per_cpu_sec();
            (v / 1e9, TARGET_BULK_BYTES_PER_SEC / 1e9, "GB/s per core", v)
        };
        let ok = if w.size == 64 {
            got >= TARGET_SMALL_MSGS_PER_SEC
        } else {
            got >= TARGET_BULK_BYTES_PER_SEC
        };
        let _ = writeln!(
            verdicts,
            "{:<18} {cipher:<9} {value:>6.2} {unit} (target >= {target:.0}): {}",
            w.name,
            if ok { "meets target" } else { "BELOW TARGET" }
        );
    }
    println!("\n{verdicts}");
}
