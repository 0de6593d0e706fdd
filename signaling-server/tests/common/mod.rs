//! Helpers shared by the behaviour tests: start a real server on 127.0.0.1 port 0, and a small
//! WebSocket test client whose every wait has a timeout.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use lanewire_signaling::protocol::{
    ClientMessage, ConnectionId, ErrorCode, ErrorFrame, Identity, PROTOCOL_VERSION, Payload,
    ServerMessage,
};
use lanewire_signaling::{Auth, Config, Limits, RunningServer, Server, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// The secret of servers started with [`Auth::Secret`].
pub const SECRET: &[u8] = b"test-secret-0123456789abcdef";

/// The longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn id(s: &str) -> Identity {
    Identity::new(s).expect("valid identity")
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// A token for `identity` valid for an hour.
pub fn token_for(identity: &str) -> String {
    token::issue(SECRET, &id(identity), unix_now() + 3600)
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// A server requiring tokens signed with [`SECRET`], with `limits`.
pub async fn start_secure(limits: Limits) -> RunningServer {
    let config = Config { limits, ..Config::new(loopback(), Auth::Secret(SECRET.to_vec())) };
    Server::bind(config).await.expect("server starts")
}

/// A dev-insecure server with `limits`.
pub async fn start_dev(limits: Limits) -> RunningServer {
    let config = Config { limits, ..Config::new(loopback(), Auth::DevInsecure) };
    Server::bind(config).await.expect("server starts")
}

pub fn register_msg(identity: &str, token: Option<String>) -> ClientMessage {
    ClientMessage::Register { protocol: PROTOCOL_VERSION, identity: id(identity), token }
}

pub fn signal(to: &str, connection: u64, payload: Payload) -> ClientMessage {
    ClientMessage::Signal { to: id(to), connection: ConnectionId::from(connection), payload }
}

pub fn offer(to: &str, connection: u64) -> ClientMessage {
    signal(to, connection, Payload::Offer { sdp: format!("v=0 offer {connection}"), port: 0 })
}

/// What a test sees next on a connection.
#[derive(Debug)]
pub enum Next {
    Msg(ServerMessage),
    Closed(Option<CloseFrame>),
}

pub struct Client {
    ws: WebSocketStream<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self::handshake(addr, tcp).await
    }

    pub async fn handshake(addr: SocketAddr, tcp: TcpStream) -> Client {
        let url = format!("ws://{addr}/ws");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake");
        Client { ws }
    }

    /// Connects and registers `identity` on a dev-insecure server.
    pub async fn dev(addr: SocketAddr, identity: &str) -> Client {
        let mut c = Self::connect(addr).await;
        c.send(&register_msg(identity, None)).await;
        c.expect_registered(identity).await;
        c
    }

    /// Connects and registers `identity` with a valid token.
    pub async fn secure(addr: SocketAddr, identity: &str) -> Client {
        let mut c = Self::connect(addr).await;
        c.send(&register_msg(identity, Some(token_for(identity)))).await;
        c.expect_registered(identity).await;
        c
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_raw(Message::text(msg.to_json())).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::text(text)).await;
    }

    pub async fn send_raw(&mut self, msg: Message) {
        tokio::time::timeout(WAIT, self.ws.send(msg)).await.expect("send in time").expect("send");
    }

    /// The next protocol message or the close, within `wait`. Pings and pongs are skipped
    /// (and answered). `None` if nothing came in time.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Next> {
        let deadline = tokio::time::Instant::now() + wait;
        // Bounded: each turn either returns or consumes one ping/pong frame.
        for _ in 0..10_000 {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(frame) => frame,
            };
            match frame {
                None => return Some(Next::Closed(None)),
                Some(Err(_)) => return Some(Next::Closed(None)),
                Some(Ok(Message::Text(text))) => {
                    let msg = ServerMessage::from_json(&text)
                        .unwrap_or_else(|e| panic!("server sent invalid JSON {text}: {e}"));
                    return Some(Next::Msg(msg));
                }
                Some(Ok(Message::Close(frame))) => return Some(Next::Closed(frame)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(b))) => panic!("server sent a binary frame {b:?}"),
            }
        }
        panic!("too many control frames");
    }

    /// The next protocol message; fails the test on close or timeout.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next_within(WAIT).await {
            Some(Next::Msg(msg)) => msg,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub async fn expect_registered(&mut self, identity: &str) {
        match self.recv().await {
            ServerMessage::Registered { identity: got, protocol, .. } => {
                assert_eq!(got.as_str(), identity);
                assert_eq!(protocol, PROTOCOL_VERSION);
            }
            other => panic!("expected registered, got {other:?}"),
        }
    }

    pub async fn expect_error(&mut self, code: ErrorCode) -> ErrorFrame {
        match self.recv().await {
            ServerMessage::Error(frame) if frame.code == code => frame,
            other => panic!("expected error {code}, got {other:?}"),
        }
    }

    /// Expects a signal and returns (from, connection, payload).
    pub async fn expect_signal(&mut self) -> (String, String, Payload) {
        match self.recv().await {
            ServerMessage::Signal { from, connection, payload } => {
                (from.to_string(), connection.to_string(), payload)
            }
            other => panic!("expected a signal, got {other:?}"),
        }
    }

    /// Expects the server to close the connection; returns the close frame.
    pub async fn expect_closed(&mut self) -> Option<CloseFrame> {
        match self.next_within(WAIT).await {
            Some(Next::Closed(frame)) => frame,
            other => panic!("expected close, got {other:?}"),
        }
    }

    /// Expects nothing but control frames for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(next) = self.next_within(wait).await {
            panic!("expected silence, got {next:?}");
        }
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.close(None)).await;
        // Read until the server's close so the server sees a clean end.
        let _ = self.next_within(Duration::from_millis(500)).await;
    }
}

/// One plain HTTP request; returns (status, headers, body).
pub async fn http_request(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    let mut tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    tokio::time::timeout(WAIT, tcp.write_all(request.as_bytes()))
        .await
        .expect("write in time")
        .expect("write");
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    (status, head, body)
}

pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")).await
}

/// Polls `check` every 20 ms until it holds, for at most [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..(WAIT.as_millis() / 20) {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
