//! Time-limited TURN credentials: the "TURN REST API" scheme that coturn implements with
//! `use-auth-secret` and `static-auth-secret=<secret>`.
//!
//! - username: `<expiry>:<identity>`, the expiry in Unix seconds;
//! - password (credential): base64 (standard alphabet, padded) of HMAC-SHA1(secret, username).
//!
//! The TURN server recomputes the password from the username and the shared secret, and refuses
//! a username whose expiry has passed, so the signaling server hands out credentials without
//! telling the TURN server anything and a leaked credential stops working by itself.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::config::TurnConfig;
use crate::protocol::{IceServer, Identity};

/// The password for `username`: base64(HMAC-SHA1(`secret`, `username`)).
pub fn credential(secret: &[u8], username: &str) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key");
    mac.update(username.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

/// The ICE server entry for `identity`, valid until `now + config.ttl` (Unix seconds).
pub fn mint(config: &TurnConfig, identity: &Identity, now: u64) -> IceServer {
    let expiry = now.saturating_add(config.ttl.as_secs());
    let username = format!("{expiry}:{identity}");
    let credential = credential(&config.secret, &username);
    IceServer { urls: config.urls.clone(), username, credential }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn known_answers() {
        // Computed independently (Python's hmac + hashlib.sha1 + base64).
        assert_eq!(credential(b"north", "1735689600:str:alice"), "pRiSZ9ppntrKNBA7hUaN3BFjJZo=");
        assert_eq!(
            credential(b"0123456789abcdef-turn", "1700000000:id:42"),
            "17vVIFrX+/q7CIdNF8tkwhoPW2g="
        );
    }

    #[test]
    fn minted_entry() {
        let config = TurnConfig {
            secret: b"0123456789abcdef-turn".to_vec(),
            urls: vec!["turn:127.0.0.1:3478".into()],
            ttl: Duration::from_secs(100),
        };
        let id = Identity::new("id:42").expect("identity");
        let server = mint(&config, &id, 1_699_999_900);
        assert_eq!(server.username, "1700000000:id:42");
        assert_eq!(server.credential, "17vVIFrX+/q7CIdNF8tkwhoPW2g=");
        assert_eq!(server.urls, config.urls);
        assert_eq!(mint(&config, &id, u64::MAX).username, format!("{}:id:42", u64::MAX));
    }
}
