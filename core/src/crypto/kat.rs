//! Known-answer tests: the published vectors for each primitive, run through our own wrappers
//! (not just the underlying crates), plus one end-to-end vector for our key schedule computed
//! independently (Python `cryptography` + `hmac`, see the test) so the derivation cannot drift.

use core::convert::Infallible;

use super::hex;
use super::*;
use crate::identity::Identity;

fn h(s: &str) -> Vec<u8> {
    hex::decode_vec(s).expect("test vector hex")
}

fn a<const N: usize>(s: &str) -> [u8; N] {
    hex::decode_array(s).expect("test vector hex of the right length")
}

/// An "RNG" that hands out fixed bytes, to push RFC secrets through [`KeyShare`]'s real
/// generation path.
struct FixedRng([u8; 32]);

impl rand_core::TryRng for FixedRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        unreachable!("key generation only fills bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        unreachable!("key generation only fills bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(&self.0[..dst.len()]);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

fn share(secret: &str) -> KeyShare {
    KeyShare::generate_from(&mut FixedRng(a(secret)))
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rfc7748_x25519_function() {
    // RFC 7748 section 5.2, the two single-step vectors.
    for (scalar, u, out) in [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ] {
        let shared = share(scalar).diffie_hellman(&a(u)).unwrap();
        assert_eq!(shared.as_bytes(), &a::<32>(out));
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rfc7748_x25519_diffie_hellman() {
    // RFC 7748 section 6.1.
    let alice = share("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let bob = share("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let alice_pub: [u8; 32] = a("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    let bob_pub: [u8; 32] = a("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    assert_eq!(alice.public(), alice_pub);
    assert_eq!(bob.public(), bob_pub);
    let k: [u8; 32] = a("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(alice.diffie_hellman(&bob_pub).unwrap().as_bytes(), &k);
    assert_eq!(bob.diffie_hellman(&alice_pub).unwrap().as_bytes(), &k);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rfc8032_ed25519() {
    // RFC 8032 section 7.1, tests 1, 2 and 3.
    for (secret, public, msg, sig) in [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ] {
        let key = IdentityKey::from_bytes(&a(secret));
        let public: [u8; 32] = a(public);
        let (msg, sig): (Vec<u8>, [u8; 64]) = (h(msg), a(sig));
        assert_eq!(key.public(), public);
        assert_eq!(key.sign(&msg), sig);
        assert_eq!(verify_signature(&public, &msg, &sig), Ok(()));
        // The CA key type signs with the same primitive.
        assert_eq!(CaKey::from_bytes(&a(secret)).public().to_bytes(), public);
        let mut bad = sig;
        bad[0] ^= 1;
        assert_eq!(verify_signature(&public, &msg, &bad), Err(CryptoError::BadSignature));
        let mut longer = msg.clone();
        longer.push(0);
        assert_eq!(verify_signature(&public, &longer, &sig), Err(CryptoError::BadSignature));
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn verify_signature_rejects_bad_keys_and_malleated_signatures() {
    let key = IdentityKey::from_bytes(&[3; 32]);
    let sig = key.sign(b"m");
    // Small-order (weak) key: the identity point.
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    assert_eq!(verify_signature(&identity_point, b"m", &sig), Err(CryptoError::InvalidKey));
    // Not a point on the curve (y = 2 has no x).
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    assert_eq!(verify_signature(&off_curve, b"m", &sig), Err(CryptoError::InvalidKey));
    // S + L (the group order) is the classic malleated form; strict checking refuses it.
    let l: [u8; 32] = a("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut malleated = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(malleated[32 + i]) + u16::from(l[i]) + carry;
        malleated[32 + i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(verify_signature(&key.public(), b"m", &malleated), Err(CryptoError::BadSignature));
    assert_eq!(verify_signature(&key.public(), b"m", &sig), Ok(()));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rfc5869_hkdf_sha256_case_1() {
    let (prk, hk) =
        hkdf::Hkdf::<sha2::Sha256>::extract(Some(&h("000102030405060708090a0b0c")), &[0x0b; 22]);
    assert_eq!(prk[..], h("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")[..]);
    let mut okm = [0u8; 42];
    hk.expand(&h("f0f1f2f3f4f5f6f7f8f9"), &mut okm).unwrap();
    assert_eq!(
        okm[..],
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")[..]
    );
}

/// Seals `pt` with a key whose IV is `nonce` XOR the packet number, so the nonce the vector
/// names is the one our construction produces.
fn aes_gcm_vector(key: &str, nonce: &str, aad: &str, pt: &str, ct_and_tag: &str) {
    let pn = 0x0102_0304_0506_0708u64;
    let mut iv: [u8; 12] = a(nonce);
    for (b, p) in iv[4..].iter_mut().zip(pn.to_be_bytes()) {
        *b ^= p;
    }
    let k = PacketKey::new(Cipher::Aes256Gcm, &a(key), &iv);
    let (aad, pt, expected) = (h(aad), h(pt), h(ct_and_tag));
    let mut buf = vec![0u8; pt.len() + TAG_LEN];
    buf[..pt.len()].copy_from_slice(&pt);
    assert_eq!(k.seal_in_place(pn, &aad, &mut buf, pt.len()), expected.len());
    assert_eq!(buf, expected);
    assert_eq!(k.open_in_place(pn, &aad, &mut buf), Ok(pt.len()));
    assert_eq!(buf[..pt.len()], pt[..]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn nist_aes_256_gcm() {
    // NIST CAVP gcmEncryptExtIV256.rsp, [Keylen = 256, IVlen = 96, PTlen = 128, AADlen = 128,
    // Taglen = 128], Count = 0.
    aes_gcm_vector(
        "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
        "ac93a1a6145299bde902f21a",
        "1e0889016f67601c8ebea4943bc23ad6",
        "2d71bcfa914e4ac045b2aa60955fad24",
        "8995ae2e6df3dbf96fac7b7137bae67f\
         eca5aa77d51d4a0a14d9c51e1da474ab",
    );
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 60-byte
    // plaintext, 20-byte AAD).
    aes_gcm_vector(
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
         1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
         8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
         76fc6ece0f4e1768cddf8853bb2d551b",
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn lanewire_key_schedule_golden() {
    // Computed independently with Python 3 (`hmac`, `hashlib`, `cryptography` 48 AESGCM):
    //   shared = X25519(RFC 7748 6.1 Alice, Bob)
    //   th     = SHA-256(b"lanewire golden transcript")
    //   prk    = HMAC-SHA256(th, shared); okm = HKDF-Expand(prk, info, 88)
    //   info   = b"lanewire v1 session keys" || 02 || 01020304 || a0b0c0d0
    //   ck, sk, civ, siv = okm[0:32], okm[32:64], okm[64:76], okm[76:88]
    //   AESGCM(key).encrypt(iv XOR pn in the last 8 bytes, b"hello, lanewire", b"\0header")
    let alice = share("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let bob = share("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let (alice_pub, bob_pub) = (alice.public(), bob.public());
    let mut t = Transcript::new();
    t.update(b"lanewire golden transcript");
    let th = t.hash();
    assert_eq!(th, a::<32>("bafed2f6402b7bb38dd275b84519476d912a73cbba536d10037f6fc0678ed6b8"));
    let (cid, sid) = (0x0102_0304, 0xa0b0_c0d0);
    let client = derive_session_keys(
        &alice.diffie_hellman(&bob_pub).unwrap(),
        &th,
        cid,
        sid,
        Role::Client,
        Cipher::Aes256Gcm,
    );
    let server = derive_session_keys(
        &bob.diffie_hellman(&alice_pub).unwrap(),
        &th,
        cid,
        sid,
        Role::Server,
        Cipher::Aes256Gcm,
    );
    let aad = b"\0header";
    let pt = b"hello, lanewire";
    for (send, recv, pn, expected) in [
        (
            &client.send,
            &server.recv,
            5,
            "9d3bc418b615920adba5c4dd826d5d922074da7bf0fa057a4497a0a1d8eccf",
        ),
        (
            &server.send,
            &client.recv,
            0x0102_0304_0506_0708,
            "7638379343f7300729182984fbb115259f730fa6c734c40fea4f6c6b076257",
        ),
    ] {
        let mut buf = [0u8; 15 + TAG_LEN];
        buf[..15].copy_from_slice(pt);
        assert_eq!(send.seal_in_place(pn, aad, &mut buf, 15), buf.len());
        assert_eq!(buf[..], h(expected)[..]);
        assert_eq!(recv.open_in_place(pn, aad, &mut buf), Ok(15));
        assert_eq!(&buf[..15], pt);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn certificate_golden_encoding() {
    // Pins the certificate layout and signing input: Ed25519 is deterministic, so a fixed CA
    // key, subject and identity give fixed bytes.
    let ca =
        CaKey::from_bytes(&a("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
    let subject: [u8; 32] = a("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    let id = Identity::id(7);
    let cert = ca.issue(&id, &subject, 1_700_000_000, 1_800_000_000).unwrap();
    let mut bytes = Vec::new();
    cert.encode(&mut bytes);
    let mut body = vec![1u8];
    body.extend_from_slice(&ca.key_id().0);
    body.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    body.extend_from_slice(&1_800_000_000u64.to_be_bytes());
    body.extend_from_slice(&subject);
    body.extend_from_slice(&[16, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(bytes[..body.len()], body[..]);
    assert_eq!(bytes.len(), body.len() + 64);
    let mut signed = b"lanewire v1 certificate".to_vec();
    signed.extend_from_slice(&body);
    let sig: [u8; 64] = bytes[body.len()..].try_into().unwrap();
    assert_eq!(verify_signature(&ca.public().to_bytes(), &signed, &sig), Ok(()));
    // The key id is SHA-256 of the public key, truncated.
    use sha2::Digest;
    assert_eq!(ca.key_id().0[..], sha2::Sha256::digest(ca.public().to_bytes())[..8]);
}
