//! Cost of a handshake: a client and a server endpoint exchanging datagrams directly (an ideal
//! link: one's `poll_transmit` into the other's `handle_datagram`), from `connect` to both sides
//! `Connected`. Four datagrams: challenge request, challenge reply, connect request (the
//! client's offer), connect OK (the server's answer, sent when the server application accepts).
//!
//! Three cases: unauthenticated (ephemeral X25519 only), server-authenticated (the server sends
//! a certificate and signs its share; the client verifies both and insists on the server's
//! identity) and mutually authenticated (both do, and the server requires it). Each handshake
//! uses fresh endpoints, built outside the timed region, so each one pays for its own key
//! shares. The time each side spends in the core is measured separately: the server's share
//! is what bounds handshakes per second per core.
//!
//! Run with `cargo bench -p lanewire-core --bench handshake`. `LANEWIRE_BENCH_ITERS` sets the
//! handshakes per case (default 2000). Times are wall-clock medians; the bench is
//! single-threaded, so on a busy machine compare medians, not means.

use std::hint::black_box;
use std::time::{Duration, Instant as StdInstant};

use lanewire_core::crypto::{
    CaKey, Certificate, IdentityKey, KeyShare, TrustStore, verify_signature,
};
use lanewire_core::handshake::Credentials;
use lanewire_core::identity::Identity;
use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, Endpoint, Event, Instant, LocalId,
    MAX_DATAGRAM, Rng,
};

const CLIENT: u8 = 0;
const SERVER: u8 = 1;
/// Unix time the certificates are checked at.
const UNIX_NOW: u64 = 1_800_000_000;
const DEFAULT_ITERS: usize = 2000;

/// Which credentials each side has.
#[derive(Clone, Copy)]
enum Case {
    Unauthenticated,
    ServerAuthenticated,
    MutuallyAuthenticated,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Unauthenticated => "unauthenticated",
            Case::ServerAuthenticated => "server-authenticated",
            Case::MutuallyAuthenticated => "mutually authenticated",
        }
    }
}

/// A CA and a certified key per side; keys are kept as bytes so each handshake can rebuild
/// its credentials (they are not `Clone`).
struct Pki {
    ca: CaKey,
    server: ([u8; 32], Certificate),
    client: ([u8; 32], Certificate),
}

impl Pki {
    fn new(rng: &mut Rng) -> Pki {
        let ca = CaKey::generate(rng);
        let mut issue = |name: &str| {
            let key = IdentityKey::generate(rng);
            let id = Identity::string(name).expect("short name");
            let cert = ca.issue(&id, &key.public(), UNIX_NOW - 3600, UNIX_NOW + 86_400);
            (*key.to_bytes(), cert.expect("valid request"))
        };
        let server = issue("server");
        let client = issue("client");
        Pki { ca, server, client }
    }
    fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_ca(self.ca.public());
        t
    }
    fn creds(pair: &([u8; 32], Certificate)) -> Credentials {
        Credentials::certified(IdentityKey::from_bytes(&pair.0), pair.1.clone())
    }
}

/// Time spent inside each endpoint during one handshake.
#[derive(Clone, Copy, Default)]
struct Sample {
    client: Duration,
    server: Duration,
}

/// Runs `f`, adding its duration to `acc`.
fn timed<T>(acc: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = StdInstant::now();
    let v = f();
    *acc += t.elapsed();
    v
}

fn connected(ep: &Endpoint<u8>, c: Option<ConnectionHandle>) -> bool {
    c.and_then(|c| ep.connection_info(c)).is_some_and(|i| i.state == ConnectionState::Connected)
}

/// One handshake between fresh endpoints.
fn handshake(case: Case, pki: &Pki, seed: u64, buf: &mut [u8]) -> Sample {
    let now = Instant::from_millis(1);
    let mut config = Config::new();
    let mut seeds = [[0u8; 32]; 2];
    for (i, s) in seeds.iter_mut().enumerate() {
        s[..8].copy_from_slice(&seed.to_le_bytes());
        s[8] = i as u8;
    }
    let mut client: Endpoint<u8> = Endpoint::new(Config::new(), seeds[0]);
    let mut server: Endpoint<u8> = Endpoint::new(Config::new(), seeds[1]);
    for ep in [&mut client, &mut server] {
        ep.set_unix_time(now, UNIX_NOW);
    }
    match case {
        Case::Unauthenticated => {}
        Case::ServerAuthenticated => {
            server.set_credentials(Pki::creds(&pki.server));
            client.set_trust_store(pki.trust());
        }
        Case::MutuallyAuthenticated => {
            server.set_credentials(Pki::creds(&pki.server));
            client.set_credentials(Pki::creds(&pki.client));
            client.set_trust_store(pki.trust());
            server.set_trust_store(pki.trust());
            config.set_i32(ConfigKey::IpAllowWithoutAuth, 0).expect("in range");
        }
    }
    server.create_listen_socket(LocalId(0), config.clone()).expect("fresh endpoint");

    let mut s = Sample::default();
    let cc = timed(&mut s.client, || match case {
        Case::Unauthenticated => client.connect(now, LocalId(0), SERVER, config),
        _ => {
            let id = Identity::string("server").expect("short name");
            client.connect_to_identity(now, LocalId(0), SERVER, id, config)
        }
    })
    .expect("valid config");
    let mut sc = None;
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for _ in 0..16 {
        if connected(&client, Some(cc)) && connected(&server, sc) {
            return s;
        }
        // Client to server, then server to client; copying between them is not timed.
        timed(&mut s.client, || {
            while let Some(t) = client.poll_transmit(now, buf) {
                datagrams.push(buf[..t.len].to_vec());
            }
            while client.poll_event().is_some() {}
        });
        timed(&mut s.server, || {
            for d in &mut datagrams {
                server.handle_datagram(now, LocalId(0), CLIENT, d);
            }
            while let Some(Event::StatusChanged { conn, info, .. }) = server.poll_event() {
                if info.state == ConnectionState::Connecting && info.listen_socket.is_some() {
                    server.accept(now, conn).expect("just announced");
                    sc = Some(conn);
                }
            }
        });
        datagrams.clear();
        timed(&mut s.server, || {
            while let Some(t) = server.poll_transmit(now, buf) {
                datagrams.push(buf[..t.len].to_vec());
            }
        });
        timed(&mut s.client, || {
            for d in &mut datagrams {
                client.handle_datagram(now, LocalId(0), SERVER, d);
            }
        });
        datagrams.clear();
    }
    panic!("{} handshake did not finish", case.name());
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() - 1) as f64 * p) as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median time of `f` over `n` runs.
fn bench_op<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = StdInstant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    median(&mut v)
}

fn main() {
    let iters = std::env::var("LANEWIRE_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_ITERS);
    let mut rng = Rng::seeded(1);
    let pki = Pki::new(&mut rng);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    println!(
        "handshake: µs spent in the core per handshake, client + server, {iters} per case\n\
         (fresh endpoints, ideal link; endpoint set-up not counted)\n"
    );
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "case", "median", "p10", "p90", "client", "server"
    );
    let mut seed = 0u64;
    for case in [Case::Unauthenticated, Case::ServerAuthenticated, Case::MutuallyAuthenticated] {
        for _ in 0..iters / 10 + 1 {
            seed += 1;
            handshake(case, &pki, seed, &mut buf); // warm-up
        }
        let mut total = Vec::with_capacity(iters);
        let mut client = Vec::with_capacity(iters);
        let mut server = Vec::with_capacity(iters);
        for _ in 0..iters {
            seed += 1;
            let s = handshake(case, &pki, seed, &mut buf);
            total.push(s.client + s.server);
            client.push(s.client);
            server.push(s.server);
        }
        let m = median(&mut total);
        println!(
            "{:<24} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
            case.name(),
            us(m),
            us(pct(&total, 0.1)),
            us(pct(&total, 0.9)),
            us(median(&mut client)),
            us(median(&mut server)),
        );
    }

    // The primitives a handshake is made of.
    let n = iters.max(200);
    let mut r = Rng::seeded(2);
    let peer = KeyShare::generate(&mut r).public();
    let key = IdentityKey::generate(&mut r);
    let msg = [7u8; 96];
    let sig = key.sign(&msg);
    let public = key.public();
    let id = Identity::string("server").expect("short name");
    let cert = pki.ca.issue(&id, &public, UNIX_NOW - 1, UNIX_NOW + 1).expect("valid request");
    let trust = pki.trust();
    println!("\nprimitives (median µs of {n})\n");
    let rows: [(&str, Duration); 6] = [
        ("X25519 key share (keygen)", bench_op(n, || KeyShare::generate(&mut r).public())),
        (
            "X25519 keygen + DH",
            bench_op(n, || KeyShare::generate(&mut r).diffie_hellman(&peer).is_ok()),
        ),
        ("Ed25519 sign (96 B)", bench_op(n, || key.sign(black_box(&msg)))),
        (
            "Ed25519 verify (96 B)",
            bench_op(n, || verify_signature(&public, &msg, &sig).expect("valid")),
        ),
        ("certificate verify", bench_op(n, || cert.verify(&trust, UNIX_NOW, None).expect("valid"))),
        (
            "identity key from bytes",
            bench_op(n, || IdentityKey::from_bytes(black_box(&[9; 32])).public()),
        ),
    ];
    for (name, d) in rows {
        println!("{name:<28} {:>8.1}", us(d));
    }
}
