//! The shared harness of Lanewire's fuzz targets: deterministic endpoints, a fixed PKI, and the
//! drive loops that run a real handshake or build an established connection.
//!
//! Everything is deterministic: endpoints have fixed seeds, the clock starts at zero and only
//! moves when the harness says so, and the PKI comes from a fixed RNG seed. The same fuzz input
//! therefore replays the same run, and the seed corpus that `gen_corpus` captures from these very
//! functions carries connection ids, cookies, signatures and AEAD tags that are valid inside the
//! targets: the fuzzer starts from packets that get all the way through, and mutates from there.
//!
//! Endpoints talk to each other directly (one's `poll_transmit` into the other's
//! `handle_datagram`), with no simulated link: the targets are about the receive path, not
//! about loss or delay.
#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

use lanewire_core::crypto::{CaKey, Certificate, IdentityKey, TrustStore};
use lanewire_core::handshake::Credentials;
use lanewire_core::identity::Identity;
use lanewire_core::wire::{ControlRepr, MAX_CRYPTO_BLOB, PROTOCOL_VERSION};
use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionState, Endpoint, Event, Instant, LocalId,
    MAX_DATAGRAM, Rng,
};

/// A remote address: which endpoint of the harness (or which stranger) sent a datagram.
pub type Addr = u32;
/// The client's address.
pub const CLIENT: Addr = 1;
/// The server's address.
pub const SERVER: Addr = 2;
/// Addresses from here up are strangers with no connection.
pub const STRANGER: Addr = 100;
/// Unix time at `Instant::ZERO`, inside every certificate's validity window.
pub const UNIX_T0: u64 = 1_800_000_000;
/// The server identity the certificates name and clients may insist on.
pub const SERVER_IDENTITY: &str = "server";

const CLIENT_SEED: [u8; 32] = [1; 32];
const SERVER_SEED: [u8; 32] = [2; 32];
const DAY: u64 = 86_400;
/// Rounds of `Session::establish` before giving up (a handshake takes about four).
const MAX_ROUNDS: usize = 64;

/// A CA and one certified identity key for each side, made once per process.
pub struct Pki {
    /// The application CA.
    pub ca: CaKey,
    server_key: [u8; 32],
    server_cert: Certificate,
    client_key: [u8; 32],
    client_cert: Certificate,
}

/// The process-wide PKI (deterministic: the same keys in every run).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut rng = Rng::seeded(0x5eed_f022);
        let ca = CaKey::generate(&mut rng);
        let window = (UNIX_T0 - DAY, UNIX_T0 + 30 * DAY);
        let issue = |rng: &mut Rng, name: &str| {
            let key = IdentityKey::generate(rng);
            let id = Identity::string(name).expect("short ASCII name");
            let cert = ca.issue(&id, &key.public(), window.0, window.1).expect("valid request");
            (*key.to_bytes(), cert)
        };
        let (server_key, server_cert) = issue(&mut rng, SERVER_IDENTITY);
        let (client_key, client_cert) = issue(&mut rng, "client");
        Pki { ca, server_key, server_cert, client_key, client_cert }
    })
}

impl Pki {
    /// A trust store holding the CA.
    pub fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_ca(self.ca.public());
        t
    }
    /// The server's certified credentials.
    pub fn server_credentials(&self) -> Credentials {
        Credentials::certified(IdentityKey::from_bytes(&self.server_key), self.server_cert.clone())
    }
    /// The client's certified credentials.
    pub fn client_credentials(&self) -> Credentials {
        Credentials::certified(IdentityKey::from_bytes(&self.client_key), self.client_cert.clone())
    }
}

/// One handshake configuration, applied to both sides.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Short name, for corpus file names.
    pub name: &'static str,
    /// `Unencrypted` on both sides (3: plaintext, so fuzzed data packets reach the frames).
    pub unencrypted: i32,
    /// `IpAllowWithoutAuth` = 0 on both sides: a certificate is required.
    pub require_auth: bool,
    /// The server presents a certificate.
    pub server_cert: bool,
    /// The client presents a certificate.
    pub client_cert: bool,
    /// Both sides trust the CA.
    pub trust: bool,
    /// The client insists that the server is [`SERVER_IDENTITY`].
    pub expect_server: bool,
}

/// The configurations the targets choose from with one input byte.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "anonymous",
        unencrypted: 0,
        require_auth: false,
        server_cert: false,
        client_cert: false,
        trust: false,
        expect_server: false,
    },
    Variant {
        name: "server-auth",
        unencrypted: 0,
        require_auth: false,
        server_cert: true,
        client_cert: false,
        trust: true,
        expect_server: true,
    },
    Variant {
        name: "mutual-auth",
        unencrypted: 0,
        require_auth: true,
        server_cert: true,
        client_cert: true,
        trust: true,
        expect_server: true,
    },
    Variant {
        name: "plaintext",
        unencrypted: 3,
        require_auth: false,
        server_cert: false,
        client_cert: false,
        trust: false,
        expect_server: false,
    },
    Variant {
        name: "plaintext-mutual",
        unencrypted: 2,
        require_auth: true,
        server_cert: true,
        client_cert: true,
        trust: true,
        expect_server: false,
    },
    Variant {
        name: "untrusted",
        unencrypted: 1,
        require_auth: false,
        server_cert: true,
        client_cert: true,
        trust: false,
        expect_server: false,
    },
];

impl Variant {
    /// The variant an input byte selects.
    pub fn pick(b: u8) -> (usize, &'static Variant) {
        let i = usize::from(b) % VARIANTS.len();
        (i, &VARIANTS[i])
    }

    /// The connection config of both sides.
    pub fn config(&self) -> Config {
        let mut c = Config::new();
        c.set_i32(ConfigKey::Unencrypted, self.unencrypted).expect("0..=3");
        if self.require_auth {
            c.set_i32(ConfigKey::IpAllowWithoutAuth, 0).expect("in range");
        }
        c
    }

    fn endpoint(&self, server: bool) -> Endpoint<Addr> {
        let mut ep = Endpoint::new(Config::new(), if server { SERVER_SEED } else { CLIENT_SEED });
        ep.set_unix_time(Instant::ZERO, UNIX_T0);
        let pki = pki();
        if self.trust {
            ep.set_trust_store(pki.trust());
        }
        let certified = if server { self.server_cert } else { self.client_cert };
        if certified {
            ep.set_credentials(if server {
                pki.server_credentials()
            } else {
                pki.client_credentials()
            });
        }
        if server {
            ep.create_listen_socket(LocalId(0), self.config()).expect("fresh endpoint");
        }
        ep
    }

    /// A server endpoint listening on `LocalId(0)`.
    pub fn server(&self) -> Endpoint<Addr> {
        self.endpoint(true)
    }

    /// A client endpoint and its connection to [`SERVER`], started at `now`.
    pub fn client(&self, now: Instant) -> (Endpoint<Addr>, ConnectionHandle) {
        let mut ep = self.endpoint(false);
        let conn = if self.expect_server {
            let id = Identity::string(SERVER_IDENTITY).expect("short ASCII name");
            ep.connect_to_identity(now, LocalId(0), SERVER, id, self.config())
        } else {
            ep.connect(now, LocalId(0), SERVER, self.config())
        }
        .expect("valid config");
        (ep, conn)
    }
}

/// Every datagram `ep` wants to send now: (to, bytes).
pub fn drain(ep: &mut Endpoint<Addr>, now: Instant) -> Vec<(Addr, Vec<u8>)> {
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        assert!(t.len <= MAX_DATAGRAM, "transmit longer than MAX_DATAGRAM");
        out.push((t.to, buf[..t.len].to_vec()));
    }
    out
}

/// Drains `ep`'s events, accepting every incoming connection; returns the last one accepted.
pub fn accept_all(ep: &mut Endpoint<Addr>, now: Instant) -> Option<ConnectionHandle> {
    let mut accepted = None;
    while let Some(Event::StatusChanged { conn, info, .. }) = ep.poll_event() {
        if info.state == ConnectionState::Connecting
            && info.listen_socket.is_some()
            && ep.accept(now, conn).is_ok()
        {
            accepted = Some(conn);
        }
    }
    accepted
}

/// Runs due timers.
pub fn run_timers(ep: &mut Endpoint<Addr>, now: Instant) {
    if ep.poll_timeout().is_some_and(|t| t <= now) {
        ep.handle_timeout(now);
    }
}

/// The packet a client sends first, as a server would receive it: (client id, timestamp).
fn challenge_request_fields(datagram: &[u8]) -> Option<(u32, u64)> {
    match ControlRepr::parse(datagram).ok()? {
        ControlRepr::ChallengeRequest { client_conn_id, timestamp, .. } => {
            Some((client_conn_id, timestamp))
        }
        _ => None,
    }
}

/// Emits a control packet into a fresh buffer.
pub fn emit(repr: &ControlRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut buf).expect("sized by buffer_len");
    buf.truncate(n);
    buf
}

/// A server endpoint that has been asked for a challenge by `from` with client id `client_id`
/// at `now`; returns it and the cookie it handed out.
pub fn server_with_cookie(
    v: &Variant,
    now: Instant,
    from: Addr,
    client_id: u32,
) -> (Endpoint<Addr>, u64) {
    let mut server = v.server();
    let mut req = emit(&ControlRepr::ChallengeRequest {
        version: PROTOCOL_VERSION,
        client_conn_id: client_id,
        timestamp: 7,
    });
    server.handle_datagram(now, LocalId(0), from, &mut req);
    let cookie = drain(&mut server, now)
        .iter()
        .find_map(|(_, d)| match ControlRepr::parse(d) {
            Ok(ControlRepr::ChallengeReply { cookie, .. }) => Some(cookie),
            _ => None,
        })
        .expect("a listening server answers a well-formed challenge request");
    (server, cookie)
}

/// What the server did with a connect request.
#[derive(Debug, Default)]
pub struct ServerVerdict {
    /// The connect-OK fields, when the server accepted: (server id, crypto answer).
    pub answer: Option<(u32, Vec<u8>)>,
    /// Every datagram it sent.
    pub sent: Vec<(Addr, Vec<u8>)>,
}

/// A fresh server receives a connect request (with a valid cookie) from client id `client_id`
/// carrying `offer` as its crypto blob, accepts whatever connection that creates, and lets a
/// little time pass. Checks the endpoint's invariants on the way.
pub fn server_receives_offer(v: &Variant, client_id: u32, offer: &[u8]) -> ServerVerdict {
    let mut now = Instant::from_millis(1);
    let (mut server, cookie) = server_with_cookie(v, now, CLIENT, client_id);
    let offer = &offer[..offer.len().min(MAX_CRYPTO_BLOB)];
    let req = emit(&ControlRepr::ConnectRequest {
        version: PROTOCOL_VERSION,
        client_conn_id: client_id,
        cookie,
        timestamp: 9,
        crypto: offer,
    });
    let mut verdict = ServerVerdict::default();
    for round in 0..2u64 {
        // The second copy is a retransmission: it must find the same connection.
        let mut copy = req.clone();
        server.handle_datagram(now, LocalId(0), CLIENT, &mut copy);
        accept_all(&mut server, now);
        for (to, d) in drain(&mut server, now) {
            if let Ok(ControlRepr::ConnectOk { server_conn_id, crypto, .. }) =
                ControlRepr::parse(&d)
            {
                verdict.answer = Some((server_conn_id, crypto.to_vec()));
            }
            verdict.sent.push((to, d));
        }
        assert!(
            server.connection_count() <= 1,
            "one connect request, {} connections",
            server.connection_count()
        );
        now += Duration::from_millis(20 + 500 * round);
        run_timers(&mut server, now);
        drain(&mut server, now);
    }
    verdict
}

/// A client that has sent its connect request and waits for the connect OK.
pub struct WaitingClient {
    /// The client endpoint.
    pub ep: Endpoint<Addr>,
    /// Its connection.
    pub conn: ConnectionHandle,
    /// Its connection id.
    pub client_id: u32,
    /// The crypto offer it sent.
    pub offer: Vec<u8>,
    /// Its clock.
    pub now: Instant,
    echo: u64,
}

impl WaitingClient {
    /// Runs a client of variant `v` to the point where it waits for the connect OK (the server
    /// side is played by hand: any cookie will do for the client).
    pub fn new(v: &Variant) -> WaitingClient {
        let now = Instant::from_millis(1);
        let (mut ep, conn) = v.client(now);
        let sent = drain(&mut ep, now);
        let (client_id, ts) = sent
            .iter()
            .find_map(|(_, d)| challenge_request_fields(d))
            .expect("a new client sends a challenge request");
        let mut reply = emit(&ControlRepr::ChallengeReply {
            version: PROTOCOL_VERSION,
            client_conn_id: client_id,
            cookie: 0x5151_0000_0001,
            echo_timestamp: ts,
        });
        let now = now + Duration::from_millis(2);
        ep.handle_datagram(now, LocalId(0), SERVER, &mut reply);
        let (offer, echo) = drain(&mut ep, now)
            .iter()
            .find_map(|(_, d)| match ControlRepr::parse(d) {
                Ok(ControlRepr::ConnectRequest { crypto, timestamp, .. }) => {
                    Some((crypto.to_vec(), timestamp))
                }
                _ => None,
            })
            .expect("a challenged client sends a connect request");
        WaitingClient { ep, conn, client_id, offer, now, echo }
    }

    /// The client receives a connect OK from server id `server_id` with crypto `answer`;
    /// returns its connection state afterwards.
    pub fn receive_answer(&mut self, server_id: u32, answer: &[u8]) -> ConnectionState {
        let answer = &answer[..answer.len().min(MAX_CRYPTO_BLOB)];
        let mut ok = emit(&ControlRepr::ConnectOk {
            version: PROTOCOL_VERSION,
            client_conn_id: self.client_id,
            server_conn_id: server_id.max(1),
            echo_timestamp: self.echo,
            server_delay_us: 100,
            crypto: answer,
        });
        self.now += Duration::from_millis(2);
        self.ep.handle_datagram(self.now, LocalId(0), SERVER, &mut ok);
        drain(&mut self.ep, self.now);
        while self.ep.poll_event().is_some() {}
        let state = self.ep.connection_info(self.conn).map_or(ConnectionState::None, |i| i.state);
        // The connect OK may arrive twice; the second must change nothing dangerous.
        let mut again = ok.clone();
        self.now += Duration::from_millis(1);
        self.ep.handle_datagram(self.now, LocalId(0), SERVER, &mut again);
        drain(&mut self.ep, self.now);
        assert!(self.ep.connection_count() <= 1);
        state
    }
}

/// A client and a server with one connection, established by a real handshake.
pub struct Session {
    /// Both endpoints' clock.
    pub now: Instant,
    /// The client endpoint (at [`CLIENT`]).
    pub client: Endpoint<Addr>,
    /// The server endpoint (at [`SERVER`]).
    pub server: Endpoint<Addr>,
    /// The client's connection.
    pub cc: ConnectionHandle,
    /// The server's connection.
    pub sc: ConnectionHandle,
    /// The server's connection id: the destination of the client's data packets.
    pub server_id: u32,
    /// The client's connection id.
    pub client_id: u32,
    /// When set, every datagram moved is recorded here: (from, to, bytes).
    pub capture: Option<Vec<(Addr, Addr, Vec<u8>)>>,
}

impl Session {
    /// Runs the handshake of variant `v` to completion, or `None` if it fails.
    pub fn establish(v: &Variant, capture: bool) -> Option<Session> {
        let now = Instant::ZERO;
        let (client, cc) = v.client(now);
        let server = v.server();
        let mut s = Session {
            now,
            client,
            server,
            cc,
            sc: ConnectionHandle::from_bits(u64::MAX),
            server_id: 0,
            client_id: 0,
            capture: capture.then(Vec::new),
        };
        let mut sc = None;
        for _ in 0..MAX_ROUNDS {
            s.exchange_once();
            if let Some(c) = accept_all(&mut s.server, s.now) {
                sc = Some(c);
            }
            while s.client.poll_event().is_some() {}
            let connected = |ep: &Endpoint<Addr>, c: ConnectionHandle| {
                ep.connection_info(c).is_some_and(|i| i.state == ConnectionState::Connected)
            };
            if let Some(c) = sc
                && connected(&s.client, cc)
                && connected(&s.server, c)
                && s.server_id != 0
            {
                s.sc = c;
                return Some(s);
            }
            s.advance(Duration::from_millis(1));
        }
        None
    }

    fn note(&mut self, from: Addr, to: Addr, d: &[u8]) {
        match ControlRepr::parse(d) {
            Ok(ControlRepr::ConnectOk { server_conn_id, client_conn_id, .. }) => {
                self.server_id = server_conn_id;
                self.client_id = client_conn_id;
            }
            Ok(ControlRepr::ChallengeRequest { client_conn_id, .. }) => {
                self.client_id = client_conn_id;
            }
            _ => {}
        }
        if let Some(c) = &mut self.capture {
            c.push((from, to, d.to_vec()));
        }
    }

    /// Moves what each side has to send to the other, once each way; returns how many
    /// datagrams moved.
    pub fn exchange_once(&mut self) -> usize {
        let now = self.now;
        let mut moved = 0;
        for (to, mut d) in drain(&mut self.client, now) {
            self.note(CLIENT, to, &d);
            if to == SERVER {
                self.server.handle_datagram(now, LocalId(0), CLIENT, &mut d);
                moved += 1;
            }
        }
        for (to, mut d) in drain(&mut self.server, now) {
            self.note(SERVER, to, &d);
            if to == CLIENT {
                self.client.handle_datagram(now, LocalId(0), SERVER, &mut d);
                moved += 1;
            }
        }
        moved
    }

    /// Exchanges until neither side has anything to send (bounded).
    pub fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if self.exchange_once() == 0 {
                break;
            }
        }
    }

    /// Moves the clock forward by `d` and runs both sides' due timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        run_timers(&mut self.client, self.now);
        run_timers(&mut self.server, self.now);
    }
}

/// A cursor over fuzz input that never fails: past the end it yields zeros and empty slices.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let s = self.take(2);
        b[..s.len()].copy_from_slice(s);
        u16::from_le_bytes(b)
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let s = self.take(4);
        b[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(b)
    }
    /// A little-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let s = self.take(8);
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    }
    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}
