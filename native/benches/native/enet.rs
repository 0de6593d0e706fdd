//! ENet (`rusty_enet`, a Rust transpilation of ENet 1.3): a server host on its own thread,
//! the client host on the measuring thread. ENet has no blocking service call in this port;
//! when a host has nothing to do, its thread waits for the socket to become readable (epoll
//! through mio, on a clone of the socket) up to 1 ms, so neither side busy-polls.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusty_enet::{Event, Host, HostSettings, Packet, PeerID};

use crate::{
    BULK_MSG, Flood, IMPAIRED_MSG, Latency, Row, Sizes, attempt, best_flood, best_latency,
    best_rate, bulk, check_bulk, heap, percentiles, seq_of, set_seq, small,
};

/// A host and a readiness waiter on its socket.
struct Enet {
    host: Host<UdpSocket>,
    poll: mio::Poll,
    events: mio::Events,
    /// A second handle on the host's socket, registered with `poll`.
    _watch: mio::net::UdpSocket,
}

impl Enet {
    fn new(peers: usize) -> Enet {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let socket: UdpSocket = s.into();
        let mut watch = mio::net::UdpSocket::from_std(socket.try_clone().unwrap());
        let poll = mio::Poll::new().unwrap();
        poll.registry().register(&mut watch, mio::Token(0), mio::Interest::READABLE).unwrap();
        let settings = HostSettings { peer_limit: peers, channel_limit: 1, ..Default::default() };
        let host = Host::new(socket, settings).map_err(|_| "enet host").unwrap();
        Enet { host, poll, events: mio::Events::with_capacity(4), _watch: watch }
    }

    fn addr(&self) -> SocketAddr {
        self.host.socket().local_addr().unwrap()
    }

    /// Services until idle, calling `f` for each event; returns whether anything happened.
    fn pump(&mut self, mut f: impl FnMut(&mut Host<UdpSocket>, Ev)) -> bool {
        let mut any = false;
        loop {
            let ev = match self.host.service().unwrap() {
                None => return any,
                Some(Event::Connect { peer, .. }) => Ev::Connect(peer.id()),
                Some(Event::Disconnect { .. }) => Ev::Disconnect,
                Some(Event::Receive { peer, packet, .. }) => Ev::Receive(peer.id(), packet),
            };
            any = true;
            f(&mut self.host, ev);
        }
    }

    /// Waits for the socket to become readable, at most `max`.
    fn wait(&mut self, max: Duration) {
        let _ = self.poll.poll(&mut self.events, Some(max));
    }
}

enum Ev {
    Connect(PeerID),
    Disconnect,
    Receive(PeerID, Packet),
}

pub fn run(works: &[&str], sizes: Sizes) -> Row {
    let mut row = Row::default();
    let n = &mut row.notes;
    for w in works {
        match *w {
            "w1" => row.w1 = best_flood(n, "W1", || flood(sizes.flood, false)),
            "w2" => row.w2 = best_flood(n, "W2", || flood(sizes.flood, true)),
            "w3" => {
                row.w3 = best_rate(n, "W3", || bulk_transfer(sizes.bulk_bytes, BULK_MSG, false))
            }
            "w4" => row.w4 = best_latency(n, "W4", || ping_pong(sizes.round_trips)),
            "w5" => {
                row.w5 =
                    attempt(n, "W5", || bulk_transfer(sizes.impaired_bytes, IMPAIRED_MSG, true))
            }
            "w6" => row.w6 = attempt(n, "W6", || memory(sizes.connections)),
            _ => {}
        }
    }
    row.notes.push("no encryption".into());
    row
}

/// A server on its own thread calling `on_receive` per message; returns its address and a
/// stop flag, and the thread's join handle.
fn server<T: Send + 'static>(
    peers: usize,
    mut state: T,
    mut on_receive: impl FnMut(&mut T, &mut Host<UdpSocket>, PeerID, Packet) + Send + 'static,
) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<T>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let st = stop.clone();
    let t = std::thread::spawn(move || {
        let mut e = Enet::new(peers);
        tx.send(e.addr()).unwrap();
        while !st.load(Ordering::Relaxed) {
            let busy = e.pump(|h, ev| {
                if let Ev::Receive(p, pkt) = ev {
                    on_receive(&mut state, h, p, pkt);
                }
            });
            if !busy {
                e.wait(Duration::from_millis(1));
            }
        }
        state
    });
    (rx.recv().unwrap(), stop, t)
}

fn connect(e: &mut Enet, to: SocketAddr) -> PeerID {
    let id = e.host.connect(to, 1, 0).unwrap().id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut up = false;
    while !up {
        assert!(Instant::now() < deadline, "enet connect timed out");
        e.pump(|_, ev| up |= matches!(ev, Ev::Connect(p) if p == id));
        if !up {
            e.wait(Duration::from_millis(1));
        }
    }
    id
}

fn flood(dur: Duration, reliable: bool) -> Flood {
    let got = Arc::new(AtomicU64::new(0));
    let window_open = Arc::new(AtomicBool::new(true));
    let in_window = Arc::new(AtomicU64::new(0));
    let (g, wo, iw) = (got.clone(), window_open.clone(), in_window.clone());
    let (addr, stop, t) = server(4, (), move |_, _, _, pkt| {
        let n = g.load(Ordering::Relaxed);
        if reliable {
            assert_eq!(seq_of(pkt.data()), n, "enet reliable flood out of order");
        }
        g.store(n + 1, Ordering::Relaxed);
        if wo.load(Ordering::Relaxed) {
            iw.store(n + 1, Ordering::Relaxed);
        }
    });
    let mut e = Enet::new(4);
    let peer = connect(&mut e, addr);
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        // ENet queues reliable data without bound: keep at most 64k messages in flight (what
        // Lanewire's send buffer and QUIC's flow control do by themselves).
        if reliable && sent - got.load(Ordering::Relaxed) > 65_536 {
            if !e.pump(|_, _| {}) {
                e.wait(Duration::from_micros(200));
            }
            continue;
        }
        for _ in 0..256 {
            let p = if reliable {
                Packet::reliable(&small(sent)[..])
            } else {
                Packet::unreliable(&small(sent)[..])
            };
            if e.host.peer_mut(peer).send(0, &p).is_ok() {
                sent += 1;
            }
        }
        e.pump(|_, _| {});
    }
    let secs = start.elapsed().as_secs_f64();
    window_open.store(false, Ordering::Relaxed);
    let drain_until = Instant::now()
        + if reliable { Duration::from_secs(30) } else { Duration::from_millis(500) };
    while Instant::now() < drain_until && got.load(Ordering::Relaxed) < sent {
        if !e.pump(|_, _| {}) {
            e.wait(Duration::from_millis(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    Flood {
        sent,
        received_in_window: in_window.load(Ordering::Relaxed),
        received: got.load(Ordering::Relaxed),
        secs,
    }
}

fn bulk_transfer(total: usize, msg: usize, impaired: bool) -> f64 {
    let count = total / msg;
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let (addr, stop, t) = server(4, None::<Instant>, move |done, _, _, pkt| {
        let n = g.load(Ordering::Relaxed);
        check_bulk(pkt.data(), n, msg);
        g.store(n + 1, Ordering::Relaxed);
        if n + 1 == count as u64 {
            *done = Some(Instant::now());
        }
    });
    let relay = impaired.then(|| crate::impair::Relay::start(addr, crate::LOSS_PCT, crate::LAG_MS));
    let mut e = Enet::new(4);
    let peer = connect(&mut e, relay.as_ref().map_or(addr, |r| r.addr()));
    let mut m = bulk(0, msg);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let mut i = 0u64;
    // At most 16 MiB in flight (ENet would queue everything at once).
    let window = ((16 << 20) / msg).max(1) as u64;
    while got.load(Ordering::Relaxed) < count as u64 {
        assert!(
            Instant::now() < deadline,
            "enet bulk stalled at {} of {count}",
            got.load(Ordering::Relaxed)
        );
        while i < count as u64 && i - got.load(Ordering::Relaxed) < window {
            set_seq(&mut m, i);
            e.host.peer_mut(peer).send(0, &Packet::reliable(&m[..])).unwrap();
            i += 1;
        }
        if !e.pump(|_, _| {}) {
            e.wait(Duration::from_millis(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let done = t.join().unwrap().expect("all received");
    drop(relay);
    total as f64 / (done - start).as_secs_f64() / 1e6
}

fn ping_pong(n: usize) -> Latency {
    let (addr, stop, t) = server(4, (), |_, h, p, pkt| {
        h.peer_mut(p).send(0, &Packet::reliable(pkt.data())).unwrap();
        h.flush();
    });
    let mut e = Enet::new(4);
    let peer = connect(&mut e, addr);
    let mut rtts = Vec::with_capacity(n);
    for i in 0..(n + 200) as u64 {
        let start = Instant::now();
        e.host.peer_mut(peer).send(0, &Packet::reliable(&small(i)[..])).unwrap();
        e.host.flush();
        let mut back = None;
        let deadline = start + Duration::from_secs(10);
        while back.is_none() {
            assert!(Instant::now() < deadline, "enet echo lost");
            if !e.pump(|_, ev| {
                if let Ev::Receive(_, pkt) = ev {
                    back = Some(seq_of(pkt.data()));
                }
            }) {
                e.wait(Duration::from_millis(1));
            }
        }
        assert_eq!(back, Some(i));
        if i >= 200 {
            rtts.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    percentiles(rtts)
}

/// Heap per connection end with `n` peers connected. ENet allocates its peer table when the
/// host is created, so the measurement starts before both hosts exist.
fn memory(n: usize) -> f64 {
    let before = heap();
    let connected = Arc::new(AtomicU64::new(0));
    let c = connected.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut e = Enet::new(n + 16);
        tx.send(e.addr()).unwrap();
        while !st.load(Ordering::Relaxed) {
            if !e.pump(|_, ev| {
                if let Ev::Connect(_) = ev {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }) {
                e.wait(Duration::from_millis(1));
            }
        }
        e
    });
    let addr = rx.recv().unwrap();
    let mut e = Enet::new(n);
    for _ in 0..n {
        e.host.connect(addr, 1, 0).unwrap();
    }
    let mut up = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while up < n || connected.load(Ordering::Relaxed) < n as u64 {
        assert!(Instant::now() < deadline, "enet: {up} of {n} connected");
        if !e.pump(|_, ev| {
            if let Ev::Connect(_) = ev {
                up += 1;
            }
        }) {
            e.wait(Duration::from_millis(1));
        }
    }
    let per_end = (heap() - before) as f64 / (2 * n) as f64 / 1024.0;
    stop.store(true, Ordering::Relaxed);
    drop(t.join().unwrap());
    drop(e);
    per_end
}
