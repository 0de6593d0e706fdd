//! Cryptographic building blocks for the handshake and for packet protection.
//!
//! Sans-IO like the rest of the core: no clock (certificate checks take the time as an
//! argument), no OS entropy (every key is drawn from the core's seeded [`Rng`](crate::rng::Rng),
//! so a simulated run is reproducible), and nothing on the per-packet path allocates.
//! Everything is pure Rust (RustCrypto and dalek crates) and builds for
//! `wasm32-unknown-unknown`.
//!
//! The pieces, in the order a handshake uses them (the GNS design of gns-notes 4.7, with an
//! AAD-covered header and a transcript hash as the modern touches):
//!
//! * [`KeyShare`]: an ephemeral X25519 key pair per connection; low-order peer shares are
//!   refused.
//! * [`Transcript`]: SHA-256 over every handshake message.
//! * [`derive_session_keys`]: HKDF-SHA256 from the shared secret, bound to the transcript, both
//!   connection ids, the cipher and the label [`PROTOCOL_LABEL`], into [`SessionKeys`].
//! * [`PacketKey`]: per-packet AEAD, nonce = IV XOR packet number, header as AAD.
//! * [`IdentityKey`], [`CaKey`], [`Certificate`], [`TrustStore`], [`verify_signature`]:
//!   optional authentication, an application CA vouching for each peer's Ed25519 key.
//!
//! # Cipher choice: AES-256-GCM
//!
//! Measured on the x86_64 build machine (AMD EPYC with AES-NI, PCLMULQDQ, AVX2 and VAES), in a
//! release build with no `target-cpu` flags: seal + open of one packet with a 12-byte AAD,
//! through [`PacketKey`] for aes-gcm 0.11.1 and through the same in-place API for
//! chacha20poly1305 0.11.0. The VM's 2 cores are shared (load average 3 to 8 during the runs),
//! so each figure is the fastest of 40 batches, best run of five; single runs were up to 2x
//! slower, but the ratio held in every run.
//!
//! | payload | AES-256-GCM | ChaCha20-Poly1305 |
//! |--------:|------------:|------------------:|
//! |   64 B  |      310 ns |           3,600 ns |
//! | 1200 B  |    1,400 ns |           5,700 ns |
//!
//! ChaCha20-Poly1305 pays a fixed ~3.5 µs per packet here: its AVX2 backends (chacha20 0.10,
//! poly1305 0.9) are selected at run time and their intrinsics do not inline without
//! `target-cpu`; with `-C target-cpu=x86-64-v3` it improves to ~1,050 / ~3,700 ns, still
//! behind AES-GCM (~290 / ~1,600 ns). Game servers and PCs are x86_64 with AES-NI, consoles
//! too, and nearly all ARMv8 phones have the crypto extensions the `aes` and `polyval` crates
//! detect at run time, so AES-256-GCM is faster where our packets are actually sealed. It is
//! also what GNS uses (cipher code 2). Without AES instructions (wasm32, old ARM) the crates
//! fall back to constant-time software that is several times slower than ChaCha20 would be;
//! in the browser DTLS already protects the data channel, so that path matters little.
//!
//! Natively the AES-256-GCM code is `ring`'s assembly rather than the `aes-gcm` crate measured
//! above: it interleaves AES and GHASH and measured 2.9 GB/s per direction for 1280-byte
//! packets on a loaded machine (seal + open 891 ns), which lifted the core's encrypted bulk
//! benchmark from 0.46 to 0.62 GB/s per core. The `aes-gcm` crate remains the wasm32 backend. The cost is a usage limit, [`Cipher::packet_limit`] (2^28 packets per key),
//! that the connection layer must respect; ChaCha20-Poly1305 can be added later as cipher code 3
//! if a target without AES instructions matters.
//!
//! # Without the `crypto` feature
//!
//! Only what the handshake and the packet path need to run with [`Cipher::Null`] remains:
//! [`Cipher`], [`PacketKey`] and [`SessionKeys`] (which then seal and open without changing a
//! byte), [`CryptoError`] and the length constants. The key exchange, the AEAD, certificates,
//! the trust store and [`verify_signature`] do not exist, so a program that needs them does not
//! compile rather than silently skipping a check. Such a core negotiates the null cipher only
//! (on transports marked encrypted, see
//! [`Endpoint::set_transport_encrypted`](crate::Endpoint::set_transport_encrypted)), and a
//! connection that would need its own encryption fails with
//! [`EndReason::REMOTE_BAD_CRYPT`](crate::EndReason::REMOTE_BAD_CRYPT).
//!
//! # Not covered here
//!
//! Certificate chains (intermediates), app-id or data-center scoping, revocation and key
//! updates within a connection.

// The text above describes the full module; without `crypto` some of its links have no target.
#![cfg_attr(
    not(feature = "crypto"),
    allow(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)
)]

mod aead;
#[cfg(feature = "crypto")]
mod cert;
pub(crate) mod hex;
#[cfg(all(test, feature = "crypto"))]
mod kat;
#[cfg(feature = "crypto")]
mod kx;

pub use aead::{Cipher, IV_LEN, KEY_LEN, PacketKey, SessionKeys, TAG_LEN};
#[cfg(feature = "crypto")]
pub use cert::{
    CaKey, CaPublicKey, CertError, Certificate, IdentityKey, KeyId, PUBLIC_KEY_LEN, SECRET_KEY_LEN,
    SIGNATURE_LEN, TrustStore,
};
#[cfg(feature = "crypto")]
pub use kx::derive_session_keys;
#[cfg(feature = "crypto")]
pub use kx::{KEY_SHARE_LEN, KeyShare, PROTOCOL_LABEL, Role, SharedSecret, Transcript};

/// Length of an X25519 public key share, in bytes (the handshake's wire format).
#[cfg(not(feature = "crypto"))]
pub const KEY_SHARE_LEN: usize = 32;

/// Without the `crypto` feature no CA can be trusted: the handshake's stand-in for the trust
/// store, always empty (a peer's certificate is never checked, see
/// [`handshake`](crate::handshake)).
#[cfg(not(feature = "crypto"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustStore;

#[cfg(not(feature = "crypto"))]
impl TrustStore {
    /// The empty store.
    pub(crate) fn new() -> TrustStore {
        TrustStore
    }
}

use core::fmt;
#[cfg(feature = "crypto")]
use ed25519_dalek::Signature;

/// Why a cryptographic operation failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CryptoError {
    /// A packet did not authenticate: wrong key, wrong packet number, or a changed header,
    /// payload or tag. Drop the packet and count it.
    Decrypt,
    /// The peer's X25519 share has small order, so the shared secret would be all zeros.
    NonContributory,
    /// Bytes that should be an Ed25519 public key are not a point on the curve, or are a
    /// small-order ("weak") point.
    InvalidKey,
    /// A signature does not verify under the given public key.
    BadSignature,
    /// A text form could not be parsed (wrong prefix, bad hex, wrong length).
    Malformed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::Decrypt => "packet failed authentication",
            CryptoError::NonContributory => "peer key share has small order",
            CryptoError::InvalidKey => "invalid public key",
            CryptoError::BadSignature => "signature does not verify",
            CryptoError::Malformed => "malformed key text",
        })
    }
}

impl core::error::Error for CryptoError {}

/// Checks an Ed25519 signature `sig` over `msg` under `public` (for example a handshake key
/// share signed with the key in the peer's [`Certificate`]).
///
/// Uses the strict RFC 8032 checks (canonical `S`, no small-order `R` or key), so a signature
/// has exactly one valid encoding. [`CryptoError::InvalidKey`] if `public` is unusable,
/// [`CryptoError::BadSignature`] if the signature does not verify.
#[cfg(feature = "crypto")]
pub fn verify_signature(
    public: &[u8; PUBLIC_KEY_LEN],
    msg: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public).map_err(|_| CryptoError::InvalidKey)?;
    if key.is_weak() {
        return Err(CryptoError::InvalidKey);
    }
    key.verify_strict(msg, &Signature::from_bytes(sig)).map_err(|_| CryptoError::BadSignature)
}
