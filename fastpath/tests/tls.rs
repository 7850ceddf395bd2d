//! End-to-end TLS termination through an Engine: a keep-alive HTTPS exchange with the
//! `ssl.*` stats, and a bad key in a later snapshot is an apply error naming the field while
//! the old TLS listener keeps serving.
use std::sync::Arc;

use meshcore_fastpath::engine::{Engine, EngineError};
use meshcore_fastpath::tls::TlsStream;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn snapshot(cert: &str, key: &str) -> Value {
    json!({
        "listeners": [{
            "name": "https",
            "address": "127.0.0.1",
            "port": 0,
            "filter_chains": [{
                "transport_socket": {"common": {
                    "tls_certificates": [{"certificate_chain": cert, "private_key": key}],
                    "alpn_protocols": ["http/1.1"],
                }},
                "filter": {"http_connection_manager": {
                    "stat_prefix": "https",
                    "route_config": {"virtual_hosts": [{
                        "name": "all",
                        "domains": ["*"],
                        "routes": [{"match": {"path": {"prefix": "/"}},
                                    "action": {"direct_response": {"status": 418, "body": "teapot"}}}],
                    }]},
                }},
            }],
        }],
    })
}

async fn client(port: u16, ca: &str) -> TlsStream {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    TlsStream::handshake(tcp, rustls::Connection::Client(conn))
        .await
        .unwrap()
}

async fn exchange(s: &mut TlsStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"teapot") {
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

fn counter(engine: &Engine, name: &str) -> u64 {
    let stats: Value = serde_json::from_slice(&engine.stats()).unwrap();
    stats["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[tokio::test]
async fn https_keep_alive_and_a_bad_key_keeps_the_old_config() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let engine = Engine::new(1).unwrap();
    engine
        .apply(&serde_json::to_vec(&snapshot(&cert_pem, &key_pem)).unwrap())
        .unwrap();
    let port = engine.listener_ports()[0].1;
    let prefix = format!("listener.127.0.0.1_{port}.ssl");

    let mut s = client(port, &cert_pem).await;
    assert_eq!(s.session().alpn_protocol(), Some(&b"http/1.1"[..]));
    for _ in 0..2 {
        let reply = exchange(&mut s).await;
        assert!(reply.starts_with("HTTP/1.1 418"), "{reply}");
    }
    assert_eq!(counter(&engine, &format!("{prefix}.handshake")), 1);
    assert_eq!(counter(&engine, &format!("{prefix}.versions.TLSv1.3")), 1);
    assert_eq!(counter(&engine, &format!("{prefix}.no_certificate")), 1);

    let bad_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    match engine.apply(&serde_json::to_vec(&snapshot(&cert_pem, bad_key)).unwrap()) {
        Err(EngineError::Value(m)) => assert!(
            m.starts_with(
                "listeners[0].filter_chains[0].transport_socket.common_tls_context.tls_certificates[0]"
            ),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // The old listener keeps serving TLS, on the open connection and on a new one.
    assert!(exchange(&mut s).await.starts_with("HTTP/1.1 418"));
    let mut again = client(port, &cert_pem).await;
    assert!(exchange(&mut again).await.starts_with("HTTP/1.1 418"));
    engine.stop();
}
