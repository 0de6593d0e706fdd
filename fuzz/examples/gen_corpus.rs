//! Writes the seed corpus of every fuzz target under `fuzz/corpus/<target>/`, replacing what is
//! there. Deterministic: running it again writes the same files.
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```
//!
//! - `packet_decode`: datagrams captured from simulated sessions (`lanewire_core::sim`), one
//!   encrypted and one plaintext: every handshake packet, data packets of each size class, and
//!   closing packets.
//! - `frame_decode`: the payloads of the plaintext session's data packets (frames in clear).
//! - `handshake`: for each variant, the client's real crypto offer (server side) and the
//!   server's real answer to it (client side), made with the target's own harness so ids,
//!   signatures and key shares match what the target rebuilds.
//! - `endpoint_recv`: for each session mode, the datagrams a real client sent after the
//!   handshake, as operation sequences of the target, plus honest-traffic sequences.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use lanewire_core::link::LinkConfig;
use lanewire_core::sim::Pair;
use lanewire_core::wire::{ControlRepr, DataPacket};
use lanewire_core::{Config, ConfigKey, ConnectionState, EndReason, LocalId, SendFlags};
use lanewire_fuzz::{CLIENT, SERVER, Session, VARIANTS, Variant, WaitingClient, drain};

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let encrypted = sim_capture(false);
    let plaintext = sim_capture(true);

    let mut packets = Seeds::new(&root, "packet_decode");
    for (label, captured) in [("enc", &encrypted), ("plain", &plaintext)] {
        for (i, d) in pick(captured).into_iter().enumerate() {
            packets.add(&format!("{label}-{i:02}-{}", kind(d)), d.clone());
        }
    }
    packets.write();

    let mut frames = Seeds::new(&root, "frame_decode");
    let payloads =
        pick(&plaintext).into_iter().filter_map(|d| DataPacket::new_checked(&d[..]).ok());
    for (i, p) in payloads.enumerate() {
        frames.add(&format!("payload-{i:02}"), p.payload().to_vec());
    }
    frames.write();

    let mut hs = Seeds::new(&root, "handshake");
    for (i, v) in VARIANTS.iter().enumerate() {
        let client = WaitingClient::new(v);
        let mut server_seed = vec![(i as u8) << 1];
        server_seed.extend_from_slice(&client.client_id.to_le_bytes());
        server_seed.extend_from_slice(&client.offer);
        hs.add(&format!("offer-{}", v.name), server_seed);
        let verdict = lanewire_fuzz::server_receives_offer(v, client.client_id, &client.offer);
        match verdict.answer {
            Some((server_id, answer)) => {
                let mut again = WaitingClient::new(v);
                let state = again.receive_answer(server_id, &answer);
                println!("  handshake {:<16} server answered, client {state:?}", v.name);
                let mut client_seed = vec![((i as u8) << 1) | 1];
                client_seed.extend_from_slice(&server_id.to_le_bytes());
                client_seed.extend_from_slice(&answer);
                hs.add(&format!("answer-{}", v.name), client_seed);
            }
            None => println!("  handshake {:<16} server refused the offer", v.name),
        }
    }
    hs.write();

    let mut ep = Seeds::new(&root, "endpoint_recv");
    for (mode, v) in VARIANTS.iter().enumerate().take(4) {
        endpoint_seeds(&mut ep, mode as u8, v);
    }
    ep.write();
}

/// Seeds of one target: (file name, bytes).
struct Seeds {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Seeds {
        Seeds { dir: root.join(target), files: Vec::new() }
    }
    fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.push((name.to_owned(), bytes));
    }
    fn write(self) {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).expect("remove old seeds");
        }
        std::fs::create_dir_all(&self.dir).expect("create corpus dir");
        let total: usize = self.files.iter().map(|(_, b)| b.len()).sum();
        for (name, bytes) in &self.files {
            std::fs::write(self.dir.join(name), bytes).expect("write seed");
        }
        println!("{}: {} seeds, {total} bytes", self.dir.display(), self.files.len());
    }
}

/// A simulated session with traffic of every kind; returns every datagram sent, in order.
fn sim_capture(plaintext: bool) -> Vec<Vec<u8>> {
    let mut cfg = Config::new();
    if plaintext {
        cfg.set_i32(ConfigKey::Unencrypted, 3).expect("in range");
    }
    let mut p = Pair::new(7, LinkConfig::ideal(), Config::new(), cfg.clone(), cfg);
    p.world.capture = true;
    assert!(p.connect(Duration::from_secs(5)), "simulated handshake");
    let (c, s, cc) = (p.client, p.server, p.client_conn);
    let sc = p.server_conn.expect("accepted");
    let sizes = [0usize, 1, 40, 300, 1200, 5000, 20_000];
    for (i, &n) in sizes.iter().enumerate() {
        let now = p.world.now;
        let data: Vec<u8> = (0..n).map(|k| (k * 7 + i) as u8).collect();
        let flags =
            if i % 2 == 0 { SendFlags::RELIABLE_NO_NAGLE } else { SendFlags::UNRELIABLE_NO_NAGLE };
        p.world.node(c).send(now, cc, &data, flags).expect("send");
        p.world
            .node(s)
            .send_on_lane(now, sc, 0, &data[..n.min(100)], SendFlags::RELIABLE)
            .expect("send");
        p.world.run_for(Duration::from_millis(30));
    }
    p.world.run_for(Duration::from_secs(2)); // acks, stats, keepalives
    let now = p.world.now;
    p.world.node(c).close(now, cc, EndReason::APP_GENERIC, "bye", true).expect("close");
    p.world.run_for(Duration::from_secs(1));
    p.world.captured.iter().map(|(_, _, d)| d.clone()).collect()
}

/// Up to 16 datagrams of a capture: every control packet and a spread of data packets.
fn pick(captured: &[Vec<u8>]) -> Vec<&Vec<u8>> {
    let control: Vec<&Vec<u8>> = captured.iter().filter(|d| d[0] & 0x80 == 0).collect();
    let data: Vec<&Vec<u8>> = captured.iter().filter(|d| d[0] & 0x80 != 0).collect();
    let room = 16usize.saturating_sub(control.len()).max(4);
    let step = data.len().div_ceil(room).max(1);
    control.into_iter().chain(data.into_iter().step_by(step)).collect()
}

fn kind(d: &[u8]) -> &'static str {
    match ControlRepr::parse(d) {
        Ok(ControlRepr::ChallengeRequest { .. }) => "challenge-request",
        Ok(ControlRepr::ChallengeReply { .. }) => "challenge-reply",
        Ok(ControlRepr::ConnectRequest { .. }) => "connect-request",
        Ok(ControlRepr::ConnectOk { .. }) => "connect-ok",
        Ok(ControlRepr::Closed { .. }) => "closed",
        Ok(ControlRepr::NoConnection { .. }) => "no-connection",
        Err(_) if d[0] & 0x80 != 0 => "data",
        Err(_) => "other",
    }
}

/// Seeds for `endpoint_recv` in session mode `mode`: what a real client sends after the
/// handshake, replayed with op 0 (raw datagram from the peer) and op 3 (time passes).
fn endpoint_seeds(seeds: &mut Seeds, mode: u8, v: &Variant) {
    let mut s = Session::establish(v, false).expect("handshake");
    let mut replay = vec![mode];
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut honest = vec![mode];
    let sizes = [3usize, 200, 1500, 4000];
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|k| (k * 13 + i) as u8).collect();
        let flags =
            if i % 2 == 0 { SendFlags::RELIABLE_NO_NAGLE } else { SendFlags::UNRELIABLE_NO_NAGLE };
        s.client.send(s.now, s.cc, &data, flags).expect("send");
        // Until the pacer has let every packet of the message out: 5 ms steps.
        let mut quiet = 0;
        while quiet < 2 {
            let out = drain(&mut s.client, s.now);
            quiet = if out.is_empty() { quiet + 1 } else { 0 };
            for (to, mut d) in out {
                if to != SERVER {
                    continue;
                }
                replay.push(0);
                replay.extend_from_slice(&(d.len() as u16).to_le_bytes());
                replay.extend_from_slice(&d);
                sent.push(d.clone());
                s.server.handle_datagram(s.now, LocalId(0), CLIENT, &mut d);
            }
            for (_, mut d) in drain(&mut s.server, s.now) {
                s.client.handle_datagram(s.now, LocalId(0), SERVER, &mut d);
            }
            replay.extend_from_slice(&[3, 5, 0]); // 5 ms pass
            s.advance(Duration::from_millis(5));
        }
        // The same message through op 6 (client sends, honest exchange).
        honest.extend_from_slice(&[6, flags.0 as u8]);
        honest.extend_from_slice(&(n.min(2000) as u16).to_le_bytes());
        honest.extend_from_slice(&data[..n.min(2000)]);
    }
    honest.extend_from_slice(&[5, 4, 9, 0, 5, 0, b'h', b'e', b'l', b'l', b'o', 3, 0xe8, 0x03]);
    let state = s.server.connection_info(s.sc).map(|i| i.state);
    assert_eq!(state, Some(ConnectionState::Connected));
    // The target rebuilds the same session, so the captured packets must get all the way in
    // there too (same keys, ids and packet numbers): check on a fresh one.
    let mut fresh = Session::establish(v, false).expect("handshake");
    for mut d in sent {
        fresh.server.handle_datagram(fresh.now, LocalId(0), CLIENT, &mut d);
    }
    let st = fresh.server.stats();
    assert_eq!((st.malformed, st.dropped_by_connection, st.refused_by_connection), (0, 0, 0));
    let mut got = Vec::new();
    fresh.server.receive(fresh.sc, usize::MAX, &mut got).expect("live connection");
    assert_eq!(got.len(), sizes.len(), "{}: replayed messages arrive", v.name);
    seeds.add(&format!("replay-{}", v.name), replay);
    seeds.add(&format!("honest-{}", v.name), honest);
    if v.unencrypted == 3 {
        // Plaintext: hand-built data packets (op 2) whose payload is real frames.
        let mut p = vec![mode];
        for (pn, frames) in [
            (10u64, &[0x01u8][..]),                             // ping
            (11, &[0x11, 0, 0, 5, 1, 3, b'a', b'b', b'c'][..]), // reliable "abc"
            (12, &[0x20, 1, 1, b'x', b'y'][..]),                // unreliable, lane 1
            (13, &[0x02, 3, 0, 0, 0, 0x05, 0xe8, 0x07][..]),    // ack + stats
            (14, &[0x22, 0, 2, 0, 4, b'h', b'i'][..]),          // fragment 0..2 of 4
            (15, &[0x22, 0, 2, 2, 4, b'!', b'!'][..]),          // fragment 2..4 of 4
            (16, &[0x04, 0xe8, 0x07, 2, b'o', b'k'][..]),       // close
        ] {
            p.extend_from_slice(&[2, 0]);
            p.extend_from_slice(&pn.to_le_bytes());
            p.extend_from_slice(&(frames.len() as u16).to_le_bytes());
            p.extend_from_slice(frames);
        }
        seeds.add("frames-plaintext", p);
    }
}
