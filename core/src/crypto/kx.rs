//! Ephemeral key exchange and session key derivation.
//!
//! Each side of a handshake makes a fresh X25519 [`KeyShare`], sends its public half, and
//! combines its secret half with the peer's public half into a [`SharedSecret`]. Both sides
//! hash every handshake byte they exchanged into a [`Transcript`], then
//! [`derive_session_keys`] turns secret + transcript + connection ids into the two
//! [`PacketKey`]s. Anything an attacker changes in the handshake changes the transcript hash on
//! one side only, so the keys differ and the first packet fails to open.
//!
//! Derivation (HKDF-SHA256, RFC 5869):
//!
//! ```text
//! PRK = HKDF-Extract(salt = transcript hash (32 B), IKM = X25519 shared secret (32 B))
//! OKM = HKDF-Expand(PRK, info, 88 B)
//! info = "lanewire v1 session keys" || cipher code (1 B)
//!        || client connection id (4 B, big-endian) || server connection id (4 B, big-endian)
//! OKM  = client key (32) || server key (32) || client IV (12) || server IV (12)
//! ```
//!
//! Key updates (in the manner of RFC 9001 section 6) derive every later generation from a
//! per-direction update secret:
//!
//! ```text
//! secrets = HKDF-Expand(PRK, "lanewire v1 key update" || cipher code || client id || server id, 64 B)
//!         = client secret (32) || server secret (32)
//! secret[n+1] = HKDF-Expand(PRK = secret[n], "lanewire ku", 32 B)
//! key[n+1]    = HKDF-Expand(PRK = secret[n+1], "lanewire key", 32 B)
//! IV[n+1]     = HKDF-Expand(PRK = secret[n+1], "lanewire iv", 12 B)
//! ```
//!
//! Generation 0 is the keys above; old keys cannot be computed from new ones.
//!
//! "Client" is the side that sent the first handshake packet. The client seals with the client
//! key and IV and opens with the server's; the server the other way round. Unlike GNS, which
//! mixes both certificates and signed crypt infos into the expand context, we take one
//! transcript hash: the handshake hashes exactly the bytes it sent and received, in order.

use core::fmt;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::Zeroizing;

use super::CryptoError;
use super::aead::{Cipher, IV_LEN, KEY_LEN, PacketKey, SessionKeys};
use crate::rng::Rng;

/// The protocol label bound into every derived key. A future incompatible handshake changes it.
pub const PROTOCOL_LABEL: &[u8] = b"lanewire v1";

/// Length of an X25519 public key share, in bytes.
pub const KEY_SHARE_LEN: usize = 32;

/// Which end of the connection we are; picks which derived key seals and which opens.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that initiated the connection.
    Client,
    /// The side that accepted it.
    Server,
}

/// One side's ephemeral X25519 key pair for a single handshake.
///
/// The secret half is wiped when the share is dropped or consumed by
/// [`diffie_hellman`](Self::diffie_hellman); it can be used exactly once.
pub struct KeyShare {
    secret: EphemeralSecret,
    public: PublicKey,
}

impl KeyShare {
    /// A fresh key pair drawn from the core's seeded RNG.
    pub fn generate(rng: &mut Rng) -> KeyShare {
        Self::generate_from(rng.as_rand_core())
    }

    pub(super) fn generate_from<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> KeyShare {
        let secret = EphemeralSecret::random_from_rng(rng);
        let public = PublicKey::from(&secret);
        KeyShare { secret, public }
    }

    /// The public half, to send to the peer.
    pub fn public(&self) -> [u8; KEY_SHARE_LEN] {
        self.public.to_bytes()
    }

    /// Combines our secret with the peer's public share.
    ///
    /// Fails with [`CryptoError::NonContributory`] when the result is all zeros, which happens
    /// exactly when the peer sent a low-order point (for example all zeros): an attacker in the
    /// middle could otherwise force both sides onto a key everyone knows.
    pub fn diffie_hellman(self, peer: &[u8; KEY_SHARE_LEN]) -> Result<SharedSecret, CryptoError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*peer));
        if shared.was_contributory() {
            Ok(SharedSecret(shared))
        } else {
            Err(CryptoError::NonContributory)
        }
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare").field("public", &self.public.as_bytes()).finish_non_exhaustive()
    }
}

/// The result of an X25519 exchange. Wiped on drop; only [`derive_session_keys`] reads it.
pub struct SharedSecret(x25519_dalek::SharedSecret);

impl SharedSecret {
    #[cfg(test)]
    pub(super) fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// A running SHA-256 over the handshake messages, in the order they were sent.
///
/// Both sides must feed byte-identical input: the handshake should hash each message exactly as
/// it appeared on the wire (or a canonical re-encoding), including both key shares, both
/// certificates and the cipher offer and choice.
#[derive(Clone, Default)]
pub struct Transcript {
    hasher: Sha256,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// Appends `bytes` as they are. Only for self-delimiting encodings; otherwise use
    /// [`update_framed`](Self::update_framed) so message boundaries stay unambiguous.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Appends one message framed by its length (4 bytes, big-endian) so that, say, `"ab"`
    /// then `"c"` and `"a"` then `"bc"` hash differently.
    pub fn update_framed(&mut self, message: &[u8]) {
        // Handshake messages are single datagrams, far below 4 GiB.
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        self.hasher.update(len.to_be_bytes());
        self.hasher.update(message);
    }

    /// The hash of everything so far. The transcript can keep growing afterwards.
    pub fn hash(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transcript(..)")
    }
}

const KEYS_INFO_LABEL: &[u8] = b" session keys";
const UPDATE_INFO_LABEL: &[u8] = b" key update";

/// Derives the next generation of one direction's keys from its update `secret`: the next
/// secret, and the packet key made from it. See the module docs.
pub(crate) fn next_generation(
    secret: &[u8; 32],
    cipher: Cipher,
) -> (Zeroizing<[u8; 32]>, PacketKey) {
    // A 32-byte PRK is HKDF-SHA256's hash length: `from_prk` accepts it, and the outputs below
    // are far within the 255 * 32 byte limit, so these cannot fail.
    let hk = Hkdf::<Sha256>::from_prk(secret).expect("32-byte PRK");
    let mut next = Zeroizing::new([0u8; 32]);
    hk.expand(b"lanewire ku", &mut next[..]).expect("32 bytes");
    let hk = Hkdf::<Sha256>::from_prk(&next[..]).expect("32-byte PRK");
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let mut iv = Zeroizing::new([0u8; IV_LEN]);
    hk.expand(b"lanewire key", &mut key[..]).expect("32 bytes");
    hk.expand(b"lanewire iv", &mut iv[..]).expect("12 bytes");
    (next, PacketKey::new(cipher, &key, &iv))
}
const OKM_LEN: usize = 2 * KEY_LEN + 2 * IV_LEN;

/// Derives both directions' packet keys from a finished exchange (see the module docs for the
/// exact construction). Client-send equals server-recv and vice versa; any difference in the
/// shared secret, transcript hash, either connection id or the cipher gives unrelated keys.
///
/// For [`Cipher::Null`] this returns [`SessionKeys::null`] without touching the secret.
pub fn derive_session_keys(
    shared: &SharedSecret,
    transcript_hash: &[u8; 32],
    client_conn_id: u32,
    server_conn_id: u32,
    role: Role,
    cipher: Cipher,
) -> SessionKeys {
    if cipher == Cipher::Null {
        return SessionKeys::null();
    }
    let mut info = [0u8; PROTOCOL_LABEL.len() + KEYS_INFO_LABEL.len() + 1 + 4 + 4];
    let (label, rest) = info.split_at_mut(PROTOCOL_LABEL.len());
    label.copy_from_slice(PROTOCOL_LABEL);
    let (label2, rest) = rest.split_at_mut(KEYS_INFO_LABEL.len());
    label2.copy_from_slice(KEYS_INFO_LABEL);
    rest[0] = cipher.code();
    rest[1..5].copy_from_slice(&client_conn_id.to_be_bytes());
    rest[5..9].copy_from_slice(&server_conn_id.to_be_bytes());

    let mut okm = Zeroizing::new([0u8; OKM_LEN]);
    Hkdf::<Sha256>::new(Some(transcript_hash), shared.0.as_bytes())
        .expand(&info, &mut okm[..])
        // 88 bytes is far below HKDF-SHA256's 255 * 32 byte output limit.
        .expect("HKDF output length within limit");

    let (keys, ivs) = okm.split_at(2 * KEY_LEN);
    let (client_key, server_key) = keys.split_at(KEY_LEN);
    let (client_iv, server_iv) = ivs.split_at(IV_LEN);
    let key = |k: &[u8], iv: &[u8]| {
        // Both slices come from fixed splits of the 88-byte OKM.
        let k: &[u8; KEY_LEN] = k.try_into().expect("key slice is KEY_LEN");
        let iv: &[u8; IV_LEN] = iv.try_into().expect("iv slice is IV_LEN");
        PacketKey::new(cipher, k, iv)
    };
    let client = key(client_key, client_iv);
    let server = key(server_key, server_iv);

    let mut update_info = [0u8; PROTOCOL_LABEL.len() + UPDATE_INFO_LABEL.len() + 1 + 4 + 4];
    let (label, rest) = update_info.split_at_mut(PROTOCOL_LABEL.len());
    label.copy_from_slice(PROTOCOL_LABEL);
    let (label2, rest) = rest.split_at_mut(UPDATE_INFO_LABEL.len());
    label2.copy_from_slice(UPDATE_INFO_LABEL);
    rest.copy_from_slice(&info[PROTOCOL_LABEL.len() + KEYS_INFO_LABEL.len()..]);
    let mut secrets = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(transcript_hash), shared.0.as_bytes())
        .expand(&update_info, &mut secrets[..])
        // 64 bytes is far below HKDF-SHA256's output limit.
        .expect("HKDF output length within limit");
    let secret = |s: &[u8]| {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(s);
        out
    };
    let (client_secret, server_secret) = (secret(&secrets[..32]), secret(&secrets[32..]));
    match role {
        Role::Client => SessionKeys {
            send: client,
            recv: server,
            send_secret: Some(client_secret),
            recv_secret: Some(server_secret),
        },
        Role::Server => SessionKeys {
            send: server,
            recv: client,
            send_secret: Some(server_secret),
            recv_secret: Some(client_secret),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(seed: u64) -> (SharedSecret, SharedSecret) {
        let mut rng = Rng::seeded(seed);
        let a = KeyShare::generate(&mut rng);
        let b = KeyShare::generate(&mut rng);
        let (pa, pb) = (a.public(), b.public());
        (a.diffie_hellman(&pb).unwrap(), b.diffie_hellman(&pa).unwrap())
    }

    /// True if `send` seals a packet that `recv` opens.
    fn pairs(send: &PacketKey, recv: &PacketKey) -> bool {
        let mut buf = [0u8; 5 + 16];
        buf[..5].copy_from_slice(b"hello");
        let n = send.seal_in_place(3, b"hdr", &mut buf, 5);
        recv.open_in_place(3, b"hdr", &mut buf[..n]).is_ok() && &buf[..5] == b"hello"
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn both_sides_agree_and_are_deterministic() {
        let (sa, sb) = exchange(1);
        assert_eq!(sa.as_bytes(), sb.as_bytes());
        let (sa2, _) = exchange(1);
        assert_eq!(sa.as_bytes(), sa2.as_bytes(), "same seed, same keys");
        let (sc, _) = exchange(2);
        assert_ne!(sa.as_bytes(), sc.as_bytes());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn rejects_low_order_peer_shares() {
        // All-zero, and the order-8 point from RFC 7748 / libsodium's blocklist.
        let zero = [0u8; 32];
        let mut one = [0u8; 32];
        one[0] = 1;
        let order8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        let mut rng = Rng::seeded(9);
        for bad in [zero, one, order8] {
            let share = KeyShare::generate(&mut rng);
            assert_eq!(share.diffie_hellman(&bad).unwrap_err(), CryptoError::NonContributory);
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn session_keys_cross_match() {
        let (sa, sb) = exchange(3);
        let th = [0x11; 32];
        let c = derive_session_keys(&sa, &th, 10, 20, Role::Client, Cipher::Aes256Gcm);
        let s = derive_session_keys(&sb, &th, 10, 20, Role::Server, Cipher::Aes256Gcm);
        assert_eq!(c.cipher(), Cipher::Aes256Gcm);
        assert!(pairs(&c.send, &s.recv));
        assert!(pairs(&s.send, &c.recv));
        // The two directions use different keys: a packet cannot be reflected back.
        assert!(!pairs(&c.send, &c.recv));
        assert!(!pairs(&s.send, &s.recv));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn any_input_change_gives_unrelated_keys() {
        let (sa, sb) = exchange(4);
        let (other, _) = exchange(5);
        let th = [0x22; 32];
        let server = derive_session_keys(&sb, &th, 1, 2, Role::Server, Cipher::Aes256Gcm);
        let mut th2 = th;
        th2[31] ^= 1;
        let variants = [
            derive_session_keys(&sa, &th2, 1, 2, Role::Client, Cipher::Aes256Gcm),
            derive_session_keys(&sa, &th, 3, 2, Role::Client, Cipher::Aes256Gcm),
            derive_session_keys(&sa, &th, 1, 3, Role::Client, Cipher::Aes256Gcm),
            derive_session_keys(&sa, &th, 2, 1, Role::Client, Cipher::Aes256Gcm),
            derive_session_keys(&other, &th, 1, 2, Role::Client, Cipher::Aes256Gcm),
        ];
        for v in &variants {
            assert!(!pairs(&v.send, &server.recv));
            assert!(!pairs(&server.send, &v.recv));
        }
        let good = derive_session_keys(&sa, &th, 1, 2, Role::Client, Cipher::Aes256Gcm);
        assert!(pairs(&good.send, &server.recv));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn null_cipher_derives_null_keys() {
        let (sa, _) = exchange(6);
        let k = derive_session_keys(&sa, &[0; 32], 1, 2, Role::Client, Cipher::Null);
        assert_eq!(k.cipher(), Cipher::Null);
        assert_eq!(k.send.overhead(), 0);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn transcript_is_incremental_sha256() {
        let mut t = Transcript::new();
        // SHA-256("") and SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            t.hash(),
            super::super::hex::decode_array::<32>(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
            .unwrap()
        );
        t.update(b"a");
        t.update(b"bc");
        assert_eq!(
            t.hash(),
            super::super::hex::decode_array::<32>(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
            .unwrap()
        );
        let before = t.hash();
        t.update(b"more");
        assert_ne!(t.hash(), before);

        let framed = |parts: &[&[u8]]| {
            let mut t = Transcript::new();
            parts.iter().for_each(|p| t.update_framed(p));
            t.hash()
        };
        assert_ne!(framed(&[b"ab", b"c"]), framed(&[b"a", b"bc"]));
        let mut manual = Transcript::new();
        manual.update(&[0, 0, 0, 2]);
        manual.update(b"ab");
        assert_eq!(framed(&[b"ab"]), manual.hash());
    }
}
