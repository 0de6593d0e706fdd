//! ICE settings from config values: STUN and TURN servers, the candidate policy.

use lanewire_core::{Config, ConfigKey, ConfigValue};
use lanewire_signaling::protocol::IceServer;
use webrtc::peer_connection::{RTCIceServer, RTCIceTransportPolicy};

use crate::state::State;

/// `P2PTransportIceEnable` bits, as in the reference.
const ICE_RELAY: i32 = 1;
const ICE_PRIVATE: i32 = 2;
const ICE_PUBLIC: i32 = 4;

/// The ICE settings of one connection, resolved from its config values when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IceSettings {
    /// `stun:host:port` URLs.
    pub(crate) stun: Vec<String>,
    /// `turn:` URLs with their user and password.
    pub(crate) turn: Vec<(String, String, String)>,
    /// The `P2PTransportIceEnable` bitmask.
    pub(crate) enable: i32,
}

fn string(v: ConfigValue) -> String {
    match v {
        ConfigValue::String(s) => s,
        _ => String::new(),
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

/// `host:port` or a URL with a scheme: add `scheme:` when missing.
fn url(scheme: &str, entry: &str) -> String {
    if entry.starts_with("stun:")
        || entry.starts_with("stuns:")
        || entry.starts_with("turn:")
        || entry.starts_with("turns:")
    {
        entry.to_owned()
    } else {
        format!("{scheme}:{entry}")
    }
}

impl IceSettings {
    /// Resolves through `layers` (the connection's or listen socket's overrides), then the
    /// global values.
    pub(crate) fn resolve(layers: &[&Config], st: &State) -> IceSettings {
        let get = |key| super::resolve(layers, st, key);
        let stun = list(&string(get(ConfigKey::P2PStunServerList)));
        let turn = list(&string(get(ConfigKey::P2PTurnServerList)));
        let users = list(&string(get(ConfigKey::P2PTurnUserList)));
        let passes = list(&string(get(ConfigKey::P2PTurnPassList)));
        let enable = match get(ConfigKey::P2PTransportIceEnable) {
            ConfigValue::Int32(v) => v,
            _ => 0x7fff_ffff,
        };
        IceSettings {
            stun: stun.iter().map(|s| url("stun", s)).collect(),
            turn: turn
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let user = users.get(i).cloned().unwrap_or_default();
                    let pass = passes.get(i).cloned().unwrap_or_default();
                    (url("turn", s), user, pass)
                })
                .collect(),
            enable,
        }
    }

    /// No candidate kind is enabled: no connection can be made.
    pub(crate) fn disabled(&self) -> bool {
        self.enable & (ICE_RELAY | ICE_PRIVATE | ICE_PUBLIC) == 0
    }

    /// Only relay candidates are enabled.
    pub(crate) fn relay_only(&self) -> bool {
        self.enable & (ICE_PRIVATE | ICE_PUBLIC) == 0
    }

    /// The ICE servers: STUN only when public (reflexive) candidates are enabled, TURN only
    /// when relay candidates are.
    pub(crate) fn servers(&self) -> Vec<RTCIceServer> {
        let mut out = Vec::new();
        if self.enable & ICE_PUBLIC != 0 && !self.stun.is_empty() {
            out.push(RTCIceServer { urls: self.stun.clone(), ..Default::default() });
        }
        if self.enable & ICE_RELAY != 0 {
            for (u, user, pass) in &self.turn {
                out.push(RTCIceServer {
                    urls: vec![u.clone()],
                    username: user.clone(),
                    credential: pass.clone(),
                });
            }
        }
        out
    }

    /// [`IceSettings::servers`] plus the servers the signaling server minted credentials for
    /// (coturn `use-auth-secret`), when relay candidates are enabled. A minted `stun:` URL
    /// counts only when public candidates are.
    pub(crate) fn servers_with(&self, minted: &[IceServer]) -> Vec<RTCIceServer> {
        let mut out = self.servers();
        for s in minted {
            let urls: Vec<String> = s
                .urls
                .iter()
                .filter(|u| {
                    let turn = u.starts_with("turn:") || u.starts_with("turns:");
                    let bit = if turn { ICE_RELAY } else { ICE_PUBLIC };
                    self.enable & bit != 0
                })
                .cloned()
                .collect();
            if !urls.is_empty() {
                out.push(RTCIceServer {
                    urls,
                    username: s.username.clone(),
                    credential: s.credential.clone(),
                });
            }
        }
        out
    }

    /// Relay candidates can come from the config values' TURN servers or from minted ones.
    pub(crate) fn has_turn(&self, minted: &[IceServer]) -> bool {
        !self.turn.is_empty() || minted.iter().flat_map(|s| &s.urls).any(|u| u.starts_with("turn"))
    }

    /// The candidate policy.
    pub(crate) fn policy(&self) -> RTCIceTransportPolicy {
        if self.relay_only() { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_lists() {
        assert_eq!(list(" a:1, ,b:2 "), vec!["a:1", "b:2"]);
        assert_eq!(url("stun", "127.0.0.1:3478"), "stun:127.0.0.1:3478");
        assert_eq!(url("turn", "turn:h:1?transport=udp"), "turn:h:1?transport=udp");
    }

    #[test]
    fn policy_from_mask() {
        let s = |enable| IceSettings { stun: vec!["stun:a:1".into()], turn: vec![], enable };
        assert!(s(0).disabled());
        assert!(s(1).relay_only() && s(1).policy() == RTCIceTransportPolicy::Relay);
        assert_eq!(s(0x7fff_ffff).policy(), RTCIceTransportPolicy::All);
        assert!(s(2).servers().is_empty(), "no STUN without public candidates");
        assert_eq!(s(6).servers().len(), 1);
    }

    #[test]
    fn minted_servers_follow_the_mask() {
        let s = |enable| IceSettings { stun: vec![], turn: vec![], enable };
        let minted = [IceServer {
            urls: vec!["turn:127.0.0.1:3478".into(), "stun:127.0.0.1:3478".into()],
            username: "1:str:a".into(),
            credential: "c".into(),
        }];
        let all = s(0x7fff_ffff).servers_with(&minted);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].urls.len(), 2);
        assert_eq!((all[0].username.as_str(), all[0].credential.as_str()), ("1:str:a", "c"));
        assert_eq!(s(1).servers_with(&minted)[0].urls, ["turn:127.0.0.1:3478"]);
        assert!(s(2).servers_with(&minted).is_empty(), "no relay, no public: nothing");
        assert!(s(1).has_turn(&minted) && !s(1).has_turn(&[]));
    }
}
