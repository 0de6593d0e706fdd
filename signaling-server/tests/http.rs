//! The HTTP side: /healthz, /metrics, static files (content types, no traversal), errors, and
//! graceful shutdown.

#![cfg(feature = "server")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use lanewire_signaling::protocol::ErrorCode;
use lanewire_signaling::{Auth, Config, Limits, Server, ServerError};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn healthz() {
    let server = start_dev(Limits::default()).await;
    let (status, head, body) = http_get(server.local_addr(), "/healthz").await;
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/plain"), "{head}");
    assert_eq!(body, b"ok\n");
}

#[tokio::test]
async fn metrics_count_clients_relays_and_rejections() {
    let server = start_dev(Limits::default()).await;
    let addr = server.local_addr();
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut bob = Client::dev(addr, "str:bob").await;
    alice.send(&offer("str:bob", 1)).await;
    bob.expect_signal().await;
    alice.send(&offer("str:nobody", 2)).await;
    alice.expect_error(ErrorCode::UnknownPeer).await;
    alice.send_text("garbage").await;
    alice.expect_error(ErrorCode::Malformed).await;

    let (status, head, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let text = String::from_utf8(body).expect("utf-8");
    for line in [
        "lanewire_signaling_clients 2",
        "lanewire_signaling_registered 2",
        "lanewire_signaling_connections_total 2",
        "lanewire_signaling_messages_relayed_total 1",
        "lanewire_signaling_rejections_total{kind=\"unknown_peer\"} 1",
        "lanewire_signaling_rejections_total{kind=\"malformed\"} 1",
        "lanewire_signaling_rejections_total{kind=\"rate_limited\"} 0",
        "# TYPE lanewire_signaling_messages_relayed_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
}

/// A fresh directory under Cargo's per-test-target scratch space.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

#[tokio::test]
async fn static_files_with_content_types_and_no_traversal() {
    let base = scratch_dir("static-files");
    let root = base.join("www");
    std::fs::create_dir_all(root.join("pkg")).expect("mkdir");
    std::fs::write(base.join("secret.txt"), "outside the root").expect("write");
    let files: [(&str, &[u8], &str); 7] = [
        ("index.html", b"<!doctype html>", "text/html; charset=utf-8"),
        ("app.js", b"export {}", "text/javascript; charset=utf-8"),
        ("pkg/x_bg.wasm", b"\0asm\x01\0\0\0", "application/wasm"),
        ("style.css", b"body{}", "text/css; charset=utf-8"),
        ("data.json", b"{}", "application/json"),
        ("logo.png", b"\x89PNG", "image/png"),
        ("pkg/index.html", b"pkg index", "text/html; charset=utf-8"),
    ];
    for (path, body, _) in &files {
        std::fs::write(root.join(path), body).expect("write");
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).expect("symlink");

    let config = Config {
        static_dir: Some(root.clone()),
        ..Config::new("127.0.0.1:0".parse().expect("addr"), Auth::DevInsecure)
    };
    let server = Server::bind(config).await.expect("start");
    let addr = server.local_addr();

    for (path, body, content_type) in &files {
        let (status, head, got) = http_get(addr, &format!("/{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(head.contains(&format!("Content-Type: {content_type}\r\n")), "{path}: {head}");
        assert_eq!(&got, body, "{path}");
    }
    // Directories serve their index.html; query strings are ignored.
    assert_eq!(http_get(addr, "/").await.2, b"<!doctype html>");
    assert_eq!(http_get(addr, "/pkg/").await.2, b"pkg index");
    assert_eq!(http_get(addr, "/app.js?v=3").await.2, b"export {}");
    // HEAD: headers only.
    let (status, head, body) = http_request(addr, "HEAD /app.js HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 9"), "{head}");
    assert!(body.is_empty());

    for path in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/link.txt",
        "/.hidden",
        "/missing.js",
        "//etc/passwd",
    ] {
        let (status, _, body) = http_get(addr, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("outside"), "{path}");
    }
}

#[tokio::test]
async fn http_errors() {
    let server = start_dev(Limits::default()).await;
    let addr = server.local_addr();
    // No static directory configured.
    assert_eq!(http_get(addr, "/index.html").await.0, 404);
    let (status, head, _) =
        http_request(addr, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    assert_eq!(http_request(addr, "NONSENSE\r\n\r\n").await.0, 400);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(http_request(addr, &huge).await.0, 431);
    // A broken WebSocket upgrade (no key) is refused with 400, not a session.
    let (status, _, _) = http_request(
        addr,
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    // The server still serves.
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(server.metrics().clients, 0);
}

#[tokio::test]
async fn bind_rejects_bad_config() {
    let addr = "127.0.0.1:0".parse().expect("addr");
    let short = Config::new(addr, Auth::Secret(b"short".to_vec()));
    assert!(matches!(Server::bind(short).await, Err(ServerError::InvalidConfig(_))));
    let tiny = Config {
        limits: Limits { max_frame_bytes: 10, ..Limits::default() },
        ..Config::new(addr, Auth::DevInsecure)
    };
    assert!(matches!(Server::bind(tiny).await, Err(ServerError::InvalidConfig(_))));
    let missing = Config {
        static_dir: Some(PathBuf::from("/definitely/not/here")),
        ..Config::new(addr, Auth::DevInsecure)
    };
    assert!(matches!(Server::bind(missing).await, Err(ServerError::StaticDir(..))));
}

#[tokio::test]
async fn shutdown_tells_clients_and_stops_listening() {
    let server = start_dev(Limits::default()).await;
    let addr = server.local_addr();
    let mut alice = Client::dev(addr, "str:alice").await;
    let mut anon = Client::connect(addr).await;

    let started = tokio::time::Instant::now();
    tokio::time::timeout(WAIT, server.shutdown()).await.expect("shutdown in time");
    // Every session closed within the grace period, so shutdown did not wait it out.
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());

    for client in [&mut alice, &mut anon] {
        client.expect_error(ErrorCode::ShuttingDown).await;
        let close = client.expect_closed().await.expect("close frame");
        assert_eq!(close.code, CloseCode::Away);
    }
    let refused = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("in time");
    assert!(refused.is_err(), "still accepting after shutdown");
}
