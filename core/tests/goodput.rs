//! The seeded goodput table: one reliable transfer per cell of a loss × latency grid, over the
//! deterministic simulator, rendered as a fixed-width table and compared with the committed
//! snapshot `tests/snapshots/goodput.txt`. Any change in protocol behaviour (packet sizes,
//! ack timing, loss detection, pacing) moves some figure, so it shows up in review.
//!
//! To accept a new table after an intended change, run (natively)
//! `LANEWIRE_BLESS=1 cargo test -p lanewire-core --features sim --test goodput`
//! and commit the rewritten snapshot.

mod common;

use core::time::Duration;

use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::{Config, ConfigKey, ConnectionState, Instant, Message, SendFlags};

/// The one seed of every cell.
const SEED: u64 = 0x600d_9007;
/// The fixed send rate, bytes per second (SendRateMin = SendRateMax).
const RATE: i32 = 1_000_000;
/// Size of each reliable message.
const MESSAGE: usize = 4 * 1024;
/// Messages per transfer: 1 MiB in all, about a second of sending at [`RATE`], so that
/// recovery in the middle of a transfer counts as much as the tail. The 20 cells take under a
/// second in a debug build, and run under wasm32 too.
const MESSAGES: usize = 256;
/// Loss in percent, applied independently to each datagram in both directions.
const LOSS_PCT: [u32; 5] = [0, 1, 5, 10, 20];
/// One-way latency in milliseconds, both directions.
const LATENCY_MS: [u64; 4] = [0, 10, 50, 100];
/// Virtual-time bound on one transfer; far above the worst cell.
const LIMIT: Duration = Duration::from_secs(120);

const SNAPSHOT: &str = include_str!("snapshots/goodput.txt");

/// What one cell measured.
struct Cell {
    loss_pct: u32,
    latency_ms: u64,
    /// Virtual time from the first send to the last message's delivery, µs.
    time_us: u64,
    /// Data packets the client sent during the transfer.
    sent: u64,
    /// Of those, how many the link dropped (sent by the client, never handed to the server).
    dropped: u64,
    /// Packets the client's loss detection declared lost (includes spurious declarations).
    declared_lost: u64,
}

fn link(loss_pct: u32, latency_ms: u64) -> LinkConfig {
    LinkConfig {
        loss: f64::from(loss_pct) / 100.0,
        latency: Duration::from_millis(latency_ms),
        ..LinkConfig::ideal()
    }
}

fn global_config() -> Config {
    let mut c = Config::new();
    c.set_i32(ConfigKey::SendRateMin, RATE).unwrap();
    c.set_i32(ConfigKey::SendRateMax, RATE).unwrap();
    // The whole transfer is queued at once.
    c.set_i32(ConfigKey::SendBufferSize, 2 * (MESSAGES * MESSAGE) as i32).unwrap();
    c
}

/// The number after `key` in the line of `status` that starts with `line`, e.g. the "lost"
/// count of the "packets:" line of `detailed_status`.
// TODO(core): read these from QuickStatus once it exposes packet counters.
fn status_field(status: &str, line: &str, key: &str) -> u64 {
    let l = status
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no `{line}` line in detailed status:\n{status}"));
    let mut words = l.split(|c: char| c.is_whitespace() || c == ',');
    while let Some(w) = words.next() {
        if w == key
            && let Some(n) = words.find(|w| !w.is_empty()).and_then(|w| w.parse().ok())
        {
            return n;
        }
    }
    panic!("no `{key} N` in `{l}`");
}

fn run_cell(loss_pct: u32, latency_ms: u64) -> Cell {
    let mut pair =
        Pair::new(SEED, link(loss_pct, latency_ms), global_config(), Config::new(), Config::new());
    assert!(pair.connect(Duration::from_secs(60)), "no connection at {loss_pct}% {latency_ms} ms");
    let (client, server, cc) = (pair.client, pair.server, pair.client_conn);
    let sc = pair.server_conn.expect("connected");
    let w = &mut pair.world;

    let start = w.now;
    let out0 = w.node(client).stats().datagrams_out;
    let in0 = w.node(server).stats().datagrams_in;
    for i in 0..MESSAGES {
        let mut m = vec![0u8; MESSAGE];
        m[..8].copy_from_slice(&(i as u64).to_le_bytes());
        w.node(client).send(start, cc, &m, SendFlags::RELIABLE).expect("queue has room");
    }

    // Receive and check every message; note when the last one completed.
    let mut got = 0usize;
    let mut last_at = Instant::ZERO;
    let mut out: Vec<Message> = Vec::new();
    let done = w.run_until(LIMIT, |w| {
        w.node(server).receive(sc, usize::MAX, &mut out).expect("server connection alive");
        for m in out.drain(..) {
            assert_eq!(m.data.len(), MESSAGE, "message size changed");
            let n = u64::from_le_bytes(m.data[..8].try_into().unwrap());
            assert_eq!(n, got as u64, "reliable message out of order");
            got += 1;
            last_at = m.received_at;
        }
        got == MESSAGES
    });
    assert!(
        done,
        "only {got} of {MESSAGES} messages after {LIMIT:?} at {loss_pct}% {latency_ms} ms"
    );

    // Let the last acks land so the client's counters are final, and let its stragglers arrive.
    let acked = w.run_until(LIMIT, |w| {
        let now = w.now;
        let q = w.node(client).quick_status(now, cc).expect("client connection alive");
        q.pending_reliable == 0 && q.sent_unacked_reliable == 0
    });
    assert!(acked, "client data never fully acknowledged");
    w.run_for(Duration::from_millis(2 * latency_ms + 50));
    for (node, conn) in [(client, cc), (server, sc)] {
        let state = w.node(node).connection_info(conn).map(|i| i.state);
        assert_eq!(state, Some(ConnectionState::Connected), "connection dropped");
    }

    let now = w.now;
    let status = w.node(client).detailed_status(now, cc).expect("client connection alive");
    let sent = w.node(client).stats().datagrams_out - out0;
    let arrived = w.node(server).stats().datagrams_in - in0;
    Cell {
        loss_pct,
        latency_ms,
        time_us: (last_at - start).as_micros() as u64,
        sent,
        dropped: sent.saturating_sub(arrived),
        declared_lost: status_field(&status, "packets:", "lost"),
    }
}

/// The fixed-width table. Integer arithmetic only, so every target renders the same bytes.
fn render(cells: &[Cell]) -> String {
    use core::fmt::Write;
    let total = MESSAGES * MESSAGE;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "goodput: {} KiB of reliable {} B messages, client -> server over the simulator",
        total / 1024,
        MESSAGE
    );
    let _ = writeln!(
        s,
        "send rate fixed at {RATE} B/s; loss both ways; seed {SEED:#x}; KB = 1000 B of payload"
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>5} {:>7} {:>9} {:>13} {:>6} {:>6} {:>8} {:>9}",
        "loss", "lat ms", "time ms", "goodput KB/s", "sent", "extra", "dropped", "declared"
    );
    for c in cells {
        // The loss-free run at the same latency: what the transfer costs without recovery.
        let base = cells
            .iter()
            .find(|b| b.loss_pct == 0 && b.latency_ms == c.latency_ms)
            .map_or(c.sent, |b| b.sent);
        let tenths = (total as u64 * 10_000).checked_div(c.time_us).unwrap_or(0);
        let _ = writeln!(
            s,
            "{:>4}% {:>7} {:>5}.{:03} {:>11}.{} {:>6} {:>6} {:>8} {:>9}",
            c.loss_pct,
            c.latency_ms,
            c.time_us / 1000,
            c.time_us % 1000,
            tenths / 10,
            tenths % 10,
            c.sent,
            c.sent as i64 - base as i64,
            c.dropped,
            c.declared_lost,
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "time: first send to last delivery, virtual; goodput = payload / time");
    let _ = writeln!(s, "sent: client data packets; extra: sent minus the loss-free run at that");
    let _ =
        writeln!(s, "latency (retransmissions and probes); dropped: of sent, lost on the link;");
    let _ = writeln!(s, "declared: packets the client's loss detection declared lost");
    s
}

#[cfg(not(target_arch = "wasm32"))]
fn bless(table: &str) -> bool {
    if std::env::var("LANEWIRE_BLESS").is_ok_and(|v| v == "1") {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/goodput.txt");
        std::fs::write(&path, table).expect("write snapshot");
        println!("{table}\nwrote {}", path.display());
        return true;
    }
    false
}

#[cfg(target_arch = "wasm32")]
fn bless(_: &str) -> bool {
    false
}

both! {
    fn goodput_table_matches_snapshot() {
        let mut cells = Vec::new();
        for &loss in &LOSS_PCT {
            for &lat in &LATENCY_MS {
                cells.push(run_cell(loss, lat));
            }
        }
        let table = render(&cells);
        if bless(&table) {
            return;
        }
        let expected = SNAPSHOT.replace("\r\n", "\n");
        if table != expected {
            let first = table
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| table.lines().count().min(expected.lines().count()));
            panic!(
                "goodput table differs from tests/snapshots/goodput.txt (first at line {}).\n\n\
                 --- snapshot\n{expected}\n+++ this run\n{table}\n\
                 If the change is intended, run \
                 LANEWIRE_BLESS=1 cargo test -p lanewire-core --features sim --test goodput \
                 to accept it, and commit the snapshot.",
                first + 1
            );
        }
    }
}
