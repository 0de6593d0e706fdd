//! The native participant of the cross-platform demo (`cargo xtask demo`, page in `www/`):
//! it joins the same session as the browser tabs and moves a dot on its own.
//!
//! ```text
//! cargo run -p lanewire --features webrtc --example demo_client -- --host          # what xtask starts
//! cargo run -p lanewire --features webrtc --example demo_client -- --name bot      # one more native player
//! ```
//!
//! The session is a star: one process runs with `--host` (identity `str:demo-host`, listening
//! on virtual port 0), accepts every participant (browser tabs and native clients), relays
//! positions and chat between them and sends everyone the roster. Without `--host` the client
//! connects to the host by identity through the signaling server.
//!
//! Options: `--signaling URL` (default `ws://127.0.0.1:8080/ws`), `--name NAME`, `--host-id ID`
//! (default `str:demo-host`), `--port N` (virtual port, default 0), `--loopback` (ICE on
//! 127.0.0.1 only), `--stdin` (typed lines become chat; end of input leaves the session),
//! `--token T` (a server that checks tokens). Prints `ready` when registered, then `roster
//! (N): ...` whenever the participants change and `chat NAME: TEXT` for every chat line.
//!
//! # Messages
//!
//! The first byte is the type; integers are little-endian; strings are UTF-8, with a length
//! byte where more follows. Lane 0 carries positions (unreliable, 30 Hz), lane 1 everything
//! else (reliable). `www/protocol.js` is the same table in JavaScript.
//!
//! | type | direction | lane | body |
//! | --- | --- | --- | --- |
//! | 1 `HELLO` | to host | 1 | kind `u8` (0 native, 1 browser), name (rest, at most 32 bytes) |
//! | 2 `POS` | to host | 0 | x `u16`, y `u16` (the arena is 0..=65535 in both axes) |
//! | 3 `WORLD` | from host | 0 | count `u8`, then per participant: id `u16`, x `u16`, y `u16` |
//! | 4 `SAY` | to host | 1 | text (rest, at most 200 bytes) |
//! | 5 `CHAT` | from host | 1 | from id `u16`, text (rest) |
//! | 6 `ROSTER` | from host | 1 | your id `u16`, count `u8`, then per participant: id `u16`, kind `u8`, route `u8` (0 the host itself, 1 direct, 2 relayed, 3 unknown), ping ms `u16` (65535 unknown), quality % `u8` (255 unknown), name (`u8` length + bytes), route text (`u8` length + bytes) |
//!
//! The ping, quality and route of the roster are the host's view of each connection.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lanewire::{
    Config, ConnectionHandle, ConnectionState, EndReason, SendFlags, SignalingConfig, Sockets,
};

const HELLO: u8 = 1;
const POS: u8 = 2;
const WORLD: u8 = 3;
const SAY: u8 = 4;
const CHAT: u8 = 5;
const ROSTER: u8 = 6;

const KIND_NATIVE: u8 = 0;
const KIND_BROWSER: u8 = 1;
const ROUTE_SELF: u8 = 0;
const ROUTE_DIRECT: u8 = 1;
const ROUTE_RELAYED: u8 = 2;
const ROUTE_UNKNOWN: u8 = 3;

const LANE_POS: u16 = 0;
const LANE_CHAT: u16 = 1;
const TICK: Duration = Duration::from_millis(33);
const HOST_ID: u16 = 1;

/// Command-line options.
struct Opts {
    host: bool,
    name: String,
    url: String,
    host_id: String,
    port: u32,
    loopback: bool,
    stdin: bool,
    token: Option<String>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        host: false,
        name: String::new(),
        url: "ws://127.0.0.1:8080/ws".into(),
        host_id: "str:demo-host".into(),
        port: 0,
        loopback: false,
        stdin: false,
        token: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--host" => o.host = true,
            "--loopback" => o.loopback = true,
            "--stdin" => o.stdin = true,
            "--name" => o.name = value()?,
            "--signaling" => o.url = value()?,
            "--host-id" => o.host_id = value()?,
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--token" => o.token = Some(value()?),
            "-h" | "--help" => {
                return Err("usage: demo_client [--host] [--name NAME] [--signaling URL] \
                            [--host-id ID] [--port N] [--loopback] [--stdin] [--token T]"
                    .into());
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if o.name.is_empty() {
        o.name = if o.host { "host".into() } else { format!("native-{:04x}", random() as u16) };
    }
    o.name = clip(&o.name, 32).to_owned();
    Ok(o)
}

/// A random number without a dependency: std's randomly seeded hasher.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(now.map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    h.finish()
}

/// `s` cut to at most `max` bytes on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str8(out: &mut Vec<u8>, s: &str) {
    let s = clip(s, 255);
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Reads little-endian fields from a message body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn str8(&mut self) -> Option<String> {
        let n = usize::from(self.u8()?);
        let (s, rest) = (self.0.get(..n)?, &self.0[n..]);
        self.0 = rest;
        Some(String::from_utf8_lossy(s).into_owned())
    }
    fn rest(&mut self) -> String {
        let s = String::from_utf8_lossy(self.0).into_owned();
        self.0 = &[];
        s
    }
}

/// Where our own dot is at time `t`: a slow Lissajous curve, different per process.
fn wander(t: f64, phase: f64) -> (u16, u16) {
    let x = 0.5 + 0.38 * (t * 0.61 + phase).sin();
    let y = 0.5 + 0.38 * (t * 0.87 + phase * 1.7).sin();
    ((x * 65535.0) as u16, (y * 65535.0) as u16)
}

/// One roster line as printed: `roster (N): name [kind, route], ...`.
fn roster_line(entries: &[(String, u8, u8)]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|(name, kind, route)| {
            let kind = if *kind == KIND_BROWSER { "browser" } else { "native" };
            let route = match *route {
                ROUTE_SELF => "host",
                ROUTE_DIRECT => "direct",
                ROUTE_RELAYED => "relayed",
                _ => "unknown",
            };
            format!("{name} [{kind}, {route}]")
        })
        .collect();
    format!("roster ({}): {}", entries.len(), parts.join(", "))
}

/// Lines typed on stdin (with `--stdin`); `None` at end of input.
fn stdin_lines(enabled: bool) -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    if enabled {
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Some(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
    }
    rx
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("demo_client: {e}");
            std::process::exit(2);
        }
    };
    let result = start(&opts).and_then(|sockets| {
        if opts.host { host(&opts, &sockets) } else { client(&opts, &sockets) }
    });
    if let Err(e) = result {
        eprintln!("demo_client: {e}");
        std::process::exit(1);
    }
}

/// Registers at the signaling server.
fn start(opts: &Opts) -> Result<Sockets, String> {
    let identity = if opts.host {
        opts.host_id.clone()
    } else {
        format!("str:{}-{:08x}", opts.name.replace(char::is_whitespace, "-"), random() as u32)
    };
    let mut config = SignalingConfig::new(&opts.url, &identity);
    config.token = opts.token.clone();
    if opts.loopback {
        config = config.loopback_only();
    } else {
        // Every interface, and loopback too: browsers on this machine find us either way.
        config.loopback_candidates = true;
    }
    let sockets = Sockets::new().map_err(|e| format!("sockets: {e}"))?;
    sockets.connect_signaling(config).map_err(|e| format!("signaling {}: {e}", opts.url))?;
    println!("ready: {} as {identity} ({}) via {}", opts.name, role(opts), opts.url);
    Ok(sockets)
}

fn role(opts: &Opts) -> &'static str {
    if opts.host { "host" } else { "client" }
}

/// Both lanes: the same priority, positions and chat share the link equally.
fn setup_lanes(sockets: &Sockets, conn: ConnectionHandle) {
    let _ = sockets.configure_lanes(conn, &[0, 0], &[1, 1]);
}

/// A participant, as the host knows it.
struct Peer {
    id: u16,
    name: String,
    kind: u8,
    pos: (u16, u16),
    /// Said hello: part of the roster.
    joined: bool,
}

/// The host: accepts everyone, relays positions and chat, sends the roster.
fn host(opts: &Opts, sockets: &Sockets) -> Result<(), String> {
    sockets.listen_p2p(opts.port, Config::new()).map_err(|e| format!("listen: {e}"))?;
    let group = sockets.create_poll_group();
    println!("hosting on virtual port {}", opts.port);
    let typed = stdin_lines(opts.stdin);
    let mut peers: HashMap<ConnectionHandle, Peer> = HashMap::new();
    let mut next_id = HOST_ID + 1;
    let phase = (random() % 628) as f64 / 100.0;
    let start = Instant::now();
    let mut next_tick = Instant::now();
    let mut next_roster = Instant::now();
    let mut roster_changed = false;
    let mut last_line = String::new();

    let send_chat = |peers: &HashMap<ConnectionHandle, Peer>, from: u16, text: &str| {
        let mut m = vec![CHAT];
        put_u16(&mut m, from);
        m.extend_from_slice(clip(text, 200).as_bytes());
        for (&c, _) in peers.iter().filter(|(_, p)| p.joined) {
            let _ =
                sockets.send_on_lane(c, LANE_CHAT, &m, SendFlags::RELIABLE | SendFlags::NO_NAGLE);
        }
    };

    loop {
        sockets.run_callbacks(|ev| match ev.info.state {
            ConnectionState::Connecting if ev.is_incoming() && sockets.accept(ev.conn).is_ok() => {
                let _ = sockets.set_poll_group(ev.conn, Some(group));
                setup_lanes(sockets, ev.conn);
                let name = ev.info.remote_identity.clone().unwrap_or_default();
                peers.insert(
                    ev.conn,
                    Peer { id: next_id, name, kind: KIND_NATIVE, pos: (0, 0), joined: false },
                );
                next_id = next_id.checked_add(1).unwrap_or(HOST_ID + 1);
            }
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                if let Some(p) = peers.remove(&ev.conn) {
                    println!("left: {} ({} {})", p.name, ev.info.end_reason, ev.info.end_debug);
                    roster_changed = true;
                }
                let _ = sockets.close(ev.conn, EndReason(0), "", false);
            }
            _ => {}
        });

        let wait = next_tick.saturating_duration_since(Instant::now());
        let msgs = sockets
            .receive_on_poll_group_timeout(group, 256, wait)
            .map_err(|e| format!("receive: {e}"))?;
        for m in msgs {
            let Some(p) = peers.get_mut(&m.conn) else { continue };
            let mut r = Reader(m.data());
            match r.u8() {
                Some(HELLO) => {
                    p.kind = r.u8().unwrap_or(KIND_NATIVE);
                    p.name = clip(&r.rest(), 32).to_owned();
                    p.joined = true;
                    let route = sockets.p2p_connection_info(m.conn).and_then(|i| i.route);
                    let kind = if p.kind == KIND_BROWSER { "browser" } else { "native" };
                    println!("joined: {} ({kind}) route {}", p.name, route.unwrap_or_default());
                    roster_changed = true;
                }
                Some(POS) => {
                    if let (Some(x), Some(y)) = (r.u16(), r.u16()) {
                        p.pos = (x, y);
                    }
                }
                Some(SAY) if p.joined => {
                    let text = clip(&r.rest(), 200).to_owned();
                    println!("chat {}: {text}", p.name);
                    let from = p.id;
                    send_chat(&peers, from, &text);
                }
                _ => {}
            }
        }

        while let Ok(line) = typed.try_recv() {
            let Some(line) = line else {
                println!("end of input: closing");
                for &c in peers.keys() {
                    let _ = sockets.close(c, EndReason(1000), "host leaves", true);
                }
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            };
            if !line.trim().is_empty() {
                println!("chat {}: {line}", opts.name);
                send_chat(&peers, HOST_ID, &line);
            }
        }

        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            let me = wander(start.elapsed().as_secs_f64(), phase);
            let joined: Vec<(&ConnectionHandle, &Peer)> =
                peers.iter().filter(|(_, p)| p.joined).collect();
            let mut world = vec![WORLD, (joined.len() + 1).min(255) as u8];
            put_u16(&mut world, HOST_ID);
            put_u16(&mut world, me.0);
            put_u16(&mut world, me.1);
            for (_, p) in joined.iter().take(254) {
                put_u16(&mut world, p.id);
                put_u16(&mut world, p.pos.0);
                put_u16(&mut world, p.pos.1);
            }
            for &(&c, _) in &joined {
                let flags = SendFlags::UNRELIABLE | SendFlags::NO_NAGLE;
                let _ = sockets.send_on_lane(c, LANE_POS, &world, flags);
            }
        }

        if roster_changed || now >= next_roster {
            next_roster = now + Duration::from_secs(1);
            // The roster: the host first, then everyone who said hello, oldest first.
            let mut joined: Vec<(&ConnectionHandle, &Peer)> =
                peers.iter().filter(|(_, p)| p.joined).collect();
            joined.sort_by_key(|(_, p)| p.id);
            let mut entries = vec![(HOST_ID, opts.name.clone(), KIND_NATIVE, ROUTE_SELF, None)];
            for &(&c, p) in &joined {
                let p2p = sockets.p2p_connection_info(c);
                let route = match &p2p {
                    Some(i) if i.relayed => ROUTE_RELAYED,
                    Some(i) if i.open => ROUTE_DIRECT,
                    _ => ROUTE_UNKNOWN,
                };
                let text = p2p.and_then(|i| i.route).unwrap_or_default();
                let q = sockets.quick_status(c);
                entries.push((p.id, p.name.clone(), p.kind, route, q.map(|q| (q, text))));
            }
            let line =
                roster_line(&entries.iter().map(|e| (e.1.clone(), e.2, e.3)).collect::<Vec<_>>());
            if line != last_line {
                println!("{line}");
                last_line = line;
            }
            for &(&c, _) in &joined {
                let you = peers.get(&c).map_or(0, |p| p.id);
                let mut m = vec![ROSTER];
                put_u16(&mut m, you);
                m.push(entries.len().min(255) as u8);
                for (id, name, kind, route, status) in entries.iter().take(255) {
                    put_u16(&mut m, *id);
                    m.push(*kind);
                    m.push(*route);
                    let (ping, quality, text) = match status {
                        Some((q, text)) => (
                            if q.ping_ms >= 0 { q.ping_ms.min(65534) as u16 } else { u16::MAX },
                            if q.quality_local >= 0.0 {
                                (q.quality_local * 100.0).round().min(100.0) as u8
                            } else {
                                255
                            },
                            text.as_str(),
                        ),
                        None => (u16::MAX, 255, ""),
                    };
                    put_u16(&mut m, ping);
                    m.push(quality);
                    put_str8(&mut m, name);
                    put_str8(&mut m, text);
                }
                let _ = sockets.send_on_lane(c, LANE_CHAT, &m, SendFlags::RELIABLE);
            }
            roster_changed = false;
        }
    }
}

/// A client: connects to the host, sends its dot, prints the roster and the chat.
fn client(opts: &Opts, sockets: &Sockets) -> Result<(), String> {
    let conn = sockets
        .connect_p2p(&opts.host_id, opts.port, Config::new())
        .map_err(|e| format!("connect to {}: {e}", opts.host_id))?;
    setup_lanes(sockets, conn);
    let typed = stdin_lines(opts.stdin);
    let phase = (random() % 628) as f64 / 100.0;
    let start = Instant::now();
    let mut connected = false;
    let mut ended: Option<String> = None;
    let mut names: HashMap<u16, String> = HashMap::new();
    let mut last_line = String::new();
    let mut greeted = false;
    // Lines typed before the host knows us wait here.
    let mut pending: Vec<String> = Vec::new();
    let mut next_tick = Instant::now();
    loop {
        sockets.run_callbacks(|ev| match ev.info.state {
            ConnectionState::Connected if ev.conn == conn => {
                connected = true;
                let route = sockets.p2p_connection_info(conn).and_then(|i| i.route);
                println!("connected to {} ({})", opts.host_id, route.unwrap_or_default());
                let mut hello = vec![HELLO, KIND_NATIVE];
                hello.extend_from_slice(opts.name.as_bytes());
                let _ = sockets.send_on_lane(conn, LANE_CHAT, &hello, SendFlags::RELIABLE);
            }
            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                ended = Some(format!("{} {}", ev.info.end_reason, ev.info.end_debug));
            }
            _ => {}
        });
        if let Some(why) = ended {
            let _ = sockets.close(conn, EndReason(0), "", false);
            return Err(format!("the session ended: {why}"));
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        let msgs = sockets.receive_timeout(conn, 256, wait).map_err(|e| format!("receive: {e}"))?;
        for m in msgs {
            let mut r = Reader(m.data());
            match r.u8() {
                Some(CHAT) => {
                    let from = r.u16().unwrap_or(0);
                    let who = names.get(&from).cloned().unwrap_or_else(|| format!("#{from}"));
                    println!("chat {who}: {}", r.rest());
                }
                Some(ROSTER) => {
                    let _you = r.u16();
                    let n = r.u8().unwrap_or(0);
                    let mut entries = Vec::new();
                    names.clear();
                    for _ in 0..n {
                        let (Some(id), Some(kind), Some(route)) = (r.u16(), r.u8(), r.u8()) else {
                            break;
                        };
                        let (_ping, _quality) = (r.u16(), r.u8());
                        let (Some(name), Some(_text)) = (r.str8(), r.str8()) else { break };
                        names.insert(id, name.clone());
                        entries.push((name, kind, route));
                    }
                    let line = roster_line(&entries);
                    if line != last_line {
                        println!("{line}");
                        last_line = line;
                    }
                    if !greeted {
                        greeted = true;
                        let mut say = vec![SAY];
                        say.extend_from_slice(b"hello from a native client");
                        let _ = sockets.send_on_lane(conn, LANE_CHAT, &say, SendFlags::RELIABLE);
                    }
                }
                _ => {}
            }
        }
        while let Ok(line) = typed.try_recv() {
            let Some(line) = line else {
                println!("end of input: leaving");
                let _ = sockets.close(conn, EndReason(1000), "bye", true);
                std::thread::sleep(Duration::from_millis(300));
                return Ok(());
            };
            if !line.trim().is_empty() {
                pending.push(line);
            }
        }
        if greeted {
            for line in pending.drain(..) {
                let mut say = vec![SAY];
                say.extend_from_slice(clip(&line, 200).as_bytes());
                let _ = sockets.send_on_lane(conn, LANE_CHAT, &say, SendFlags::RELIABLE);
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            if connected {
                let (x, y) = wander(start.elapsed().as_secs_f64(), phase);
                let mut pos = vec![POS];
                put_u16(&mut pos, x);
                put_u16(&mut pos, y);
                let flags = SendFlags::UNRELIABLE | SendFlags::NO_NAGLE;
                let _ = sockets.send_on_lane(conn, LANE_POS, &pos, flags);
            }
        }
    }
}
