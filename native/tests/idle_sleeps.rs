//! No busy loop when idle: with live connections and nothing to send, the IO threads sleep
//! until the core's next timer (keepalives), so the process uses almost no CPU.

mod common;

use std::time::Duration;

use common::{connect, listen};
use lanewire::{Config, Sockets};

/// User + system CPU time of this process so far (Linux: /proc/self/stat, in clock ticks).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn idle_connections_use_no_cpu() {
    let (server, _l, addr) = listen("127.0.0.1:0", Config::new());
    let client = Sockets::new().unwrap();
    let (c, s) = connect(&server, &client, addr, Config::new());
    common::ping(&client, c, &server, s);
    let pair = client.socket_pair(false).unwrap();
    let Some(before) = cpu_ticks() else {
        return common::skip("idle_connections_use_no_cpu", "no /proc/self/stat here (not Linux)");
    };
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks().unwrap() - before;
    // Clock ticks are 10 ms: 2 s of idling may cost a tick or two of bookkeeping, not more.
    println!("idle for 2 s with 2 connections and a socket pair: {used} ticks of CPU");
    assert!(used <= 10, "idle IO threads used {used} ticks (10 ms each) in 2 s");
    common::ping(&client, c, &server, s);
    common::ping(&client, pair.0, &client, pair.1);
}
