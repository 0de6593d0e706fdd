//! `wss://` signaling: the real signaling server behind a TLS-terminating proxy on 127.0.0.1
//! (as a deployment puts it behind a load balancer, and as browsers on https pages require).
//! A peer registered through `wss://` with the proxy's certificate trusted connects by
//! identity to a peer on the plain URL; without that trust, registration fails with the TLS
//! reason.

mod p2p_common;

use std::net::SocketAddr;
use std::sync::Arc;

use lanewire::{Config, ConnectionState, P2pError, SendFlags, Sockets};
use p2p_common::*;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// A TLS-terminating proxy to `backend`, with a self-signed certificate for 127.0.0.1 and
/// localhost. Runs until the runtime is dropped.
struct TlsProxy {
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    cert: CertificateDer<'static>,
}

impl TlsProxy {
    fn start(backend: SocketAddr) -> TlsProxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let key = rcgen::generate_simple_self_signed(names).unwrap();
        let cert = key.cert.der().clone();
        let der = PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], der.into())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A failed handshake (an untrusting client) just ends this connection.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut up) = TcpStream::connect(backend).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                });
            }
        });
        TlsProxy { _rt: rt, addr, cert }
    }

    fn url(&self) -> String {
        format!("wss://{}/ws", self.addr)
    }
}

#[test]
fn wss_registers_and_connects_through_a_tls_proxy() {
    let server = SignalingServer::start();
    let proxy = TlsProxy::start(server.addr);

    let alice = Sockets::new().unwrap();
    let mut cfg = sig_config(&proxy.url(), "str:alice");
    cfg.extra_root_certs = vec![proxy.cert.to_vec()];
    alice.connect_signaling(cfg).expect("registers over wss://");
    assert!(alice.is_signaling_connected());

    // The other peer uses the plain URL of the same server.
    let bob = peer(&server.url(), "str:bob");
    bob.listen_p2p(3, Config::new()).unwrap();
    let (c, s) = connect_p2p(&bob, &alice, "str:bob", 3, Config::new());
    alice.send(c, b"over wss signaling", SendFlags::RELIABLE).unwrap();
    assert_eq!(bob.receive_timeout(s, 1, WAIT).unwrap()[0].data(), b"over wss signaling");
    assert_eq!(alice.connection_info(c).unwrap().state, ConnectionState::Connected);
}

#[test]
fn wss_refuses_an_untrusted_certificate() {
    let server = SignalingServer::start();
    let proxy = TlsProxy::start(server.addr);
    let alice = Sockets::new().unwrap();
    let mut cfg = sig_config(&proxy.url(), "str:alice");
    cfg.timeout = std::time::Duration::from_secs(3);
    match alice.connect_signaling(cfg) {
        Err(P2pError::Unreachable(why)) => {
            assert!(why.contains("certificate"), "the TLS reason is given: {why}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // A garbage extra root is a clear error at once.
    let mut cfg = sig_config(&proxy.url(), "str:alice");
    cfg.extra_root_certs = vec![b"not a certificate".to_vec()];
    assert!(matches!(alice.connect_signaling(cfg), Err(P2pError::Tls(_))));
}
