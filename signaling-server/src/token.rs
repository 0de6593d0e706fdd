//! Registration tokens: an identity and an expiry, signed with HMAC-SHA256 under a secret the
//! server shares with whoever issues tokens (a game's backend, or the binary's `token`
//! subcommand during development).
//!
//! # Format
//!
//! ```text
//! lws1.<expiry>.<identity>.<mac>
//! ```
//!
//! - `lws1`: format tag and version (Lanewire signaling, v1); it also separates these MACs from
//!   any other use of the secret.
//! - `<expiry>`: Unix time in seconds, decimal digits; the token is valid while `now < expiry`.
//! - `<identity>`: the identity string, base64url without padding (identities may contain `.`).
//! - `<mac>`: base64url without padding of HMAC-SHA256(secret, `lws1.<expiry>.<identity>`), that
//!   is, of everything before the last `.`.
//!
//! Any language with HMAC-SHA256 and base64url can mint these; the README has a Node example.
//! Verification checks the MAC (in constant time) before it parses anything else, so a forged
//! token learns nothing but "bad token".
//!
//! Pure Rust, no clock: the caller passes `now`, so this module compiles for wasm32 and its
//! tests are deterministic.

use alloc::format;
use alloc::string::String;
use core::fmt;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::protocol::Identity;

type HmacSha256 = Hmac<Sha256>;

const TAG: &str = "lws1";

/// Tokens longer than this are refused before any work is done. A maximal token is
/// 4 (tag) + 1 + 20 (u64 digits) + 1 + 171 (128-byte identity in base64) + 1 + 43 (MAC) = 241.
const MAX_TOKEN_LEN: usize = 256;

/// Why [`verify`] refused a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not of the form `lws1.<expiry>.<identity>.<mac>`, or the signed parts do not decode.
    Malformed,
    /// The MAC does not match: the token was forged, altered, or signed with another secret.
    BadSignature,
    /// The token was genuine but its expiry (Unix seconds, given) has passed.
    Expired {
        /// The token's expiry, Unix seconds.
        expiry: u64,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed token"),
            Self::BadSignature => f.write_str("token signature does not match"),
            Self::Expired { expiry } => write!(f, "token expired at unix time {expiry}"),
        }
    }
}

impl core::error::Error for TokenError {}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// Issues a token binding `identity` until `expiry_unix_secs` (exclusive), signed with
/// `secret`.
pub fn issue(secret: &[u8], identity: &Identity, expiry_unix_secs: u64) -> String {
    let signed = format!(
        "{TAG}.{expiry_unix_secs}.{}",
        BASE64URL_NOPAD.encode(identity.as_str().as_bytes())
    );
    let mut mac = mac(secret);
    mac.update(signed.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&tag))
}

/// Verifies `token` against `secret` at time `now_unix_secs` and returns the identity it was
/// issued for. The MAC comparison is constant-time.
pub fn verify(secret: &[u8], token: &str, now_unix_secs: u64) -> Result<Identity, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (signed, mac_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let tag = BASE64URL_NOPAD.decode(mac_b64.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(signed.as_bytes());
    mac.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;

    // Genuine from here on; still parse defensively.
    let mut parts = signed.split('.');
    let (Some(TAG), Some(expiry), Some(identity), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed);
    }
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let identity =
        BASE64URL_NOPAD.decode(identity.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let identity = String::from_utf8(identity).map_err(|_| TokenError::Malformed)?;
    let identity = Identity::new(identity).map_err(|_| TokenError::Malformed)?;
    if now_unix_secs >= expiry {
        return Err(TokenError::Expired { expiry });
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn alice() -> Identity {
        Identity::new("str:alice").expect("valid")
    }

    #[test]
    fn known_answer() {
        // Checked independently: printf 'lws1.1700000000.c3RyOmFsaWNl' |
        //   openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -binary | basenc --base64url
        let token = issue(SECRET, &alice(), 1_700_000_000);
        assert_eq!(
            token,
            "lws1.1700000000.c3RyOmFsaWNl.tUd4i5SdRI_SKySCzQULObgk-65x2G-ijVt8WWsvRJs"
        );
    }

    #[test]
    fn valid_token_verifies_until_expiry() {
        let token = issue(SECRET, &alice(), 1000);
        assert_eq!(verify(SECRET, &token, 0), Ok(alice()));
        assert_eq!(verify(SECRET, &token, 999), Ok(alice()));
        assert_eq!(verify(SECRET, &token, 1000), Err(TokenError::Expired { expiry: 1000 }));
    }

    #[test]
    fn identities_with_dots_spaces_and_non_ascii() {
        let id = Identity::new("ip:10.0.0.1:27015").expect("valid");
        assert_eq!(verify(SECRET, &issue(SECRET, &id, 10), 0), Ok(id));
        let id = Identity::new("str:Locke Lamora").expect("valid");
        assert_eq!(verify(SECRET, &issue(SECRET, &id, 10), 0), Ok(id));
        let id = Identity::new("str:a:b é").expect("valid");
        assert_eq!(verify(SECRET, &issue(SECRET, &id, 10), 0), Ok(id));
        let longest = Identity::new(format!("str:{}", "é".repeat(62))).expect("valid");
        let token = issue(SECRET, &longest, u64::MAX);
        assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
        assert_eq!(verify(SECRET, &token, 0), Ok(longest));
    }

    #[test]
    fn forged_and_altered_tokens_fail() {
        let token = issue(SECRET, &alice(), 1000);
        assert_eq!(verify(b"another secret", &token, 0), Err(TokenError::BadSignature));

        // Same MAC, longer expiry.
        let altered = token.replacen("1000", "9000", 1);
        assert_eq!(verify(SECRET, &altered, 0), Err(TokenError::BadSignature));

        // Same MAC, another identity.
        let bob = BASE64URL_NOPAD.encode(b"str:bob");
        let parts: Vec<&str> = token.split('.').collect();
        let swapped = format!("{}.{}.{}.{}", parts[0], parts[1], bob, parts[3]);
        assert_eq!(verify(SECRET, &swapped, 0), Err(TokenError::BadSignature));

        // A flipped MAC bit.
        let mut bytes = BASE64URL_NOPAD.decode(parts[3].as_bytes()).expect("mac");
        bytes[0] ^= 1;
        let flipped = format!("{}.{}", &token[..token.rfind('.').expect("dot")], {
            BASE64URL_NOPAD.encode(&bytes)
        });
        assert_eq!(verify(SECRET, &flipped, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn malformed_tokens_fail() {
        for bad in ["", ".", "lws1", "a.b.c.d", "lws1.1.2.!!!", &"x".repeat(1000)] {
            assert!(
                matches!(
                    verify(SECRET, bad, 0),
                    Err(TokenError::Malformed | TokenError::BadSignature)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn correctly_signed_but_malformed_parts_fail() {
        // Someone holding the secret signs garbage: verification still refuses it cleanly.
        let sign = |signed: &str| {
            let mut m = mac(SECRET);
            m.update(signed.as_bytes());
            format!("{signed}.{}", BASE64URL_NOPAD.encode(&m.finalize().into_bytes()))
        };
        let id = BASE64URL_NOPAD.encode(b"str:alice");
        for signed in [
            format!("lws2.10.{id}"),
            format!("lws1.+10.{id}"),
            format!("lws1..{id}"),
            format!("lws1.99999999999999999999999.{id}"),
            "lws1.10.bm9raW5k".to_string(), // "nokind"
            format!("lws1.10.{id}.extra"),
        ] {
            assert_eq!(verify(SECRET, &sign(&signed), 0), Err(TokenError::Malformed), "{signed}");
        }
    }
}
