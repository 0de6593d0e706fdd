//! Per-packet authenticated encryption.
//!
//! Every data packet after the handshake is sealed with the sending direction's [`PacketKey`]:
//! the cleartext header is the associated data, the payload is encrypted in place and a 16-byte
//! tag follows it. The nonce is the direction's 12-byte IV with the 64-bit packet number XORed
//! big-endian into its last 8 bytes (the TLS 1.3 / QUIC construction), so each packet number
//! gives a distinct nonce and a packet whose number was rewritten fails to open.
//!
//! What the caller must do:
//!
//! * Never seal two packets with the same packet number under one key. Pass the full 64-bit
//!   number (the expanded one, when the wire carries it truncated); numbers only grow, so this
//!   holds for the life of a connection up to [`Cipher::packet_limit`].
//! * Catch replays itself. An unmodified replayed packet opens again: the AEAD proves who sent
//!   it, not that it is new. Keep a window of accepted numbers, and mark a number seen only
//!   after its packet has opened, so forged packets cannot poison the window.
//!
//! Sealing and opening allocate nothing and copy nothing: both work inside the caller's buffer.

#[cfg(feature = "crypto")]
use crate::prelude::*;
use core::fmt;
#[cfg(feature = "crypto")]
use zeroize::Zeroize;

use super::CryptoError;

/// Length of the authentication tag [`PacketKey::seal_in_place`] appends, in bytes.
pub const TAG_LEN: usize = 16;

/// Length of a packet key, in bytes.
pub const KEY_LEN: usize = 32;

/// Length of a per-direction IV (the AEAD nonce size), in bytes.
pub const IV_LEN: usize = 12;

/// A packet protection algorithm, as negotiated in the handshake.
///
/// The numeric codes are part of the wire format and never change; they follow GNS's
/// `ESteamNetworkingSocketsCipher` (`NULL = 1`, `AES_256_GCM = 2`); 3 is kept free for
/// ChaCha20-Poly1305 should a platform without AES instructions ever need it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cipher {
    /// No encryption and no authentication: packets travel in clear and [`PacketKey`] adds no
    /// tag. Only for debugging or where both ends' configuration explicitly allows it.
    Null = 1,
    /// AES-256-GCM (NIST SP 800-38D) with a 96-bit nonce and a 16-byte tag. The default.
    Aes256Gcm = 2,
}

impl Cipher {
    /// The stable one-byte code that goes on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The cipher with wire code `code`, or `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Cipher> {
        match code {
            1 => Some(Cipher::Null),
            2 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }

    /// How many packets one key may seal before the connection must stop (or rekey).
    ///
    /// AES-GCM's confidentiality bound (RFC 9001 appendix B.1.1, after the CFRG AEAD-limits
    /// draft) keeps the attacker's advantage below 2^-57 while `blocks + packets <= 2^36`.
    /// A 1,500-byte packet is at most 95 AES blocks with the tag, so 2^36 / 95 ~= 2^29.4
    /// packets; we halve that to 2^28 for margin. That is 7.5 hours at 10,000 packets per
    /// second in one direction, or 52 days at a 60 Hz tick. The integrity bound (2^52 forged
    /// packets) is out of reach and not tracked.
    pub const fn packet_limit(self) -> u64 {
        match self {
            Cipher::Null => u64::MAX,
            Cipher::Aes256Gcm => 1 << 28,
        }
    }

    /// Bytes a sealed packet grows by: [`TAG_LEN`], or 0 for [`Cipher::Null`].
    pub const fn overhead(self) -> usize {
        match self {
            Cipher::Null => 0,
            Cipher::Aes256Gcm => TAG_LEN,
        }
    }
}

/// The AES-256-GCM implementation.
///
/// Natively it is `ring`'s: its assembly interleaves AES and GHASH with AES-NI, PCLMULQDQ and
/// AVX (and the ARMv8 equivalents) and seals a 1200-byte packet several times faster than the
/// RustCrypto crates, whose run-time-detected backends do not inline (measured in
/// `core/benches/core.rs`: bulk reliable at 0.46 GB/s with them). `ring` needs a C compiler
/// to build, never a system library. On wasm32 the pure-Rust `aes-gcm` crate is used (the
/// browser's DTLS normally protects that path, so the AEAD rarely runs there).
#[cfg(all(feature = "crypto", not(target_arch = "wasm32")))]
mod backend {
    use super::{CryptoError, KEY_LEN, TAG_LEN};
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

    pub(super) struct Aes(LessSafeKey);

    impl Aes {
        pub(super) fn new(key: &[u8; KEY_LEN]) -> Aes {
            // A 32-byte key is exactly what AES-256-GCM takes: this cannot fail.
            Aes(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key")))
        }
        pub(super) fn seal(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            payload: &mut [u8],
        ) -> [u8; TAG_LEN] {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    payload,
                )
                // Fails only past AES-GCM's 64 GiB per-message limit, which no datagram nears.
                .expect("datagram payload within AES-GCM limits");
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }
        pub(super) fn open(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            payload: &mut [u8],
            tag: [u8; TAG_LEN],
        ) -> Result<(), CryptoError> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    Tag::from(tag),
                    payload,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| CryptoError::Decrypt)
        }
    }
}

#[cfg(all(feature = "crypto", target_arch = "wasm32"))]
mod backend {
    use super::{CryptoError, KEY_LEN, TAG_LEN};
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit};

    pub(super) struct Aes(Aes256Gcm);

    impl Aes {
        pub(super) fn new(key: &[u8; KEY_LEN]) -> Aes {
            Aes(Aes256Gcm::new(&(*key).into()))
        }
        pub(super) fn seal(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            payload: &mut [u8],
        ) -> [u8; TAG_LEN] {
            let tag = self
                .0
                .encrypt_inout_detached(&nonce.into(), aad, payload.into())
                // Fails only past AES-GCM's 64 GiB per-message limit, which no datagram nears.
                .expect("datagram payload within AES-GCM limits");
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(&tag);
            out
        }
        pub(super) fn open(
            &self,
            nonce: [u8; 12],
            aad: &[u8],
            payload: &mut [u8],
            tag: [u8; TAG_LEN],
        ) -> Result<(), CryptoError> {
            self.0
                .decrypt_inout_detached(&nonce.into(), aad, payload.into(), &tag.into())
                .map_err(|_| CryptoError::Decrypt)
        }
    }
}

enum Algorithm {
    Null,
    #[cfg(feature = "crypto")]
    // Boxed: the expanded key schedule and GHASH key are several hundred bytes, allocated once
    // per handshake, never per packet.
    Aes256Gcm(Box<backend::Aes>),
}

/// The key and IV that protect packets in one direction of one connection.
///
/// Made by the key exchange (`derive_session_keys`, with the `crypto` feature); key material
/// is wiped when it is dropped. Without the feature only [`PacketKey::null`] exists.
pub struct PacketKey {
    algorithm: Algorithm,
    #[cfg(feature = "crypto")]
    iv: [u8; IV_LEN],
}

impl PacketKey {
    /// A key from raw key material. The handshake uses
    /// [`derive_session_keys`](super::derive_session_keys) instead; this is for known-answer
    /// tests and tools. `key` and `iv` are ignored for [`Cipher::Null`].
    #[cfg(feature = "crypto")]
    pub fn new(cipher: Cipher, key: &[u8; KEY_LEN], iv: &[u8; IV_LEN]) -> PacketKey {
        let algorithm = match cipher {
            Cipher::Null => Algorithm::Null,
            Cipher::Aes256Gcm => Algorithm::Aes256Gcm(Box::new(backend::Aes::new(key))),
        };
        PacketKey { algorithm, iv: if cipher == Cipher::Null { [0; IV_LEN] } else { *iv } }
    }

    /// A key for [`Cipher::Null`]: seals and opens without changing a byte.
    pub fn null() -> PacketKey {
        PacketKey {
            algorithm: Algorithm::Null,
            #[cfg(feature = "crypto")]
            iv: [0; IV_LEN],
        }
    }

    /// The cipher this key uses.
    pub fn cipher(&self) -> Cipher {
        match self.algorithm {
            Algorithm::Null => Cipher::Null,
            #[cfg(feature = "crypto")]
            Algorithm::Aes256Gcm(_) => Cipher::Aes256Gcm,
        }
    }

    /// Bytes [`seal_in_place`](Self::seal_in_place) adds after the payload.
    pub fn overhead(&self) -> usize {
        self.cipher().overhead()
    }

    #[cfg(feature = "crypto")]
    fn nonce(&self, packet_number: u64) -> [u8; IV_LEN] {
        let mut nonce = self.iv;
        for (n, p) in nonce[IV_LEN - 8..].iter_mut().zip(packet_number.to_be_bytes()) {
            *n ^= p;
        }
        nonce
    }

    /// Encrypts `buf[..payload_len]` in place and writes the tag right after it; returns the
    /// sealed length, `payload_len + self.overhead()`. `aad` (the cleartext header) is
    /// authenticated but not encrypted.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than `payload_len + self.overhead()`: the caller sizes its buffer, so
    /// that is a bug, not a network condition.
    pub fn seal_in_place(
        &self,
        packet_number: u64,
        aad: &[u8],
        buf: &mut [u8],
        payload_len: usize,
    ) -> usize {
        let sealed_len = payload_len + self.overhead();
        assert!(buf.len() >= sealed_len, "seal_in_place: buffer too small for payload and tag");
        #[cfg(not(feature = "crypto"))]
        let _ = (packet_number, aad);
        match &self.algorithm {
            Algorithm::Null => payload_len,
            #[cfg(feature = "crypto")]
            Algorithm::Aes256Gcm(aead) => {
                let (payload, rest) = buf.split_at_mut(payload_len);
                let tag = aead.seal(self.nonce(packet_number), aad, payload);
                rest[..TAG_LEN].copy_from_slice(&tag);
                sealed_len
            }
        }
    }

    /// Authenticates and decrypts a sealed packet body (`buf` = ciphertext followed by the tag)
    /// in place; returns the plaintext length, after which `buf[..len]` is the payload.
    ///
    /// Any input is safe: a body shorter than the tag, a wrong packet number, or a change to any
    /// byte of `aad`, ciphertext or tag gives [`CryptoError::Decrypt`]. On error the contents of
    /// `buf` are unspecified and must be dropped.
    pub fn open_in_place(
        &self,
        packet_number: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, CryptoError> {
        #[cfg(not(feature = "crypto"))]
        let _ = (packet_number, aad);
        match &self.algorithm {
            Algorithm::Null => Ok(buf.len()),
            #[cfg(feature = "crypto")]
            Algorithm::Aes256Gcm(aead) => {
                let len = buf.len().checked_sub(TAG_LEN).ok_or(CryptoError::Decrypt)?;
                let (payload, tag) = buf.split_at_mut(len);
                let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| CryptoError::Decrypt)?;
                aead.open(self.nonce(packet_number), aad, payload, tag)?;
                Ok(len)
            }
        }
    }
}

#[cfg(feature = "crypto")]
impl Drop for PacketKey {
    fn drop(&mut self) {
        // The AEAD state wipes its own key (its `zeroize` feature); the IV is ours.
        self.iv.zeroize();
    }
}

impl fmt::Debug for PacketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketKey").field("cipher", &self.cipher()).finish_non_exhaustive()
    }
}

/// Both directions' packet keys for one connection, and the secrets their key updates derive
/// from.
pub struct SessionKeys {
    /// Seals the packets this side sends.
    pub send: PacketKey,
    /// Opens the packets this side receives.
    pub recv: PacketKey,
    /// The update secrets of the keys in use, per direction (`None` for the null cipher and
    /// for keys made without a key exchange, which never update).
    #[cfg(feature = "crypto")]
    pub(crate) send_secret: Option<zeroize::Zeroizing<[u8; 32]>>,
    #[cfg(feature = "crypto")]
    pub(crate) recv_secret: Option<zeroize::Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("send", &self.send)
            .field("recv", &self.recv)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// Keys that neither encrypt nor authenticate ([`Cipher::Null`] both ways).
    pub fn null() -> SessionKeys {
        SessionKeys {
            send: PacketKey::null(),
            recv: PacketKey::null(),
            #[cfg(feature = "crypto")]
            send_secret: None,
            #[cfg(feature = "crypto")]
            recv_secret: None,
        }
    }

    /// True if these keys can be updated in place (they came from a key exchange).
    pub fn updatable(&self) -> bool {
        #[cfg(feature = "crypto")]
        {
            self.send_secret.is_some() && self.recv_secret.is_some()
        }
        #[cfg(not(feature = "crypto"))]
        {
            false
        }
    }

    /// Moves the sending key to its next generation. False (nothing changed) for keys that
    /// cannot update.
    #[cfg(feature = "crypto")]
    pub(crate) fn update_send(&mut self) -> bool {
        let Some(secret) = self.send_secret.as_ref() else { return false };
        let (next, key) = super::kx::next_generation(secret, self.cipher());
        self.send_secret = Some(next);
        self.send = key;
        true
    }

    /// Opens packet `packet_number` with the next generation of the receiving key (the peer
    /// updated its key); on success installs that generation and returns the payload length
    /// and the key it replaced (still needed for late packets of the old generation). `None`
    /// when the packet does not open with it (nothing changes) or the keys cannot update.
    #[cfg(feature = "crypto")]
    pub(crate) fn open_next_generation(
        &mut self,
        packet_number: u64,
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<(usize, PacketKey)> {
        let secret = self.recv_secret.as_ref()?;
        let (next_secret, next) = super::kx::next_generation(secret, self.cipher());
        let n = next.open_in_place(packet_number, aad, buf).ok()?;
        self.recv_secret = Some(next_secret);
        Some((n, core::mem::replace(&mut self.recv, next)))
    }

    /// The cipher both keys use.
    pub fn cipher(&self) -> Cipher {
        self.send.cipher()
    }
}

#[cfg(all(test, feature = "crypto"))]
mod tests {
    use super::*;

    fn key(cipher: Cipher) -> PacketKey {
        PacketKey::new(cipher, &[7; KEY_LEN], &[9; IV_LEN])
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn cipher_codes_round_trip() {
        for c in [Cipher::Null, Cipher::Aes256Gcm] {
            assert_eq!(Cipher::from_code(c.code()), Some(c));
        }
        assert_eq!(Cipher::Null.code(), 1);
        assert_eq!(Cipher::Aes256Gcm.code(), 2);
        for code in [0, 3, 4, 255] {
            assert_eq!(Cipher::from_code(code), None);
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn seal_open_round_trip_every_length() {
        let k = key(Cipher::Aes256Gcm);
        let aad = b"header";
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 1200] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = vec![0u8; len + TAG_LEN + 5];
            buf[..len].copy_from_slice(&payload);
            let n = k.seal_in_place(42, aad, &mut buf, len);
            assert_eq!(n, len + TAG_LEN);
            if len >= 8 {
                assert_ne!(buf[..len], payload[..], "payload must be encrypted");
            }
            let m = k.open_in_place(42, aad, &mut buf[..n]).unwrap();
            assert_eq!(&buf[..m], &payload[..]);
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn any_tampering_fails() {
        let k = key(Cipher::Aes256Gcm);
        let aad = *b"cleartext header";
        let payload = *b"attack at dawn, bring snacks";
        let mut sealed = [0u8; 28 + TAG_LEN];
        sealed[..28].copy_from_slice(&payload);
        let n = k.seal_in_place(1000, &aad, &mut sealed, payload.len());
        assert_eq!(n, sealed.len());

        // Every single bit of ciphertext and tag.
        for i in 0..n {
            for bit in 0..8 {
                let mut b = sealed;
                b[i] ^= 1 << bit;
                assert_eq!(k.open_in_place(1000, &aad, &mut b), Err(CryptoError::Decrypt));
            }
        }
        // Every byte of the AAD, and a shorter or longer AAD.
        for i in 0..aad.len() {
            let mut a = aad;
            a[i] ^= 0x80;
            let mut b = sealed;
            assert_eq!(k.open_in_place(1000, &a, &mut b), Err(CryptoError::Decrypt));
        }
        for a in [&aad[..aad.len() - 1], &[][..], b"cleartext header!"] {
            let mut b = sealed;
            assert_eq!(k.open_in_place(1000, a, &mut b), Err(CryptoError::Decrypt));
        }
        // Wrong packet numbers, including ones differing only in the high bytes.
        for pn in [999, 1001, 0, 1000 | 1 << 63, 1000 + (1 << 32), u64::MAX] {
            let mut b = sealed;
            assert_eq!(k.open_in_place(pn, &aad, &mut b), Err(CryptoError::Decrypt));
        }
        // Truncation and extension.
        for len in 0..n {
            let mut b = sealed;
            assert_eq!(k.open_in_place(1000, &aad, &mut b[..len]), Err(CryptoError::Decrypt));
        }
        let mut longer = [0u8; 28 + TAG_LEN + 1];
        longer[..n].copy_from_slice(&sealed);
        assert_eq!(k.open_in_place(1000, &aad, &mut longer), Err(CryptoError::Decrypt));
        // A different key (same cipher) and a different IV.
        let other = PacketKey::new(Cipher::Aes256Gcm, &[8; KEY_LEN], &[9; IV_LEN]);
        let other_iv = PacketKey::new(Cipher::Aes256Gcm, &[7; KEY_LEN], &[1; IV_LEN]);
        for o in [other, other_iv] {
            let mut b = sealed;
            assert_eq!(o.open_in_place(1000, &aad, &mut b), Err(CryptoError::Decrypt));
        }
        // And the untouched packet still opens.
        let mut b = sealed;
        assert_eq!(k.open_in_place(1000, &aad, &mut b), Ok(payload.len()));
        assert_eq!(b[..payload.len()], payload);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn nonce_is_iv_xor_packet_number() {
        let iv = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b];
        let k = PacketKey::new(Cipher::Aes256Gcm, &[0; KEY_LEN], &iv);
        assert_eq!(k.nonce(0), iv);
        assert_eq!(
            k.nonce(0x0102_0304_0506_0708),
            [0x10, 0x11, 0x12, 0x13, 0x15, 0x17, 0x15, 0x13, 0x1d, 0x1f, 0x1d, 0x13]
        );
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn null_cipher_is_identity() {
        let k = PacketKey::null();
        assert_eq!(k.cipher(), Cipher::Null);
        assert_eq!(k.overhead(), 0);
        let mut buf = *b"plain";
        assert_eq!(k.seal_in_place(5, b"h", &mut buf, 5), 5);
        assert_eq!(&buf, b"plain");
        assert_eq!(k.open_in_place(5, b"h", &mut buf), Ok(5));
        assert_eq!(k.open_in_place(5, b"h", &mut []), Ok(0));
        assert_eq!(key(Cipher::Null).cipher(), Cipher::Null);
        assert_eq!(SessionKeys::null().cipher(), Cipher::Null);
    }

    // Native only: a panic aborts a wasm32-unknown-unknown test run.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    #[should_panic(expected = "buffer too small")]
    fn seal_without_room_for_tag_is_a_bug() {
        let k = key(Cipher::Aes256Gcm);
        let mut buf = [0u8; 20];
        k.seal_in_place(0, b"", &mut buf, 10);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn debug_hides_key() {
        let s = format!("{:?}", key(Cipher::Aes256Gcm));
        assert_eq!(s, "PacketKey { cipher: Aes256Gcm, .. }");
    }
}
