//! Plain UDP, the floor: one `send_to` per message, a blocking `recv_from` loop on the
//! server's thread. No reliability, so only W1 and W4 apply.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{
    Flood, Latency, MSG, Row, Sizes, best_flood, best_latency, percentiles, seq_of, small,
};

fn socket() -> UdpSocket {
    // The same kernel buffers Lanewire asks for.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    s.into()
}

pub fn run(works: &[&str], sizes: Sizes) -> Row {
    let mut row = Row::default();
    let n = &mut row.notes;
    for w in works {
        match *w {
            "w1" => row.w1 = best_flood(n, "W1", || flood(sizes.flood)),
            "w4" => {
                row.w4 = best_latency(n, "W4", || ping_pong(sizes.round_trips));
                row.w4_shaped =
                    best_latency(n, "W4 same shape", || ping_pong_shaped(sizes.round_trips));
            }
            _ => {}
        }
    }
    row.notes
        .push("no reliability: W2, W3, W5 do not apply; no connections: W6 does not apply".into());
    row
}

fn flood(dur: Duration) -> Flood {
    let server = socket();
    let addr = server.local_addr().unwrap();
    server.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let window_open = Arc::new(AtomicBool::new(true));
    let in_window = Arc::new(AtomicU64::new(0));
    let rx = {
        let (stop, window_open, in_window) = (stop.clone(), window_open.clone(), in_window.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut got = 0u64;
            loop {
                match server.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        assert_eq!(n, MSG);
                        got += 1;
                        if window_open.load(Ordering::Relaxed) {
                            in_window.store(got, Ordering::Relaxed);
                        }
                    }
                    Err(_) if stop.load(Ordering::Relaxed) => return got,
                    Err(_) => {}
                }
            }
        })
    };
    let client = socket();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < dur {
        for _ in 0..256 {
            if client.send_to(&small(sent), addr).is_ok() {
                sent += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    window_open.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let received = rx.join().unwrap();
    Flood { sent, received_in_window: in_window.load(Ordering::Relaxed), received, secs }
}

fn ping_pong(n: usize) -> Latency {
    let server = socket();
    let addr = server.local_addr().unwrap();
    server.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = server.recv_from(&mut buf) {
                    let _ = server.send_to(&buf[..n], from);
                }
            }
        })
    };
    let client = socket();
    client.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 2048];
    let mut rtts = Vec::with_capacity(n);
    for i in 0..(n + 200) as u64 {
        let t = Instant::now();
        client.send_to(&small(i), addr).unwrap();
        let (len, _) = client.recv_from(&mut buf).expect("loopback UDP lost a datagram");
        assert_eq!(seq_of(&buf[..len]), i);
        if i >= 200 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    percentiles(rtts)
}

/// A receive thread that hands datagrams to the application thread (mutex + condvar), while
/// the application sends on the socket itself: the thread shape of Lanewire's `Sockets`.
struct Inbox {
    q: std::sync::Mutex<std::collections::VecDeque<(Vec<u8>, std::net::SocketAddr)>>,
    cv: std::sync::Condvar,
}

fn spawn_reader(sock: Arc<UdpSocket>, stop: Arc<AtomicBool>) -> Arc<Inbox> {
    let inbox = Arc::new(Inbox { q: Default::default(), cv: Default::default() });
    let i = inbox.clone();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                i.q.lock().unwrap().push_back((buf[..n].to_vec(), from));
                i.cv.notify_all();
            }
        }
    });
    inbox
}

fn take(inbox: &Inbox, timeout: Duration) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut q = inbox.q.lock().unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(x) = q.pop_front() {
            return Some(x);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        q = inbox.cv.wait_timeout(q, left).unwrap().0;
    }
}

fn ping_pong_shaped(n: usize) -> Latency {
    let stop = Arc::new(AtomicBool::new(false));
    let server = Arc::new(socket());
    let addr = server.local_addr().unwrap();
    let server_in = spawn_reader(server.clone(), stop.clone());
    let echo = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((d, from)) = take(&server_in, Duration::from_millis(50)) {
                    let _ = server.send_to(&d, from);
                }
            }
        })
    };
    let client = Arc::new(socket());
    let client_in = spawn_reader(client.clone(), stop.clone());
    let mut rtts = Vec::with_capacity(n);
    for i in 0..(n + 200) as u64 {
        let t = Instant::now();
        client.send_to(&small(i), addr).unwrap();
        let (d, _) =
            take(&client_in, Duration::from_secs(1)).expect("loopback UDP lost a datagram");
        assert_eq!(seq_of(&d), i);
        if i >= 200 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().unwrap();
    percentiles(rtts)
}
