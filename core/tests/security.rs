//! Encryption, authentication and tamper resistance, on the simulator.

mod common;

use core::time::Duration;

use common::{check_message, make_message};
use lanewire_core::crypto::{CaKey, IdentityKey, TrustStore};
use lanewire_core::handshake::Credentials;
use lanewire_core::identity::Identity;
use lanewire_core::link::LinkConfig;
use lanewire_core::sim::{SimAddr, World};
use lanewire_core::{
    Config, ConfigKey, ConnectionHandle, ConnectionInfo, ConnectionState, EndReason, Event,
    LocalId, Message, Rng, SendFlags,
};

/// Unix time of the simulated world's start.
const T0: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

struct Setup {
    w: World,
    c: SimAddr,
    s: SimAddr,
    cc: ConnectionHandle,
    sc: Option<ConnectionHandle>,
}

struct Side {
    creds: Credentials,
    trust: TrustStore,
    config: Config,
}

impl Side {
    fn plain() -> Side {
        Side { creds: Credentials::default(), trust: TrustStore::new(), config: Config::new() }
    }
    fn require_auth(mut self) -> Side {
        self.config.set_i32(ConfigKey::IpAllowWithoutAuth, 0).unwrap();
        self
    }
    fn trusting(mut self, ca: &CaKey) -> Side {
        self.trust.add_ca(ca.public());
        self
    }
    fn with(mut self, creds: Credentials) -> Side {
        self.creds = creds;
        self
    }
    fn unencrypted(mut self, v: i32) -> Side {
        self.config.set_i32(ConfigKey::Unencrypted, v).unwrap();
        self
    }
}

fn certified(ca: &CaKey, rng: &mut Rng, id: &str, not_before: u64, not_after: u64) -> Credentials {
    let key = IdentityKey::generate(rng);
    let cert =
        ca.issue(&Identity::string(id).unwrap(), &key.public(), not_before, not_after).unwrap();
    Credentials::certified(key, cert)
}

fn setup(seed: u64, client: Side, server: Side, expect: Option<&str>) -> Setup {
    let mut w =
        World::new(seed, LinkConfig { latency: Duration::from_millis(5), ..LinkConfig::ideal() });
    let c = w.add_node(Config::new());
    let s = w.add_node(Config::new());
    for (n, side) in [(c, &client), (s, &server)] {
        let now = w.now;
        w.node(n).set_unix_time(now, T0);
        let _ = side;
    }
    w.node(c).set_credentials(client.creds);
    w.node(c).set_trust_store(client.trust);
    w.node(s).set_credentials(server.creds);
    w.node(s).set_trust_store(server.trust);
    w.node(s).create_listen_socket(LocalId(0), server.config).unwrap();
    let now = w.now;
    let cc = match expect {
        Some(id) => w.node(c).connect_to_identity(
            now,
            LocalId(0),
            s,
            Identity::string(id).unwrap(),
            client.config,
        ),
        None => w.node(c).connect(now, LocalId(0), s, client.config),
    }
    .unwrap();
    let mut st = Setup { w, c, s, cc, sc: None };
    let (s_, c_, cc_) = (st.s, st.c, st.cc);
    let mut sc = None;
    st.w.run_until(Duration::from_secs(15), |w| {
        let now = w.now;
        while let Some(Event::StatusChanged { conn, info, .. }) = w.node(s_).poll_event() {
            if info.state == ConnectionState::Connecting {
                w.node(s_).accept(now, conn).unwrap();
                sc = Some(conn);
            }
        }
        let st = w.node(c_).connection_info(cc_).unwrap().state;
        st != ConnectionState::Connecting
    });
    st.w.run_for(Duration::from_millis(100));
    st.sc = sc;
    st
}

fn client_info(st: &mut Setup) -> ConnectionInfo<SimAddr> {
    st.w.node(st.c).connection_info(st.cc).unwrap()
}

both! {
    fn encrypted_by_default_and_reported() {
        let mut st = setup(1, Side::plain().with(Credentials::claimed(Identity::string("alice").unwrap())), Side::plain(), None);
        let info = client_info(&mut st);
        assert_eq!(info.state, ConnectionState::Connected);
        assert!(info.encrypted && !info.authenticated && !info.transport_encrypted, "{info:?}");
        let sc = st.sc.unwrap();
        let sinfo = st.w.node(st.s).connection_info(sc).unwrap();
        assert_eq!(sinfo.remote_identity.as_deref(), Some("str:alice"), "claimed identity travels");
        assert!(!sinfo.authenticated);
    }
}

both! {
    fn tampering_any_byte_is_detected() {
        let mut st = setup(2, Side::plain(), Side::plain(), None);
        let (c, s, cc, sc) = (st.c, st.s, st.cc, st.sc.unwrap());
        // Cut the client → server link and capture what the client sends.
        st.w.set_link(c, s, LinkConfig { loss: 1.0, ..LinkConfig::ideal() });
        st.w.capture = true;
        let now = st.w.now;
        for i in 0..5 {
            st.w.node(c).send(now, cc, &make_message(true, i, 300), SendFlags::RELIABLE_NO_NAGLE).unwrap();
            st.w.node(c).send(now, cc, &make_message(false, i, 200), SendFlags::UNRELIABLE_NO_NAGLE).unwrap();
        }
        st.w.run_for(Duration::from_millis(2));
        st.w.capture = false;
        let packets: Vec<Vec<u8>> = st.w.captured.iter().filter(|(f, _, d)| *f == c && d[0] & 0x80 != 0).map(|x| x.2.clone()).collect();
        assert!(!packets.is_empty());
        let before = st.w.node(s).stats().clone();
        let mut tampered = 0u64;
        for p in &packets {
            for i in 0..p.len() {
                for bit in [0x01u8, 0x80] {
                    let mut d = p.clone();
                    d[i] ^= bit;
                    st.w.inject(c, s, &mut d);
                    tampered += 1;
                }
            }
            // The untouched packet still goes through after all that.
            let mut d = p.clone();
            st.w.inject(c, s, &mut d);
        }
        let after = st.w.node(s).stats().clone();
        let rejected = (after.dropped_by_connection - before.dropped_by_connection)
            + (after.unknown_connection - before.unknown_connection)
            + (after.malformed - before.malformed);
        assert_eq!(rejected, tampered, "every tampered packet is rejected and counted: {after:?}");
        let mut out: Vec<Message> = Vec::new();
        st.w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        let mut reliable = 0;
        for m in &out {
            let (r, n) = check_message(&m.data);
            if r {
                assert_eq!(n, reliable);
                reliable += 1;
            }
        }
        assert_eq!(reliable, 5, "the genuine packets were delivered");
        assert_eq!(st.w.node(s).connection_info(sc).unwrap().state, ConnectionState::Connected);
        // Replays of the genuine packets are dropped too.
        let before = st.w.node(s).stats().dropped_by_connection;
        for p in &packets {
            st.w.inject(c, s, &mut p.clone());
        }
        assert_eq!(st.w.node(s).stats().dropped_by_connection - before, packets.len() as u64);
        out.clear();
        st.w.node(s).receive(sc, usize::MAX, &mut out).unwrap();
        assert!(out.is_empty(), "a replay delivered a message again");
    }
}

both! {
    fn valid_certificates_authenticate_both_sides() {
        let mut rng = Rng::seeded(3);
        let ca = CaKey::generate(&mut rng);
        let server = Side::plain().require_auth().trusting(&ca).with(certified(&ca, &mut rng, "server", T0 - DAY, T0 + DAY));
        let client = Side::plain().require_auth().trusting(&ca).with(certified(&ca, &mut rng, "player1", T0 - DAY, T0 + DAY));
        let mut st = setup(3, client, server, Some("server"));
        let info = client_info(&mut st);
        assert_eq!(info.state, ConnectionState::Connected, "{info:?}");
        assert!(info.authenticated && info.encrypted);
        assert_eq!(info.remote_identity.as_deref(), Some("str:server"));
        let sinfo = st.w.node(st.s).connection_info(st.sc.unwrap()).unwrap();
        assert!(sinfo.authenticated);
        assert_eq!(sinfo.remote_identity.as_deref(), Some("str:player1"));
    }
}

fn refused(seed: u64, client: Side, server: Side, expect: Option<&str>) -> ConnectionInfo<SimAddr> {
    let mut st = setup(seed, client, server, expect);
    let info = client_info(&mut st);
    assert!(info.state.is_ended(), "handshake should fail: {info:?}");
    // Nothing is left half-open on the server.
    st.w.run_for(Duration::from_secs(1));
    let s = st.s;
    assert!(
        st.w.node(s)
            .connections()
            .iter()
            .all(|&h| st.w.node(s).connection_info(h).unwrap().state != ConnectionState::Connected)
    );
    info
}

both! {
    fn wrong_ca_expired_and_wrong_identity_are_refused() {
        let mut rng = Rng::seeded(4);
        let ca = CaKey::generate(&mut rng);
        let other_ca = CaKey::generate(&mut rng);
        let strict = || Side::plain().require_auth().trusting(&ca);

        let info = refused(41, strict(), Side::plain().with(certified(&other_ca, &mut rng, "server", T0 - DAY, T0 + DAY)), None);
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CERT);
        assert!(info.end_debug.to_lowercase().contains("ca"), "{}", info.end_debug);

        let info = refused(42, strict(), Side::plain().with(certified(&ca, &mut rng, "server", T0 - 2 * DAY, T0 - DAY)), None);
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CERT);
        assert!(info.end_debug.to_lowercase().contains("expired"), "{}", info.end_debug);

        let info = refused(43, strict(), Side::plain().with(certified(&ca, &mut rng, "server", T0 - DAY, T0 + DAY)), Some("bank"));
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CERT);
        assert!(info.end_debug.to_lowercase().contains("identity"), "{}", info.end_debug);

        // A server that requires client certificates refuses a client without one, and says why.
        let info = refused(44, Side::plain(), Side::plain().require_auth().trusting(&ca), None);
        assert_eq!(info.state, ConnectionState::ClosedByPeer);
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CERT);
    }
}

both! {
    fn man_in_the_middle_without_the_key_cannot_authenticate() {
        let mut rng = Rng::seeded(5);
        let ca = CaKey::generate(&mut rng);
        let real = certified(&ca, &mut rng, "server", T0 - DAY, T0 + DAY);
        let Some((_, real_cert)) = real.certificate else { unreachable!() };
        // The attacker relays the genuine certificate but holds a different identity key.
        let stolen = Credentials::certified(IdentityKey::generate(&mut rng), real_cert);
        let info = refused(51, Side::plain().require_auth().trusting(&ca), Side::plain().with(stolen), Some("server"));
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CRYPT, "{info:?}");
        // An attacker with no certificate at all is refused by a client that requires one.
        let info = refused(52, Side::plain().require_auth().trusting(&ca), Side::plain().with(Credentials::claimed(Identity::string("server").unwrap())), Some("server"));
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CERT);
    }
}

both! {
    fn plaintext_only_when_both_sides_allow() {
        let info = refused(61, Side::plain().unencrypted(3), Side::plain(), None);
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CRYPT);
        assert!(info.end_debug.contains("cipher"), "{}", info.end_debug);
        let info = refused(62, Side::plain(), Side::plain().unencrypted(3), None);
        assert_eq!(info.end_reason, EndReason::REMOTE_BAD_CRYPT);

        let mut st = setup(63, Side::plain().unencrypted(2), Side::plain().unencrypted(3), None);
        let info = client_info(&mut st);
        assert_eq!(info.state, ConnectionState::Connected);
        assert!(!info.encrypted);
        // Allowed but not preferred on one side: the server's preference decides.
        let mut st = setup(64, Side::plain().unencrypted(2), Side::plain().unencrypted(1), None);
        assert!(client_info(&mut st).encrypted);
    }
}

both! {
    fn transport_encryption_skips_the_aead() {
        let mut w = World::new(7, LinkConfig::ideal());
        let c = w.add_node(Config::new());
        let s = w.add_node(Config::new());
        w.node(c).set_transport_encrypted(LocalId(0), true);
        w.node(s).set_transport_encrypted(LocalId(0), true);
        w.node(s).create_listen_socket(LocalId(0), Config::new()).unwrap();
        let now = w.now;
        let cc = w.node(c).connect(now, LocalId(0), s, Config::new()).unwrap();
        assert!(w.run_until(Duration::from_secs(5), |w| {
            let now = w.now;
            while let Some(Event::StatusChanged { conn, info, .. }) = w.node(s).poll_event() {
                if info.state == ConnectionState::Connecting {
                    w.node(s).accept(now, conn).unwrap();
                }
            }
            w.node(c).connection_info(cc).unwrap().state == ConnectionState::Connected
        }));
        let info = w.node(c).connection_info(cc).unwrap();
        assert!(info.transport_encrypted && !info.encrypted, "{info:?}");
    }
}
