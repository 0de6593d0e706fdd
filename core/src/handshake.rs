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

use crate::crypto::{
    Certificate, Cipher, IdentityKey, KeyShare, Role, SessionKeys, Transcript, TrustStore,
    derive_session_keys, verify_signature,
};
use crate::identity::Identity;
use crate::rng::Rng;
use crate::types::EndReason;
use crate::wire::{Reader, varint};

const VERSION: u8 = 1;
const OFFER_LABEL: &[u8] = b"lanewire offer";
const ANSWER_LABEL: &[u8] = b"lanewire answer";

/// Who this endpoint is, and optionally the proof.
#[derive(Debug, Default)]
pub struct Credentials {
    /// The identity claimed (or certified).
    pub identity: Option<Identity>,
    /// Identity key and the CA-signed certificate for its public key.
    pub certificate: Option<(IdentityKey, Certificate)>,
}

impl Credentials {
    /// A claimed identity, without proof.
    pub fn claimed(identity: Identity) -> Self {
        Credentials { identity: Some(identity), certificate: None }
    }
    /// A certified identity: the certificate must be for `key`'s public key.
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
    pub(crate) unix_now: Option<u64>,
}

impl Policy {
    /// Ciphers this side accepts, in preference order.
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
}

/// A handshake failure: the end reason and debug text for both sides.
pub(crate) type Failure = (EndReason, String);

fn fail(reason: EndReason, text: impl Into<String>) -> Failure {
    (reason, text.into())
}

/// The client's half while waiting for the answer.
#[derive(Debug)]
pub(crate) struct ClientHandshake {
    share: Option<KeyShare>,
    pub(crate) offer: Vec<u8>,
}

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

fn signed_bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

impl ClientHandshake {
    /// Builds the offer.
    pub(crate) fn new(rng: &mut Rng, creds: &Credentials, policy: &Policy, client_id: u32) -> Self {
        let share = KeyShare::generate(rng);
        let public = share.public();
        let mut offer = vec![VERSION];
        let ciphers = policy.ciphers();
        offer.push(ciphers.len() as u8);
        offer.extend(ciphers.iter().map(|c| c.code()));
        offer.extend_from_slice(&public);
        let id_bytes = identity_bytes(creds.identity.as_ref());
        write_identity_and_cert(&mut offer, creds, |key| {
            key.sign(&signed_bytes(&[OFFER_LABEL, &client_id.to_le_bytes(), &public, &id_bytes]))
        });
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
        let shared =
            mine.diffie_hellman(&share).map_err(|_| bad("Server sent a weak key share"))?;
        let mut t = Transcript::new();
        t.update_framed(&self.offer);
        t.update_framed(answer);
        let keys =
            derive_session_keys(&shared, &t.hash(), client_id, server_id, Role::Client, cipher);
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
            return Err(bad_cert(format!("Peer claims identity {i}, expected {e}")));
        }
        return Ok((identity, None));
    }
    let len =
        r.varint_len(Certificate::MAX_ENCODED_LEN).map_err(|_| bad("Certificate too long"))?;
    let bytes = r.bytes(len).map_err(|_| bad("Truncated certificate"))?;
    let (cert, used) =
        Certificate::decode(bytes).map_err(|e| bad_cert(format!("Malformed certificate: {e}")))?;
    if used != len {
        return Err(bad_cert("Trailing bytes after certificate".into()));
    }
    let sig: [u8; 64] =
        r.bytes(64).map_err(|_| bad("Truncated signature"))?.try_into().map_err(|_| bad("sig"))?;
    let Some(unix_now) = policy.unix_now else {
        return Err(bad_cert(
            "Cannot check a certificate: the driver never set the unix time".into(),
        ));
    };
    let want = expected.or(identity.as_ref());
    cert.verify(trust, unix_now, want)
        .map_err(|e| bad_cert(format!("Certificate refused: {e}")))?;
    Ok((Some(*cert.identity()), Some((*cert.public_key(), 64, sig))))
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
    let cipher =
        policy.ciphers().iter().copied().find(|c| offered.contains(&c.code())).ok_or_else(
            || bad("No common cipher (one side requires encryption, the other plaintext)"),
        )?;
    let share = read_share(&mut r)?;
    let (identity, auth) = read_identity_and_cert(&mut r, trust, policy, None)?;
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
    let mine = KeyShare::generate(rng);
    let public = mine.public();
    let shared = mine.diffie_hellman(&share).map_err(|_| bad("Client sent a weak key share"))?;
    let mut answer = vec![VERSION, cipher.code()];
    answer.extend_from_slice(&public);
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
    let mut t = Transcript::new();
    t.update_framed(offer);
    t.update_framed(&answer);
    let keys = derive_session_keys(&shared, &t.hash(), client_id, server_id, Role::Server, cipher);
    Ok((answer, keys, PeerAuth { identity, authenticated: auth.is_some() }))
}
