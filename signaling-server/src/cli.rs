//! The `lanewire-signaling` command line: `serve` (the default) runs the server, `token` mints a
//! development token. Hand-rolled parsing keeps clap (and its proc-macros) out of the build;
//! every flag takes `--flag value` or `--flag=value`.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{error, warn};
use tracing_subscriber::filter::Targets;

use crate::config::{Auth, Config, Limits, MIN_SECRET_LEN};
use crate::protocol::Identity;
use crate::server::Server;

/// The environment variable the secret is read from by default.
pub const SECRET_ENV: &str = "LANEWIRE_SIGNALING_SECRET";

/// The environment variable `--redis-url` is read from.
pub const REDIS_URL_ENV: &str = "LANEWIRE_SIGNALING_REDIS_URL";

/// The address the server listens on when `--bind` is not given.
pub const DEFAULT_BIND: &str = "127.0.0.1:8787";

const USAGE: &str = "\
lanewire-signaling: WebRTC signaling server for Lanewire

USAGE:
    lanewire-signaling [serve] [OPTIONS]
    lanewire-signaling token --identity ID [--ttl SECS] [--secret S | --secret-env VAR]

SERVE OPTIONS:
    --bind ADDR                  listen address [default: 127.0.0.1:8787]; port 0 picks one.
                                 The first stdout line is `listening on ADDR`.
    --secret S                   token secret (visible in `ps`: prefer the environment)
    --secret-env VAR             read the secret from environment variable VAR
                                 [default: LANEWIRE_SIGNALING_SECRET]
    --dev-insecure               accept any identity without a token (local demos ONLY)
    --static DIR                 serve the files of DIR over HTTP GET
    --max-clients N              [default: 10000]
    --max-frame-bytes N          [default: 65536]
    --rate N                     messages/s per client, sustained [default: 50]
    --burst N                    messages per client in a burst [default: 200]
    --max-queued-bytes N         relayed bytes waiting per client [default: 262144]
    --registration-timeout SECS  [default: 5]
    --ping-interval SECS         [default: 20]
    --idle-timeout SECS          [default: 60]
    --log FILTER                 e.g. `info`, `debug`, `lanewire_signaling=debug`
                                 [default: $RUST_LOG, else info]
    --log-format text|json       log format on stderr [default: text]

TOKEN OPTIONS:
    --identity ID                identity to sign, like str:alice
    --ttl SECS                   lifetime [default: 3600]
    --secret S / --secret-env VAR  as above

    -h, --help                   this text
    -V, --version                the version
";

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
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
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

/// A command-line error, printed with the usage hint.
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

/// Splits `--flag=value` and fetches `--flag value`.
struct Args<I: Iterator<Item = String>> {
    inner: I,
    pending_value: Option<String>,
}

impl<I: Iterator<Item = String>> Args<I> {
    fn next_flag(&mut self) -> Result<Option<String>, UsageError> {
        if let Some(v) = self.pending_value.take() {
            return Err(usage_err(format!("unexpected value `{v}`")));
        }
        let Some(arg) = self.inner.next() else { return Ok(None) };
        if let Some((flag, value)) = arg.split_once('=').filter(|_| arg.starts_with("--")) {
            self.pending_value = Some(value.to_owned());
            return Ok(Some(flag.to_owned()));
        }
        Ok(Some(arg))
    }

    fn value(&mut self, flag: &str) -> Result<String, UsageError> {
        self.pending_value
            .take()
            .or_else(|| self.inner.next())
            .ok_or_else(|| usage_err(format!("{flag} needs a value")))
    }

    fn parsed<T: FromStr>(&mut self, flag: &str) -> Result<T, UsageError>
    where
        T::Err: fmt::Display,
    {
        let v = self.value(flag)?;
        v.parse().map_err(|e| usage_err(format!("{flag} {v}: {e}")))
    }

    fn secs(&mut self, flag: &str) -> Result<Duration, UsageError> {
        Ok(Duration::from_secs(self.parsed::<u64>(flag)?))
    }
}

enum SecretSource {
    Literal(String),
    Env(String),
}

/// Resolves the secret: `--secret`, else `--secret-env VAR`, else [`SECRET_ENV`].
fn read_secret(
    source: Option<SecretSource>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<u8>>, UsageError> {
    let secret = match source {
        Some(SecretSource::Literal(s)) => Some(s),
        Some(SecretSource::Env(var)) => Some(
            env(&var).ok_or_else(|| usage_err(format!("environment variable {var} is not set")))?,
        ),
        None => env(SECRET_ENV),
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

/// Parses the arguments after the program name. `env` looks up environment variables (a
/// parameter so tests need not touch the process environment).
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let mut args = Args { inner: args.into_iter(), pending_value: None };
    let mut first = args.next_flag()?;
    let token_mode = match first.as_deref() {
        Some("token") => true,
        Some("serve") => false,
        _ => {
            // No subcommand: `serve`, and the first word is already a flag.
            return parse_serve(first, args, env);
        }
    };
    first = args.next_flag()?;
    if token_mode { parse_token(first, args, env) } else { parse_serve(first, args, env) }
}

fn parse_serve<I: Iterator<Item = String>>(
    mut flag: Option<String>,
    mut args: Args<I>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let mut bind: SocketAddr = DEFAULT_BIND.parse().map_err(|_| usage_err("bad default"))?;
    let mut secret = None;
    let mut dev_insecure = false;
    let mut static_dir = None;
    let mut limits = Limits::default();
    let mut log = env("RUST_LOG").unwrap_or_else(|| "info".into());
    let mut log_json = false;
    let mut redis_url = env(REDIS_URL_ENV);
    while let Some(f) = flag {
        match f.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--bind" => bind = args.parsed(&f)?,
            "--secret" => secret = Some(SecretSource::Literal(args.value(&f)?)),
            "--secret-env" => secret = Some(SecretSource::Env(args.value(&f)?)),
            "--dev-insecure" => dev_insecure = true,
            "--static" => static_dir = Some(PathBuf::from(args.value(&f)?)),
            "--max-clients" => limits.max_clients = args.parsed(&f)?,
            "--max-frame-bytes" => limits.max_frame_bytes = args.parsed(&f)?,
            "--rate" => limits.rate_per_sec = args.parsed(&f)?,
            "--burst" => limits.rate_burst = args.parsed(&f)?,
            "--max-queued-bytes" => limits.max_queued_bytes = args.parsed(&f)?,
            "--registration-timeout" => limits.registration_timeout = args.secs(&f)?,
            "--ping-interval" => limits.ping_interval = args.secs(&f)?,
            "--idle-timeout" => limits.idle_timeout = args.secs(&f)?,
            "--log" => log = args.value(&f)?,
            "--redis-url" => redis_url = Some(args.value(&f)?),
            "--log-format" => {
                log_json = match args.value(&f)?.as_str() {
                    "text" => false,
                    "json" => true,
                    other => return Err(usage_err(format!("--log-format {other}: text or json"))),
                }
            }
            other => return Err(usage_err(format!("unknown option `{other}`"))),
        }
        flag = args.next_flag()?;
    }
    let auth = if dev_insecure {
        if secret.is_some() {
            return Err(usage_err("--dev-insecure and --secret/--secret-env exclude each other"));
        }
        Auth::DevInsecure
    } else {
        match read_secret(secret, env)? {
            Some(s) => Auth::Secret(s),
            None => {
                return Err(usage_err(format!(
                    "no token secret: pass --secret-env VAR or set {SECRET_ENV} \
                     (or --dev-insecure for a local demo)"
                )));
            }
        }
    };
    let mut config = Config::new(bind, auth);
    config.static_dir = static_dir;
    config.limits = limits;
    #[cfg(feature = "redis")]
    {
        config.cluster = redis_url.map(crate::ClusterConfig::new);
    }
    #[cfg(not(feature = "redis"))]
    if redis_url.is_some() {
        return Err(usage_err("--redis-url needs a server built with the `redis` feature"));
    }
    Ok(Command::Serve(Box::new(ServeArgs { config, log, log_json })))
}

fn parse_token<I: Iterator<Item = String>>(
    mut flag: Option<String>,
    mut args: Args<I>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let mut secret = None;
    let mut identity = None;
    let mut ttl = Duration::from_secs(3600);
    while let Some(f) = flag {
        match f.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--secret" => secret = Some(SecretSource::Literal(args.value(&f)?)),
            "--secret-env" => secret = Some(SecretSource::Env(args.value(&f)?)),
            "--identity" => identity = Some(args.parsed::<Identity>(&f)?),
            "--ttl" => ttl = args.secs(&f)?,
            other => return Err(usage_err(format!("unknown option `{other}`"))),
        }
        flag = args.next_flag()?;
    }
    let identity = identity.ok_or_else(|| usage_err("token needs --identity"))?;
    let secret = read_secret(secret, env)?.ok_or_else(|| {
        usage_err(format!("no secret: pass --secret-env VAR or set {SECRET_ENV}"))
    })?;
    Ok(Command::Token { secret, identity, ttl })
}

/// The binary's `main`: parses `std::env::args`, then runs the command.
pub fn main() -> ExitCode {
    let command = parse(std::env::args().skip(1), &|var| std::env::var(var).ok());
    match command {
        Err(e) => {
            eprintln!("error: {e}\n\nRun `lanewire-signaling --help` for usage.");
            ExitCode::from(2)
        }
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("lanewire-signaling {}", env!("CARGO_PKG_VERSION"));
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

    #[test]
    fn serve_needs_a_secret_or_dev_insecure() {
        let err = parse(args(""), &no_env).expect_err("no secret");
        assert!(err.0.contains("no token secret"), "{err}");
        match parse(args("--dev-insecure --bind 127.0.0.1:0"), &no_env) {
            Ok(Command::Serve(s)) => {
                assert!(matches!(s.config.auth, Auth::DevInsecure));
                assert_eq!(s.config.bind.port(), 0);
            }
            other => panic!("{other:?}"),
        }
        let env = |v: &str| (v == SECRET_ENV).then(|| SECRET.to_string());
        match parse(args("serve"), &env) {
            Ok(Command::Serve(s)) => {
                assert!(matches!(s.config.auth, Auth::Secret(ref b) if b == SECRET.as_bytes()))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(args("--dev-insecure --secret-env X"), &env).is_err());
    }

    #[test]
    fn serve_options() {
        let line = format!(
            "--secret={SECRET} --static /tmp --max-clients 3 --max-frame-bytes=2048 --rate 5 \
             --burst 7 --registration-timeout 2 --ping-interval 3 --idle-timeout 9 --log debug \
             --log-format json"
        );
        let Ok(Command::Serve(s)) = parse(args(&line), &no_env) else { panic!("parse") };
        let l = &s.config.limits;
        assert_eq!(
            (l.max_clients, l.max_frame_bytes, l.rate_per_sec, l.rate_burst),
            (3, 2048, 5, 7)
        );
        assert_eq!(l.registration_timeout, Duration::from_secs(2));
        assert_eq!(l.ping_interval, Duration::from_secs(3));
        assert_eq!(l.idle_timeout, Duration::from_secs(9));
        assert_eq!(s.config.static_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(s.log, "debug");
        assert!(s.log_json);
        assert!(parse(args("--dev-insecure --nope"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --rate"), &no_env).is_err());
        assert!(parse(args("--dev-insecure --rate x"), &no_env).is_err());
        assert!(parse(args("--dev-insecure=yes"), &no_env).is_err());
        assert!(parse(args("--secret short"), &no_env).is_err());
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
