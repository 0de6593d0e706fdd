//! Config values: a typed table of names, types, defaults and ranges, with scopes.
//!
//! Values follow the reference's `SteamNetworkingConfigValue` set, with its real defaults where
//! they make sense (see `shared/reference/gns-notes.md` section 2). A value can be set on the
//! endpoint (global), on a listen socket (inherited by the connections it accepts) or on one
//! connection; a connection resolves its effective value through those layers when it is
//! created, and again whenever one of its own values changes. Fake-network values are global,
//! as in GNS: they drive the endpoint's link conditioner.

use crate::prelude::*;
use core::fmt;

/// The type of a config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// 32-bit float.
    Float,
    /// UTF-8 string.
    String,
}

/// Where a value may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigScope {
    /// Endpoint-wide only.
    Global,
    /// Endpoint, listen socket or connection.
    Connection,
}

/// A config value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// 32-bit integer.
    Int32(i32),
    /// 64-bit integer.
    Int64(i64),
    /// 32-bit float.
    Float(f32),
    /// String.
    String(String),
}

impl ConfigValue {
    /// The value's type.
    pub fn ty(&self) -> ConfigType {
        match self {
            ConfigValue::Int32(_) => ConfigType::Int32,
            ConfigValue::Int64(_) => ConfigType::Int64,
            ConfigValue::Float(_) => ConfigType::Float,
            ConfigValue::String(_) => ConfigType::String,
        }
    }
    fn as_f64(&self) -> Option<f64> {
        match *self {
            ConfigValue::Int32(v) => Some(f64::from(v)),
            ConfigValue::Int64(v) => Some(v as f64),
            ConfigValue::Float(v) => Some(f64::from(v)),
            ConfigValue::String(_) => None,
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Int32(v) => write!(f, "{v}"),
            ConfigValue::Int64(v) => write!(f, "{v}"),
            ConfigValue::Float(v) => write!(f, "{v}"),
            ConfigValue::String(v) => write!(f, "{v:?}"),
        }
    }
}

/// Why a config value was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// No config value has that name.
    UnknownName(String),
    /// The value's type is not the key's type (types must match exactly, as in GNS).
    WrongType {
        /// The key.
        key: ConfigKey,
        /// Its type.
        expected: ConfigType,
    },
    /// The value is outside the key's range.
    OutOfRange {
        /// The key.
        key: ConfigKey,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// The key is global and cannot be set on a listen socket or connection.
    WrongScope(ConfigKey),
    /// A value that could not be parsed from text.
    Unparsable {
        /// The key.
        key: ConfigKey,
        /// The text.
        text: String,
    },
    /// The handle given does not name a live object.
    InvalidHandle,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownName(n) => write!(f, "unknown config value {n:?}"),
            ConfigError::WrongType { key, expected } => {
                write!(f, "config value {} takes {expected:?}", key.name())
            }
            ConfigError::OutOfRange { key, min, max } => {
                write!(f, "config value {} must be in [{min}, {max}]", key.name())
            }
            ConfigError::WrongScope(key) => {
                write!(f, "config value {} is global: set it on the endpoint", key.name())
            }
            ConfigError::Unparsable { key, text } => {
                write!(f, "config value {}: cannot parse {text:?}", key.name())
            }
            ConfigError::InvalidHandle => f.write_str("invalid handle"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Static description of one key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigInfo {
    /// The key.
    pub key: ConfigKey,
    /// Its name, as in the reference (`"SendRateMax"`).
    pub name: &'static str,
    /// Its type.
    pub ty: ConfigType,
    /// Where it may be set.
    pub scope: ConfigScope,
    /// Default (as a number; 0 for strings, whose default is empty).
    pub default: f64,
    /// Smallest allowed.
    pub min: f64,
    /// Largest allowed.
    pub max: f64,
}

impl ConfigInfo {
    /// One line of documentation with the unit (see [`ConfigKey::doc`]).
    pub fn doc(&self) -> &'static str {
        self.key.doc()
    }
}

macro_rules! config_table {
    ($( $key:ident = ($ty:ident, $scope:ident, $default:expr, $min:expr, $max:expr, $doc:literal); )*) => {
        /// Every config value.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ConfigKey {
            $( #[doc = $doc] $key, )*
        }

        impl fmt::Debug for ConfigKey {
            /// The variant's name, as a derived `Debug` prints it, from the table's names (a
            /// derived impl would carry a second copy of every name).
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ConfigKey {
            /// One line of documentation with the unit. Kept out of [`CONFIG_TABLE`] so that a
            /// program that never shows it (the browser package) does not carry the text.
            pub fn doc(self) -> &'static str {
                match self {
                    $( ConfigKey::$key => $doc, )*
                }
            }
        }

        /// The table: name, type, scope, default and range of every key (documentation:
        /// [`ConfigKey::doc`]).
        pub static CONFIG_TABLE: &[ConfigInfo] = &[
            $( ConfigInfo {
                key: ConfigKey::$key,
                name: stringify!($key),
                ty: ConfigType::$ty,
                scope: ConfigScope::$scope,
                default: $default as f64,
                min: $min as f64,
                max: $max as f64,
            }, )*
        ];
    };
}

const MIB: i64 = 1024 * 1024;

config_table! {
    TimeoutInitial = (Int32, Connection, 10_000, 0, i32::MAX, "Milliseconds a connection may spend connecting (or waiting to be accepted) before it fails.");
    TimeoutConnected = (Int32, Connection, 10_000, 0, i32::MAX, "Milliseconds of silence from the peer after which a connected connection fails.");
    SendBufferSize = (Int32, Connection, 512 * 1024, 4096, 256 * MIB, "Bytes of unsent messages a connection may queue; beyond it sends fail with LimitExceeded.");
    RecvBufferSize = (Int32, Connection, 4 * MIB, 4096, 256 * MIB, "Flow control: bytes of received, unread reliable data each lane may hold (at least 1 MiB; the connection twice that); the sender never sends beyond it. Unreliable messages are dropped while this much is unread.");
    RecvBufferMessages = (Int32, Connection, 1000, 2, 256 * MIB, "Count of received, unread messages; beyond it incoming data is refused (the peer retransmits).");
    RecvMaxMessageSize = (Int32, Connection, 512 * 1024, 64, 256 * MIB, "Largest message accepted from the peer; a bigger one is a protocol error.");
    RecvMaxSegmentsPerPacket = (Int32, Connection, 1300, 1, 1300, "Most message segments decoded from one packet (anti-abuse).");
    SendRateMin = (Int32, Connection, 16 * 1024, 1024, i32::MAX, "Lower bound of the send rate the congestion controller chooses, bytes per second.");
    SendRateMax = (Int32, Connection, i32::MAX, 1024, i32::MAX, "Upper bound of the send rate, bytes per second. Equal to SendRateMin, the rate is fixed and no congestion window applies (the reference's behaviour).");
    CongestionControl = (Int32, Connection, 0, 0, 2, "0: BBR-family, model-based (paces at the measured bandwidth, short queues, tolerates a few percent of random loss); 1: NewReno, loss-based; 2: none, always SendRateMax.");
    NagleTime = (Int32, Connection, 5000, 0, 20_000, "Microseconds a small message may wait to be coalesced with others.");
    MtuPacketSize = (Int32, Connection, 1452, 200, 1500, "Largest datagram sent, in bytes (headers of IP and UDP excluded). Path MTU discovery starts at 1200 and probes up to it; over WebRTC the data channel's limit applies.");
    ConnectionUserData = (Int64, Connection, -1, i64::MIN, i64::MAX, "Application data bound to a connection when it is created.");
    Unencrypted = (Int32, Connection, 0, 0, 3, "0: encryption required; 1: allowed, prefer encrypted; 2: allowed, prefer plaintext; 3: plaintext required. Plaintext only when both sides allow it.");
    IpAllowWithoutAuth = (Int32, Connection, 2, 0, 2, "0: peers must present a certificate signed by a trusted CA; 1: allow unauthenticated peers with a warning; 2: allow them silently.");
    SymmetricConnect = (Int32, Connection, 0, 0, 1, "P2P only: simultaneous connects between two peers on one virtual port merge into one connection.");
    LocalVirtualPort = (Int32, Connection, -1, -1, i32::MAX, "P2P only: the local virtual port of an outgoing connection (-1: same as the remote port).");
    FakePacketLossSend = (Float, Global, 0, 0, 100, "Percent of outgoing packets the link conditioner drops.");
    FakePacketLossRecv = (Float, Global, 0, 0, 100, "Percent of incoming packets the link conditioner drops.");
    FakePacketLagSend = (Int32, Global, 0, 0, 5000, "Milliseconds of delay added to outgoing packets.");
    FakePacketLagRecv = (Int32, Global, 0, 0, 5000, "Milliseconds of delay added to incoming packets.");
    FakePacketReorderSend = (Float, Global, 0, 0, 100, "Percent of outgoing packets delayed by FakePacketReorderTime (and so reordered).");
    FakePacketReorderRecv = (Float, Global, 0, 0, 100, "Percent of incoming packets delayed by FakePacketReorderTime (and so reordered).");
    FakePacketReorderTime = (Int32, Global, 15, 0, 5000, "Milliseconds of extra delay for reordered packets.");
    FakePacketDupSend = (Float, Global, 0, 0, 100, "Percent of outgoing packets duplicated.");
    FakePacketDupRecv = (Float, Global, 0, 0, 100, "Percent of incoming packets duplicated.");
    FakePacketDupTimeMax = (Int32, Global, 10, 0, 5000, "A duplicate arrives up to this many milliseconds after the original.");
    FakePacketJitterSendAvg = (Float, Global, 0, 0, 2000, "Mean milliseconds of random extra delay on outgoing packets (jitter never reorders).");
    FakePacketJitterRecvAvg = (Float, Global, 0, 0, 2000, "Mean milliseconds of random extra delay on incoming packets.");
    FakePacketJitterSendMax = (Float, Global, 100, 0, 5000, "Cap on outgoing jitter, milliseconds.");
    FakePacketJitterRecvMax = (Float, Global, 100, 0, 5000, "Cap on incoming jitter, milliseconds.");
    FakePacketJitterSendPct = (Float, Global, 75, 0, 100, "Percent of outgoing packets that get jitter.");
    FakePacketJitterRecvPct = (Float, Global, 75, 0, 100, "Percent of incoming packets that get jitter.");
    FakeRateLimitSendRate = (Int32, Global, 0, 0, 1024 * MIB, "Outgoing bandwidth limit of the conditioner, bytes per second (0: off).");
    FakeRateLimitRecvRate = (Int32, Global, 0, 0, 1024 * MIB, "Incoming bandwidth limit of the conditioner, bytes per second (0: off).");
    FakeRateLimitSendBurst = (Int32, Global, 16384, 0, MIB, "Bytes the outgoing rate limiter may queue.");
    FakeRateLimitRecvBurst = (Int32, Global, 16384, 0, MIB, "Bytes the incoming rate limiter may queue.");
    P2PStunServerList = (String, Connection, 0, 0, 0, "Comma-separated STUN servers (host:port) for P2P connections.");
    P2PTurnServerList = (String, Connection, 0, 0, 0, "Comma-separated TURN servers for P2P connections.");
    P2PTurnUserList = (String, Connection, 0, 0, 0, "Comma-separated TURN user names, one per TURN server.");
    P2PTurnPassList = (String, Connection, 0, 0, 0, "Comma-separated TURN passwords, one per TURN server.");
    P2PTransportIceEnable = (Int32, Connection, 0x7fff_ffff, 0, 0x7fff_ffff, "Bitmask of ICE candidate kinds to use: 1 relay, 2 private, 4 public (all by default; 1 alone is relay-only).");
}

impl ConfigKey {
    /// The key's static description.
    pub fn info(self) -> &'static ConfigInfo {
        // The table is generated from the enum in declaration order.
        &CONFIG_TABLE[self as usize]
    }
    /// The key's name.
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// Looks a key up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<ConfigKey> {
        CONFIG_TABLE.iter().find(|i| i.name.eq_ignore_ascii_case(name)).map(|i| i.key)
    }
    /// Every key.
    pub fn all() -> impl Iterator<Item = ConfigKey> {
        CONFIG_TABLE.iter().map(|i| i.key)
    }
    /// The default value.
    pub fn default_value(self) -> ConfigValue {
        let i = self.info();
        match i.ty {
            ConfigType::Int32 => ConfigValue::Int32(i.default as i32),
            ConfigType::Int64 => ConfigValue::Int64(i.default as i64),
            ConfigType::Float => ConfigValue::Float(i.default as f32),
            ConfigType::String => ConfigValue::String(String::new()),
        }
    }
    /// Checks a value against the key's type and range.
    pub fn validate(self, v: &ConfigValue) -> Result<(), ConfigError> {
        let i = self.info();
        if v.ty() != i.ty {
            return Err(ConfigError::WrongType { key: self, expected: i.ty });
        }
        if let Some(x) = v.as_f64()
            && !(x >= i.min && x <= i.max)
        {
            return Err(ConfigError::OutOfRange { key: self, min: i.min, max: i.max });
        }
        Ok(())
    }
    /// Parses text into a value of the key's type (for command lines and the JS API).
    pub fn parse_value(self, text: &str) -> Result<ConfigValue, ConfigError> {
        let bad = || ConfigError::Unparsable { key: self, text: text.to_string() };
        let t = text.trim();
        let v = match self.info().ty {
            ConfigType::Int32 => ConfigValue::Int32(t.parse().map_err(|_| bad())?),
            ConfigType::Int64 => ConfigValue::Int64(t.parse().map_err(|_| bad())?),
            ConfigType::Float => ConfigValue::Float(t.parse().map_err(|_| bad())?),
            ConfigType::String => ConfigValue::String(text.to_string()),
        };
        self.validate(&v)?;
        Ok(v)
    }
}

/// A set of overrides at one scope. Unset keys inherit from the scope above.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    values: Vec<(ConfigKey, ConfigValue)>,
}

impl Config {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets a value after checking type and range.
    pub fn set(&mut self, key: ConfigKey, value: ConfigValue) -> Result<(), ConfigError> {
        key.validate(&value)?;
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
        Ok(())
    }
    /// Builder form of [`Config::set`].
    pub fn with(mut self, key: ConfigKey, value: ConfigValue) -> Result<Self, ConfigError> {
        self.set(key, value)?;
        Ok(self)
    }
    /// Sets an `Int32` value.
    pub fn set_i32(&mut self, key: ConfigKey, v: i32) -> Result<(), ConfigError> {
        self.set(key, ConfigValue::Int32(v))
    }
    /// Sets a `Float` value.
    pub fn set_f32(&mut self, key: ConfigKey, v: f32) -> Result<(), ConfigError> {
        self.set(key, ConfigValue::Float(v))
    }
    /// Removes an override (the value is inherited again).
    pub fn unset(&mut self, key: ConfigKey) {
        self.values.retain(|(k, _)| *k != key);
    }
    /// The override for `key`, if any.
    pub fn get(&self, key: ConfigKey) -> Option<&ConfigValue> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// Every override.
    pub fn iter(&self) -> impl Iterator<Item = (ConfigKey, &ConfigValue)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
    /// Refuses global keys (for listen-socket and connection scopes).
    pub fn check_connection_scope(&self) -> Result<(), ConfigError> {
        match self.values.iter().find(|(k, _)| k.info().scope == ConfigScope::Global) {
            Some((k, _)) => Err(ConfigError::WrongScope(*k)),
            None => Ok(()),
        }
    }
}

/// Resolves a key through layers, most specific first, falling back to the default.
pub fn resolve(layers: &[&Config], key: ConfigKey) -> ConfigValue {
    layers.iter().find_map(|c| c.get(key)).cloned().unwrap_or_else(|| key.default_value())
}

fn resolve_i64(layers: &[&Config], key: ConfigKey) -> i64 {
    match resolve(layers, key) {
        ConfigValue::Int32(v) => i64::from(v),
        ConfigValue::Int64(v) => v,
        ConfigValue::Float(v) => v as i64,
        ConfigValue::String(_) => 0,
    }
}

fn resolve_f64(layers: &[&Config], key: ConfigKey) -> f64 {
    match resolve(layers, key) {
        ConfigValue::Int32(v) => f64::from(v),
        ConfigValue::Int64(v) => v as f64,
        ConfigValue::Float(v) => f64::from(v),
        ConfigValue::String(_) => 0.0,
    }
}

/// A connection's effective configuration, resolved into typed fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionConfig {
    /// See [`ConfigKey::TimeoutInitial`].
    pub timeout_initial: core::time::Duration,
    /// See [`ConfigKey::TimeoutConnected`].
    pub timeout_connected: core::time::Duration,
    /// See [`ConfigKey::SendBufferSize`].
    pub send_buffer_size: usize,
    /// See [`ConfigKey::RecvBufferSize`].
    pub recv_buffer_size: usize,
    /// See [`ConfigKey::RecvBufferMessages`].
    pub recv_buffer_messages: usize,
    /// See [`ConfigKey::RecvMaxMessageSize`].
    pub recv_max_message_size: usize,
    /// See [`ConfigKey::RecvMaxSegmentsPerPacket`].
    pub recv_max_segments_per_packet: usize,
    /// See [`ConfigKey::SendRateMin`].
    pub send_rate_min: u64,
    /// See [`ConfigKey::SendRateMax`] (never below `send_rate_min`).
    pub send_rate_max: u64,
    /// See [`ConfigKey::CongestionControl`].
    pub congestion_control: u8,
    /// See [`ConfigKey::NagleTime`].
    pub nagle_time: core::time::Duration,
    /// See [`ConfigKey::MtuPacketSize`].
    pub mtu: usize,
    /// See [`ConfigKey::ConnectionUserData`].
    pub user_data: i64,
    /// See [`ConfigKey::Unencrypted`].
    pub unencrypted: u8,
    /// See [`ConfigKey::IpAllowWithoutAuth`].
    pub allow_without_auth: u8,
    /// See [`ConfigKey::SymmetricConnect`].
    pub symmetric_connect: bool,
}

impl ConnectionConfig {
    /// Resolves the typed configuration through `layers` (most specific first).
    pub fn resolve(layers: &[&Config]) -> Self {
        use core::time::Duration;
        let ms = |k| Duration::from_millis(resolve_i64(layers, k).max(0) as u64);
        let n = |k| resolve_i64(layers, k).max(0) as usize;
        let min = resolve_i64(layers, ConfigKey::SendRateMin).max(1) as u64;
        let max = (resolve_i64(layers, ConfigKey::SendRateMax).max(1) as u64).max(min);
        ConnectionConfig {
            timeout_initial: ms(ConfigKey::TimeoutInitial),
            timeout_connected: ms(ConfigKey::TimeoutConnected),
            send_buffer_size: n(ConfigKey::SendBufferSize),
            recv_buffer_size: n(ConfigKey::RecvBufferSize),
            recv_buffer_messages: n(ConfigKey::RecvBufferMessages),
            recv_max_message_size: n(ConfigKey::RecvMaxMessageSize),
            recv_max_segments_per_packet: n(ConfigKey::RecvMaxSegmentsPerPacket),
            send_rate_min: min,
            send_rate_max: max,
            congestion_control: resolve_i64(layers, ConfigKey::CongestionControl).clamp(0, 2) as u8,
            nagle_time: Duration::from_micros(
                resolve_i64(layers, ConfigKey::NagleTime).max(0) as u64
            ),
            mtu: n(ConfigKey::MtuPacketSize),
            user_data: resolve_i64(layers, ConfigKey::ConnectionUserData),
            unencrypted: resolve_i64(layers, ConfigKey::Unencrypted) as u8,
            allow_without_auth: resolve_i64(layers, ConfigKey::IpAllowWithoutAuth) as u8,
            symmetric_connect: resolve_i64(layers, ConfigKey::SymmetricConnect) != 0,
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self::resolve(&[])
    }
}

/// The link conditioner settings resolved from the global fake-network values, for one
/// direction.
pub fn conditioner_config(global: &Config, send: bool) -> crate::link::LinkConfig {
    use ConfigKey::*;
    use core::time::Duration;
    let g = [global];
    let pick = |s, r| if send { s } else { r };
    let ms_f = |k| Duration::from_micros((resolve_f64(&g, k) * 1000.0).max(0.0) as u64);
    let ms_i = |k| Duration::from_millis(resolve_i64(&g, k).max(0) as u64);
    let pct = |k| (resolve_f64(&g, k) / 100.0).clamp(0.0, 1.0);
    let rate = resolve_i64(&g, pick(FakeRateLimitSendRate, FakeRateLimitRecvRate)).max(0) as u64;
    crate::link::LinkConfig {
        latency: ms_i(pick(FakePacketLagSend, FakePacketLagRecv)),
        jitter_avg: ms_f(pick(FakePacketJitterSendAvg, FakePacketJitterRecvAvg)),
        jitter_max: ms_f(pick(FakePacketJitterSendMax, FakePacketJitterRecvMax)),
        jitter_pct: pct(pick(FakePacketJitterSendPct, FakePacketJitterRecvPct)),
        loss: pct(pick(FakePacketLossSend, FakePacketLossRecv)),
        burst_loss: None,
        duplicate: pct(pick(FakePacketDupSend, FakePacketDupRecv)),
        duplicate_delay_max: ms_i(FakePacketDupTimeMax),
        reorder: pct(pick(FakePacketReorderSend, FakePacketReorderRecv)),
        reorder_delay: ms_i(FakePacketReorderTime),
        rate,
        queue_bytes: resolve_i64(&g, pick(FakeRateLimitSendBurst, FakeRateLimitRecvBurst)).max(0)
            as usize,
        mtu: usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn table_is_consistent() {
        for (i, info) in CONFIG_TABLE.iter().enumerate() {
            assert_eq!(info.key as usize, i);
            assert_eq!(ConfigKey::from_name(info.name), Some(info.key));
            assert_eq!(format!("{:?}", info.key), info.name);
            assert!(info.doc().ends_with('.'), "{} doc", info.name);
            assert!(
                info.key.validate(&info.key.default_value()).is_ok(),
                "{} default out of range",
                info.name
            );
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn layered_resolution_and_errors() {
        let mut global = Config::new();
        global.set_i32(ConfigKey::NagleTime, 1000).unwrap();
        global.set_i32(ConfigKey::SendRateMax, 1_000_000).unwrap();
        let mut listen = Config::new();
        listen.set_i32(ConfigKey::NagleTime, 0).unwrap();
        let c = ConnectionConfig::resolve(&[&listen, &global]);
        assert_eq!(c.nagle_time, core::time::Duration::ZERO);
        assert_eq!(c.send_rate_max, 1_000_000);
        assert_eq!(c.send_rate_min, 16 * 1024);
        assert_eq!(c.congestion_control, 0);
        assert_eq!(c.timeout_initial, core::time::Duration::from_secs(10));
        assert_eq!(
            global.set_i32(ConfigKey::NagleTime, 30_000),
            Err(ConfigError::OutOfRange { key: ConfigKey::NagleTime, min: 0.0, max: 20_000.0 })
        );
        assert!(matches!(
            global.set_f32(ConfigKey::NagleTime, 1.0),
            Err(ConfigError::WrongType { .. })
        ));
        assert!(ConfigKey::FakePacketLossSend.parse_value("abc").is_err());
        assert_eq!(ConfigKey::FakePacketLossSend.parse_value("12.5"), Ok(ConfigValue::Float(12.5)));
        let mut conn = Config::new();
        conn.set_f32(ConfigKey::FakePacketLossSend, 5.0).unwrap();
        assert_eq!(
            conn.check_connection_scope(),
            Err(ConfigError::WrongScope(ConfigKey::FakePacketLossSend))
        );
        assert!(
            ConfigError::WrongScope(ConfigKey::FakePacketLossSend).to_string().contains("global")
        );
    }
}
