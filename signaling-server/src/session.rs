//! One WebSocket client, from the upgrade to the close.
//!
//! A session is one task running one `select!` loop over: the shutdown signal, its mailbox
//! (signals relayed from other sessions, or "you were replaced"), its deadline (registration
//! timeout before `register`, idle timeout after), the ping timer, and the client's next frame.
//! The task owns the socket, so reads and writes never race, and a client that stops reading
//! stalls only its own task (and is dropped after `Limits::write_timeout`).
//!
//! Every client frame passes the rate limiter before it is parsed, so a flood costs the server
//! frame decoding only. A refused frame gets an error frame and the session carries on;
//! only the conditions documented as "closes" in [`ErrorCode`] end it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info, warn};

use crate::config::Auth;
use crate::metrics::Metrics;
use crate::protocol::{
    ClientMessage, ConnectionId, ErrorCode, ErrorFrame, Identity, PROTOCOL_VERSION, Payload,
    ServerMessage,
};
use crate::rate::TokenBucket;
use crate::registry::{Entry, Outbound};
use crate::server::Shared;
use crate::token::{self, TokenError};

type Ws = WebSocketStream<TcpStream>;

/// At most one `rate_limited` error frame per this interval, so a flood does not turn into a
/// flood of error frames.
const RATE_ERROR_INTERVAL: Duration = Duration::from_secs(1);

/// Longest detail text echoed back in a `malformed` error (serde's messages can quote input).
const MAX_DETAIL_LEN: usize = 200;

/// Why a session ends.
enum End {
    /// The client closed, or the socket failed: nothing more to say.
    Gone,
    /// Send this error, then close with this code.
    Error(ErrorFrame, CloseCode),
    /// Another session took this identity.
    Replaced,
}

/// Releases the client slot when the session ends, however it ends.
struct ClientSlot<'a>(&'a Metrics);

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        self.0.remove_client();
    }
}

struct Session {
    id: u64,
    peer: SocketAddr,
    shared: Arc<Shared>,
    identity: Option<Identity>,
    tx: mpsc::UnboundedSender<Outbound>,
    budget: Arc<Semaphore>,
    bucket: TokenBucket,
    last_rate_error: Option<Instant>,
    last_seen: Instant,
    opened: Instant,
}

/// Runs a session on an upgraded WebSocket until it ends.
pub(crate) async fn run(
    mut ws: Ws,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &shared.config.limits;
    let metrics = &shared.metrics;
    if !metrics.try_add_client(limits.max_clients) {
        metrics.reject(ErrorCode::ServerFull);
        info!(%peer, max = limits.max_clients, "server full, refusing client");
        let frame = ErrorFrame::new(ErrorCode::ServerFull, "the server is full; try again later");
        close(ws, Some(ServerMessage::Error(frame)), CloseCode::Again, "server full", &shared)
            .await;
        return;
    }
    let _slot = ClientSlot(metrics);
    Metrics::inc(&metrics.connections_total);

    let now = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut session = Session {
        id: shared.next_session.fetch_add(1, Relaxed),
        peer,
        shared: Arc::clone(&shared),
        identity: None,
        tx,
        // One permit per byte of queued relays.
        budget: Arc::new(Semaphore::new(limits.max_queued_bytes)),
        bucket: TokenBucket::new(limits.rate_per_sec, limits.rate_burst, now),
        last_rate_error: None,
        last_seen: now,
        opened: now,
    };
    debug!(session = session.id, %peer, "session open");

    let mut ping = tokio::time::interval_at(now + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let end = if *shutdown.borrow_and_update() {
        End::Error(shutting_down(), CloseCode::Away)
    } else {
        loop {
            let deadline = match session.identity {
                None => session.opened + limits.registration_timeout,
                Some(_) => session.last_seen + limits.idle_timeout,
            };
            // Unbiased (random order when several are ready), so neither a busy mailbox nor a
            // chatty client can starve the other.
            let step = tokio::select! {
                // A change means shutdown; an error means the server handle was dropped.
                _ = shutdown.changed() => Err(End::Error(shutting_down(), CloseCode::Away)),
                out = rx.recv() => match out {
                    Some(Outbound::Relay { text, _permit }) => {
                        session.send(&mut ws, Message::text(text)).await
                    }
                    Some(Outbound::Replaced) => Err(End::Replaced),
                    // The session holds a sender itself, so the channel never closes.
                    None => Err(End::Gone),
                },
                () = tokio::time::sleep_until(deadline) => Err(session.timed_out()),
                _ = ping.tick() => session.send(&mut ws, Message::Ping(Default::default())).await,
                frame = ws.next() => match frame {
                    None => Err(End::Gone),
                    Some(Err(e)) => Err(classify(e)),
                    Some(Ok(msg)) => session.on_frame(&mut ws, msg).await,
                },
            };
            if let Err(end) = step {
                break end;
            }
        }
    };

    if let Some(identity) = &session.identity {
        shared.registry.unregister(identity, session.id);
        #[cfg(feature = "redis")]
        if let Some(cluster) = &shared.cluster {
            cluster.withdraw(&shared.metrics, identity, session.id).await;
        }
    }
    let identity = session.identity.as_ref().map(Identity::as_str).unwrap_or("");
    match end {
        End::Gone => {
            info!(session = session.id, %peer, identity, "client disconnected");
        }
        End::Error(frame, code) => {
            info!(
                session = session.id, %peer, identity, code = %frame.code,
                "closing client: {}", frame.message
            );
            metrics.reject(frame.code);
            let reason = frame.code.as_str();
            close(ws, Some(ServerMessage::Error(frame)), code, reason, &shared).await;
        }
        End::Replaced => {
            info!(session = session.id, %peer, identity, "client replaced by a newer registration");
            let msg = session.identity.clone().map(|identity| ServerMessage::Replaced { identity });
            close(ws, msg, CloseCode::Normal, "replaced", &shared).await;
        }
    }
}

fn shutting_down() -> ErrorFrame {
    ErrorFrame::new(ErrorCode::ShuttingDown, "the server is shutting down")
}

/// Maps a read error to how the session ends.
fn classify(e: WsError) -> End {
    match e {
        WsError::Capacity(e) => End::Error(
            ErrorFrame::new(ErrorCode::FrameTooLarge, format!("frame refused: {e}")),
            CloseCode::Size,
        ),
        WsError::Protocol(e) => End::Error(
            ErrorFrame::new(ErrorCode::Malformed, format!("websocket protocol error: {e}")),
            CloseCode::Protocol,
        ),
        WsError::Utf8(e) => End::Error(
            ErrorFrame::new(ErrorCode::Malformed, format!("text frame is not UTF-8: {e}")),
            CloseCode::Invalid,
        ),
        _ => End::Gone,
    }
}

/// Sends `last` (if any) and a close frame, then lingers so the client can read them.
async fn close(
    mut ws: Ws,
    last: Option<ServerMessage>,
    code: CloseCode,
    reason: &str,
    shared: &Shared,
) {
    let frame = CloseFrame { code, reason: reason.into() };
    let _ = tokio::time::timeout(shared.config.limits.write_timeout, async {
        if let Some(msg) = last {
            ws.send(Message::text(msg.to_json())).await?;
        }
        ws.close(Some(frame)).await
    })
    .await;
    let mut tcp = ws.into_inner();
    crate::http::linger(&mut tcp).await;
}

fn unix_now() -> u64 {
    // A clock before 1970 makes every token look unexpired-by-far; 0 is the safe reading.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Makes a detail text safe to echo and log: control characters (which serde may quote from
/// the client's input) become `?`, and the text is cut at [`MAX_DETAIL_LEN`].
fn sanitize_detail(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if out.len() > MAX_DETAIL_LEN {
        let mut cut = MAX_DETAIL_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

impl Session {
    fn timed_out(&self) -> End {
        match self.identity {
            None => End::Error(
                ErrorFrame::new(
                    ErrorCode::RegistrationTimeout,
                    format!(
                        "no register within {} ms",
                        self.shared.config.limits.registration_timeout.as_millis()
                    ),
                ),
                CloseCode::Policy,
            ),
            Some(_) => End::Error(
                ErrorFrame::new(
                    ErrorCode::IdleTimeout,
                    format!(
                        "nothing received for {} ms",
                        self.shared.config.limits.idle_timeout.as_millis()
                    ),
                ),
                CloseCode::Away,
            ),
        }
    }

    /// Writes one message, within the write timeout.
    async fn send(&self, ws: &mut Ws, msg: Message) -> Result<(), End> {
        match tokio::time::timeout(self.shared.config.limits.write_timeout, ws.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(session = self.id, error = %e, "write failed");
                Err(End::Gone)
            }
            Err(_) => {
                warn!(session = self.id, peer = %self.peer, "client does not read; dropping it");
                Err(End::Gone)
            }
        }
    }

    /// Counts and sends an error frame; the session carries on.
    async fn refuse(&self, ws: &mut Ws, frame: ErrorFrame) -> Result<(), End> {
        self.shared.metrics.reject(frame.code);
        debug!(session = self.id, code = %frame.code, "refused: {}", frame.message);
        self.send(ws, Message::text(ServerMessage::Error(frame).to_json())).await
    }

    async fn on_frame(&mut self, ws: &mut Ws, msg: Message) -> Result<(), End> {
        let now = Instant::now();
        self.last_seen = now;
        match msg {
            // Liveness only. tungstenite answers a close itself; the stream then ends.
            Message::Pong(_) | Message::Close(_) | Message::Frame(_) => return Ok(()),
            Message::Text(_) | Message::Binary(_) | Message::Ping(_) => {}
        }
        let metrics = &self.shared.metrics;
        Metrics::inc(&metrics.messages_received_total);
        if let Err(wait) = self.bucket.try_take(now) {
            if self.last_rate_error.is_some_and(|t| now - t < RATE_ERROR_INTERVAL) {
                metrics.reject(ErrorCode::RateLimited);
                return Ok(());
            }
            self.last_rate_error = Some(now);
            let limits = &self.shared.config.limits;
            let frame = ErrorFrame {
                retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)),
                ..ErrorFrame::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} messages/s (burst {}); messages are dropped",
                        limits.rate_per_sec, limits.rate_burst
                    ),
                )
            };
            return self.refuse(ws, frame).await;
        }
        let text = match msg {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let frame = ErrorFrame::new(
                    ErrorCode::Malformed,
                    "binary frames are not part of the protocol; send JSON text frames",
                );
                return self.refuse(ws, frame).await;
            }
            // Pings are answered by tungstenite.
            _ => return Ok(()),
        };
        match ClientMessage::from_json(&text) {
            Err(e) => {
                let detail = sanitize_detail(&format!("not a valid client message: {e}"));
                self.refuse(ws, ErrorFrame::new(ErrorCode::Malformed, detail)).await
            }
            Ok(ClientMessage::Register { protocol, identity, token }) => {
                self.on_register(ws, protocol, identity, token).await
            }
            Ok(ClientMessage::Signal { to, connection, payload }) => {
                self.on_signal(ws, to, connection, payload).await
            }
        }
    }

    async fn on_register(
        &mut self,
        ws: &mut Ws,
        protocol: u32,
        identity: Identity,
        token: Option<String>,
    ) -> Result<(), End> {
        if let Some(current) = &self.identity {
            let frame = ErrorFrame::new(
                ErrorCode::AlreadyRegistered,
                format!("this connection is already registered as {current}"),
            );
            return self.refuse(ws, frame).await;
        }
        if protocol != PROTOCOL_VERSION {
            let frame = ErrorFrame {
                protocol: Some(PROTOCOL_VERSION),
                ..ErrorFrame::new(
                    ErrorCode::UnsupportedProtocol,
                    format!(
                        "protocol {protocol} is not supported; this server speaks {PROTOCOL_VERSION}"
                    ),
                )
            };
            return self.refuse(ws, frame).await;
        }
        if let Err(frame) = self.authenticate(&identity, token.as_deref()) {
            info!(session = self.id, peer = %self.peer, %identity, code = %frame.code, "registration refused");
            return self.refuse(ws, frame).await;
        }

        let shared = Arc::clone(&self.shared);
        let entry =
            Entry { session: self.id, tx: self.tx.clone(), budget: Arc::clone(&self.budget) };
        if let Some(old) = shared.registry.register(identity.clone(), entry) {
            Metrics::inc(&shared.metrics.replacements_total);
            // Err: the old session is already gone.
            let _ = old.tx.send(Outbound::Replaced);
        }
        #[cfg(feature = "redis")]
        if let Some(cluster) = &shared.cluster {
            cluster.announce(&shared.metrics, &identity, self.id).await;
        }
        Metrics::inc(&shared.metrics.registrations_total);
        info!(session = self.id, peer = %self.peer, %identity, "registered");
        self.identity = Some(identity.clone());
        let max_frame_bytes = shared.config.limits.max_frame_bytes as u64;
        let ice_servers = match &shared.config.turn {
            Some(turn) => vec![crate::turn::mint(turn, &identity, unix_now())],
            None => Vec::new(),
        };
        let msg = ServerMessage::Registered {
            identity,
            protocol: PROTOCOL_VERSION,
            max_frame_bytes,
            ice_servers,
        };
        self.send(ws, Message::text(msg.to_json())).await
    }

    /// Checks that the client may register `identity`.
    fn authenticate(&self, identity: &Identity, token: Option<&str>) -> Result<(), ErrorFrame> {
        let secret = match &self.shared.config.auth {
            Auth::DevInsecure => {
                debug!(%identity, "dev-insecure: identity accepted without a token");
                return Ok(());
            }
            Auth::Secret(secret) => secret,
        };
        let Some(token) = token else {
            return Err(ErrorFrame::new(ErrorCode::BadToken, "a token is required"));
        };
        match token::verify(secret, token, unix_now()) {
            Ok(for_identity) if for_identity == *identity => Ok(()),
            Ok(_) => Err(ErrorFrame::new(ErrorCode::BadToken, "the token is for another identity")),
            Err(e @ TokenError::Expired { .. }) => {
                Err(ErrorFrame::new(ErrorCode::TokenExpired, e.to_string()))
            }
            Err(e) => Err(ErrorFrame::new(ErrorCode::BadToken, e.to_string())),
        }
    }

    async fn on_signal(
        &mut self,
        ws: &mut Ws,
        to: Identity,
        connection: ConnectionId,
        payload: Payload,
    ) -> Result<(), End> {
        let Some(from) = self.identity.clone() else {
            let frame = ErrorFrame {
                connection: Some(connection),
                ..ErrorFrame::new(ErrorCode::NotRegistered, "register before sending signals")
            };
            return self.refuse(ws, frame).await;
        };
        let refusal = |code, message: String| ErrorFrame {
            to: Some(to.clone()),
            connection: Some(connection.clone()),
            ..ErrorFrame::new(code, message)
        };
        let Some(entry) = self.shared.registry.lookup(&to) else {
            #[cfg(feature = "redis")]
            if let Some(cluster) = &self.shared.cluster {
                use crate::cluster::Route;
                let shared = Arc::clone(&self.shared);
                let route =
                    cluster.route(&shared.metrics, from, to.clone(), connection.clone(), payload);
                let message = match route.await {
                    Route::Delivered => {
                        Metrics::inc(&shared.metrics.messages_relayed_total);
                        debug!(session = self.id, %to, %connection, "relayed to another instance");
                        return Ok(());
                    }
                    Route::Unknown => format!("{to} is not registered"),
                    Route::Unavailable => {
                        format!("{to} is not registered here and the directory is unreachable")
                    }
                };
                return self.refuse(ws, refusal(ErrorCode::UnknownPeer, message)).await;
            }
            let frame = refusal(ErrorCode::UnknownPeer, format!("{to} is not registered"));
            return self.refuse(ws, frame).await;
        };
        let text =
            ServerMessage::Signal { from, connection: connection.clone(), payload }.to_json();
        let permit = u32::try_from(text.len())
            .ok()
            .and_then(|n| Arc::clone(&entry.budget).try_acquire_many_owned(n).ok());
        let Some(permit) = permit else {
            let frame = refusal(
                ErrorCode::PeerBusy,
                format!("{to} is not reading its signals fast enough"),
            );
            return self.refuse(ws, frame).await;
        };
        if entry.tx.send(Outbound::Relay { text, _permit: permit }).is_err() {
            // The recipient's session ended between the lookup and now.
            let frame = refusal(ErrorCode::UnknownPeer, format!("{to} is not registered"));
            return self.refuse(ws, frame).await;
        }
        Metrics::inc(&self.shared.metrics.messages_relayed_total);
        debug!(session = self.id, %to, %connection, "relayed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_sanitized_and_cut() {
        assert_eq!(sanitize_detail("unknown variant `a\n\u{1b}[31m`"), "unknown variant `a??[31m`");
        let long = sanitize_detail(&"é".repeat(300));
        assert!(long.len() <= MAX_DETAIL_LEN + 3 && long.ends_with("..."));
    }
}
