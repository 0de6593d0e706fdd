//! Identity keys, application certificate authorities and certificates.
//!
//! An application that wants authenticated peers makes one Ed25519 [`CaKey`] offline, ships its
//! [`CaPublicKey`] to every server and client (in a [`TrustStore`]), and issues each peer a
//! [`Certificate`] binding that peer's [`Identity`] to the public half of its own Ed25519
//! [`IdentityKey`] for a validity window. In the handshake a peer sends its certificate and signs
//! its ephemeral key share with its identity key; the other side checks the certificate with
//! [`Certificate::verify`] and the share's signature with [`verify_signature`](super::verify_signature)
//! against [`Certificate::public_key`]. That is GNS's scheme minus intermediates, app-id and
//! data-center scoping and revocation lists (see gns-notes 4.7).
//!
//! Certificate encoding (big-endian, at most [`Certificate::MAX_ENCODED_LEN`] = 155 bytes):
//!
//! ```text
//! version (1 B) = 1
//! CA key id (8 B)        first 8 bytes of SHA-256(CA public key)
//! not_before (8 B)       unix seconds, inclusive
//! not_after (8 B)        unix seconds, inclusive
//! subject key (32 B)     Ed25519 public key
//! identity (2..=34 B)    Identity binary encoding
//! signature (64 B)       Ed25519 by the CA over "lanewire v1 certificate" || all bytes above
//! ```
//!
//! The encoding is canonical (decoding rejects anything that would not re-encode to the same
//! bytes), so the signature can be checked over a re-encoding, on the stack, without keeping
//! the received bytes.
//!
//! Text forms, one line each, for files and command lines: `lanewire-ca-key:<hex>`,
//! `lanewire-ca-pub:<hex>`, `lanewire-identity-key:<hex>`, `lanewire-cert:<hex>`. Parsing trims
//! surrounding whitespace. The secret forms come out of `to_text` in a buffer that is wiped on
//! drop, and are deliberately not [`Display`](fmt::Display) so they do not end up in logs.

use crate::prelude::*;
use core::fmt;
use core::str::FromStr;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CryptoError, hex};
use crate::identity::Identity;
use crate::rng::Rng;

/// Length of an Ed25519 public key, in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 secret key (its seed), in bytes.
pub const SECRET_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;

const CERT_VERSION: u8 = 1;
/// Prefixed to the certificate body before signing, so a CA signature over a certificate can
/// never be replayed as a signature over anything else the protocol signs.
const CERT_SIGNING_CONTEXT: &[u8] = b"lanewire v1 certificate";

const TEXT_CA_KEY: &str = "lanewire-ca-key:";
const TEXT_CA_PUB: &str = "lanewire-ca-pub:";
const TEXT_IDENTITY_KEY: &str = "lanewire-identity-key:";
const TEXT_CERT: &str = "lanewire-cert:";

/// Why a certificate was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CertError {
    /// The bytes or text are not a well-formed certificate (bad length, version, identity,
    /// validity window or subject key), or issuing was asked for one.
    Malformed,
    /// No CA in the trust store has the certificate's CA key id.
    UnknownCa,
    /// The CA signature does not verify.
    BadSignature,
    /// `now` is after `not_after`.
    Expired,
    /// `now` is before `not_before`.
    NotYetValid,
    /// The certificate is for a different identity than the one expected.
    WrongIdentity,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertError::Malformed => "malformed certificate",
            CertError::UnknownCa => "certificate signed by an unknown CA",
            CertError::BadSignature => "certificate signature does not verify",
            CertError::Expired => "certificate expired",
            CertError::NotYetValid => "certificate not yet valid",
            CertError::WrongIdentity => "certificate is for another identity",
        })
    }
}

impl core::error::Error for CertError {}

/// Checks a public key's bytes: a valid curve point and not of small order ("weak"), since a
/// weak key admits signatures that verify for almost any message.
fn verifying_key(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<VerifyingKey, CryptoError> {
    match VerifyingKey::from_bytes(bytes) {
        Ok(k) if !k.is_weak() => Ok(k),
        _ => Err(CryptoError::InvalidKey),
    }
}

/// A fresh signing key from the core's RNG; the seed buffer is wiped afterwards.
fn generate_signing_key(rng: &mut Rng) -> SigningKey {
    let mut seed = Zeroizing::new([0u8; SECRET_KEY_LEN]);
    rng.fill(&mut seed[..]);
    SigningKey::from_bytes(&seed)
}

/// Parses `<prefix><hex of N bytes>` after trimming whitespace, into a wiped buffer.
fn parse_text<const N: usize>(s: &str, prefix: &str) -> Option<Zeroizing<[u8; N]>> {
    let hex_part = s.trim().strip_prefix(prefix)?;
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_into(hex_part, &mut out[..])?;
    Some(out)
}

/// `<prefix><hex>` in a buffer that is wiped on drop.
fn secret_text(prefix: &str, bytes: &[u8]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(prefix.len() + 2 * bytes.len()));
    s.push_str(prefix);
    // Writing into a String cannot fail, and the capacity avoids a reallocation that would
    // leave an unwiped copy behind.
    hex::write(&mut *s, bytes).expect("write to String");
    s
}

/// The 8-byte id of a CA key: the first 8 bytes of SHA-256 of its public key.
///
/// Only a lookup hint: a certificate is accepted because the CA's signature verifies, not
/// because the id matches.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of the CA public key `public`.
    pub fn of(public: &[u8; PUBLIC_KEY_LEN]) -> KeyId {
        let digest = Sha256::digest(public);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, &self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The public half of an application CA key: what peers trust.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl CaPublicKey {
    /// Checks `bytes` is a usable Ed25519 public key ([`CryptoError::InvalidKey`] if not).
    pub fn from_bytes(bytes: &[u8; PUBLIC_KEY_LEN]) -> Result<CaPublicKey, CryptoError> {
        Ok(CaPublicKey { key: verifying_key(bytes)?, id: KeyId::of(bytes) })
    }

    /// The 32-byte public key.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.to_bytes()
    }

    /// The key id certificates refer to this CA by.
    pub fn key_id(&self) -> KeyId {
        self.id
    }
}

impl fmt::Display for CaPublicKey {
    /// `lanewire-ca-pub:<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_CA_PUB)?;
        hex::write(f, self.key.as_bytes())
    }
}

impl fmt::Debug for CaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaPublicKey({})", self.id)
    }
}

impl FromStr for CaPublicKey {
    type Err = CryptoError;

    /// Parses `lanewire-ca-pub:<hex>`.
    fn from_str(s: &str) -> Result<CaPublicKey, CryptoError> {
        let bytes = parse_text::<PUBLIC_KEY_LEN>(s, TEXT_CA_PUB).ok_or(CryptoError::Malformed)?;
        CaPublicKey::from_bytes(&bytes)
    }
}

/// An application certificate authority's Ed25519 signing key. Wiped on drop.
pub struct CaKey {
    key: SigningKey,
    public: CaPublicKey,
}

impl CaKey {
    /// A fresh CA key from the core's RNG. A CA key lives for years: seed that RNG from the
    /// operating system, never from a test seed.
    pub fn generate(rng: &mut Rng) -> CaKey {
        Self::from_signing_key(generate_signing_key(rng))
    }

    /// The CA key with 32-byte secret (seed) `secret`.
    pub fn from_bytes(secret: &[u8; SECRET_KEY_LEN]) -> CaKey {
        Self::from_signing_key(SigningKey::from_bytes(secret))
    }

    fn from_signing_key(key: SigningKey) -> CaKey {
        let public = key.verifying_key();
        CaKey { key, public: CaPublicKey { key: public, id: KeyId::of(public.as_bytes()) } }
    }

    /// The 32-byte secret, in a buffer wiped on drop. Keep it offline.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key to distribute to peers.
    pub fn public(&self) -> CaPublicKey {
        self.public
    }

    /// The key id of [`public`](Self::public).
    pub fn key_id(&self) -> KeyId {
        self.public.id
    }

    /// `lanewire-ca-key:<hex>`, in a buffer wiped on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        secret_text(TEXT_CA_KEY, &self.to_bytes()[..])
    }

    /// Issues a certificate binding `identity` to the Ed25519 public key `subject` for unix
    /// seconds `not_before..=not_after`.
    ///
    /// [`CertError::Malformed`] if `identity` is [`Identity::Invalid`], the window is empty
    /// (`not_before > not_after`) or `subject` is not a usable public key.
    pub fn issue(
        &self,
        identity: &Identity,
        subject: &[u8; PUBLIC_KEY_LEN],
        not_before: u64,
        not_after: u64,
    ) -> Result<Certificate, CertError> {
        if !identity.is_valid() || not_before > not_after || verifying_key(subject).is_err() {
            return Err(CertError::Malformed);
        }
        let mut cert = Certificate {
            identity: *identity,
            public_key: *subject,
            not_before,
            not_after,
            ca_key_id: self.key_id(),
            signature: [0; SIGNATURE_LEN],
        };
        let (msg, len) = cert.signed_message();
        cert.signature = self.key.sign(&msg[..len]).to_bytes();
        Ok(cert)
    }
}

impl fmt::Debug for CaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaKey({})", self.public.id)
    }
}

impl FromStr for CaKey {
    type Err = CryptoError;

    /// Parses `lanewire-ca-key:<hex>`.
    fn from_str(s: &str) -> Result<CaKey, CryptoError> {
        let bytes = parse_text::<SECRET_KEY_LEN>(s, TEXT_CA_KEY).ok_or(CryptoError::Malformed)?;
        Ok(CaKey::from_bytes(&bytes))
    }
}

/// A peer's own long-term Ed25519 key, the one its certificate vouches for. Wiped on drop.
pub struct IdentityKey {
    key: SigningKey,
}

impl IdentityKey {
    /// A fresh identity key from the core's RNG.
    pub fn generate(rng: &mut Rng) -> IdentityKey {
        IdentityKey { key: generate_signing_key(rng) }
    }

    /// The identity key with 32-byte secret (seed) `secret`.
    pub fn from_bytes(secret: &[u8; SECRET_KEY_LEN]) -> IdentityKey {
        IdentityKey { key: SigningKey::from_bytes(secret) }
    }

    /// The 32-byte secret, in a buffer wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The public key, to put in a certificate.
    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// An Ed25519 signature over `msg` (deterministic, RFC 8032). Prefix `msg` with a label
    /// naming what is being signed, so the signature cannot be reused in another context.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(msg).to_bytes()
    }

    /// `lanewire-identity-key:<hex>`, in a buffer wiped on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        secret_text(TEXT_IDENTITY_KEY, &self.to_bytes()[..])
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityKey(")?;
        hex::write(f, &self.public()[..4])?;
        f.write_str("..)")
    }
}

impl FromStr for IdentityKey {
    type Err = CryptoError;

    /// Parses `lanewire-identity-key:<hex>`.
    fn from_str(s: &str) -> Result<IdentityKey, CryptoError> {
        let bytes =
            parse_text::<SECRET_KEY_LEN>(s, TEXT_IDENTITY_KEY).ok_or(CryptoError::Malformed)?;
        Ok(IdentityKey::from_bytes(&bytes))
    }
}

/// The CA public keys this endpoint trusts.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    cas: Vec<CaPublicKey>,
}

impl TrustStore {
    /// An empty store (trusts nothing).
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Trusts `ca` for every identity. Adding a key twice is harmless.
    pub fn add_ca(&mut self, ca: CaPublicKey) {
        if !self.cas.contains(&ca) {
            self.cas.push(ca);
        }
    }

    /// Stops trusting the CA with id `id`; returns whether there was one.
    pub fn remove_ca(&mut self, id: KeyId) -> bool {
        let before = self.cas.len();
        self.cas.retain(|ca| ca.id != id);
        self.cas.len() != before
    }

    /// Whether a CA with id `id` is trusted.
    pub fn contains(&self, id: KeyId) -> bool {
        self.cas.iter().any(|ca| ca.id == id)
    }

    /// True when no CA is trusted.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }
}

/// A CA's statement that an [`Identity`] owns an Ed25519 public key for a time window.
///
/// Made by [`CaKey::issue`], [`Certificate::decode`] or parsing its text form; the fields are
/// read-only so every certificate in memory is well-formed (though not necessarily trusted:
/// that is what [`verify`](Self::verify) decides).
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    identity: Identity,
    public_key: [u8; PUBLIC_KEY_LEN],
    not_before: u64,
    not_after: u64,
    ca_key_id: KeyId,
    signature: [u8; SIGNATURE_LEN],
}

const BODY_FIXED_LEN: usize = 1 + 8 + 8 + 8 + PUBLIC_KEY_LEN;
const MAX_BODY_LEN: usize = BODY_FIXED_LEN + Identity::MAX_ENCODED_LEN;

impl Certificate {
    /// Longest binary encoding, in bytes.
    pub const MAX_ENCODED_LEN: usize = MAX_BODY_LEN + SIGNATURE_LEN;

    /// The identity the certificate vouches for (never [`Identity::Invalid`]).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The subject's Ed25519 public key: handshake signatures must verify under it.
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public_key
    }

    /// First valid second (unix time, inclusive).
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// Last valid second (unix time, inclusive).
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Id of the CA key that signed it.
    pub fn ca_key_id(&self) -> KeyId {
        self.ca_key_id
    }

    /// The CA's signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The body (everything but the signature) in a fixed buffer, and its length.
    fn body(&self) -> ([u8; MAX_BODY_LEN], usize) {
        let mut b = [0u8; MAX_BODY_LEN];
        b[0] = CERT_VERSION;
        b[1..9].copy_from_slice(&self.ca_key_id.0);
        b[9..17].copy_from_slice(&self.not_before.to_be_bytes());
        b[17..25].copy_from_slice(&self.not_after.to_be_bytes());
        b[25..BODY_FIXED_LEN].copy_from_slice(&self.public_key);
        let (id, id_len) = self.identity.encode_array();
        b[BODY_FIXED_LEN..BODY_FIXED_LEN + id_len].copy_from_slice(&id[..id_len]);
        (b, BODY_FIXED_LEN + id_len)
    }

    /// What the CA signs: the context label and the body.
    fn signed_message(&self) -> ([u8; CERT_SIGNING_CONTEXT.len() + MAX_BODY_LEN], usize) {
        let mut m = [0u8; CERT_SIGNING_CONTEXT.len() + MAX_BODY_LEN];
        m[..CERT_SIGNING_CONTEXT.len()].copy_from_slice(CERT_SIGNING_CONTEXT);
        let (body, len) = self.body();
        m[CERT_SIGNING_CONTEXT.len()..][..len].copy_from_slice(&body[..len]);
        (m, CERT_SIGNING_CONTEXT.len() + len)
    }

    /// Length of the binary encoding, in bytes.
    pub fn encoded_len(&self) -> usize {
        BODY_FIXED_LEN + self.identity.encoded_len() + SIGNATURE_LEN
    }

    /// Appends the binary encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (body, len) = self.body();
        out.extend_from_slice(&body[..len]);
        out.extend_from_slice(&self.signature);
    }

    /// Decodes one certificate from the front of `input`; returns it and the bytes consumed.
    /// Reads at most [`MAX_ENCODED_LEN`](Self::MAX_ENCODED_LEN) bytes and checks only form
    /// ([`CertError::Malformed`]); trust is [`verify`](Self::verify)'s job.
    pub fn decode(input: &[u8]) -> Result<(Certificate, usize), CertError> {
        let fixed = input.get(..BODY_FIXED_LEN).ok_or(CertError::Malformed)?;
        if fixed[0] != CERT_VERSION {
            return Err(CertError::Malformed);
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut ca_key_id = [0u8; 8];
        ca_key_id.copy_from_slice(&fixed[1..9]);
        let (not_before, not_after) = (u64_at(9), u64_at(17));
        let mut public_key = [0u8; PUBLIC_KEY_LEN];
        public_key.copy_from_slice(&fixed[25..BODY_FIXED_LEN]);

        let (identity, id_len) =
            Identity::decode(&input[BODY_FIXED_LEN..]).map_err(|_| CertError::Malformed)?;
        let sig_at = BODY_FIXED_LEN + id_len;
        let sig = input.get(sig_at..sig_at + SIGNATURE_LEN).ok_or(CertError::Malformed)?;
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(sig);

        if !identity.is_valid() || not_before > not_after || verifying_key(&public_key).is_err() {
            return Err(CertError::Malformed);
        }
        let cert = Certificate {
            identity,
            public_key,
            not_before,
            not_after,
            ca_key_id: KeyId(ca_key_id),
            signature,
        };
        Ok((cert, sig_at + SIGNATURE_LEN))
    }

    /// Decides whether to believe the certificate at unix time `now_unix_secs`: signed by a
    /// CA in `trust`, inside its validity window (both ends inclusive) and, if
    /// `expected_identity` is given, issued to that identity. Checks run in that order, so
    /// the error names the first problem. Allocates nothing.
    ///
    /// The core has no wall clock: the driver passes `now_unix_secs`. Allow for clock skew
    /// when issuing (start `not_before` a little in the past), not here.
    pub fn verify(
        &self,
        trust: &TrustStore,
        now_unix_secs: u64,
        expected_identity: Option<&Identity>,
    ) -> Result<(), CertError> {
        let (msg, len) = self.signed_message();
        let signature = Signature::from_bytes(&self.signature);
        let mut known = false;
        let mut signed = false;
        // Ids are 64-bit hints; should two trusted CAs ever share one, try each.
        for ca in trust.cas.iter().filter(|ca| ca.id == self.ca_key_id) {
            known = true;
            if ca.key.verify_strict(&msg[..len], &signature).is_ok() {
                signed = true;
                break;
            }
        }
        if !known {
            return Err(CertError::UnknownCa);
        }
        if !signed {
            return Err(CertError::BadSignature);
        }
        if now_unix_secs < self.not_before {
            return Err(CertError::NotYetValid);
        }
        if now_unix_secs > self.not_after {
            return Err(CertError::Expired);
        }
        match expected_identity {
            Some(expected) if *expected != self.identity => Err(CertError::WrongIdentity),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Certificate {
    /// `lanewire-cert:<hex of the binary encoding>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_CERT)?;
        let (body, len) = self.body();
        hex::write(f, &body[..len])?;
        hex::write(f, &self.signature)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("identity", &self.identity)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("ca_key_id", &self.ca_key_id)
            .finish_non_exhaustive()
    }
}

impl FromStr for Certificate {
    type Err = CertError;

    /// Parses `lanewire-cert:<hex>`; the bytes must be exactly one certificate.
    fn from_str(s: &str) -> Result<Certificate, CertError> {
        let hex_part = s.trim().strip_prefix(TEXT_CERT).ok_or(CertError::Malformed)?;
        if hex_part.len() > 2 * Certificate::MAX_ENCODED_LEN {
            return Err(CertError::Malformed);
        }
        let bytes = hex::decode_vec(hex_part).ok_or(CertError::Malformed)?;
        match Certificate::decode(&bytes)? {
            (cert, used) if used == bytes.len() => Ok(cert),
            _ => Err(CertError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_750_000_000;

    struct Fixture {
        ca: CaKey,
        trust: TrustStore,
        peer: IdentityKey,
        identity: Identity,
        cert: Certificate,
    }

    fn fixture() -> Fixture {
        let mut rng = Rng::seeded(42);
        let ca = CaKey::generate(&mut rng);
        let peer = IdentityKey::generate(&mut rng);
        let identity = Identity::string("server-eu-1").unwrap();
        let cert = ca.issue(&identity, &peer.public(), T0, T0 + 3600).unwrap();
        let mut trust = TrustStore::new();
        trust.add_ca(ca.public());
        Fixture { ca, trust, peer, identity, cert }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn issue_and_verify() {
        let f = fixture();
        assert_eq!(f.cert.identity(), &f.identity);
        assert_eq!(f.cert.public_key(), &f.peer.public());
        assert_eq!((f.cert.not_before(), f.cert.not_after()), (T0, T0 + 3600));
        assert_eq!(f.cert.ca_key_id(), f.ca.key_id());
        assert_eq!(f.cert.verify(&f.trust, T0, Some(&f.identity)), Ok(()));
        assert_eq!(f.cert.verify(&f.trust, T0 + 3600, None), Ok(()));
        assert_eq!(f.cert.verify(&f.trust, T0 - 1, None), Err(CertError::NotYetValid));
        assert_eq!(f.cert.verify(&f.trust, T0 + 3601, None), Err(CertError::Expired));
        let other = Identity::string("server-eu-2").unwrap();
        assert_eq!(f.cert.verify(&f.trust, T0, Some(&other)), Err(CertError::WrongIdentity));
        assert_eq!(f.cert.verify(&TrustStore::new(), T0, None), Err(CertError::UnknownCa));
        // The handshake check: a share signed with the certified key verifies under it.
        let sig = f.peer.sign(b"lanewire v1 key share|share bytes");
        assert_eq!(
            super::super::verify_signature(
                f.cert.public_key(),
                b"lanewire v1 key share|share bytes",
                &sig
            ),
            Ok(())
        );
        // Same seed, same keys and certificate: deterministic under the core's RNG.
        assert_eq!(fixture().cert, f.cert);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn other_ca_and_forgeries_fail() {
        let f = fixture();
        let mut rng = Rng::seeded(43);
        let rogue = CaKey::generate(&mut rng);
        let forged = rogue.issue(&f.identity, &f.peer.public(), T0, T0 + 3600).unwrap();
        assert_eq!(forged.verify(&f.trust, T0, None), Err(CertError::UnknownCa));

        // A rogue certificate claiming the trusted CA's key id fails on the signature.
        let mut bytes = Vec::new();
        forged.encode(&mut bytes);
        bytes[1..9].copy_from_slice(&f.ca.key_id().0);
        let (relabelled, _) = Certificate::decode(&bytes).unwrap();
        assert_eq!(relabelled.verify(&f.trust, T0, None), Err(CertError::BadSignature));

        // Flipping a bit in any byte of a genuine certificate never yields one that verifies
        // (one bit per byte, rotating, to keep debug-build signature checks few).
        let mut good = Vec::new();
        f.cert.encode(&mut good);
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 1 << (i % 8);
            if let Ok((c, _)) = Certificate::decode(&b) {
                assert!(c.verify(&f.trust, T0, None).is_err(), "byte {i}");
            }
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn trust_store_add_remove() {
        let f = fixture();
        let mut trust = f.trust.clone();
        assert!(!trust.is_empty());
        assert!(trust.contains(f.ca.key_id()));
        trust.add_ca(f.ca.public());
        assert!(trust.remove_ca(f.ca.key_id()));
        assert!(!trust.remove_ca(f.ca.key_id()));
        assert!(trust.is_empty());
        assert_eq!(f.cert.verify(&trust, T0, None), Err(CertError::UnknownCa));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn issue_refuses_bad_requests() {
        let f = fixture();
        let pk = f.peer.public();
        assert_eq!(f.ca.issue(&Identity::Invalid, &pk, T0, T0).err(), Some(CertError::Malformed));
        assert_eq!(f.ca.issue(&f.identity, &pk, T0 + 1, T0).err(), Some(CertError::Malformed));
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert_eq!(f.ca.issue(&f.identity, &weak, T0, T0).err(), Some(CertError::Malformed));
        // A one-second window is fine.
        assert!(f.ca.issue(&f.identity, &pk, T0, T0).is_ok());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn binary_round_trip_and_hostile_input() {
        let f = fixture();
        let mut bytes = vec![];
        f.cert.encode(&mut bytes);
        assert_eq!(bytes.len(), f.cert.encoded_len());
        assert!(bytes.len() <= Certificate::MAX_ENCODED_LEN);
        bytes.extend_from_slice(b"next message");
        let (back, used) = Certificate::decode(&bytes).unwrap();
        assert_eq!(back, f.cert);
        assert_eq!(used, f.cert.encoded_len());

        // Every truncation fails cleanly.
        for len in 0..used {
            assert_eq!(Certificate::decode(&bytes[..len]), Err(CertError::Malformed));
        }
        let good = bytes[..used].to_vec();
        let corrupt = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            Certificate::decode(&b).map(|_| ())
        };
        assert_eq!(corrupt(0, 2), Err(CertError::Malformed), "unknown version");
        // Window with not_before > not_after.
        assert_eq!(corrupt(9, 0xff), Err(CertError::Malformed));
        // Identity kind 0 (invalid) and an unknown kind.
        assert_eq!(corrupt(BODY_FIXED_LEN, 0), Err(CertError::Malformed));
        assert_eq!(corrupt(BODY_FIXED_LEN, 99), Err(CertError::Malformed));
        // Subject key replaced by a small-order point.
        let mut b = good.clone();
        b[25..57].fill(0);
        b[25] = 1;
        assert_eq!(Certificate::decode(&b).map(|_| ()), Err(CertError::Malformed));

        // Random noise, and noise behind a valid header, never panics.
        let mut rng = Rng::seeded(5);
        let mut noise = [0u8; Certificate::MAX_ENCODED_LEN + 8];
        for i in 0..3000 {
            rng.fill(&mut noise);
            if i % 2 == 0 {
                noise[..BODY_FIXED_LEN].copy_from_slice(&good[..BODY_FIXED_LEN]);
            }
            let len = i % noise.len();
            if let Ok((c, used)) = Certificate::decode(&noise[..len]) {
                let mut out = Vec::new();
                c.encode(&mut out);
                assert_eq!(out, &noise[..used], "decoding is canonical");
                let _ = c.verify(&f.trust, T0, Some(&f.identity));
            }
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn text_forms_round_trip() {
        let f = fixture();
        let ca_text = f.ca.to_text();
        assert!(ca_text.starts_with("lanewire-ca-key:"));
        assert_eq!(ca_text.len(), "lanewire-ca-key:".len() + 64);
        let ca2: CaKey = ca_text.parse().unwrap();
        assert_eq!(ca2.public(), f.ca.public());
        assert_eq!(*ca2.to_bytes(), *f.ca.to_bytes());

        let pub_text = f.ca.public().to_string();
        assert!(pub_text.starts_with("lanewire-ca-pub:"));
        assert_eq!(pub_text.parse::<CaPublicKey>().unwrap(), f.ca.public());
        assert_eq!(
            CaPublicKey::from_bytes(&f.ca.public().to_bytes()).unwrap().key_id(),
            f.ca.key_id()
        );

        let key_text = f.peer.to_text();
        assert!(key_text.starts_with("lanewire-identity-key:"));
        let peer2: IdentityKey = key_text.parse().unwrap();
        assert_eq!(peer2.public(), f.peer.public());

        let cert_text = f.cert.to_string();
        assert!(cert_text.starts_with("lanewire-cert:"));
        assert_eq!(cert_text.parse::<Certificate>().unwrap(), f.cert);
        // As read back from a file: trailing newline, leading spaces.
        assert_eq!(format!("  {cert_text}\n").parse::<Certificate>().unwrap(), f.cert);
        assert_eq!(format!("{pub_text}\r\n").parse::<CaPublicKey>().unwrap(), f.ca.public());

        // Wrong prefixes, bad hex, wrong lengths, trailing bytes.
        let ca_hex = &ca_text["lanewire-ca-key:".len()..];
        for bad in [
            format!("lanewire-identity-key:{ca_hex}"),
            format!("lanewire-ca-key:{}", &ca_hex[2..]),
            format!("lanewire-ca-key:{ca_hex}00"),
            format!("lanewire-ca-key:{}zz", &ca_hex[2..]),
            String::from("lanewire-ca-key:"),
            ca_hex.to_string(),
        ] {
            assert_eq!(bad.parse::<CaKey>().err(), Some(CryptoError::Malformed), "{bad}");
        }
        // y = 2 is not the y-coordinate of any curve point.
        let off_curve = format!("lanewire-ca-pub:02{}", "00".repeat(31));
        assert_eq!(off_curve.parse::<CaPublicKey>().err(), Some(CryptoError::InvalidKey));
        assert_eq!(format!("{cert_text}00").parse::<Certificate>(), Err(CertError::Malformed));
        assert_eq!(format!("{cert_text}0").parse::<Certificate>(), Err(CertError::Malformed));
        assert_eq!(
            cert_text.replace("lanewire-cert:", "lanewire-crt:").parse::<Certificate>(),
            Err(CertError::Malformed)
        );
        let huge = format!("lanewire-cert:{}", "00".repeat(10_000));
        assert_eq!(huge.parse::<Certificate>(), Err(CertError::Malformed));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn debug_never_prints_secrets() {
        let f = fixture();
        let secret_hex = f.ca.to_text()["lanewire-ca-key:".len()..].to_string();
        let dbg = format!("{:?} {:?} {:?}", f.ca, f.peer, f.cert);
        assert!(!dbg.contains(&secret_hex[..16]));
        let peer_hex = f.peer.to_text()["lanewire-identity-key:".len()..].to_string();
        assert!(!dbg.contains(&peer_hex[..16]));
    }
}
