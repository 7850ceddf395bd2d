//! Compiling TLS contexts (errors naming fields) and mutual TLS outcomes over real handshakes:
//! accepted SPIFFE identity, no certificate, another CA, a SAN mismatch; upstream SAN checks.
use std::sync::Arc;

use rustls::Connection;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::config::snapshot::{
    SanMatcher, SanType, StringMatcher, StringPattern, TlsCertificate, Validation,
};
use crate::tls::alpn_offer::Offer;
use crate::tls::stats::{Counter, verify_failure};
use crate::tls::stream::{HandshakeError, TlsStream};
use crate::tls::test_certs::{Ca, Leaf};

const WEB: &str = "spiffe://cluster.local/ns/default/sa/web";

fn cert(leaf: &Leaf) -> TlsCertificate {
    TlsCertificate {
        certificate_chain: leaf.cert_pem.clone(),
        private_key: leaf.key_pem.clone(),
    }
}

fn exact(san_type: SanType, v: &str) -> SanMatcher {
    SanMatcher {
        san_type,
        matcher: StringMatcher {
            pattern: StringPattern::Exact(v.into()),
            ignore_case: false,
        },
    }
}

fn downstream(ca: &Ca, require: bool, sans: Vec<SanMatcher>) -> DownstreamTls {
    DownstreamTls {
        common: CommonTls {
            tls_certificates: vec![cert(&ca.leaf("proxy", &["proxy.test"], &[]))],
            validation: Some(Validation {
                trusted_ca: ca.pem(),
                match_typed_subject_alt_names: sans,
            }),
            ..CommonTls::default()
        },
        require_client_certificate: require,
        handshake_timeout_ms: 0,
    }
}

fn upstream(ca: &Ca, client: Option<&Leaf>, sans: Vec<SanMatcher>) -> UpstreamTls {
    UpstreamTls {
        common: CommonTls {
            tls_certificates: client.map(cert).into_iter().collect(),
            validation: Some(Validation {
                trusted_ca: ca.pem(),
                match_typed_subject_alt_names: sans,
            }),
            ..CommonTls::default()
        },
        sni: "proxy.test".into(),
    }
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

/// The server's and client's handshake results.
async fn handshake(
    server: &ServerTlsConfig,
    client: &ClientTlsConfig,
) -> (
    Result<TlsStream, HandshakeError>,
    Result<TlsStream, HandshakeError>,
) {
    let (c, s) = tcp_pair().await;
    let name = client
        .sni
        .clone()
        .unwrap_or_else(|| ServerName::try_from("proxy.test").unwrap());
    let cc =
        Connection::Client(rustls::ClientConnection::new(client.config.clone(), name).unwrap());
    let sc = Connection::Server(rustls::ServerConnection::new(server.config.clone()).unwrap());
    tokio::join!(TlsStream::handshake(s, sc), TlsStream::handshake(c, cc))
}

fn client(ca: &Ca, leaf: Option<&Leaf>) -> ClientTlsConfig {
    ClientTlsConfig::compile(&upstream(ca, leaf, vec![]), Offer::Http1, "c").unwrap()
}

#[tokio::test]
async fn mutual_tls_accepts_the_spiffe_id_and_refuses_the_rest() {
    let ca = Ca::generate();
    let rogue = Ca::generate();
    let server =
        ServerTlsConfig::compile(&downstream(&ca, true, vec![exact(SanType::Uri, WEB)]), "t")
            .unwrap();
    let web = ca.leaf("web", &[], &[WEB]);
    let (s, _) = handshake(&server, &client(&ca, Some(&web))).await;
    let s = s.unwrap();
    let chain = s.session().peer_certificates().unwrap().to_vec();
    assert_eq!(crate::tls::cert::peer_cert(&chain[0]).uri_sans, [WEB]);

    let other = ca.leaf(
        "other",
        &[],
        &["spiffe://cluster.local/ns/default/sa/other"],
    );
    let (s, _) = handshake(&server, &client(&ca, Some(&other))).await;
    let e = s.err().unwrap();
    assert!(
        matches!(verify_failure(&e), Some(Counter::FailVerifySan)),
        "{e}"
    );

    let forged = rogue.leaf("web", &[], &[WEB]);
    let (s, _) = handshake(&server, &client(&ca, Some(&forged))).await;
    let e = s.err().unwrap();
    assert!(
        matches!(verify_failure(&e), Some(Counter::FailVerifyError)),
        "{e}"
    );

    let (s, _) = handshake(&server, &client(&ca, None)).await;
    let e = s.err().unwrap();
    assert!(
        matches!(verify_failure(&e), Some(Counter::FailVerifyNoCert)),
        "{e}"
    );
}

#[tokio::test]
async fn an_optional_client_certificate_may_be_absent() {
    let ca = Ca::generate();
    let server = ServerTlsConfig::compile(&downstream(&ca, false, vec![]), "t").unwrap();
    let (s, _) = handshake(&server, &client(&ca, None)).await;
    assert!(s.unwrap().session().peer_certificates().is_none());
}

#[tokio::test]
async fn upstream_san_matchers_decide_and_the_sni_name_does_not() {
    let ca = Ca::generate();
    let server = ServerTlsConfig::compile(&downstream(&ca, false, vec![]), "t").unwrap();
    let ok = ClientTlsConfig::compile(
        &upstream(&ca, None, vec![exact(SanType::Dns, "proxy.test")]),
        Offer::Http1,
        "c",
    )
    .unwrap();
    let (_, c) = handshake(&server, &ok).await;
    assert!(c.is_ok());
    let wrong = ClientTlsConfig::compile(
        &upstream(&ca, None, vec![exact(SanType::Dns, "other.test")]),
        Offer::Http1,
        "c",
    )
    .unwrap();
    let (_, c) = handshake(&server, &wrong).await;
    let e = c.err().unwrap();
    assert!(
        matches!(verify_failure(&e), Some(Counter::FailVerifySan)),
        "{e}"
    );
    // Another CA's server certificate fails the chain check.
    let rogue = Ca::generate();
    let (_, c) = handshake(&server, &client(&rogue, None)).await;
    let e = c.err().unwrap();
    assert!(
        matches!(verify_failure(&e), Some(Counter::FailVerifyError)),
        "{e}"
    );
}

#[test]
fn config_errors_name_the_field() {
    let ca = Ca::generate();
    let err = |t: &DownstreamTls| {
        ServerTlsConfig::compile(t, "listeners[0].transport_socket")
            .err()
            .unwrap()
    };
    let mut t = downstream(&ca, true, vec![]);
    t.common.tls_certificates[0].certificate_chain =
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into();
    assert!(
        err(&t).starts_with("listeners[0].transport_socket.common_tls_context.tls_certificates[0]"),
        "{}",
        err(&t)
    );
    let mut t = downstream(&ca, true, vec![]);
    t.common.tls_certificates[0].private_key = "nothing".into();
    assert!(err(&t).starts_with(
        "listeners[0].transport_socket.common_tls_context.tls_certificates[0].private_key: "
    ));
    let mut t = downstream(&ca, true, vec![]);
    t.common.tls_params.minimum = Some("TLSv1_1".into());
    assert_eq!(
        err(&t),
        "listeners[0].transport_socket.common_tls_context.tls_params.tls_minimum_protocol_version: \
         TLSv1_1 is not supported (rustls speaks TLS 1.2 and 1.3 only)"
    );
    let mut t = downstream(&ca, true, vec![]);
    t.common.tls_params.cipher_suites = vec![
        "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]".into(),
        "AES128-SHA".into(),
    ];
    assert!(err(&t).starts_with(
        "listeners[0].transport_socket.common_tls_context.tls_params.cipher_suites[1]: \"AES128-SHA\""
    ));
    let mut t = downstream(&ca, true, vec![]);
    t.common.validation = None;
    assert!(err(&t).starts_with("listeners[0].transport_socket.require_client_certificate: "));
    let mut t = downstream(&ca, true, vec![]);
    t.common.validation.as_mut().unwrap().trusted_ca = "junk".into();
    assert!(err(&t).starts_with(
        "listeners[0].transport_socket.common_tls_context.validation_context.trusted_ca: "
    ));
    let mut u = upstream(&ca, None, vec![]);
    u.common.alpn_protocols = vec!["h2".into()];
    assert!(
        ClientTlsConfig::compile(&u, Offer::Http1, "clusters[0].transport_socket")
            .unwrap_err()
            .starts_with("clusters[0].transport_socket.common_tls_context.alpn_protocols: ")
    );
    // An HTTP/2 cluster offers h2 (configured or not), and refuses http/1.1 in the list.
    let h2 = ClientTlsConfig::compile(&u, Offer::Http2, "c").unwrap();
    assert_eq!(h2.config.alpn_protocols, vec![b"h2".to_vec()]);
    let plain = ClientTlsConfig::compile(&upstream(&ca, None, vec![]), Offer::Http2, "c").unwrap();
    assert_eq!(plain.config.alpn_protocols, vec![b"h2".to_vec()]);
    u.common.alpn_protocols = vec!["http/1.1".into()];
    assert!(ClientTlsConfig::compile(&u, Offer::Http2, "c").is_err());
    // auto_config offers both; use_downstream_protocol_config has an http/1.1 config too.
    let auto = ClientTlsConfig::compile(&upstream(&ca, None, vec![]), Offer::Auto, "c").unwrap();
    assert_eq!(
        auto.config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    assert!(auto.http1.is_none());
    let follow =
        ClientTlsConfig::compile(&upstream(&ca, None, vec![]), Offer::FollowDownstream, "c")
            .unwrap();
    assert_eq!(follow.config.alpn_protocols, vec![b"h2".to_vec()]);
    assert_eq!(
        follow.http1.unwrap().alpn_protocols,
        vec![b"http/1.1".to_vec()]
    );
    let _ = Arc::new(0);
}

#[test]
fn versions_follow_envoys_defaults() {
    let p = TlsParams::default();
    assert_eq!(versions(&p, 3, "x").unwrap().len(), 2);
    assert_eq!(versions(&p, 2, "x").unwrap(), [&rustls::version::TLS12]);
    let p = TlsParams {
        minimum: Some("TLSv1_3".into()),
        ..TlsParams::default()
    };
    assert_eq!(versions(&p, 3, "x").unwrap(), [&rustls::version::TLS13]);
    assert!(versions(&p, 2, "x").is_err());
}
