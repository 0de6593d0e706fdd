//! The deterministic network simulator: endpoints joined by seeded [`Link`]s, driven in
//! virtual time. No wall clock, no global RNG, no threads: the same seed gives the same run,
//! natively and on wasm32.
//!
//! [`World::step`] delivers everything due now, runs due timers, and then jumps the clock to
//! the next event. [`World::run_until`] is bounded in virtual time and in steps, so a test can
//! never hang: a livelock (time that stops advancing) panics with a clear message.

use crate::prelude::*;
use core::time::Duration;
use std::collections::HashMap;

use crate::config::Config;
use crate::endpoint::{Endpoint, MAX_DATAGRAM};
use crate::link::{Link, LinkConfig};
use crate::rng::Rng;
use crate::time::Instant;
use crate::types::{ConnectionHandle, ConnectionState, Event, LocalId};

/// A simulated node's address: its index in the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimAddr(pub u32);

impl crate::text::Text for SimAddr {
    /// As `{:?}` prints it: `SimAddr(3)`.
    fn push_to(&self, out: &mut String) {
        out.push_str("SimAddr(");
        crate::text::push_u64(out, u64::from(self.0));
        out.push(')');
    }
}

/// One direction of a simulated path, carrying (sender's local socket, datagram).
type SimLink = Link<(LocalId, Vec<u8>)>;

/// Steps allowed at one instant before the simulator calls it a livelock.
const MAX_STEPS_WITHOUT_PROGRESS: u32 = 100_000;

/// A set of endpoints and the links between them.
#[derive(Debug)]
pub struct World {
    /// Virtual time.
    pub now: Instant,
    /// The endpoints, indexed by [`SimAddr`].
    pub nodes: Vec<Endpoint<SimAddr>>,
    links: HashMap<(u32, u32), SimLink>,
    default_link: LinkConfig,
    rng: Rng,
    buf: Vec<u8>,
    stalled_steps: u32,
    /// Datagrams moved across links.
    pub datagrams: u64,
    /// When true, every datagram sent is also recorded in [`World::captured`] (for replay and
    /// mutation tests).
    pub capture: bool,
    /// Recorded datagrams: (from, to, bytes).
    pub captured: Vec<(SimAddr, SimAddr, Vec<u8>)>,
    /// Nodes that moved (see [`World::rebind`]): node -> the address it sends from now.
    moved: HashMap<u32, u32>,
    /// Addresses nodes moved to: address -> node.
    aliases: HashMap<u32, u32>,
}

impl World {
    /// An empty world; links between nodes default to `link`.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        World {
            now: Instant::ZERO,
            nodes: Vec::new(),
            links: HashMap::new(),
            default_link: link,
            rng: Rng::seeded(seed),
            buf: vec![0; MAX_DATAGRAM],
            stalled_steps: 0,
            datagrams: 0,
            capture: false,
            captured: Vec::new(),
            moved: HashMap::new(),
            aliases: HashMap::new(),
        }
    }

    /// Adds an endpoint with global config `config`; returns its address.
    pub fn add_node(&mut self, config: Config) -> SimAddr {
        let mut seed = [0u8; 32];
        self.rng.fill(&mut seed);
        self.nodes.push(Endpoint::new(config, seed));
        SimAddr(self.nodes.len() as u32 - 1)
    }

    /// Sets the link from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: SimAddr, to: SimAddr, config: LinkConfig) {
        match self.links.get_mut(&(from.0, to.0)) {
            Some(l) => l.set_config(config),
            None => {
                let rng = self.rng.fork();
                self.links.insert((from.0, to.0), Link::new(config, rng));
            }
        }
    }

    /// Moves node `node` to address `to` (a NAT rebinding): it sends from `to` from now on,
    /// datagrams to `to` reach it, and datagrams to its old address are lost. `to` must not
    /// be another node's index (use large numbers, such as 1000).
    pub fn rebind(&mut self, node: SimAddr, to: SimAddr) {
        self.moved.insert(node.0, to.0);
        self.aliases.insert(to.0, node.0);
    }

    /// The address node `node` sends from.
    fn address_of(&self, node: u32) -> u32 {
        self.moved.get(&node).copied().unwrap_or(node)
    }

    /// The node that address `addr` reaches, if any.
    fn node_at(&self, addr: u32) -> Option<usize> {
        match self.aliases.get(&addr) {
            Some(&n) => Some(n as usize),
            None => ((addr as usize) < self.nodes.len() && !self.moved.contains_key(&addr))
                .then_some(addr as usize),
        }
    }

    /// The endpoint at `a`.
    pub fn node(&mut self, a: SimAddr) -> &mut Endpoint<SimAddr> {
        &mut self.nodes[a.0 as usize]
    }

    fn link(&mut self, from: u32, to: u32) -> &mut SimLink {
        let cfg = self.default_link.clone();
        let rng = &mut self.rng;
        self.links.entry((from, to)).or_insert_with(|| Link::new(cfg, rng.fork()))
    }

    /// Handles everything due now, then advances the clock to the next event. Returns false
    /// when nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        // Transmit.
        for i in 0..self.nodes.len() {
            loop {
                let mut buf = core::mem::take(&mut self.buf);
                let t = self.nodes[i].poll_transmit(now, &mut buf);
                self.buf = buf;
                let Some(t) = t else { break };
                let data = self.buf[..t.len].to_vec();
                let from = self.address_of(i as u32);
                if self.capture {
                    self.captured.push((SimAddr(from), t.to, data.clone()));
                }
                self.link(from, t.to.0).send(now, t.len, (t.local, data));
            }
        }
        // Deliver.
        let mut keys: Vec<(u32, u32)> = self.links.keys().copied().collect();
        keys.sort_unstable();
        for (from, to) in keys {
            while let Some((_, mut data)) =
                self.links.get_mut(&(from, to)).and_then(|l| l.poll_deliver(now))
            {
                self.datagrams += 1;
                if let Some(n) = self.node_at(to).and_then(|i| self.nodes.get_mut(i)) {
                    n.handle_datagram(now, LocalId(0), SimAddr(from), &mut data);
                }
            }
        }
        // Timers.
        for n in &mut self.nodes {
            if n.poll_timeout().is_some_and(|t| t <= now) {
                n.handle_timeout(now);
            }
        }
        // Next event.
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for n in &mut self.nodes {
            if let Some(t) = n.poll_timeout() {
                consider(t);
            }
        }
        for l in self.links.values() {
            if let Some(t) = l.next_delivery() {
                consider(t);
            }
        }
        match next {
            None => false,
            Some(t) if t > now => {
                self.now = t;
                self.stalled_steps = 0;
                true
            }
            Some(_) => {
                self.stalled_steps += 1;
                assert!(
                    self.stalled_steps < MAX_STEPS_WITHOUT_PROGRESS,
                    "simulator livelock at {:?}: something is due now but nothing happens",
                    self.now
                );
                true
            }
        }
    }

    /// Steps until `done` returns true or virtual time passes `now + limit`. Returns whether
    /// `done` became true.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut World) -> bool) -> bool {
        let deadline = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.now >= deadline {
                return false;
            }
            if !self.step() {
                // Idle: jump to the deadline.
                self.now = deadline;
            }
            if self.now > deadline {
                self.now = deadline;
            }
        }
    }

    /// Counters of the link from `from` to `to` (`None` before anything used it).
    pub fn link_stats(&self, from: SimAddr, to: SimAddr) -> Option<crate::link::LinkStats> {
        self.links.get(&(from.0, to.0)).map(|l| *l.stats())
    }

    /// The queueing delay a datagram from `from` to `to` would meet now.
    pub fn queue_delay(&self, from: SimAddr, to: SimAddr) -> Duration {
        self.links.get(&(from.0, to.0)).map_or(Duration::ZERO, |l| l.queue_delay(self.now))
    }

    /// Hands a datagram straight to node `to` as if it came from `from` (for hostile-input tests).
    pub fn inject(&mut self, from: SimAddr, to: SimAddr, data: &mut [u8]) {
        let now = self.now;
        self.nodes[to.0 as usize].handle_datagram(now, LocalId(0), from, data);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }
}

/// Two endpoints, a client and a server, and their connection.
#[derive(Debug)]
pub struct Pair {
    /// The world.
    pub world: World,
    /// Client address.
    pub client: SimAddr,
    /// Server address.
    pub server: SimAddr,
    /// The client's connection handle.
    pub client_conn: ConnectionHandle,
    /// The server's connection handle (valid once accepted).
    pub server_conn: Option<ConnectionHandle>,
}

impl Pair {
    /// Builds a client and a listening server joined by `link` both ways, and starts the
    /// client's connection with `client_config`. Nothing is accepted yet.
    pub fn new(
        seed: u64,
        link: LinkConfig,
        global: Config,
        client_config: Config,
        listen_config: Config,
    ) -> Pair {
        let mut world = World::new(seed, link);
        let client = world.add_node(global.clone());
        let server = world.add_node(global);
        world.node(server).create_listen_socket(LocalId(0), listen_config).expect("fresh endpoint");
        let now = world.now;
        let client_conn = world
            .node(client)
            .connect(now, LocalId(0), server, client_config)
            .expect("valid config");
        Pair { world, client, server, client_conn, server_conn: None }
    }

    /// Runs until the server sees the incoming connection, accepts it, and both sides are
    /// connected (at most `limit`). Returns false if that did not happen in time.
    pub fn connect(&mut self, limit: Duration) -> bool {
        let (client, server, cc) = (self.client, self.server, self.client_conn);
        let mut server_conn = None;
        let ok = self.world.run_until(limit, |w| {
            let now = w.now;
            while let Some(ev) = w.node(server).poll_event() {
                let Event::StatusChanged { conn, info, .. } = ev;
                if info.state == ConnectionState::Connecting && info.listen_socket.is_some() {
                    w.node(server).accept(now, conn).expect("just announced");
                    server_conn = Some(conn);
                }
            }
            // The client's own Connecting/Connected events are the expected ones; consume them.
            while w.node(client).poll_event().is_some() {}
            let c_ok = w
                .node(client)
                .connection_info(cc)
                .is_some_and(|i| i.state == ConnectionState::Connected);
            let s_ok = server_conn
                .and_then(|s| w.node(server).connection_info(s))
                .is_some_and(|i| i.state == ConnectionState::Connected);
            c_ok && s_ok
        });
        self.server_conn = server_conn;
        ok
    }
}

/// The stress tests' random message: reliable with probability 0.6; a reliable one is big (10
/// KB up to `max_big`) with probability `big_chance`, else 20 B to 10 KB; an unreliable one
/// is 20 B to 2 KB. Returns (reliable, length), for [`make_message`].
pub fn random_message(rng: &mut Rng, big_chance: f64, max_big: usize) -> (bool, usize) {
    let reliable = rng.chance(0.6);
    let len = if !reliable {
        rng.range(20, 2000)
    } else if rng.chance(big_chance) {
        rng.range(10_000, max_big.max(10_001) as u64)
    } else {
        rng.range(20, 10_000)
    };
    (reliable, len as usize)
}

/// A message that checks itself, as the stress tests over the simulator, UDP, WebRTC and the
/// browser send them: byte 0 its kind (1 reliable, 0 unreliable), bytes 1..9 `counter` (u64
/// LE), bytes 9..13 its length (u32 LE, at least 13), then byte `13 + i` =
/// `(counter * 31 + i * 7) mod 256`.
pub fn make_message(reliable: bool, counter: u64, len: usize) -> Vec<u8> {
    let len = len.max(13);
    let mut m = vec![0u8; len];
    m[0] = reliable as u8;
    m[1..9].copy_from_slice(&counter.to_le_bytes());
    m[9..13].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, b) in m[13..].iter_mut().enumerate() {
        *b = message_byte(counter, i);
    }
    m
}

/// Checks a message made by [`make_message`]; returns (reliable, counter).
///
/// # Panics
///
/// On a truncated message, a length that changed in transit or a corrupted byte, with a
/// message that says which: it is meant for tests.
pub fn check_message(m: &[u8]) -> (bool, u64) {
    assert!(m.len() >= 13, "truncated message: {} bytes", m.len());
    let reliable = m[0] == 1;
    let counter = u64::from_le_bytes(m[1..9].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(m[9..13].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, m.len(), "size changed in transit (counter {counter})");
    for (i, &b) in m[13..].iter().enumerate() {
        assert_eq!(b, message_byte(counter, i), "corrupted byte {i} of message {counter}");
    }
    (reliable, counter)
}

fn message_byte(counter: u64, i: usize) -> u8 {
    counter.wrapping_mul(31).wrapping_add(i as u64 * 7) as u8
}
