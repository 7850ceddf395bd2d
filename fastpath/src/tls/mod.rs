//! TLS on rustls (ring provider): termination of downstream connections (`accept`),
//! origination of upstream ones (`connect`), the readiness-driven TLS stream, compiled
//! contexts, certificate identity, verification and `ssl.*` stats; and the ClientHello
//! peek of the TLS inspector.
pub mod alpn_offer;
pub mod cert;
pub mod client_hello;
pub mod context;
pub mod serve;
pub mod stats;
pub mod stream;
#[cfg(test)]
pub mod test_certs;
pub mod verify;
pub mod xfcc;

use std::io;
use std::net::SocketAddr;

use rustls::Connection;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub use context::{ClientTlsConfig, ServerTlsConfig};
pub use stats::SslStats;
pub use stream::{HandshakeError, TlsStream};

use crate::conn_info::{ConnInfo, TlsInfo};
use crate::stream::Stream;

/// A listener's compiled `DownstreamTlsContext` with its `listener.<prefix>.ssl.*` stats.
pub struct ServerTls {
    pub cfg: ServerTlsConfig,
    pub stats: SslStats,
}

/// A cluster's compiled `UpstreamTlsContext` with its `cluster.<name>.ssl.*` stats.
pub struct ClientTls {
    pub cfg: ClientTlsConfig,
    pub stats: SslStats,
}

/// Why a downstream handshake failed, for the listener access log.
pub struct AcceptFailure {
    /// The version negotiated before the failure (`%DOWNSTREAM_TLS_VERSION%`).
    pub version: Option<&'static str>,
    /// `%DOWNSTREAM_TRANSPORT_FAILURE_REASON%` (empty: none, e.g. the peer closed).
    pub reason: String,
}

fn version_name(v: Option<rustls::ProtocolVersion>) -> Option<&'static str> {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_2) => Some("TLSv1.2"),
        Some(rustls::ProtocolVersion::TLSv1_3) => Some("TLSv1.3"),
        _ => None,
    }
}

/// `%DOWNSTREAM_TRANSPORT_FAILURE_REASON%` of a failed handshake: BoringSSL's text, as Envoy
/// writes it, where meshcore knows it (a missing or unverifiable client certificate, an
/// HTTP request or a proxy CONNECT, bytes that are not a TLS record); else rustls' reason in
/// Envoy's `TLS_error:|...:TLS_error_end` frame; empty for a socket error or a peer that
/// closed.
pub fn failure_reason(f: &stream::Failed) -> String {
    use rustls::{CertificateError, Error};
    const BORING: &str = "TLS_error:|";
    let boring = |code: u32, text: &str| {
        format!("{BORING}{code}:SSL_routines:OPENSSL_internal:{text}:TLS_error_end")
    };
    let e = match &f.error {
        HandshakeError::Io(_) => return String::new(),
        HandshakeError::Tls(e) => e,
    };
    let first = f.first.get();
    match e {
        Error::NoCertificatesPresented => boring(
            268435648,
            "PEER_DID_NOT_RETURN_A_CERTIFICATE:peer_did_not_provide_required_client_certificate",
        ),
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => boring(
            268435581,
            "CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_X509_verify_cert:\
             _certificate_verification_error_at_depth_0:_unable_to_get_local_issuer_certificate",
        ),
        // Not a TLS record (BoringSSL looks at the first bytes the same way).
        _ if first.first().is_some_and(|&b| b != 0x16) => {
            let http = [&b"GET "[..], b"POST ", b"HEAD ", b"PUT "];
            if http.iter().any(|m| first.starts_with(m)) {
                boring(268435612, "HTTP_REQUEST")
            } else if first.starts_with(b"CONNE") {
                boring(268435611, "HTTPS_PROXY_REQUEST")
            } else {
                boring(268435703, "WRONG_VERSION_NUMBER")
            }
        }
        e => format!("{BORING}{e}:TLS_error_end").replace(' ', "_"),
    }
}

/// Terminates TLS on an accepted connection (worker `w`), within the handshake timeout;
/// fills `info.tls` (SNI, ALPN, the verified client certificate) and counts the `ssl.*`
/// stats. The one place a downstream handshake happens.
pub async fn accept(
    tls: &ServerTls,
    tcp: TcpStream,
    info: &mut ConnInfo,
    w: usize,
) -> Result<Stream, AcceptFailure> {
    let conn =
        rustls::ServerConnection::new(tls.cfg.config.clone()).map_err(|e| AcceptFailure {
            version: None,
            reason: format!("TLS_error:|{e}:TLS_error_end"),
        })?;
    let hs = TlsStream::handshake_versioned(tcp, Connection::Server(conn));
    let s = match tokio::time::timeout(tls.cfg.handshake_timeout, hs).await {
        Ok(Ok(s)) => s,
        Ok(Err(failed)) => {
            tls.stats.failed(w, &failed.error);
            return Err(AcceptFailure {
                version: version_name(failed.version),
                reason: failure_reason(&failed),
            });
        }
        Err(_) => {
            let e = HandshakeError::Io(io::ErrorKind::TimedOut.into());
            tls.stats.failed(w, &e);
            return Err(AcceptFailure {
                version: None,
                reason: String::new(),
            });
        }
    };
    {
        let sess = s.session();
        let chain = sess.peer_certificates().unwrap_or_default();
        tls.stats
            .handshake(w, sess.protocol_version(), !chain.is_empty());
        let sni = match &*sess {
            Connection::Server(c) => c.server_name().map(Into::into),
            Connection::Client(_) => None,
        };
        let peer_cert = chain.first().map(|leaf| {
            let mut p = cert::peer_cert(leaf);
            p.chain_der = chain.iter().map(|c| c.as_ref().into()).collect();
            p
        });
        info.tls = Some(Box::new(TlsInfo {
            sni,
            alpn: sess.alpn_protocol().map(Into::into),
            terminated: true,
            peer_cert,
            local_uri_sans: tls.cfg.local_uri_sans.to_vec(),
            inspected: info.tls.as_ref().is_some_and(|t| t.inspected),
            cipher: sess
                .negotiated_cipher_suite()
                .and_then(|c| cipher_name(c.suite())),
            version: version_name(sess.protocol_version()),
        }));
    }
    Ok(Stream::Tls(Box::new(s)))
}

/// BoringSSL's name of a cipher suite rustls negotiates (`%DOWNSTREAM_TLS_CIPHER%`).
fn cipher_name(s: rustls::CipherSuite) -> Option<&'static str> {
    use rustls::CipherSuite as C;
    Some(match s {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
}

/// Originates TLS on a connected upstream socket (the caller's connect timeout bounds it);
/// counts the cluster's `ssl.*` stats.
/// `http1`: the request is HTTP/1.1 on a `use_downstream_protocol_config` cluster, which
/// offers `http/1.1` for it (ignored for other clusters).
pub async fn connect(
    tls: &ClientTls,
    tcp: TcpStream,
    addr: SocketAddr,
    w: usize,
    http1: bool,
) -> Result<Stream, HandshakeError> {
    let name = tls
        .cfg
        .sni
        .clone()
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
    let config = match &tls.cfg.http1 {
        Some(h1) if http1 => h1.clone(),
        _ => tls.cfg.config.clone(),
    };
    let conn = rustls::ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
    match TlsStream::handshake(tcp, Connection::Client(conn)).await {
        Ok(s) => {
            let version = s.session().protocol_version();
            // Upstream, "no certificate" is the server's: it always sends one.
            tls.stats.handshake(w, version, true);
            Ok(Stream::Tls(Box::new(s)))
        }
        Err(e) => {
            tls.stats.failed(w, &e);
            Err(e)
        }
    }
}

impl ClientTls {
    /// The cluster's `transport_socket`, if it has one (`path`: `clusters[i]`).
    pub fn compile(
        c: &crate::config::snapshot::Cluster,
        registry: &crate::stats::Registry,
        path: &str,
    ) -> Result<Option<ClientTls>, String> {
        let Some(t) = &c.transport_socket else {
            if c.http_auto {
                // Envoy's words: auto_config needs ALPN, which only TLS has.
                return Err(format!(
                    "{path}: ALPN configured for cluster {} which has a non-ALPN transport \
                     socket",
                    c.name
                ));
            }
            return Ok(None);
        };
        let offer = alpn_offer::Offer::of(c);
        let cfg = ClientTlsConfig::compile(t, offer, &format!("{path}.transport_socket"))?;
        let stats = SslStats::new(registry, &format!("cluster.{}", c.stat_name()));
        Ok(Some(ClientTls { cfg, stats }))
    }
}
