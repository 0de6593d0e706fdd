//! The HTTP side: one request per TCP connection, GET or HEAD only.
//!
//! A connection's request head is read (at most [`MAX_HEAD_BYTES`], within
//! `Limits::http_timeout`) and parsed with httparse. A WebSocket upgrade (any path) is checked
//! and answered by tungstenite's handshake code and becomes a session; anything else gets one
//! response with `Connection: close`:
//!
//! - `GET /healthz`: `200 ok`, or `503` once shutdown has begun;
//! - `GET /metrics`: the counters in Prometheus text format;
//! - any other path: a file under the static directory if one is configured, else 404.
//!
//! Static paths are decoded segment by segment; a segment that is empty after decoding, `.`,
//! `..`, starts with `.`, or contains `/`, `\`, `:` or NUL is refused, and the final path is
//! canonicalized and must stay under the canonical root, so neither `..` nor a symlink can
//! reach outside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{create_response, write_response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{debug, info};

use crate::metrics::Metrics;
use crate::server::Shared;

/// Largest request head accepted. Browsers send 0.5-2 KiB; 8 KiB is what many servers allow.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers accepted in a request head.
const MAX_HEADERS: usize = 48;
/// Largest static file served (the demo's wasm is a few MiB).
const MAX_STATIC_FILE: u64 = 64 * 1024 * 1024;
/// After the last byte is written, how long the server keeps reading (and discarding) what the
/// client still sends before it closes the socket. Closing with unread bytes makes the kernel
/// send a reset, which can destroy the response or error frame the client has not read yet.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Most bytes discarded while lingering.
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// Serves one TCP connection.
pub(crate) async fn handle_connection(
    mut tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    // Signaling messages are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    let limits = &shared.config.limits;
    let head = match tokio::time::timeout(limits.http_timeout, read_head(&mut tcp)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => {
            let resp =
                Response::text(431, "Request Header Fields Too Large", "request head too large\n");
            return respond(tcp, &resp, false, &shared).await;
        }
        Ok(Err(HeadError::Invalid)) => {
            let resp = Response::text(400, "Bad Request", "malformed request\n");
            return respond(tcp, &resp, false, &shared).await;
        }
        Err(_) => {
            debug!(%peer, "no request head in time");
            return;
        }
    };

    if head.is_websocket_upgrade() {
        let request = match head.to_http_request() {
            Some(r) => r,
            None => {
                let resp = Response::text(400, "Bad Request", "malformed request\n");
                return respond(tcp, &resp, false, &shared).await;
            }
        };
        let response = match create_response(&request) {
            Ok(r) => r,
            Err(e) => {
                let resp = Response::text(400, "Bad Request", &format!("bad upgrade: {e}\n"));
                return respond(tcp, &resp, false, &shared).await;
            }
        };
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = write_response(&mut out, &response);
        match tokio::time::timeout(limits.write_timeout, tcp.write_all(&out)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let ws_config = WebSocketConfig::default()
            .max_frame_size(Some(limits.max_frame_bytes))
            .max_message_size(Some(limits.max_frame_bytes))
            // 4 KiB covers typical signals in one read; the default 128 KiB would cost 1.2 GiB
            // for 10 000 mostly idle clients.
            .read_buffer_size(4 * 1024)
            // Write each message out at once (sends are flushed anyway).
            .write_buffer_size(0);
        let ws =
            WebSocketStream::from_partially_read(tcp, head.rest, Role::Server, Some(ws_config))
                .await;
        crate::session::run(ws, peer, shared, shutdown).await;
        return;
    }

    let is_head = head.method == "HEAD";
    let resp = if head.method != "GET" && !is_head {
        Response::text(405, "Method Not Allowed", "only GET and HEAD\n").header("Allow: GET, HEAD")
    } else {
        let path = head.path.split(['?', '#']).next().unwrap_or("");
        match path {
            "/healthz" if *shutdown.borrow() => {
                Response::text(503, "Service Unavailable", "shutting down\n")
            }
            "/healthz" => Response::text(200, "OK", "ok\n"),
            "/metrics" => Response {
                status: 200,
                reason: "OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: shared.snapshot().to_prometheus().into_bytes(),
                extra: Vec::new(),
            },
            _ => match &shared.static_root {
                Some(root) => serve_static(root, path).await,
                None => not_found(),
            },
        }
    };
    debug!(%peer, method = %head.method, path = %head.path, status = resp.status, "http");
    respond(tcp, &resp, is_head, &shared).await;
}

struct Head {
    method: String,
    path: String,
    version: u8,
    headers: Vec<(String, Vec<u8>)>,
    /// Bytes received after the head (a client may send its first frames right behind it).
    rest: Vec<u8>,
}

enum HeadError {
    Closed,
    TooLarge,
    Invalid,
}

async fn read_head(tcp: &mut TcpStream) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: req.path.unwrap_or_default().to_owned(),
                    version: req.version.unwrap_or(0),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect(),
                    rest: buf[len..].to_vec(),
                };
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(HeadError::TooLarge);
            }
            Err(_) => return Err(HeadError::Invalid),
        }
    }
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"))
    }

    /// The head as an `http::Request` for tungstenite's handshake checks.
    fn to_http_request(&self) -> Option<http::Request<()>> {
        let version = match self.version {
            1 => http::Version::HTTP_11,
            _ => http::Version::HTTP_10,
        };
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str())
            .version(version);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        builder.body(()).ok()
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    extra: Vec<&'static str>,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Self {
        Self {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            extra: Vec::new(),
        }
    }

    fn header(mut self, line: &'static str) -> Self {
        self.extra.push(line);
        self
    }
}

fn not_found() -> Response {
    Response::text(404, "Not Found", "not found\n")
}

/// Writes `resp`, closes the write side and lingers (see [`LINGER`]).
async fn respond(mut tcp: TcpStream, resp: &Response, head_only: bool, shared: &Shared) {
    Metrics::inc(&shared.metrics.http_requests_total);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n",
        resp.status,
        resp.reason,
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    for line in &resp.extra {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    let written =
        tokio::time::timeout(shared.config.limits.write_timeout, tcp.write_all(&out)).await;
    if matches!(written, Ok(Ok(()))) {
        linger(&mut tcp).await;
    }
}

/// Half-closes `tcp` and discards what the client still sends until it closes too, for at
/// most [`LINGER`] and [`LINGER_MAX_BYTES`].
pub(crate) async fn linger(tcp: &mut TcpStream) {
    let _ = tokio::time::timeout(LINGER, async {
        let _ = tcp.shutdown().await;
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_MAX_BYTES {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

async fn serve_static(root: &Path, path: &str) -> Response {
    let Some(relative) = static_relative_path(path) else {
        return not_found();
    };
    let mut file = root.join(relative);
    if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        file.push("index.html");
    }
    // Canonicalizing resolves symlinks, so a link pointing outside the root is refused too.
    let Ok(file) = tokio::fs::canonicalize(&file).await else {
        return not_found();
    };
    if !file.starts_with(root) {
        info!(path, "static path outside the root refused");
        return not_found();
    }
    match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() && m.len() <= MAX_STATIC_FILE => {}
        _ => return not_found(),
    }
    match tokio::fs::read(&file).await {
        Ok(body) => Response {
            status: 200,
            reason: "OK",
            content_type: content_type(&file),
            body,
            extra: Vec::new(),
        },
        Err(_) => not_found(),
    }
}

/// The relative file path for a request path, or `None` if it is refused.
fn static_relative_path(path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix('/')?;
    let mut out = PathBuf::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            // `//` or a trailing `/`: nothing to add.
            continue;
        }
        let segment = percent_decode(raw)?;
        if segment == "."
            || segment == ".."
            || segment.starts_with('.')
            // `:` too, so a segment cannot be a Windows drive prefix like `C:`.
            || segment.contains(['/', '\\', '\0', ':'])
        {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

/// Decodes `%XX` escapes; `None` on a bad escape or if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_paths() {
        assert_eq!(static_relative_path("/"), Some(PathBuf::new()));
        assert_eq!(static_relative_path("/a/b.js"), Some(PathBuf::from("a/b.js")));
        assert_eq!(static_relative_path("/a//b%20c.js"), Some(PathBuf::from("a/b c.js")));
        for bad in [
            "a",
            "/..",
            "/a/../../etc/passwd",
            "/%2e%2e/x",
            "/a%2f..%2f..%2fx",
            "/.git/config",
            "/a%5c..",
            "/a%00b",
            "/%zz",
            "/%e9",
            "/C:/x",
        ] {
            assert_eq!(static_relative_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types() {
        for (file, ty) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("x_bg.wasm", "application/wasm"),
            ("a.CSS", "text/css; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.png", "image/png"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(file)), ty);
        }
    }
}
