//! A loss and lag relay on 127.0.0.1 for W5: forwards datagrams between one client and a
//! server, dropping `loss` percent and delaying the rest by `lag` in each direction. The same
//! impairment for every library (Lanewire also has its own conditioner, measured separately).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A datagram waiting for its delivery time: (due, tie-breaker, destination, bytes).
type Delayed = Reverse<(Instant, u64, SocketAddr, Vec<u8>)>;

pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub fn start(server: SocketAddr, loss_pct: f64, lag_ms: u64) -> Relay {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = sock.set_recv_buffer_size(4 << 20);
        let _ = sock.set_send_buffer_size(4 << 20);
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let sock: UdpSocket = sock.into();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let lag = Duration::from_millis(lag_ms);
        let thread = std::thread::spawn(move || {
            let mut rng = 0x1234_5678_9abc_def1u64;
            let mut client: Option<SocketAddr> = None;
            let mut queue: BinaryHeap<Delayed> = BinaryHeap::new();
            let mut n = 0u64;
            let mut buf = vec![0u8; 65536];
            while !st.load(Ordering::Relaxed) {
                let now = Instant::now();
                while queue.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
                    let Reverse((_, _, to, d)) = queue.pop().unwrap();
                    let _ = sock.send_to(&d, to);
                }
                let wait = queue
                    .peek()
                    .map_or(Duration::from_millis(5), |Reverse((t, ..))| {
                        t.saturating_duration_since(now)
                    })
                    .clamp(Duration::from_micros(50), Duration::from_millis(5));
                sock.set_read_timeout(Some(wait)).unwrap();
                let Ok((len, from)) = sock.recv_from(&mut buf) else { continue };
                let to = if from == server {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    server
                };
                // xorshift64
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if (rng % 1_000_000) as f64 / 10_000.0 < loss_pct {
                    continue;
                }
                n += 1;
                queue.push(Reverse((Instant::now() + lag, n, to, buf[..len].to_vec())));
            }
        });
        Relay { addr, stop, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
