//! Server configuration: where to listen, how clients prove their identity, and the limits that
//! keep one client from hurting the others.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The shortest secret the server accepts, in bytes. 16 random bytes (128 bits) put brute force
/// of the HMAC key out of reach; a shorter secret is more likely a typo or a placeholder.
pub const MIN_SECRET_LEN: usize = 16;

/// How clients prove the identity they register.
#[derive(Clone)]
pub enum Auth {
    /// A client registers an identity only with a token for it signed with this secret (see
    /// [`crate::token`]). At least [`MIN_SECRET_LEN`] bytes.
    Secret(Vec<u8>),
    /// Any client may register any identity, no token needed. For local demos only: anyone who
    /// can reach the server can impersonate anyone. The server logs a warning at start.
    DevInsecure,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Never print the secret.
            Self::Secret(s) => write!(f, "Secret(<{} bytes>)", s.len()),
            Self::DevInsecure => f.write_str("DevInsecure"),
        }
    }
}

/// Everything [`crate::Server::bind`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port; read it back with
    /// [`crate::RunningServer::local_addr`].
    pub bind: SocketAddr,
    /// How clients prove their identity.
    pub auth: Auth,
    /// Serve the files of this directory over HTTP GET (the demo page and its wasm), with
    /// `index.html` for directories. `None`: no static files.
    pub static_dir: Option<PathBuf>,
    /// Per-client and global limits.
    pub limits: Limits,
    /// Join other instances through Redis (feature `redis`). `None`: a single process that
    /// holds its registry in memory and never talks to Redis.
    #[cfg(feature = "redis")]
    pub cluster: Option<crate::ClusterConfig>,
    /// Mint TURN credentials for every registered client (coturn's `use-auth-secret`).
    /// `None`: the `registered` message carries no ICE servers.
    pub turn: Option<TurnConfig>,
}

/// Time-limited TURN credentials, the "TURN REST API" scheme of coturn's `use-auth-secret`
/// (`static-auth-secret` on the TURN server): username `<expiry unix time>:<identity>`,
/// password base64(HMAC-SHA1(secret, username)). The TURN server checks the MAC and the
/// expiry itself; the secret never leaves the two servers. See [`crate::turn`].
#[derive(Clone)]
pub struct TurnConfig {
    /// The secret shared with the TURN server (`static-auth-secret`). At least
    /// [`MIN_SECRET_LEN`] bytes.
    pub secret: Vec<u8>,
    /// The TURN server URLs clients get, like `turn:turn.example.com:3478?transport=udp` or
    /// `turns:turn.example.com:5349`. At least one.
    pub urls: Vec<String>,
    /// How long minted credentials stay valid. TURN servers check the expiry on every
    /// authenticated request (allocation refreshes included), so this bounds how long one
    /// relayed connection can last without the client registering again. Default 24 h.
    pub ttl: Duration,
}

impl TurnConfig {
    /// The default lifetime of minted credentials.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

    fn validate(&self) -> Result<(), String> {
        if self.secret.len() < MIN_SECRET_LEN {
            return Err(format!("the TURN secret must be at least {MIN_SECRET_LEN} bytes"));
        }
        if self.urls.is_empty() {
            return Err("TURN credentials need at least one TURN URL".into());
        }
        for url in &self.urls {
            let scheme_ok =
                ["turn:", "turns:", "stun:", "stuns:"].iter().any(|s| url.starts_with(s));
            if !scheme_ok || url.len() > 512 || url.chars().any(char::is_control) {
                return Err(format!("{url:?} is not a turn:, turns:, stun: or stuns: URL"));
            }
        }
        if self.ttl.is_zero() {
            return Err("the TURN credential lifetime must be positive".into());
        }
        Ok(())
    }
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("urls", &self.urls)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Config {
    /// A configuration with default [`Limits`] and no static files.
    pub fn new(bind: SocketAddr, auth: Auth) -> Self {
        Self {
            bind,
            auth,
            static_dir: None,
            limits: Limits::default(),
            #[cfg(feature = "redis")]
            cluster: None,
            turn: None,
        }
    }
}

/// Limits. The defaults suit a public server; every one can be raised or lowered.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame (or fragmented message) a client may send, in bytes. Larger ones get
    /// an `frame_too_large` error and the connection is closed, because the rest of the frame
    /// would have to be read to carry on.
    ///
    /// Default 64 KiB: an SDP offer is 1-6 KB, a candidate about 200 B, so this is ten times
    /// the largest real message, and 10 000 clients each holding a full frame is 640 MiB at
    /// worst.
    pub max_frame_bytes: usize,
    /// Messages per second a client may send, sustained (token bucket refill rate). Frames over
    /// the limit are dropped with a `rate_limited` error (at most one such error per second).
    ///
    /// Default 50/s: a client needs a handful of messages per connection attempt after the
    /// initial burst (below), so 50/s is far above honest use and still bounds how much work one
    /// client causes.
    pub rate_per_sec: u32,
    /// Messages a client may send in a burst (token bucket capacity).
    ///
    /// Default 200: one connection attempt is an offer or answer plus trickled candidates,
    /// about 10-30 messages; a host accepting 8 players at once sends 8 x 25 = 200.
    pub rate_burst: u32,
    /// WebSocket clients connected at once (registered or not). One more gets a `server_full`
    /// error and is closed.
    ///
    /// Default 10 000: an idle client costs about 10 KiB (task, 4 KiB read buffer, registry
    /// entry), so 10 000 idle clients fit in about 100 MiB; scale out beyond that.
    pub max_clients: usize,
    /// TCP connections (WebSocket or plain HTTP) open at once from one IP address (IPv6: one
    /// /64 network, which is what one host usually gets). One more is answered `429` and
    /// closed at accept, before anything is read, and counted in
    /// `lanewire_signaling_ip_limit_rejections_total`.
    ///
    /// Default 64: a browser opens one signaling socket per tab and a game client one per
    /// process, so 64 leaves room for a household or a small office behind one NAT while one
    /// host cannot take the whole server. Loopback addresses are not counted unless
    /// [`Limits::cap_loopback`] is set: a reverse proxy on the same host (the usual TLS setup)
    /// connects from loopback for every client. Behind a proxy on another host every client
    /// has the proxy's address: raise the cap there and let the proxy enforce its own.
    pub max_connections_per_ip: usize,
    /// Apply [`Limits::max_connections_per_ip`] to loopback addresses too (tests, or a server
    /// reached only from the same host). Default false.
    pub cap_loopback: bool,
    /// Time from the TCP connection to a successful `register`. After it the client gets a
    /// `registration_timeout` error and is closed.
    ///
    /// Default 5 s: an honest client registers within one round trip of connecting; 5 s
    /// allows slow mobile links and still frees slots held by idle sockets quickly.
    pub registration_timeout: Duration,
    /// Interval between the server's WebSocket pings.
    ///
    /// Default 20 s: load balancers and NATs drop idle TCP flows after 30-60 s (nginx's
    /// `proxy_read_timeout` and AWS ALB both default to 60 s); 20 s keeps them open with
    /// margin for one lost ping.
    pub ping_interval: Duration,
    /// A client from which nothing (not even a pong) arrives for this long gets an
    /// `idle_timeout` error and is closed.
    ///
    /// Default 60 s: three ping intervals, so a client is dropped only after missing three
    /// pongs in a row. Browsers answer pings in the network stack, even in background tabs.
    pub idle_timeout: Duration,
    /// Bytes of relayed signals that may wait to be written to one client. When a client reads
    /// too slowly and its queue is full, signals to it are refused with `peer_busy` to their
    /// senders instead of buffering without bound.
    ///
    /// Default 256 KiB: four maximum-size frames, or a thousand candidates.
    pub max_queued_bytes: usize,
    /// Longest a write to one client may take. A client that does not read its socket for
    /// this long is disconnected, which frees its queue.
    ///
    /// Default 10 s.
    pub write_timeout: Duration,
    /// Longest the server waits for an HTTP request head (of a WebSocket upgrade or a plain
    /// GET) after a TCP connection opens.
    ///
    /// Default 10 s: generous for any real client, and bounds "slowloris" connections.
    pub http_timeout: Duration,
    /// On shutdown, how long connected clients get to receive their `shutting_down` error and
    /// close before their tasks are aborted.
    ///
    /// Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            rate_per_sec: 50,
            rate_burst: 200,
            max_clients: 10_000,
            max_connections_per_ip: 64,
            cap_loopback: false,
            registration_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_queued_bytes: 256 * 1024,
            write_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Checks the values that would make the server misbehave; the message names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Auth::Secret(secret) = &self.auth
            && secret.len() < MIN_SECRET_LEN
        {
            return Err(format!(
                "the token secret must be at least {MIN_SECRET_LEN} bytes (got {})",
                secret.len()
            ));
        }
        #[cfg(feature = "redis")]
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        let l = &self.limits;
        // A `registered` reply with the longest identity is about 250 bytes; 1 KiB leaves room
        // for any real register message.
        if l.max_frame_bytes < 1024 {
            return Err("limits.max_frame_bytes must be at least 1024".into());
        }
        if l.max_queued_bytes < l.max_frame_bytes {
            return Err("limits.max_queued_bytes must be at least limits.max_frame_bytes".into());
        }
        if u32::try_from(l.max_queued_bytes).is_err() {
            return Err("limits.max_queued_bytes must fit in 32 bits".into());
        }
        if l.rate_per_sec == 0 || l.rate_burst == 0 {
            return Err("limits.rate_per_sec and limits.rate_burst must be positive".into());
        }
        if l.max_clients == 0 {
            return Err("limits.max_clients must be positive".into());
        }
        if l.max_connections_per_ip == 0 {
            return Err("limits.max_connections_per_ip must be positive".into());
        }
        if let Some(turn) = &self.turn {
            turn.validate()?;
        }
        for (name, d) in [
            ("registration_timeout", l.registration_timeout),
            ("ping_interval", l.ping_interval),
            ("idle_timeout", l.idle_timeout),
            ("write_timeout", l.write_timeout),
            ("http_timeout", l.http_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("limits.{name} must be positive"));
            }
        }
        Ok(())
    }
}
