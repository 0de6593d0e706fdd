//! Who a peer claims to be.
//!
//! An [`Identity`] names a peer independently of the path packets take: certificates bind one
//! to a public key, and applications use it to say whom they expect to reach. The kinds follow
//! GameNetworkingSockets' `SteamNetworkingIdentity` (IP address, generic string, generic bytes)
//! with a plain 64-bit id in place of the Steam ID.
//!
//! Two forms, both canonical so that equal identities have equal bytes:
//!
//! * text, URL-like `kind:data`, at most [`Identity::MAX_STRING_LEN`] bytes: `invalid`,
//!   `ip:1.2.3.4:5`, `ip:[::1]:5` (the port is left out when 0, as GNS does), `str:Locke Lamora`,
//!   `gen:00ff` (lowercase hex out, either case in), `id:42`. [`Display`](fmt::Display) and
//!   [`FromStr`] round-trip. Unlike GNS, `invalid` parses (to [`Identity::Invalid`]); check
//!   [`Identity::is_valid`] where an identity is required.
//! * binary, `kind (1 B) || length (1 B) || data`, at most [`Identity::MAX_ENCODED_LEN`] bytes,
//!   for certificates and the handshake. [`Identity::decode`] treats its input as hostile: it
//!   reads at most 34 bytes, never panics and rejects every non-canonical form.
//!
//! IP identities are canonical too: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a
//! dual-stack socket reports) is the IPv4 address, and IPv6 flow info and scope id are dropped.
//! [`Identity::ip`], equality, hashing and both encodings all apply that rule, so an identity
//! built from a socket address matches the one in a certificate.

use crate::prelude::*;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::str::FromStr;

use crate::crypto::hex;

/// A peer's identity. See the [module docs](self) for the text and binary forms.
///
/// Equality, ordering and hashing compare the canonical binary encoding, so
/// `Identity::Ip` of `[::ffff:1.2.3.4]:5` equals `Identity::Ip` of `1.2.3.4:5`.
#[derive(Copy, Clone, Default)]
pub enum Identity {
    /// No identity. The default; never valid in a certificate.
    #[default]
    Invalid,
    /// An IP address and port (port 0 when the port is not part of the identity).
    Ip(SocketAddr),
    /// An application-defined string of 1 to 31 bytes of UTF-8 without control characters.
    Str(IdentityStr),
    /// Application-defined opaque bytes, 1 to 32 of them.
    Bytes(IdentityBytes),
    /// An application-defined 64-bit id (an account or player id).
    Id(u64),
}

/// Why an identity could not be parsed or decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdentityError {
    /// The text form is longer than [`Identity::MAX_STRING_LEN`], or the data is longer than
    /// its kind allows (31 bytes of string, 32 bytes of generic bytes).
    TooLong,
    /// The kind prefix (text) or kind code (binary) is not one this version knows.
    UnknownKind,
    /// The data does not fit its kind: a bad address, bad hex, a control character, an empty
    /// value, a length that does not match, or a non-canonical encoding.
    Malformed,
    /// The binary input ends before the identity does.
    Truncated,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityError::TooLong => "identity too long",
            IdentityError::UnknownKind => "unknown identity kind",
            IdentityError::Malformed => "malformed identity",
            IdentityError::Truncated => "truncated identity",
        })
    }
}

impl core::error::Error for IdentityError {}

/// The string payload of [`Identity::Str`]: 1 to 31 bytes of UTF-8, no control characters.
///
/// Stored inline (no allocation) so that [`Identity`] is `Copy`.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct IdentityStr {
    len: u8,
    bytes: [u8; IdentityStr::MAX_LEN],
}

impl IdentityStr {
    /// Longest string, in bytes (GNS's `k_cchMaxGenericString` less its terminating NUL).
    pub const MAX_LEN: usize = 31;

    /// Checks and stores `s`. Control characters (including NUL and line breaks) are refused
    /// so identities can be logged and written one per line safely.
    pub fn new(s: &str) -> Result<IdentityStr, IdentityError> {
        if s.len() > Self::MAX_LEN {
            return Err(IdentityError::TooLong);
        }
        if s.is_empty() || s.chars().any(char::is_control) {
            return Err(IdentityError::Malformed);
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        // Fits: checked against MAX_LEN (31) above.
        Ok(IdentityStr { len: s.len() as u8, bytes })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // `new` only stores valid UTF-8, and the fields are private.
        // The fallback is never taken; it spares the .wasm `expect`'s `Utf8Error` formatting.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for IdentityStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The payload of [`Identity::Bytes`]: 1 to 32 opaque bytes, stored inline.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct IdentityBytes {
    len: u8,
    bytes: [u8; IdentityBytes::MAX_LEN],
}

impl IdentityBytes {
    /// Most bytes (GNS's `k_cbMaxGenericBytes`).
    pub const MAX_LEN: usize = 32;

    /// Checks and stores `b`.
    pub fn new(b: &[u8]) -> Result<IdentityBytes, IdentityError> {
        if b.len() > Self::MAX_LEN {
            return Err(IdentityError::TooLong);
        }
        if b.is_empty() {
            return Err(IdentityError::Malformed);
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..b.len()].copy_from_slice(b);
        // Fits: checked against MAX_LEN (32) above.
        Ok(IdentityBytes { len: b.len() as u8, bytes })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for IdentityBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write(f, self.as_bytes())
    }
}

// Binary kind codes. 0-3 are GNS's `ESteamNetworkingIdentityType` values for the same kinds;
// our 64-bit id takes the Steam ID's 16.
const KIND_INVALID: u8 = 0;
const KIND_IP: u8 = 1;
const KIND_STR: u8 = 2;
const KIND_BYTES: u8 = 3;
const KIND_ID: u8 = 16;

/// `addr` with IPv4-mapped IPv6 turned into IPv4 and IPv6 flow info and scope id cleared.
fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => addr,
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0)),
        },
    }
}

impl Identity {
    /// Longest text form, in bytes (GNS's `k_cchMaxString`).
    pub const MAX_STRING_LEN: usize = 128;

    /// Longest binary encoding, in bytes: kind, length and 32 bytes of data.
    pub const MAX_ENCODED_LEN: usize = 2 + 32;

    /// An IP identity, in canonical form (see the module docs).
    pub fn ip(addr: SocketAddr) -> Identity {
        Identity::Ip(canonical_addr(addr))
    }

    /// A string identity; see [`IdentityStr::new`] for the rules.
    pub fn string(s: &str) -> Result<Identity, IdentityError> {
        IdentityStr::new(s).map(Identity::Str)
    }

    /// A generic-bytes identity; see [`IdentityBytes::new`] for the rules.
    pub fn bytes(b: &[u8]) -> Result<Identity, IdentityError> {
        IdentityBytes::new(b).map(Identity::Bytes)
    }

    /// A 64-bit id identity.
    pub fn id(id: u64) -> Identity {
        Identity::Id(id)
    }

    /// False only for [`Identity::Invalid`].
    pub fn is_valid(&self) -> bool {
        !matches!(self, Identity::Invalid)
    }

    /// Length of the binary encoding, in bytes.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Identity::Invalid => 0,
            Identity::Ip(a) => match canonical_addr(*a) {
                SocketAddr::V4(_) => 4 + 2,
                SocketAddr::V6(_) => 16 + 2,
            },
            Identity::Str(s) => usize::from(s.len),
            Identity::Bytes(b) => usize::from(b.len),
            Identity::Id(_) => 8,
        }
    }

    /// The binary encoding in a fixed buffer, and its length.
    pub(crate) fn encode_array(&self) -> ([u8; Self::MAX_ENCODED_LEN], usize) {
        let mut out = [0u8; Self::MAX_ENCODED_LEN];
        let (kind, data): (u8, &[u8]);
        let mut scratch = [0u8; 18];
        match self {
            Identity::Invalid => (kind, data) = (KIND_INVALID, &[]),
            Identity::Ip(a) => {
                let a = canonical_addr(*a);
                let n = match a.ip() {
                    IpAddr::V4(ip) => {
                        scratch[..4].copy_from_slice(&ip.octets());
                        4
                    }
                    IpAddr::V6(ip) => {
                        scratch[..16].copy_from_slice(&ip.octets());
                        16
                    }
                };
                scratch[n..n + 2].copy_from_slice(&a.port().to_be_bytes());
                (kind, data) = (KIND_IP, &scratch[..n + 2]);
            }
            Identity::Str(s) => (kind, data) = (KIND_STR, s.as_str().as_bytes()),
            Identity::Bytes(b) => (kind, data) = (KIND_BYTES, b.as_bytes()),
            Identity::Id(id) => {
                scratch[..8].copy_from_slice(&id.to_be_bytes());
                (kind, data) = (KIND_ID, &scratch[..8]);
            }
        }
        out[0] = kind;
        // At most 32 bytes of data by construction of every kind.
        out[1] = data.len() as u8;
        out[2..2 + data.len()].copy_from_slice(data);
        (out, 2 + data.len())
    }

    /// Appends the binary encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (buf, len) = self.encode_array();
        out.extend_from_slice(&buf[..len]);
    }

    /// Decodes one identity from the front of `input`; returns it and the bytes consumed.
    /// Trailing bytes are left for the caller. Rejects every non-canonical encoding, so
    /// `decode` then [`encode`](Self::encode) gives back exactly the bytes consumed.
    pub fn decode(input: &[u8]) -> Result<(Identity, usize), IdentityError> {
        let [kind, len, rest @ ..] = input else {
            return Err(IdentityError::Truncated);
        };
        let len = usize::from(*len);
        let data = rest.get(..len).ok_or(IdentityError::Truncated)?;
        let identity = match *kind {
            KIND_INVALID if len == 0 => Identity::Invalid,
            KIND_IP if len == 6 => {
                let ip: [u8; 4] = data[..4].try_into().map_err(|_| IdentityError::Malformed)?;
                let port = u16::from_be_bytes([data[4], data[5]]);
                Identity::Ip(SocketAddr::new(IpAddr::from(ip), port))
            }
            KIND_IP if len == 18 => {
                let ip: [u8; 16] = data[..16].try_into().map_err(|_| IdentityError::Malformed)?;
                let ip = Ipv6Addr::from(ip);
                if ip.to_ipv4_mapped().is_some() {
                    return Err(IdentityError::Malformed);
                }
                let port = u16::from_be_bytes([data[16], data[17]]);
                Identity::Ip(SocketAddr::new(IpAddr::V6(ip), port))
            }
            KIND_STR => {
                let s = core::str::from_utf8(data).map_err(|_| IdentityError::Malformed)?;
                Identity::Str(IdentityStr::new(s)?)
            }
            KIND_BYTES => Identity::Bytes(IdentityBytes::new(data)?),
            KIND_ID if len == 8 => {
                let id: [u8; 8] = data.try_into().map_err(|_| IdentityError::Malformed)?;
                Identity::Id(u64::from_be_bytes(id))
            }
            KIND_INVALID | KIND_IP | KIND_ID => return Err(IdentityError::Malformed),
            _ => return Err(IdentityError::UnknownKind),
        };
        Ok((identity, 2 + len))
    }
}

impl From<SocketAddr> for Identity {
    /// Same as [`Identity::ip`].
    fn from(addr: SocketAddr) -> Identity {
        Identity::ip(addr)
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        let ((a, la), (b, lb)) = (self.encode_array(), other.encode_array());
        a[..la] == b[..lb]
    }
}

impl Eq for Identity {}

impl PartialOrd for Identity {
    fn partial_cmp(&self, other: &Identity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Identity {
    /// Orders by binary encoding: by kind code first. Stable, but not meant to be meaningful.
    fn cmp(&self, other: &Identity) -> Ordering {
        let ((a, la), (b, lb)) = (self.encode_array(), other.encode_array());
        a[..la].cmp(&b[..lb])
    }
}

impl Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (buf, len) = self.encode_array();
        buf[..len].hash(state);
    }
}

impl crate::text::Text for Identity {
    fn push_to(&self, out: &mut String) {
        match self {
            Identity::Invalid => out.push_str("invalid"),
            Identity::Ip(a) => {
                // The text of `core::net`'s `Display` (RFC 5952 for IPv6), written without
                // `core::fmt` (see `text`).
                let a = canonical_addr(*a);
                out.push_str("ip:");
                match a.ip() {
                    IpAddr::V4(ip) => ip.push_to(out),
                    IpAddr::V6(ip) => {
                        out.push('[');
                        ip.push_to(out);
                        out.push(']');
                    }
                }
                if a.port() != 0 {
                    out.push(':');
                    a.port().push_to(out);
                }
            }
            Identity::Str(s) => {
                out.push_str("str:");
                out.push_str(s.as_str());
            }
            Identity::Bytes(b) => {
                out.push_str("gen:");
                hex::push(out, b.as_bytes());
            }
            Identity::Id(id) => {
                out.push_str("id:");
                id.push_to(out);
            }
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::text!(self))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

/// Parses the address part of `ip:...`: `a.b.c.d[:port]`, `[v6][:port]` or a bare `v6`.
fn parse_ip(data: &str) -> Option<SocketAddr> {
    if let Ok(a) = data.parse::<SocketAddr>() {
        return Some(a);
    }
    let bare = data.strip_prefix('[').and_then(|d| d.strip_suffix(']')).unwrap_or(data);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

impl FromStr for Identity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Identity, IdentityError> {
        if s.len() > Identity::MAX_STRING_LEN {
            return Err(IdentityError::TooLong);
        }
        if s == "invalid" {
            return Ok(Identity::Invalid);
        }
        let (kind, data) = s.split_once(':').ok_or(IdentityError::Malformed)?;
        match kind {
            "ip" => parse_ip(data).map(Identity::ip).ok_or(IdentityError::Malformed),
            "str" => Identity::string(data),
            "gen" => {
                if data.len() > 2 * IdentityBytes::MAX_LEN {
                    return Err(IdentityError::TooLong);
                }
                let bytes = hex::decode_vec(data).ok_or(IdentityError::Malformed)?;
                Identity::bytes(&bytes)
            }
            "id" => {
                // `u64::from_str` would also take a leading `+`; the canonical form is digits.
                if data.is_empty() || !data.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(IdentityError::Malformed);
                }
                data.parse().map(Identity::Id).map_err(|_| IdentityError::Malformed)
            }
            _ => Err(IdentityError::UnknownKind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// The hand-written address text is `core::net`'s `Display`, byte for byte.
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn ip_text_matches_core_net() {
        let std_text = |a: SocketAddr| match canonical_addr(a) {
            SocketAddr::V4(a) if a.port() == 0 => format!("ip:{}", a.ip()),
            SocketAddr::V6(a) if a.port() == 0 => format!("ip:[{}]", a.ip()),
            a => format!("ip:{a}"),
        };
        let mut rng = crate::rng::Rng::seeded(5);
        let mut addrs: Vec<SocketAddr> = vec![
            "0.0.0.0:0".parse().expect("addr"),
            "255.255.255.255:65535".parse().expect("addr"),
            "[::]:0".parse().expect("addr"),
            "[::1]:1".parse().expect("addr"),
            "[::ffff:1.2.3.4]:80".parse().expect("addr"),
            "[1::]:0".parse().expect("addr"),
            "[1:0:2::3:0:0]:9".parse().expect("addr"),
            "[1:0:0:2:0:0:3:4]:9".parse().expect("addr"),
            "[1:0:2:0:3:0:4:0]:9".parse().expect("addr"),
            "[fe80::1%7]:9".parse().expect("addr"),
        ];
        for _ in 0..2000 {
            // Random groups, about half of them zero, so runs of every length appear.
            let seg: [u16; 8] = core::array::from_fn(|_| {
                if rng.u32().is_multiple_of(2) { 0 } else { (rng.u32() >> (rng.u32() % 16)) as u16 }
            });
            let port = if rng.u32().is_multiple_of(3) { 0 } else { rng.u32() as u16 };
            addrs.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(seg)), port));
            addrs.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(rng.u32())), port));
        }
        for a in addrs {
            assert_eq!(Identity::Ip(a).to_string(), std_text(a), "{a}");
        }
    }

    fn parse(s: &str) -> Result<Identity, IdentityError> {
        s.parse()
    }

    /// Text and binary round trips, and the exact forms.
    fn check(id: Identity, text: &str, binary: &[u8]) {
        assert_eq!(id.to_string(), text);
        assert_eq!(parse(text).unwrap(), id);
        let mut out = vec![0xee];
        id.encode(&mut out);
        assert_eq!(&out[1..], binary, "binary form of {text}");
        assert_eq!(id.encoded_len(), binary.len());
        // Decode from the middle of a buffer with trailing bytes.
        out.extend_from_slice(b"tail");
        let (back, used) = Identity::decode(&out[1..]).unwrap();
        assert_eq!(back, id);
        assert_eq!(used, binary.len());
        assert_eq!(back.to_string(), text);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn every_kind_round_trips() {
        check(Identity::Invalid, "invalid", &[0, 0]);
        check(
            Identity::ip("1.2.3.4:5".parse().unwrap()),
            "ip:1.2.3.4:5",
            &[1, 6, 1, 2, 3, 4, 0, 5],
        );
        check(
            Identity::ip("10.0.0.1:0".parse().unwrap()),
            "ip:10.0.0.1",
            &[1, 6, 10, 0, 0, 1, 0, 0],
        );
        check(
            Identity::ip("[::1]:5".parse().unwrap()),
            "ip:[::1]:5",
            &[1, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5],
        );
        check(
            Identity::ip("[2001:db8::7]:0".parse().unwrap()),
            "ip:[2001:db8::7]",
            &[1, 18, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0],
        );
        check(
            Identity::string("Locke Lamora").unwrap(),
            "str:Locke Lamora",
            b"\x02\x0cLocke Lamora",
        );
        check(Identity::string("a:b é").unwrap(), "str:a:b é", b"\x02\x06a:b \xc3\xa9");
        let max = "x".repeat(31);
        let mut bin = vec![2, 31];
        bin.extend_from_slice(max.as_bytes());
        check(Identity::string(&max).unwrap(), &format!("str:{max}"), &bin);
        check(Identity::bytes(&[0x00, 0xff, 0x10]).unwrap(), "gen:00ff10", &[3, 3, 0, 0xff, 0x10]);
        let mut bin = vec![3, 32];
        bin.extend_from_slice(&[0xab; 32]);
        check(Identity::bytes(&[0xab; 32]).unwrap(), &format!("gen:{}", "ab".repeat(32)), &bin);
        check(Identity::id(0), "id:0", &[16, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        check(
            Identity::id(u64::MAX),
            "id:18446744073709551615",
            &[16, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        );
        assert_eq!(Identity::default(), Identity::Invalid);
        assert!(!Identity::Invalid.is_valid());
        assert!(Identity::id(1).is_valid());
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn lenient_text_inputs_normalize() {
        for (input, canonical) in [
            ("ip:1.2.3.4:0", "ip:1.2.3.4"),
            ("ip:::1", "ip:[::1]"),
            ("ip:[::1]", "ip:[::1]"),
            ("ip:[::1]:0", "ip:[::1]"),
            ("ip:[::ffff:1.2.3.4]:9", "ip:1.2.3.4:9"),
            ("ip:[fe80::1%3]:9", "ip:[fe80::1]:9"),
            ("gen:ABcd", "gen:abcd"),
            ("id:007", "id:7"),
        ] {
            assert_eq!(parse(input).unwrap().to_string(), canonical, "{input}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn mapped_and_scoped_addresses_are_canonical() {
        let v4: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:5".parse().unwrap();
        // Even when built directly through the variant, not through `Identity::ip`.
        assert_eq!(Identity::Ip(mapped), Identity::Ip(v4));
        assert_eq!(Identity::from(mapped), Identity::Ip(v4));
        let mut out = Vec::new();
        Identity::Ip(mapped).encode(&mut out);
        assert_eq!(out, [1, 6, 1, 2, 3, 4, 0, 5]);
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3));
        let plain: SocketAddr = "[fe80::1]:9".parse().unwrap();
        assert_eq!(Identity::Ip(scoped), Identity::Ip(plain));
        use std::collections::hash_map::DefaultHasher;
        let h = |i: &Identity| {
            let mut s = DefaultHasher::new();
            i.hash(&mut s);
            s.finish()
        };
        assert_eq!(h(&Identity::Ip(mapped)), h(&Identity::Ip(v4)));
        assert_ne!(Identity::Ip(v4), Identity::Ip("1.2.3.4:6".parse().unwrap()));
        assert_ne!(Identity::id(1), Identity::bytes(&[1]).unwrap());
        assert!(Identity::Invalid < Identity::id(0));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn malformed_strings_are_rejected() {
        use IdentityError::*;
        let long_str = format!("str:{}", "x".repeat(32));
        let long_gen = format!("gen:{}", "00".repeat(33));
        let too_long = format!("str:{}", "x".repeat(200));
        for (input, err) in [
            ("", Malformed),
            ("ip", Malformed),
            ("Invalid", Malformed),
            ("steamid:76561197960287930", UnknownKind),
            ("IP:1.2.3.4", UnknownKind),
            (":x", UnknownKind),
            ("ip:", Malformed),
            ("ip:1.2.3", Malformed),
            ("ip:1.2.3.256", Malformed),
            ("ip:1.2.3.4:65536", Malformed),
            ("ip:1.2.3.4:", Malformed),
            ("ip:1.2.3.4:x", Malformed),
            ("ip:[::1", Malformed),
            ("ip:example.com:80", Malformed),
            ("str:", Malformed),
            ("str:line\nbreak", Malformed),
            ("str:nul\0", Malformed),
            ("str:tab\t", Malformed),
            (long_str.as_str(), TooLong),
            ("gen:", Malformed),
            ("gen:0", Malformed),
            ("gen:0g", Malformed),
            ("gen:éé", Malformed),
            (long_gen.as_str(), TooLong),
            ("id:", Malformed),
            ("id:-1", Malformed),
            ("id:+1", Malformed),
            ("id: 1", Malformed),
            ("id:1.0", Malformed),
            ("id:18446744073709551616", Malformed),
            (too_long.as_str(), TooLong),
        ] {
            assert_eq!(parse(input), Err(err), "{input:?}");
        }
        // The 31-byte limit is in bytes, not characters.
        assert_eq!(Identity::string(&"é".repeat(16)), Err(TooLong));
        assert!(Identity::string(&"é".repeat(15)).is_ok());
        assert_eq!(Identity::bytes(&[]), Err(Malformed));
        assert_eq!(Identity::bytes(&[0; 33]), Err(TooLong));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn malformed_bytes_are_rejected() {
        use IdentityError::*;
        let mut mapped = vec![1, 18];
        mapped.extend_from_slice(&"::ffff:1.2.3.4".parse::<Ipv6Addr>().unwrap().octets());
        mapped.extend_from_slice(&[0, 5]);
        let cases: &[(&[u8], IdentityError)] = &[
            (&[], Truncated),
            (&[0], Truncated),
            (&[1, 6, 1, 2, 3, 4, 0], Truncated),
            (&[2, 3, b'a', b'b'], Truncated),
            (&[16, 8, 0, 0, 0, 0, 0, 0, 0], Truncated),
            (&[0, 1, 0], Malformed),
            (&[1, 5, 1, 2, 3, 4, 0], Malformed),
            (&[1, 0], Malformed),
            (&[1, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], Malformed),
            (&mapped, Malformed),
            (&[2, 0], Malformed),
            (&[2, 2, 0xc3, 0x28], Malformed),
            (&[2, 2, b'a', 0], Malformed),
            (&[2, 2, b'a', b'\n'], Malformed),
            (&[3, 0], Malformed),
            (&[16, 7, 0, 0, 0, 0, 0, 0, 0], Malformed),
            (&[16, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0], Malformed),
            (&[4, 0], UnknownKind),
            (&[17, 1, 0], UnknownKind),
            (&[255, 0], UnknownKind),
            (&[255, 255], Truncated),
        ];
        for (input, err) in cases {
            assert_eq!(Identity::decode(input).map(|(i, _)| i), Err(*err), "{input:?}");
        }
        let mut long = vec![2, 32];
        long.extend_from_slice(&[b'x'; 32]);
        assert_eq!(Identity::decode(&long).map(|(i, _)| i), Err(TooLong));
        let mut long = vec![3, 33];
        long.extend_from_slice(&[0; 33]);
        assert_eq!(Identity::decode(&long).map(|(i, _)| i), Err(TooLong));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn decode_never_panics_on_noise() {
        // Every 2-byte header over a short body, and a pseudo-random sweep of longer inputs:
        // whatever decodes must re-encode to exactly the bytes consumed.
        let mut rng = crate::rng::Rng::seeded(11);
        let mut buf = [0u8; 40];
        for i in 0..20_000u32 {
            rng.fill(&mut buf);
            if i < 256 * 40 {
                buf[0] = [0, 1, 2, 3, 4, 16, 255][(i % 7) as usize];
                buf[1] = (i / 7 % 40) as u8;
            }
            let len = (i as usize) % buf.len();
            if let Ok((id, used)) = Identity::decode(&buf[..len]) {
                let mut out = Vec::new();
                id.encode(&mut out);
                assert_eq!(out, &buf[..used]);
                assert_eq!(parse(&id.to_string()).unwrap(), id);
            }
        }
    }
}
