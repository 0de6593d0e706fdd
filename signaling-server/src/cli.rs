//! The `lanewire-signaling` command line: `serve` (the default) runs the server, `token` mints a
//! development token. Parsed with clap; every `serve` flag can also come from an environment
//! variable `LANEWIRE_SIGNALING_<FLAG>` (listed by `--help`), the flag winning over the
//! variable. Each flag takes `--flag value` or `--flag=value`.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::{error, warn};
use tracing_subscriber::filter::Targets;

use crate::config::{Auth, Config, Limits, MIN_SECRET_LEN, TurnConfig};
use crate::protocol::Identity;
use crate::server::Server;

/// The environment variable the secret is read from by default.
pub const SECRET_ENV: &str = "LANEWIRE_SIGNALING_SECRET";

/// The environment variable `--redis-url` is read from.
pub const REDIS_URL_ENV: &str = "LANEWIRE_SIGNALING_REDIS_URL";

/// The environment variable `--turn-secret` is read from.
pub const TURN_SECRET_ENV: &str = "LANEWIRE_SIGNALING_TURN_SECRET";

/// The address the server listens on when `--bind` is not given.
pub const DEFAULT_BIND: &str = "127.0.0.1:8787";

#[derive(Parser, Debug)]
#[command(
    name = "lanewire-signaling",
    version,
    about = "WebRTC signaling server for Lanewire",
    long_about = "WebRTC signaling server for Lanewire.\n\n\
        Runs the server (`serve`, the default) or mints a development token (`token`). Every \
        serve option can also be set through the environment variable shown with it; a flag \
        on the command line wins. The first stdout line is `listening on ADDR`; logs go to \
        stderr.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    serve: ServeOpts,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Run the server (the default when no subcommand is given).
    Serve(Box<ServeOpts>),
    /// Print a token for an identity, signed with the secret.
    Token(TokenOpts),
}

#[derive(Args, Debug, Clone)]
struct SecretOpts {
    /// Token secret. Visible in `ps`: prefer the environment (--secret-env).
    #[arg(long, value_name = "S", conflicts_with = "secret_env")]
    secret: Option<String>,
    /// Read the token secret from environment variable VAR [default: LANEWIRE_SIGNALING_SECRET].
    #[arg(long, value_name = "VAR")]
    secret_env: Option<String>,
}

#[derive(Args, Debug)]
struct ServeOpts {
    /// Listen address; port 0 picks a free one.
    #[arg(long, value_name = "ADDR", env = "LANEWIRE_SIGNALING_BIND", default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    #[command(flatten)]
    secret: SecretOpts,
    /// Accept any identity without a token (local demos ONLY).
    #[arg(long, env = "LANEWIRE_SIGNALING_DEV_INSECURE", conflicts_with_all = ["secret", "secret_env"])]
    dev_insecure: bool,
    /// Serve the files of DIR over HTTP GET.
    #[arg(long = "static", value_name = "DIR", env = "LANEWIRE_SIGNALING_STATIC")]
    static_dir: Option<PathBuf>,
    /// WebSocket clients at once.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_MAX_CLIENTS", default_value_t = Limits::default().max_clients)]
    max_clients: usize,
    /// TCP connections at once from one IP address (IPv6: one /64); more get 429 at accept.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_MAX_CONNECTIONS_PER_IP", default_value_t = Limits::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Count loopback connections against --max-connections-per-ip too (by default they are
    /// exempt: a reverse proxy on the same host connects from loopback for every client).
    #[arg(long, env = "LANEWIRE_SIGNALING_CAP_LOOPBACK")]
    cap_loopback: bool,
    /// Largest frame a client may send, in bytes.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Messages/s per client, sustained.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_RATE", default_value_t = Limits::default().rate_per_sec)]
    rate: u32,
    /// Messages per client in a burst.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_BURST", default_value_t = Limits::default().rate_burst)]
    burst: u32,
    /// Relayed bytes waiting per client.
    #[arg(long, value_name = "N", env = "LANEWIRE_SIGNALING_MAX_QUEUED_BYTES", default_value_t = Limits::default().max_queued_bytes)]
    max_queued_bytes: usize,
    /// Seconds from connecting to a successful register.
    #[arg(long, value_name = "SECS", env = "LANEWIRE_SIGNALING_REGISTRATION_TIMEOUT", default_value_t = Limits::default().registration_timeout.as_secs())]
    registration_timeout: u64,
    /// Seconds between the server's pings.
    #[arg(long, value_name = "SECS", env = "LANEWIRE_SIGNALING_PING_INTERVAL", default_value_t = Limits::default().ping_interval.as_secs())]
    ping_interval: u64,
    /// Seconds without anything received before a client is dropped.
    #[arg(long, value_name = "SECS", env = "LANEWIRE_SIGNALING_IDLE_TIMEOUT", default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout: u64,
    /// Join the instances on this Redis (scale-out), like redis://10.0.0.5:6379/0.
    #[arg(long, value_name = "URL", env = REDIS_URL_ENV, hide_env_values = true)]
    redis_url: Option<String>,
    /// Prefix of the Redis keys and channels, to share one Redis between deployments.
    #[arg(
        long,
        value_name = "PREFIX",
        env = "LANEWIRE_SIGNALING_REDIS_PREFIX",
        default_value = "lw:",
        requires = "redis_url"
    )]
    redis_prefix: String,
    /// Secret shared with the TURN server (coturn `static-auth-secret`): every registered
    /// client gets time-limited TURN credentials.
    #[arg(long, value_name = "S", env = TURN_SECRET_ENV, hide_env_values = true, requires = "turn_url")]
    turn_secret: Option<String>,
    /// TURN server URL handed to clients with the credentials, like
    /// turn:turn.example.com:3478 (repeatable; comma-separated in the environment).
    #[arg(
        long,
        value_name = "URL",
        env = "LANEWIRE_SIGNALING_TURN_URL",
        value_delimiter = ',',
        requires = "turn_secret"
    )]
    turn_url: Vec<String>,
    /// Lifetime of the TURN credentials, in seconds.
    #[arg(long, value_name = "SECS", env = "LANEWIRE_SIGNALING_TURN_TTL", default_value_t = TurnConfig::DEFAULT_TTL.as_secs())]
    turn_ttl: u64,
    /// Log filter, like `info`, `debug`, `lanewire_signaling=debug` [default: $RUST_LOG, else info].
    #[arg(long, value_name = "FILTER", env = "LANEWIRE_SIGNALING_LOG")]
    log: Option<String>,
    /// Log format on stderr.
    #[arg(
        long,
        value_name = "FORMAT",
        env = "LANEWIRE_SIGNALING_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct TokenOpts {
    /// Identity to sign, like str:alice.
    #[arg(long, value_name = "ID")]
    identity: Identity,
    /// Lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretOpts,
}

/// A parsed command line.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Print a token.
    Token {
        /// Secret to sign with.
        secret: Vec<u8>,
        /// Identity to sign.
        identity: Identity,
        /// Lifetime.
        ttl: Duration,
    },
    /// Print this text (the help or the version) on stdout and exit successfully.
    Print(String),
}

/// What `serve` needs beyond the [`Config`].
#[derive(Debug)]
pub struct ServeArgs {
    /// The server configuration.
    pub config: Config,
    /// Log filter (tracing-subscriber `Targets` syntax).
    pub log: String,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
}

/// A command-line error, printed as is (clap's message with a usage hint, or ours).
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage_err(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Resolves the secret: `--secret`, else `--secret-env VAR`, else [`SECRET_ENV`].
fn read_secret(
    opts: SecretOpts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<u8>>, UsageError> {
    let secret = match (opts.secret, opts.secret_env) {
        (Some(s), _) => Some(s),
        (None, Some(var)) => Some(
            env(&var).ok_or_else(|| usage_err(format!("environment variable {var} is not set")))?,
        ),
        (None, None) => env(SECRET_ENV),
    };
    match secret {
        Some(s) if s.len() < MIN_SECRET_LEN => Err(usage_err(format!(
            "the secret must be at least {MIN_SECRET_LEN} bytes; generate one with \
             `openssl rand -hex 32`"
        ))),
        Some(s) => Ok(Some(s.into_bytes())),
        None => Ok(None),
    }
}

/// Parses the arguments after the program name. `env` looks up the secret's environment
/// variables (`--secret-env`, [`SECRET_ENV`]) and `RUST_LOG`; the `LANEWIRE_SIGNALING_*`
/// variables of the other flags are read by clap from the process environment.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let argv = std::iter::once("lanewire-signaling".to_owned()).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Command::Print(e.render().to_string()))
                }
                _ => Err(usage_err(e.render().to_string().trim_end())),
            };
        }
    };
    match cli.command {
        None => serve_command(cli.serve, env),
        Some(Sub::Serve(opts)) => serve_command(*opts, env),
        Some(Sub::Token(opts)) => {
            let secret = read_secret(opts.secret, env)?.ok_or_else(|| {
                usage_err(format!("no secret: pass --secret-env VAR or set {SECRET_ENV}"))
            })?;
            Ok(Command::Token {
                secret,
                identity: opts.identity,
                ttl: Duration::from_secs(opts.ttl),
            })
        }
    }
}

fn serve_command(
    o: ServeOpts,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let auth = if o.dev_insecure {
        Auth::DevInsecure
    } else {
        match read_secret(o.secret, env)? {
            Some(s) => Auth::Secret(s),
            None => {
                return Err(usage_err(format!(
                    "no token secret: pass --secret-env VAR or set {SECRET_ENV} \
                     (or --dev-insecure for a local demo)"
                )));
            }
        }
    };
    let limits = Limits {
        max_clients: o.max_clients,
        max_connections_per_ip: o.max_connections_per_ip,
        cap_loopback: o.cap_loopback,
        max_frame_bytes: o.max_frame_bytes,
        rate_per_sec: o.rate,
        rate_burst: o.burst,
        max_queued_bytes: o.max_queued_bytes,
        registration_timeout: Duration::from_secs(o.registration_timeout),
        ping_interval: Duration::from_secs(o.ping_interval),
        idle_timeout: Duration::from_secs(o.idle_timeout),
        ..Limits::default()
    };
    let mut config = Config::new(o.bind, auth);
    config.static_dir = o.static_dir;
    config.limits = limits;
    #[cfg(feature = "redis")]
    {
        config.cluster = o.redis_url.map(|url| crate::ClusterConfig {
            key_prefix: o.redis_prefix,
            ..crate::ClusterConfig::new(url)
        });
    }
    #[cfg(not(feature = "redis"))]
    if o.redis_url.is_some() {
        return Err(usage_err("--redis-url needs a server built with the `redis` feature"));
    }
    if let Some(secret) = o.turn_secret {
        if secret.len() < MIN_SECRET_LEN {
            return Err(usage_err(format!(
                "the TURN secret must be at least {MIN_SECRET_LEN} bytes"
            )));
        }
        config.turn = Some(TurnConfig {
            secret: secret.into_bytes(),
            urls: o.turn_url,
            ttl: Duration::from_secs(o.turn_ttl),
        });
    }
    let log = o.log.or_else(|| env("RUST_LOG")).unwrap_or_else(|| "info".into());
    let log_json = o.log_format == LogFormat::Json;
    Ok(Command::Serve(Box::new(ServeArgs { config, log, log_json })))
}

/// The binary's `main`: parses `std::env::args`, then runs the command.
pub fn main() -> ExitCode {
    let command = parse(std::env::args().skip(1), &|var| std::env::var(var).ok());
    match command {
        Err(e) => {
            if e.0.starts_with("error:") {
                eprintln!("{e}");
            } else {
                eprintln!("error: {e}\n\nRun `lanewire-signaling --help` for usage.");
            }
            ExitCode::from(2)
        }
        Ok(Command::Print(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Command::Token { secret, identity, ttl }) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            println!(
                "{}",
                crate::token::issue(&secret, &identity, now.saturating_add(ttl.as_secs()))
            );
            ExitCode::SUCCESS
        }
        Ok(Command::Serve(args)) => serve(*args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let filter = match Targets::from_str(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: --log {}: {e}", args.log);
            return ExitCode::from(2);
        }
    };
    // Logs go to stderr: stdout carries only the `listening on` line.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let init = if args.log_json {
        tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(builder.json().finish(), filter),
        )
    } else {
        tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(builder.finish(), filter),
        )
    };
    if let Err(e) = init {
        eprintln!("warning: logging not initialized: {e}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::bind(args.config).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "cannot start");
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "listening on {}", server.local_addr())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            warn!("stdout is closed; cannot print the listening address");
        }
        drop(stdout);
        wait_for_signal().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C or (on Unix) SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => warn!(error = %e, "cannot listen for SIGTERM"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without a signal handler the server would run forever unstoppable by Ctrl-C;
        // running until killed is the best we can do.
        warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const SECRET: &str = "0123456789abcdef";

    fn serve(line: &str) -> ServeArgs {
        match parse(args(line), &no_env) {
            Ok(Command::Serve(s)) => *s,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_needs_a_secret_or_dev_insecure() {
        let err = parse(args(""), &no_env).expect_err("no secret");
        assert!(err.0.contains("no token secret"), "{err}");
        let s = serve("--dev-insecure --bind 127.0.0.1:0");
        assert!(matches!(s.config.auth, Auth::DevInsecure));
        assert_eq!(s.config.bind.port(), 0);
        let env = |v: &str| (v == SECRET_ENV).then(|| SECRET.to_string());
        match parse(args("serve"), &env) {
            Ok(Command::Serve(s)) => {
                assert!(matches!(s.config.auth, Auth::Secret(ref b) if b == SECRET.as_bytes()))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(args("--dev-insecure --secret-env X"), &env).is_err());
        assert!(parse(args("serve --dev-insecure --secret-env X"), &env).is_err());
    }

    #[test]
    fn serve_options() {
        let line = format!(
            "--secret={SECRET} --static /tmp --max-clients 3 --max-frame-bytes=2048 --rate 5 \
             --burst 7 --registration-timeout 2 --ping-interval 3 --idle-timeout 9 --log debug \
             --log-format json --max-connections-per-ip 4 --cap-loopback"
        );
        let s = serve(&line);
        let l = &s.config.limits;
        assert_eq!(
            (l.max_clients, l.max_frame_bytes, l.rate_per_sec, l.rate_burst),
            (3, 2048, 5, 7)
        );
        assert_eq!(l.max_connections_per_ip, 4);
        assert!(l.cap_loopback);
        assert_eq!(l.registration_timeout, Duration::from_secs(2));
        assert_eq!(l.ping_interval, Duration::from_secs(3));
        assert_eq!(l.idle_timeout, Duration::from_secs(9));
        assert_eq!(s.config.static_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(s.log, "debug");
        assert!(s.log_json);
        // The same after `serve`.
        assert_eq!(serve(&format!("serve {line}")).config.limits.max_clients, 3);
        assert!(parse(args("--dev-insecure --nope"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --rate"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --rate x"), &no_env).is_err());
        assert!(parse(args("--dev-insecure=yes"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --log-format xml"), &no_env).is_err());
        assert!(parse(args("--secret short"), &no_env).is_err());
    }

    #[test]
    fn defaults_match_the_library() {
        let s = serve("--dev-insecure");
        let (l, d) = (&s.config.limits, Limits::default());
        assert_eq!(s.config.bind.to_string(), DEFAULT_BIND);
        assert_eq!(
            (l.max_clients, l.max_connections_per_ip, l.max_frame_bytes, l.max_queued_bytes),
            (d.max_clients, d.max_connections_per_ip, d.max_frame_bytes, d.max_queued_bytes)
        );
        assert_eq!((l.rate_per_sec, l.rate_burst), (d.rate_per_sec, d.rate_burst));
        assert_eq!(l.idle_timeout, d.idle_timeout);
        assert!(s.config.turn.is_none());
        assert!(!l.cap_loopback);
        assert!(!s.log_json);
    }

    #[test]
    fn turn_options() {
        let line = format!(
            "--dev-insecure --turn-secret {SECRET} --turn-url turn:127.0.0.1:3478 \
             --turn-url turns:t.example:5349 --turn-ttl 600"
        );
        let turn = serve(&line).config.turn.expect("turn");
        assert_eq!(turn.secret, SECRET.as_bytes());
        assert_eq!(turn.urls, ["turn:127.0.0.1:3478", "turns:t.example:5349"]);
        assert_eq!(turn.ttl, Duration::from_secs(600));
        // A secret needs a URL and the other way round; a short secret is refused.
        assert!(parse(args(&format!("--dev-insecure --turn-secret {SECRET}")), &no_env).is_err());
        assert!(parse(args("--dev-insecure --turn-url turn:x"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --turn-secret s --turn-url turn:x"), &no_env).is_err());
    }

    #[test]
    fn help_and_version_are_printed() {
        for flag in ["--help", "-h", "serve --help"] {
            match parse(args(flag), &no_env) {
                Ok(Command::Print(text)) => {
                    for word in
                        ["--bind", "--redis-url", "--turn-secret", "LANEWIRE_SIGNALING_BIND"]
                    {
                        assert!(text.contains(word), "{flag}: no {word} in\n{text}");
                    }
                }
                other => panic!("{flag}: {other:?}"),
            }
        }
        assert!(matches!(parse(args("-V"), &no_env), Ok(Command::Print(v)) if v.contains("0.")));
        assert!(matches!(parse(args("token --help"), &no_env), Ok(Command::Print(_))));
    }

    #[test]
    fn token_command() {
        let env = |v: &str| (v == "MY_SECRET").then(|| SECRET.to_string());
        match parse(args("token --secret-env MY_SECRET --identity str:alice --ttl 60"), &env) {
            Ok(Command::Token { secret, identity, ttl }) => {
                assert_eq!(secret, SECRET.as_bytes());
                assert_eq!(identity.as_str(), "str:alice");
                assert_eq!(ttl, Duration::from_secs(60));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(args("token --secret-env MY_SECRET"), &env).is_err());
        assert!(parse(args("token --secret-env UNSET --identity str:a"), &env).is_err());
        assert!(parse(args("token --secret-env MY_SECRET --identity alice"), &env).is_err());
    }
}
