//! Binding, the accept loop and shutdown.
//!
//! One tokio task accepts TCP connections and spawns one task per connection into a `JoinSet`
//! it owns. A connection task reads one HTTP request head and either answers it (healthz,
//! metrics, static files) or upgrades to a WebSocket session (see `session`). Shutdown is a
//! `watch` channel every task listens to: sessions send `shutting_down` and close, the accept
//! loop stops accepting and waits up to `Limits::shutdown_grace` for them before aborting the
//! rest.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, info, warn};

use crate::config::{Auth, Config};
use crate::iplimit::IpLimiter;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::registry::Registry;

/// State every connection task shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// `config.static_dir`, canonicalized at bind time.
    pub(crate) static_root: Option<PathBuf>,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) next_session: AtomicU64,
    /// Open connections per source address.
    pub(crate) ip_limiter: Arc<IpLimiter>,
    /// Membership of the cluster, with `--redis-url`.
    #[cfg(feature = "redis")]
    pub(crate) cluster: Option<crate::cluster::Cluster>,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        self.metrics.snapshot(self.registry.len())
    }
}

/// Why [`Server::bind`] failed.
#[derive(Debug)]
pub enum ServerError {
    /// A configuration value is out of range; the message names it.
    InvalidConfig(String),
    /// The static directory cannot be used.
    StaticDir(PathBuf, std::io::Error),
    /// The listening socket could not be bound.
    Bind(SocketAddr, std::io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(msg) => write!(f, "invalid configuration: {msg}"),
            Self::StaticDir(dir, e) => write!(f, "static directory {}: {e}", dir.display()),
            Self::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidConfig(_) => None,
            Self::StaticDir(_, e) | Self::Bind(_, e) => Some(e),
        }
    }
}

/// The signaling server. [`Server::bind`] starts it on the current tokio runtime.
#[derive(Debug)]
pub struct Server(());

impl Server {
    /// Validates `config`, binds the listening socket and starts serving in background tasks.
    /// Must be called within a tokio runtime (multi-threaded or current-thread).
    pub async fn bind(config: Config) -> Result<RunningServer, ServerError> {
        config.validate().map_err(ServerError::InvalidConfig)?;
        let static_root = match &config.static_dir {
            None => None,
            Some(dir) => {
                let root = tokio::fs::canonicalize(dir)
                    .await
                    .map_err(|e| ServerError::StaticDir(dir.clone(), e))?;
                if !root.is_dir() {
                    let e = std::io::Error::other("not a directory");
                    return Err(ServerError::StaticDir(dir.clone(), e));
                }
                Some(root)
            }
        };
        #[cfg(feature = "redis")]
        let cluster = match config.cluster.clone() {
            None => None,
            Some(c) => Some(crate::cluster::Cluster::new(c).map_err(ServerError::InvalidConfig)?),
        };
        let listener =
            TcpListener::bind(config.bind).await.map_err(|e| ServerError::Bind(config.bind, e))?;
        let local_addr = listener.local_addr().map_err(|e| ServerError::Bind(config.bind, e))?;

        if let Auth::DevInsecure = config.auth {
            warn_dev_insecure(local_addr);
        }
        info!(
            %local_addr,
            static_dir = ?static_root,
            limits = ?config.limits,
            auth = ?config.auth,
            "signaling server listening"
        );

        let shared = Arc::new(Shared {
            config,
            static_root,
            registry: Registry::default(),
            metrics: Metrics::default(),
            next_session: AtomicU64::new(1),
            ip_limiter: Arc::default(),
            #[cfg(feature = "redis")]
            cluster,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        #[cfg(feature = "redis")]
        let supervisor = crate::cluster::spawn(Arc::clone(&shared), shutdown_rx.clone());
        let accept = accept_loop(listener, Arc::clone(&shared), shutdown_rx);
        let task = tokio::spawn(async move {
            accept.await;
            // The cluster supervisor stops on the same signal; wait for it after the sessions
            // (which withdraw their registrations through it) are gone.
            #[cfg(feature = "redis")]
            if let Some(supervisor) = supervisor
                && let Err(e) = supervisor.await
            {
                error!(error = %e, "cluster supervisor failed");
            }
        });
        Ok(RunningServer { local_addr, shutdown: shutdown_tx, task, shared })
    }
}

fn warn_dev_insecure(addr: SocketAddr) {
    warn!("**************************************************************************");
    warn!("DEV-INSECURE MODE: clients register ANY identity WITHOUT a token.");
    warn!("Anyone who reaches this server can impersonate anyone. Local demos only.");
    if !addr.ip().is_loopback() {
        warn!("AND it listens on {addr}, which is NOT a loopback address.");
    }
    warn!("**************************************************************************");
}

/// A server started by [`Server::bind`]. Dropping it also shuts the server down (in the
/// background); [`RunningServer::shutdown`] does so and waits.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This instance's id in the cluster (`None` without [`Config::cluster`]).
    #[cfg(feature = "redis")]
    pub fn instance_id(&self) -> Option<&str> {
        self.shared.cluster.as_ref().map(crate::cluster::Cluster::instance)
    }

    /// The server's counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.snapshot()
    }

    /// Stops accepting connections, sends every client a `shutting_down` error and closes it,
    /// and returns once all connections are closed or `Limits::shutdown_grace` has passed
    /// (then the rest are aborted).
    pub async fn shutdown(self) {
        info!("shutting down");
        // Err means every receiver is gone: nothing left to stop.
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            error!(error = %e, "accept loop failed");
        }
        info!("shut down");
    }
}

/// The whole answer to a connection over the per-IP cap.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
    Content-Type: text/plain\r\nContent-Length: 39\r\nConnection: close\r\n\r\n\
    too many connections from this address\n";

/// Refused connections that may linger at once (see [`refuse_over_cap`]).
const MAX_LINGERING_REFUSALS: usize = 32;
/// How long, and for how many bytes, a refused connection lingers.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
const REFUSAL_LINGER_BYTES: usize = 16 * 1024;

/// Answers a connection over the per-IP cap with `429` and closes it. The answer fits the empty
/// socket buffer, so it is written without waiting. Closing a socket whose request is unread
/// makes the kernel send a reset that can destroy the answer, so a few refused sockets (at most
/// [`MAX_LINGERING_REFUSALS`] at once, for at most [`REFUSAL_LINGER`]) read and discard the
/// request first; beyond that they are closed at once, and a flood costs no more than that.
fn refuse_over_cap(tcp: TcpStream, refusals: &Arc<Semaphore>) {
    let _ = tcp.try_write(TOO_MANY_CONNECTIONS);
    let Ok(permit) = Arc::clone(refusals).try_acquire_owned() else { return };
    tokio::spawn(async move {
        let mut tcp = tcp;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            let _ = tcp.shutdown().await;
            let mut buf = [0u8; 2048];
            let mut total = 0;
            while total < REFUSAL_LINGER_BYTES {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        drop(permit);
    });
}

/// Accept errors such as EMFILE repeat until a descriptor frees up; pause instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    let refusals = Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS));
    loop {
        tokio::select! {
            biased;
            // A change means shutdown; an error means the RunningServer was dropped.
            _ = shutdown.changed() => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    error!(error = %e, "connection task panicked");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let limits = &shared.config.limits;
                    let max = if peer.ip().to_canonical().is_loopback() && !limits.cap_loopback {
                        usize::MAX
                    } else {
                        limits.max_connections_per_ip
                    };
                    let Some(slot) = shared.ip_limiter.try_acquire(peer.ip(), max) else {
                        Metrics::inc(&shared.metrics.ip_limit_rejections_total);
                        debug!(%peer, max, "too many connections from this address");
                        refuse_over_cap(tcp, &refusals);
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    let connection =
                        crate::http::handle_connection(tcp, peer, shared, shutdown.clone());
                    tasks.spawn(async move {
                        connection.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    drop(listener);
    let grace = shared.config.limits.shutdown_grace;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!(remaining = tasks.len(), "shutdown grace period over; aborting connections");
        tasks.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_429_answer_is_well_formed() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 429 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
    }
}
