//! Reproducer: how much memory a connected peer can make the receiver hold, through the public
//! API, on a plaintext connection (the same holds on an encrypted one for a peer that has the
//! keys: this is all after decryption, in `Connection::handle_data` and `RecvLane`).
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --example recv_memory
//! ```
//!
//! A. Announced messages: one reliable segment per lane carrying only a message header that
//!    announces a 512 KiB message makes `RecvLane::feed` reserve `Vec::with_capacity(size)`
//!    before any of the body has arrived; 255 lanes are open to the peer.
//! B. Overlapping out-of-order segments: `RecvLane::on_segment` keys held pieces by offset and
//!    only refuses an exact-offset duplicate that is no longer, so segments at offsets 1, 2, 3...
//!    each overlapping the last are all kept: the held bytes grow with the traffic, far past the
//!    1 MiB reassembly window, and are never freed while offset 0 stays missing.
//! C. Tiny out-of-order segments: one byte each at offsets 2, 4, 6...: `buffered_bytes()`
//!    counts one byte per piece, while each costs a `Vec` and a B-tree slot.
#![forbid(unsafe_code)]

use lanewire_core::LocalId;
use lanewire_core::wire::{DATA_FLAG, varint};
use lanewire_fuzz::{CLIENT, Session, VARIANTS};

/// A plaintext data packet to the server's connection: 4-byte packet number, then `frames`.
fn packet(server_id: u32, pn: u64, frames: &[u8]) -> Vec<u8> {
    let mut d = vec![DATA_FLAG | 2];
    d.extend_from_slice(&server_id.to_le_bytes());
    d.extend_from_slice(&(pn as u32).to_le_bytes());
    d.extend_from_slice(frames);
    d
}

/// A reliable frame with an explicit length: `0x11 lane offset len data`.
fn reliable(out: &mut Vec<u8>, lane: u64, offset: u64, data: &[u8]) {
    out.push(0x11);
    varint::put(out, lane);
    varint::put(out, offset);
    varint::put(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn session() -> Session {
    let plaintext = VARIANTS.iter().find(|v| v.unencrypted == 3).expect("a plaintext variant");
    let s = Session::establish(plaintext, false).expect("handshake");
    assert_eq!(s.server.buffered_bytes(), 0);
    s
}

fn send(s: &mut Session, pn: &mut u64, frames: &[u8]) -> usize {
    let mut d = packet(s.server_id, *pn, frames);
    *pn += 1;
    let n = d.len();
    assert!(n <= lanewire_core::MAX_DATAGRAM);
    let before = s.server.stats().dropped_by_connection + s.server.stats().refused_by_connection;
    s.server.handle_datagram(s.now, LocalId(0), CLIENT, &mut d);
    let after = s.server.stats().dropped_by_connection + s.server.stats().refused_by_connection;
    assert_eq!(before, after, "packet {pn} was dropped or refused");
    n
}

fn main() {
    // A: 255 lanes x one 4-byte message header announcing 512 KiB.
    let mut s = session();
    let mut pn = 100u64;
    let mut header = vec![1u8]; // message number delta 1
    varint::put(&mut header, 512 * 1024); // announced size
    let mut sent = 0;
    let mut frames = Vec::new();
    for lane in 0..=254u64 {
        reliable(&mut frames, lane, 0, &header);
        if frames.len() > 1100 || lane == 254 {
            sent += send(&mut s, &mut pn, &frames);
            frames.clear();
        }
    }
    println!(
        "A. announced messages: {sent} bytes in {} datagrams -> buffered_bytes() = {} ({:.0}x)",
        pn - 100,
        s.server.buffered_bytes(),
        s.server.buffered_bytes() as f64 / sent as f64
    );

    // B: overlapping 1,100-byte segments at offsets 1, 2, 3, ... on lane 0; offset 0 never sent.
    let mut s = session();
    let mut pn = 100u64;
    let piece = vec![0xabu8; 1100];
    let mut sent = 0;
    let count = 20_000u64;
    for offset in 1..=count {
        let mut frames = Vec::new();
        reliable(&mut frames, 0, offset, &piece);
        sent += send(&mut s, &mut pn, &frames);
    }
    println!(
        "B. overlapping segments: {count} datagrams, {sent} bytes, covering stream bytes 1..{} \
         -> buffered_bytes() = {} (window 1 MiB)",
        count + piece.len() as u64,
        s.server.buffered_bytes()
    );

    // C: 100 one-byte segments per datagram at every other offset on lane 0.
    let mut s = session();
    let mut pn = 100u64;
    let mut sent = 0;
    let mut offset = 2u64;
    let rss_before = rss_kib();
    for _ in 0..4_000 {
        let mut frames = Vec::new();
        for _ in 0..100 {
            reliable(&mut frames, 0, offset, &[0]);
            offset += 2;
        }
        sent += send(&mut s, &mut pn, &frames);
    }
    let rss_after = rss_kib();
    println!(
        "C. tiny segments: {sent} bytes in 4,000 datagrams -> buffered_bytes() = {}, \
         process RSS grew by {} KiB",
        s.server.buffered_bytes(),
        rss_after.saturating_sub(rss_before)
    );
}

/// Resident set size in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
