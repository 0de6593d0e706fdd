//! QUIC (`quinn` 0.11 with rustls and ring; TLS 1.3, AES-GCM): server and client endpoints in
//! one tokio runtime (2 worker threads). Unreliable messages are QUIC datagrams
//! (`send_datagram_wait`, which waits for buffer space rather than dropping); reliable ones are
//! writes on one unidirectional stream (64 B messages need no framing, 512 KiB ones are read
//! back by exact size); W4 uses one bidirectional stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quinn::{Connection, Endpoint, TransportConfig, VarInt};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::{
    BULK_MSG, Flood, IMPAIRED_MSG, Latency, MSG, Row, Sizes, attempt, best_flood, best_latency,
    best_rate, bulk, check_bulk, heap, percentiles, seq_of, set_seq, small,
};

fn transport() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(1024));
    t.stream_receive_window(VarInt::from_u32(32 << 20));
    t.receive_window(VarInt::from_u32(64 << 20));
    t.send_window(64 << 20);
    t.datagram_receive_buffer_size(Some(32 << 20));
    t.datagram_send_buffer_size(4 << 20);
    Arc::new(t)
}

struct Setup {
    rt: tokio::runtime::Runtime,
    server: Endpoint,
    addr: SocketAddr,
    client: Endpoint,
}

fn setup() -> Setup {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _guard = rt.enter();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    let mut sc = quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key.into()).unwrap();
    sc.transport_config(transport());
    let server = Endpoint::server(sc, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let mut cc = quinn::ClientConfig::with_root_certificates(Arc::new(roots)).unwrap();
    cc.transport_config(transport());
    let mut client = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(cc);
    drop(_guard);
    Setup { rt, server, addr, client }
}

/// One connection: (client side, server side).
async fn connect(s: &Endpoint, c: &Endpoint, to: SocketAddr) -> (Connection, Connection) {
    let accept = async { s.accept().await.expect("incoming").await.expect("handshake") };
    let connect = async { c.connect(to, "localhost").unwrap().await.expect("connect") };
    let (srv, cli) = tokio::join!(accept, connect);
    (cli, srv)
}

pub fn run(works: &[&str], sizes: Sizes) -> Row {
    let mut row = Row::default();
    let n = &mut row.notes;
    for w in works {
        match *w {
            "w1" => row.w1 = best_flood(n, "W1", || datagram_flood(sizes.flood)),
            "w2" => row.w2 = best_flood(n, "W2", || stream_flood(sizes.flood)),
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
    row
}

fn datagram_flood(dur: Duration) -> Flood {
    let s = setup();
    s.rt.block_on(async {
        let (cli, srv) = connect(&s.server, &s.client, s.addr).await;
        let window_open = Arc::new(AtomicBool::new(true));
        let in_window = Arc::new(AtomicU64::new(0));
        let (wo, iw) = (window_open.clone(), in_window.clone());
        let rx = tokio::spawn(async move {
            let mut got = 0u64;
            while let Ok(Ok(d)) =
                tokio::time::timeout(Duration::from_millis(500), srv.read_datagram()).await
            {
                assert_eq!(d.len(), MSG);
                got += 1;
                if wo.load(Ordering::Relaxed) {
                    iw.store(got, Ordering::Relaxed);
                }
            }
            got
        });
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < dur {
            for _ in 0..256 {
                cli.send_datagram_wait(bytes::Bytes::copy_from_slice(&small(sent))).await.unwrap();
                sent += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        window_open.store(false, Ordering::Relaxed);
        let received = rx.await.unwrap();
        Flood { sent, received_in_window: in_window.load(Ordering::Relaxed), received, secs }
    })
}

fn stream_flood(dur: Duration) -> Flood {
    let s = setup();
    s.rt.block_on(async {
        let (cli, srv) = connect(&s.server, &s.client, s.addr).await;
        let window_open = Arc::new(AtomicBool::new(true));
        let in_window = Arc::new(AtomicU64::new(0));
        let (wo, iw) = (window_open.clone(), in_window.clone());
        let rx = tokio::spawn(async move {
            let mut r = srv.accept_uni().await.unwrap();
            let mut got = 0u64;
            let mut buf = vec![0u8; MSG * 1024];
            let mut partial = Vec::with_capacity(MSG);
            // Messages are a fixed 64 B: read big chunks, check each message's sequence.
            while let Some(n) = r.read(&mut buf).await.unwrap() {
                let mut data = &buf[..n];
                if !partial.is_empty() {
                    let take = (MSG - partial.len()).min(data.len());
                    partial.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if partial.len() == MSG {
                        assert_eq!(seq_of(&partial), got, "quinn stream out of order");
                        got += 1;
                        partial.clear();
                    }
                }
                let mut chunks = data.chunks_exact(MSG);
                for m in &mut chunks {
                    assert_eq!(seq_of(m), got, "quinn stream out of order");
                    got += 1;
                }
                partial.extend_from_slice(chunks.remainder());
                if wo.load(Ordering::Relaxed) {
                    iw.store(got, Ordering::Relaxed);
                }
            }
            got
        });
        let mut w = cli.open_uni().await.unwrap();
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < dur {
            for _ in 0..256 {
                w.write_all(&small(sent)).await.unwrap();
                sent += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        window_open.store(false, Ordering::Relaxed);
        w.finish().unwrap();
        let received = rx.await.unwrap();
        Flood { sent, received_in_window: in_window.load(Ordering::Relaxed), received, secs }
    })
}

fn bulk_transfer(total: usize, msg: usize, impaired: bool) -> f64 {
    let s = setup();
    let relay =
        impaired.then(|| crate::impair::Relay::start(s.addr, crate::LOSS_PCT, crate::LAG_MS));
    let to = relay.as_ref().map_or(s.addr, |r| r.addr());
    let secs = s.rt.block_on(async {
        let (cli, srv) = connect(&s.server, &s.client, to).await;
        let count = total / msg;
        let rx = tokio::spawn(async move {
            let mut r = srv.accept_uni().await.unwrap();
            let mut buf = vec![0u8; msg];
            for i in 0..count as u64 {
                r.read_exact(&mut buf).await.unwrap();
                check_bulk(&buf, i, msg);
            }
            Instant::now()
        });
        let mut w = cli.open_uni().await.unwrap();
        let mut m = bulk(0, msg);
        let start = Instant::now();
        for i in 0..count as u64 {
            set_seq(&mut m, i);
            w.write_all(&m).await.unwrap();
        }
        let done = tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .expect("quinn bulk stalled")
            .unwrap();
        (done - start).as_secs_f64()
    });
    drop(relay);
    total as f64 / secs / 1e6
}

fn ping_pong(n: usize) -> Latency {
    let s = setup();
    s.rt.block_on(async {
        let (cli, srv) = connect(&s.server, &s.client, s.addr).await;
        tokio::spawn(async move {
            let (mut w, mut r) = srv.accept_bi().await.unwrap();
            let mut buf = [0u8; MSG];
            while r.read_exact(&mut buf).await.is_ok() {
                w.write_all(&buf).await.unwrap();
            }
        });
        let (mut w, mut r) = cli.open_bi().await.unwrap();
        let mut buf = [0u8; MSG];
        let mut rtts = Vec::with_capacity(n);
        for i in 0..(n + 200) as u64 {
            let t = Instant::now();
            w.write_all(&small(i)).await.unwrap();
            r.read_exact(&mut buf).await.unwrap();
            assert_eq!(seq_of(&buf), i);
            if i >= 200 {
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        percentiles(rtts)
    })
}

fn memory(n: usize) -> f64 {
    let s = setup();
    s.rt.block_on(async {
        // One connection first, so lazily created endpoint state is not counted.
        let warm = connect(&s.server, &s.client, s.addr).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = heap();
        let server = s.server.clone();
        let acceptor = tokio::spawn(async move {
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                conns.push(server.accept().await.unwrap().await.unwrap());
            }
            conns
        });
        let mut clients = Vec::with_capacity(n);
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            pending.push(s.client.connect(s.addr, "localhost").unwrap());
        }
        for p in pending {
            clients.push(p.await.unwrap());
        }
        let servers = acceptor.await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let per_end = (heap() - before) as f64 / (2 * n) as f64 / 1024.0;
        drop((clients, servers, warm));
        per_end
    })
}
