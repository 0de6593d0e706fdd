//! The signaling client: one WebSocket to `lanewire-signaling`, JSON text frames of the shared
//! `lanewire_signaling::protocol` types. Registers, forwards the peer tasks' signals, routes
//! the server's, and reconnects with backoff when the connection is lost. Peer connections
//! that are already open do not depend on it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanewire_signaling::protocol::{
    ClientMessage, ErrorCode, ErrorFrame, PROTOCOL_VERSION, ServerMessage,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::P2pError;
use super::hub::Ctx;

/// First reconnect delay; doubles per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Reconnects are at most this far apart, so a restarted server is found within seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Opening the WebSocket (TCP + HTTP upgrade) and registering each get this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// How a session ended.
enum Ended {
    /// Connection lost or never made: try again later.
    Lost(String),
    /// The server refused us for good, or the instance is going away: stop.
    Fatal(String),
}

/// Runs sessions until a fatal end.
pub(crate) async fn run(ctx: Arc<Ctx>, mut out: mpsc::UnboundedReceiver<ClientMessage>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = session(&ctx, &mut out, &mut backoff).await;
        match ended {
            Ended::Fatal(why) => {
                ctx.set_status(|s| {
                    s.registered = false;
                    s.refused = Some(why.clone());
                    s.last_error = why;
                });
                return;
            }
            Ended::Lost(why) => ctx.set_status(|s| {
                s.registered = false;
                s.last_error = why;
            }),
        }
        // Signals sent while disconnected are lost, as signals may be; the peer tasks
        // repeat what matters once the connection is back.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                m = out.recv() => if m.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The TLS client configuration of `wss://` signaling: rustls with ring, trusting the Mozilla
/// root set (webpki-roots) and `extra` (DER certificates).
pub(crate) fn tls_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, P2pError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| P2pError::Tls(format!("extra root certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| P2pError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The close reason of a frame the server sent before closing, for error texts.
fn describe(frame: &ErrorFrame) -> String {
    format!("{}: {}", frame.code, frame.message)
}

async fn session(
    ctx: &Arc<Ctx>,
    out: &mut mpsc::UnboundedReceiver<ClientMessage>,
    backoff: &mut Duration,
) -> Ended {
    let url = ctx.config.url.as_str();
    let connector = ctx.tls.clone().map(tokio_tungstenite::Connector::Rustls);
    let connect = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector);
    let ws = match tokio::time::timeout(STEP_TIMEOUT, connect).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Ended::Lost(format!("cannot connect to {url}: {e}")),
        Err(_) => return Ended::Lost(format!("cannot connect to {url}: timed out")),
    };
    let (mut sink, mut stream) = ws.split();
    let register = ClientMessage::Register {
        protocol: PROTOCOL_VERSION,
        identity: ctx.identity.clone(),
        token: ctx.config.token.clone(),
    };
    if let Err(e) = sink.send(Message::text(register.to_json())).await {
        return Ended::Lost(format!("signaling WebSocket: {e}"));
    }
    let register_deadline = tokio::time::sleep(STEP_TIMEOUT);
    tokio::pin!(register_deadline);
    let mut registered = false;
    loop {
        tokio::select! {
            _ = &mut register_deadline, if !registered => {
                return Ended::Lost("the signaling server did not answer the registration".into());
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(c))) => {
                        let why = c.map_or_else(String::new, |c| format!(" ({} {})", c.code, c.reason));
                        return Ended::Lost(format!("signaling server closed the connection{why}"));
                    }
                    Some(Ok(_)) => continue, // pings are answered by tungstenite; binary is not ours
                    Some(Err(e)) => return Ended::Lost(format!("signaling WebSocket: {e}")),
                    None => return Ended::Lost("signaling server closed the connection".into()),
                };
                let Ok(msg) = ServerMessage::from_json(text.as_str()) else {
                    continue; // a malformed frame from the server: ignore it
                };
                match msg {
                    ServerMessage::Registered { ice_servers, .. } => {
                        registered = true;
                        *backoff = MIN_BACKOFF;
                        ctx.set_status(|s| {
                            s.registered = true;
                            s.ever_registered = true;
                            s.minted_ice = ice_servers;
                        });
                        ctx.count(|c| c.signaling_registrations += 1);
                    }
                    ServerMessage::Signal { from, connection, payload } => {
                        ctx.on_signal(from, connection, payload);
                    }
                    ServerMessage::Error(frame) => match frame.code {
                        ErrorCode::UnknownPeer | ErrorCode::PeerBusy => {
                            if let (Some(to), Some(attempt)) = (frame.to.clone(), frame.connection.clone()) {
                                let why = format!("signaling: {}", describe(&frame));
                                ctx.on_signal_refused(to, attempt, why);
                            }
                        }
                        ErrorCode::BadToken
                        | ErrorCode::TokenExpired
                        | ErrorCode::UnsupportedProtocol
                        | ErrorCode::AlreadyRegistered
                        | ErrorCode::Malformed
                            if !registered =>
                        {
                            return Ended::Fatal(describe(&frame));
                        }
                        // Rate limits, a server going down...: the close follows, or the
                        // message was dropped and the peer tasks repeat what matters.
                        _ => ctx.set_status(|s| s.last_error = describe(&frame)),
                    },
                    ServerMessage::Replaced { .. } => {
                        return Ended::Fatal(
                            "another client registered this identity (replaced)".into(),
                        );
                    }
                }
            }
            m = out.recv(), if registered => {
                let Some(m) = m else { return Ended::Fatal("shut down".into()) };
                if let Err(e) = sink.send(Message::text(m.to_json())).await {
                    return Ended::Lost(format!("signaling WebSocket: {e}"));
                }
            }
        }
    }
}
