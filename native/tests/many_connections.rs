//! 1000 connections to one listen socket, in one process: all reach `Connected`, exchange a
//! message each way, and close cleanly (the server sees every close with its reason). The
//! heap used per connection is measured with a counting allocator and printed.
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system
// allocator.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use lanewire::{Config, ConnectionState, EndReason, SendFlags, Sockets};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts bytes.
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

const N: usize = 1000;

#[test]
fn thousand_connections_to_one_listen_socket() {
    let started = Instant::now();
    let server = Sockets::new().unwrap();
    let l = server.listen_ip("127.0.0.1:0".parse().unwrap(), Config::new()).unwrap();
    let addr = server.listen_socket_address(l).unwrap();
    let client = Sockets::new().unwrap();
    let group = server.create_poll_group();
    // Bind the client socket and warm up lazily allocated buffers before measuring.
    let (wa, wb) = client.socket_pair(true).unwrap();
    client.close(wa, EndReason(0), "", false).unwrap();
    client.close(wb, EndReason(0), "", false).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let before = LIVE.load(Ordering::Relaxed);

    let clients: Vec<_> = (0..N).map(|_| client.connect_ip(addr, Config::new()).unwrap()).collect();
    let mut accepted = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.len() < N {
        assert!(Instant::now() < deadline, "accepted {} of {N}", accepted.len());
        if let Some(ev) = server.wait_event(Duration::from_millis(100))
            && ev.is_incoming()
        {
            server.accept(ev.conn).unwrap();
            server.set_poll_group(ev.conn, Some(group)).unwrap();
            accepted.insert(ev.conn);
        }
    }
    let connected =
        |s: &Sockets, c| s.connection_info(c).map(|i| i.state) == Some(ConnectionState::Connected);
    while !(clients.iter().all(|&c| connected(&client, c))
        && accepted.iter().all(|&c| connected(&server, c)))
    {
        assert!(Instant::now() < deadline, "not all connected");
        std::thread::sleep(Duration::from_millis(10));
    }
    let connected_at = started.elapsed();
    // Queued status events are the application's to drain, not connection state.
    client.events().for_each(drop);
    server.events().for_each(drop);
    let after = LIVE.load(Ordering::Relaxed);
    let per_end = (after - before) as f64 / (2 * N) as f64;
    let stats_client = client.stats();
    let stats_server = server.stats();

    // One message each way on every connection.
    for (i, &c) in clients.iter().enumerate() {
        client.send(c, &(i as u32).to_le_bytes(), SendFlags::RELIABLE).unwrap();
    }
    let mut echoed = 0;
    while echoed < N {
        assert!(Instant::now() < deadline, "echoed {echoed} of {N}");
        for m in
            server.receive_on_poll_group_timeout(group, 256, Duration::from_millis(100)).unwrap()
        {
            server.send(m.conn, m.data(), SendFlags::RELIABLE).unwrap();
            echoed += 1;
        }
    }
    let mut answered = 0;
    for (i, &c) in clients.iter().enumerate() {
        let m = common::receive_n(&client, c, 1, Duration::from_secs(30));
        assert_eq!(m[0].data(), (i as u32).to_le_bytes());
        answered += 1;
    }
    assert_eq!(answered, N);

    // Close cleanly from the clients (linger); the server sees every close.
    server.events().for_each(drop);
    for &c in &clients {
        client.close(c, EndReason(1001), "done", true).unwrap();
    }
    let mut closed = HashSet::new();
    while closed.len() < N {
        assert!(Instant::now() < deadline, "server saw {} of {N} closes", closed.len());
        if let Some(ev) = server.wait_event(Duration::from_millis(100)) {
            assert_eq!(ev.info.state, ConnectionState::ClosedByPeer, "{ev:?}");
            assert_eq!(ev.info.end_reason, EndReason(1001));
            server.close(ev.conn, EndReason(0), "", false).unwrap();
            closed.insert(ev.conn);
        }
    }
    println!(
        "{N} connections: all connected after {connected_at:?}, whole test {:?}; heap per \
         connection end {:.0} B ({:.2} KiB); buffered bytes client {} server {}",
        started.elapsed(),
        per_end,
        per_end / 1024.0,
        stats_client.buffered_bytes,
        stats_server.buffered_bytes,
    );
    assert!(per_end < 64.0 * 1024.0, "{per_end} B per connection");
}
