//! The cryptographic half of the handshake: what rides in the connect request's and connect
//! OK's crypto blobs, and how each side turns them into session keys and a verdict on the
//! peer's identity.
//!
//! ```text
//! offer (client → server, in ConnectRequest):
//!   u8 version=1 | u8 n | n × u8 cipher codes (client preference) | [32] X25519 share
//!   | identity (Identity::encode) | u8 has_cert | [cert: varint len, Certificate bytes,
//!   [64] Ed25519 signature over "lanewire offer" ‖ client id ‖ share ‖ identity]
//! answer (server → client, in ConnectOk):
//!   u8 version=1 | u8 cipher | [32] X25519 share | identity | u8 has_cert
//!   | [cert: varint len, Certificate bytes, [64] signature over "lanewire answer" ‖
//!     SHA-256(offer) ‖ client id ‖ server id ‖ cipher ‖ share ‖ identity]
//! ```
//!
//! Session keys are HKDF-SHA256 of the X25519 secret, salted with the SHA-256 transcript of
//! both blobs and bound to both connection ids and the cipher (see
//! [`crate::crypto::derive_session_keys`]). A certificate proves that the
//! key share came from the holder of a CA-signed identity key, so a man in the middle without
//! that key cannot complete an authenticated handshake: it can relay the certificate, but not
//! sign its own share with it.
//!
//! Without the `crypto` feature the blobs keep exactly this layout, so such a core still
//! completes handshakes with any Lanewire peer whose policy allows the null cipher (both sides
//! over WebRTC): it offers and accepts [`Cipher::Null`] only, sends a random 32-byte share that
//! it never uses, never presents a certificate, and skips a certificate the peer presents (the
//! peer then counts as unauthenticated; refused when `IpAllowWithoutAuth` is 0, since the
//! certificate cannot be checked). A handshake that needs an AEAD fails with
//! [`EndReason::REMOTE_BAD_CRYPT`] and a debug text that names the missing feature.

// The text above describes the full module; without `crypto` some of its links have no target.
#![cfg_attr(
    not(feature = "crypto"),
    allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)
)]

#[cfg(not(feature = "crypto"))]
use crate::crypto::KEY_SHARE_LEN;
#[cfg(feature = "crypto")]
use crate::crypto::{
    Certificate, IdentityKey, KeyShare, Role, Transcript, derive_session_keys, verify_signature,
};
use crate::crypto::{Cipher, SessionKeys, TrustStore};
use crate::identity::Identity;
use crate::prelude::*;
use crate::rng::Rng;
use crate::text;
use crate::types::EndReason;
use crate::wire::Reader;
#[cfg(feature = "crypto")]
use crate::wire::varint;

const VERSION: u8 = 1;
#[cfg(feature = "crypto")]
const OFFER_LABEL: &[u8] = b"lanewire offer";
#[cfg(feature = "crypto")]
const ANSWER_LABEL: &[u8] = b"lanewire answer";
/// Longest certificate a no-`crypto` core skips over (`Certificate::MAX_ENCODED_LEN`).
#[cfg(not(feature = "crypto"))]
const MAX_CERT_LEN: usize = 155;
/// Why a no-`crypto` core cannot complete a handshake that needs the core's own encryption.
#[cfg(not(feature = "crypto"))]
const NO_CRYPTO: &str = "this side is built without the `crypto` feature (no AEAD), and the \
                         link is not marked encrypted or the peer requires encryption";

/// Who this endpoint is, and optionally the proof.
#[derive(Debug, Default)]
pub struct Credentials {
    /// The identity claimed (or certified).
    pub identity: Option<Identity>,
    /// Identity key and the CA-signed certificate for its public key (`crypto` feature).
    #[cfg(feature = "crypto")]
    pub certificate: Option<(IdentityKey, Certificate)>,
}

impl Credentials {
    /// A claimed identity, without proof.
    pub fn claimed(identity: Identity) -> Self {
        Credentials {
            identity: Some(identity),
            #[cfg(feature = "crypto")]
            certificate: None,
        }
    }
    /// A certified identity: the certificate must be for `key`'s public key.
    #[cfg(feature = "crypto")]
    pub fn certified(key: IdentityKey, certificate: Certificate) -> Self {
        Credentials {
            identity: Some(*certificate.identity()),
            certificate: Some((key, certificate)),
        }
    }
}

/// What a finished handshake says about the peer.
#[derive(Debug, Clone)]
pub(crate) struct PeerAuth {
    pub(crate) identity: Option<Identity>,
    pub(crate) authenticated: bool,
}

/// How this side treats peers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// `Unencrypted` config value (0..=3).
    pub(crate) unencrypted: u8,
    /// `IpAllowWithoutAuth` config value (0 requires a certificate).
    pub(crate) allow_without_auth: u8,
    /// The transport already encrypts (WebRTC): plaintext is always acceptable.
    pub(crate) transport_encrypted: bool,
    /// Unix time for certificate validity, if the driver told us.
    #[cfg_attr(not(feature = "crypto"), allow(dead_code))]
    pub(crate) unix_now: Option<u64>,
}

impl Policy {
    /// Ciphers this side accepts, in preference order.
    #[cfg(feature = "crypto")]
    pub(crate) fn ciphers(&self) -> &'static [Cipher] {
        if self.transport_encrypted {
            // Encrypting twice buys nothing; but accept the AEAD if the peer insists.
            return &[Cipher::Null, Cipher::Aes256Gcm];
        }
        match self.unencrypted {
            0 => &[Cipher::Aes256Gcm],
            1 => &[Cipher::Aes256Gcm, Cipher::Null],
            2 => &[Cipher::Null, Cipher::Aes256Gcm],
            _ => &[Cipher::Null],
        }
    }

    /// Ciphers this side accepts: without the `crypto` feature only [`Cipher::Null`], and only
    /// where the policy above would accept it; none when it requires encryption (an offer with
    /// no cipher, which the peer refuses).
    #[cfg(not(feature = "crypto"))]
    pub(crate) fn ciphers(&self) -> &'static [Cipher] {
        if self.transport_encrypted || self.unencrypted != 0 { &[Cipher::Null] } else { &[] }
    }
}

/// A handshake failure: the end reason and debug text for both sides.
pub(crate) type Failure = (EndReason, String);

fn fail(reason: EndReason, text: impl Into<String>) -> Failure {
    (reason, text.into())
}

/// This side's ephemeral key share (`crypto` feature: an X25519 key pair).
#[cfg(feature = "crypto")]
type Share = KeyShare;

/// Without the `crypto` feature: 32 random bytes in the place of an X25519 public key. Random
/// bytes are a valid share for a peer that does compute a shared secret (only the null cipher
/// can be agreed, so the keys derived from it never protect anything); no secret half exists.
#[cfg(not(feature = "crypto"))]
#[derive(Debug)]
struct Share([u8; KEY_SHARE_LEN]);

#[cfg(not(feature = "crypto"))]
impl Share {
    fn generate(rng: &mut Rng) -> Share {
        let mut public = [0; KEY_SHARE_LEN];
        rng.fill(&mut public);
        Share(public)
    }

    fn public(&self) -> [u8; KEY_SHARE_LEN] {
        self.0
    }
}

/// The session keys from this side's share, the peer's share and both handshake blobs.
#[cfg(feature = "crypto")]
#[allow(clippy::too_many_arguments)]
fn session_keys(
    mine: Share,
    peer: &[u8; 32],
    offer: &[u8],
    answer: &[u8],
    client_id: u32,
    server_id: u32,
    role: Role,
    cipher: Cipher,
) -> Result<SessionKeys, Failure> {
    let weak = match role {
        Role::Client => "Server sent a weak key share",
        Role::Server => "Client sent a weak key share",
    };
    let shared = mine.diffie_hellman(peer).map_err(|_| fail(EndReason::REMOTE_BAD_CRYPT, weak))?;
    let mut t = Transcript::new();
    t.update_framed(offer);
    t.update_framed(answer);
    Ok(derive_session_keys(&shared, &t.hash(), client_id, server_id, role, cipher))
}

/// Without the `crypto` feature the only cipher [`Policy::ciphers`] lets either side agree on
/// is [`Cipher::Null`], whose keys are empty.
#[cfg(not(feature = "crypto"))]
fn null_keys(cipher: Cipher) -> Result<SessionKeys, Failure> {
    match cipher {
        Cipher::Null => Ok(SessionKeys::null()),
        Cipher::Aes256Gcm => Err(fail(EndReason::REMOTE_BAD_CRYPT, NO_CRYPTO)),
    }
}

/// The client's half while waiting for the answer.
#[derive(Debug)]
pub(crate) struct ClientHandshake {
    share: Option<Share>,
    pub(crate) offer: Vec<u8>,
}

#[cfg(not(feature = "crypto"))]
fn write_identity_and_cert(out: &mut Vec<u8>, creds: &Credentials) {
    out.extend_from_slice(&identity_bytes(creds.identity.as_ref()));
    out.push(0); // no certificate
}

#[cfg(feature = "crypto")]
fn write_identity_and_cert(
    out: &mut Vec<u8>,
    creds: &Credentials,
    signed: impl FnOnce(&IdentityKey) -> [u8; 64],
) {
    out.extend_from_slice(&identity_bytes(creds.identity.as_ref()));
    match &creds.certificate {
        Some((key, cert)) => {
            out.push(1);
            let mut c = Vec::new();
            cert.encode(&mut c);
            varint::put(out, c.len() as u64);
            out.extend_from_slice(&c);
            out.extend_from_slice(&signed(key));
        }
        None => out.push(0),
    }
}

#[cfg(feature = "crypto")]
fn signed_bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

impl ClientHandshake {
    /// Builds the offer.
    pub(crate) fn new(rng: &mut Rng, creds: &Credentials, policy: &Policy, client_id: u32) -> Self {
        let share = Share::generate(rng);
        let public = share.public();
        let mut offer = vec![VERSION];
        let ciphers = policy.ciphers();
        offer.push(ciphers.len() as u8);
        offer.extend(ciphers.iter().map(|c| c.code()));
        offer.extend_from_slice(&public);
        #[cfg(feature = "crypto")]
        {
            let id_bytes = identity_bytes(creds.identity.as_ref());
            write_identity_and_cert(&mut offer, creds, |key| {
                key.sign(&signed_bytes(&[
                    OFFER_LABEL,
                    &client_id.to_le_bytes(),
                    &public,
                    &id_bytes,
                ]))
            });
        }
        #[cfg(not(feature = "crypto"))]
        {
            let _ = client_id;
            write_identity_and_cert(&mut offer, creds);
        }
        ClientHandshake { share: Some(share), offer }
    }

    /// Checks the server's answer and derives the keys.
    pub(crate) fn finish(
        &mut self,
        answer: &[u8],
        trust: &TrustStore,
        policy: &Policy,
        expected: Option<&Identity>,
        client_id: u32,
        server_id: u32,
    ) -> Result<(SessionKeys, PeerAuth), Failure> {
        let bad = |t: &str| fail(EndReason::REMOTE_BAD_CRYPT, t);
        let mut r = Reader::new(answer);
        if r.u8().map_err(|_| bad("Empty crypto answer"))? != VERSION {
            return Err(bad("Unknown crypto answer version"));
        }
        let cipher = Cipher::from_code(r.u8().map_err(|_| bad("Truncated crypto answer"))?)
            .filter(|c| policy.ciphers().contains(c))
            .ok_or_else(|| bad("Server chose a cipher we did not offer"))?;
        let share = read_share(&mut r)?;
        let (identity, auth) = read_identity_and_cert(&mut r, trust, policy, expected)?;
        #[cfg(feature = "crypto")]
        if let Some((cert_key, _, sig)) = auth {
            let id_bytes = identity_bytes(identity.as_ref());
            let msg = signed_bytes(&[
                ANSWER_LABEL,
                &sha256(&self.offer),
                &client_id.to_le_bytes(),
                &server_id.to_le_bytes(),
                &[cipher.code()],
                &share,
                &id_bytes,
            ]);
            verify_signature(&cert_key, &msg, &sig)
                .map_err(|_| bad("Server's key share is not signed by its certified key"))?;
        }
        if !r.is_empty() {
            return Err(bad("Trailing bytes in crypto answer"));
        }
        let mine = self.share.take().ok_or_else(|| bad("Handshake already finished"))?;
        #[cfg(feature = "crypto")]
        let keys = session_keys(
            mine,
            &share,
            &self.offer,
            answer,
            client_id,
            server_id,
            Role::Client,
            cipher,
        )?;
        #[cfg(not(feature = "crypto"))]
        let keys = {
            let _ = (mine, share, client_id, server_id);
            null_keys(cipher)?
        };
        Ok((keys, PeerAuth { identity, authenticated: auth.is_some() }))
    }
}

/// (certified public key, signature length, signature).
type CertAuth = ([u8; 32], usize, [u8; 64]);

/// Reads `identity | has_cert | [cert, sig]` and applies the policy. Returns the identity and,
/// when a certificate was verified, (certified public key, bytes of signature = 64, signature).
fn read_identity_and_cert(
    r: &mut Reader<'_>,
    trust: &TrustStore,
    policy: &Policy,
    expected: Option<&Identity>,
) -> Result<(Option<Identity>, Option<CertAuth>), Failure> {
    let bad = |t: &str| fail(EndReason::REMOTE_BAD_CRYPT, t);
    let bad_cert = |t: String| fail(EndReason::REMOTE_BAD_CERT, t);
    let (identity, n) = Identity::decode(r.rest()).map_err(|_| bad("Malformed identity"))?;
    r.bytes(n).map_err(|_| bad("Malformed identity"))?;
    let identity = (identity != Identity::Invalid).then_some(identity);
    let has_cert = r.u8().map_err(|_| bad("Truncated crypto blob"))?;
    if has_cert == 0 {
        if policy.allow_without_auth == 0 {
            return Err(bad_cert(
                "Peer presented no certificate and this side requires one".into(),
            ));
        }
        if let (Some(e), Some(i)) = (expected, identity.as_ref())
            && e != i
        {
            return Err(bad_cert(text!("Peer claims identity ", i, ", expected ", e)));
        }
        return Ok((identity, None));
    }
    #[cfg(not(feature = "crypto"))]
    {
        // The certificate cannot be checked: skip it and its signature, and treat the peer as
        // unauthenticated, which the policy must allow.
        let _ = trust;
        if policy.allow_without_auth == 0 {
            return Err(bad_cert(
                "Peer presented a certificate, but this side cannot check it (built without \
                 the `crypto` feature) and requires an authenticated peer"
                    .into(),
            ));
        }
        let len = r.varint_len(MAX_CERT_LEN).map_err(|_| bad("Certificate too long"))?;
        r.bytes(len).map_err(|_| bad("Truncated certificate"))?;
        r.bytes(64).map_err(|_| bad("Truncated signature"))?;
        if let (Some(e), Some(i)) = (expected, identity.as_ref())
            && e != i
        {
            return Err(bad_cert(text!("Peer claims identity ", i, ", expected ", e)));
        }
        Ok((identity, None))
    }
    #[cfg(feature = "crypto")]
    {
        let len =
            r.varint_len(Certificate::MAX_ENCODED_LEN).map_err(|_| bad("Certificate too long"))?;
        let bytes = r.bytes(len).map_err(|_| bad("Truncated certificate"))?;
        let (cert, used) = Certificate::decode(bytes)
            .map_err(|e| bad_cert(alloc::format!("Malformed certificate: {e}")))?;
        if used != len {
            return Err(bad_cert("Trailing bytes after certificate".into()));
        }
        let sig: [u8; 64] = r
            .bytes(64)
            .map_err(|_| bad("Truncated signature"))?
            .try_into()
            .map_err(|_| bad("sig"))?;
        let Some(unix_now) = policy.unix_now else {
            return Err(bad_cert(
                "Cannot check a certificate: the driver never set the unix time".into(),
            ));
        };
        let want = expected.or(identity.as_ref());
        cert.verify(trust, unix_now, want)
            .map_err(|e| bad_cert(alloc::format!("Certificate refused: {e}")))?;
        Ok((Some(*cert.identity()), Some((*cert.public_key(), 64, sig))))
    }
}

fn read_share(r: &mut Reader<'_>) -> Result<[u8; 32], Failure> {
    let bad = || fail(EndReason::REMOTE_BAD_CRYPT, "Truncated key share");
    r.bytes(32).map_err(|_| bad())?.try_into().map_err(|_| bad())
}

/// The canonical encoding of a (possibly absent) identity, as signed.
fn identity_bytes(identity: Option<&Identity>) -> Vec<u8> {
    let mut out = Vec::new();
    identity.copied().unwrap_or(Identity::Invalid).encode(&mut out);
    out
}

#[cfg(feature = "crypto")]
fn sha256(b: &[u8]) -> [u8; 32] {
    let mut t = Transcript::new();
    t.update(b);
    t.hash()
}

/// The server's side: checks the offer, answers it and derives the keys.
#[allow(clippy::too_many_arguments)]
pub(crate) fn server_answer(
    rng: &mut Rng,
    offer: &[u8],
    creds: &Credentials,
    trust: &TrustStore,
    policy: &Policy,
    client_id: u32,
    server_id: u32,
) -> Result<(Vec<u8>, SessionKeys, PeerAuth), Failure> {
    let bad = |t: &str| fail(EndReason::REMOTE_BAD_CRYPT, t);
    let mut r = Reader::new(offer);
    if r.u8().map_err(|_| bad("Empty crypto offer"))? != VERSION {
        return Err(bad("Unknown crypto offer version"));
    }
    let n = r.u8().map_err(|_| bad("Truncated offer"))? as usize;
    let offered = r.bytes(n).map_err(|_| bad("Truncated cipher list"))?;
    #[cfg(feature = "crypto")]
    let no_common = "No common cipher (one side requires encryption, the other plaintext)";
    #[cfg(not(feature = "crypto"))]
    let no_common = &*text!("No common cipher: ", NO_CRYPTO);
    let cipher = policy
        .ciphers()
        .iter()
        .copied()
        .find(|c| offered.contains(&c.code()))
        .ok_or_else(|| bad(no_common))?;
    let share = read_share(&mut r)?;
    let (identity, auth) = read_identity_and_cert(&mut r, trust, policy, None)?;
    #[cfg(feature = "crypto")]
    if let Some((key, _, sig)) = auth {
        // Signed over the canonical encoding of the identity (re-encoded from what we decoded).
        let id_bytes = identity_bytes(identity.as_ref());
        let msg = signed_bytes(&[OFFER_LABEL, &client_id.to_le_bytes(), &share, &id_bytes]);
        verify_signature(&key, &msg, &sig)
            .map_err(|_| bad("Client's key share is not signed by its certified key"))?;
    }
    if !r.is_empty() {
        return Err(bad("Trailing bytes in crypto offer"));
    }
    let mine = Share::generate(rng);
    let public = mine.public();
    let mut answer = vec![VERSION, cipher.code()];
    answer.extend_from_slice(&public);
    #[cfg(not(feature = "crypto"))]
    {
        let _ = (mine, share, client_id, server_id);
        write_identity_and_cert(&mut answer, creds);
        let keys = null_keys(cipher)?;
        Ok((answer, keys, PeerAuth { identity, authenticated: auth.is_some() }))
    }
    #[cfg(feature = "crypto")]
    {
        let id_bytes = identity_bytes(creds.identity.as_ref());
        let offer_hash = sha256(offer);
        write_identity_and_cert(&mut answer, creds, |key| {
            key.sign(&signed_bytes(&[
                ANSWER_LABEL,
                &offer_hash,
                &client_id.to_le_bytes(),
                &server_id.to_le_bytes(),
                &[cipher.code()],
                &public,
                &id_bytes,
            ]))
        });
        let keys =
            session_keys(mine, &share, offer, &answer, client_id, server_id, Role::Server, cipher)?;
        Ok((answer, keys, PeerAuth { identity, authenticated: auth.is_some() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(transport_encrypted: bool, unencrypted: u8, allow_without_auth: u8) -> Policy {
        Policy { unencrypted, allow_without_auth, transport_encrypted, unix_now: None }
    }

    fn creds(s: &str) -> Credentials {
        Credentials::claimed(s.parse().expect("identity"))
    }

    /// An offer as a core without `crypto` writes it: version, ciphers, 32 random bytes in
    /// place of the X25519 share, identity, no certificate.
    fn plain_offer(
        ciphers: &[u8],
        share: [u8; 32],
        identity: &str,
        cert: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut o = vec![VERSION, ciphers.len() as u8];
        o.extend_from_slice(ciphers);
        o.extend_from_slice(&share);
        identity.parse::<Identity>().expect("identity").encode(&mut o);
        match cert {
            None => o.push(0),
            Some(cert) => {
                o.push(1);
                o.push(cert.len() as u8); // a one-byte varint below 128
                o.extend_from_slice(cert);
                o.extend_from_slice(&[0x55; 64]);
            }
        }
        o
    }

    /// Both sides over an encrypted transport agree on the null cipher, whatever the build.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn null_cipher_over_encrypted_transport() {
        let mut rng = Rng::seeded(1);
        let p = policy(true, 0, 2);
        let trust = TrustStore::new();
        let mut client = ClientHandshake::new(&mut rng, &creds("str:alice"), &p, 7);
        let (answer, server_keys, auth) =
            server_answer(&mut rng, &client.offer, &creds("str:bob"), &trust, &p, 7, 9)
                .expect("server accepts");
        assert_eq!(server_keys.cipher(), Cipher::Null);
        assert_eq!(auth.identity, Some("str:alice".parse().expect("identity")));
        assert!(!auth.authenticated);
        let bob = "str:bob".parse().expect("identity");
        let (keys, auth) =
            client.finish(&answer, &trust, &p, Some(&bob), 7, 9).expect("client accepts");
        assert_eq!(keys.cipher(), Cipher::Null);
        assert_eq!(auth.identity, Some(bob));
    }

    /// What a core without `crypto` sends is an ordinary offer to one with it: random share
    /// bytes, the null cipher only.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn plain_offer_is_accepted_over_encrypted_transport() {
        let mut rng = Rng::seeded(2);
        let offer = plain_offer(&[Cipher::Null.code()], [0x42; 32], "str:web", None);
        let (answer, keys, auth) = server_answer(
            &mut rng,
            &offer,
            &creds("str:native"),
            &TrustStore::new(),
            &policy(true, 0, 2),
            3,
            4,
        )
        .expect("accepted");
        assert_eq!(keys.cipher(), Cipher::Null);
        assert_eq!(answer[1], Cipher::Null.code());
        assert_eq!(auth.identity, Some("str:web".parse().expect("identity")));
    }

    /// Without `crypto`, a link that needs the core's encryption fails with a clear reason.
    #[cfg(not(feature = "crypto"))]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn without_crypto_encryption_is_refused_not_skipped() {
        let mut rng = Rng::seeded(3);
        let trust = TrustStore::new();
        // Our own client on a plain link with encryption required offers no cipher at all...
        let strict = policy(false, 0, 2);
        let client = ClientHandshake::new(&mut rng, &creds("str:a"), &strict, 1);
        assert_eq!(client.offer[1], 0, "no cipher offered");
        // ... which a server refuses, and our server refuses a peer that insists on AES.
        for offer in
            [client.offer.clone(), plain_offer(&[Cipher::Aes256Gcm.code()], [1; 32], "str:a", None)]
        {
            let (reason, text) =
                server_answer(&mut rng, &offer, &creds("str:b"), &trust, &strict, 1, 2)
                    .expect_err("refused");
            assert_eq!(reason, EndReason::REMOTE_BAD_CRYPT);
            assert!(text.contains("`crypto` feature"), "{text}");
        }
        // Plaintext allowed by config: the null cipher.
        let lax = policy(false, 2, 2);
        let offer = plain_offer(&[2, 1], [1; 32], "str:a", None);
        let (_, keys, _) =
            server_answer(&mut rng, &offer, &creds("str:b"), &trust, &lax, 1, 2).expect("null");
        assert_eq!(keys.cipher(), Cipher::Null);
        // A client never accepts an answer choosing AES.
        let mut client = ClientHandshake::new(&mut rng, &creds("str:a"), &policy(true, 0, 2), 1);
        let mut answer = vec![VERSION, Cipher::Aes256Gcm.code()];
        answer.extend_from_slice(&[9; 32]);
        Identity::Invalid.encode(&mut answer);
        answer.push(0);
        let (reason, _) =
            client.finish(&answer, &trust, &policy(true, 0, 2), None, 1, 2).expect_err("refused");
        assert_eq!(reason, EndReason::REMOTE_BAD_CRYPT);
    }

    /// Without `crypto`, a peer's certificate is skipped (the peer is unauthenticated), or the
    /// handshake fails when the policy requires authentication.
    #[cfg(not(feature = "crypto"))]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn without_crypto_certificates_are_not_trusted() {
        let mut rng = Rng::seeded(4);
        let trust = TrustStore::new();
        let offer = plain_offer(&[1], [1; 32], "str:certified", Some(&[0xab; 100]));
        let (_, _, auth) =
            server_answer(&mut rng, &offer, &creds("str:b"), &trust, &policy(true, 0, 2), 1, 2)
                .expect("accepted unauthenticated");
        assert!(!auth.authenticated);
        assert_eq!(auth.identity, Some("str:certified".parse().expect("identity")));
        let (reason, text) =
            server_answer(&mut rng, &offer, &creds("str:b"), &trust, &policy(true, 0, 0), 1, 2)
                .expect_err("refused");
        assert_eq!(reason, EndReason::REMOTE_BAD_CERT);
        assert!(text.contains("`crypto` feature"), "{text}");
    }
}
