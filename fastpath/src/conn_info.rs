//! What is known about a downstream connection besides its bytes: addresses, and the TLS
//! facts (SNI, ALPN, the client certificate's identity) that RBAC, access logs and
//! `x-forwarded-client-cert` read.
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The next downstream connection's id (`%CONNECTION_ID%`), process-wide as Envoy's.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-wide unique connection id (one relaxed atomic add per accepted connection).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Built once when the connection is accepted (and completed after a TLS handshake); read by
/// filters through `FilterRequest::downstream`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address as the socket sees it (`direct_remote_ip`).
    pub peer: SocketAddr,
    /// The address the connection was accepted on (`destination_ip`, `destination_port`).
    pub local: SocketAddr,
    /// Set when the connection's first bytes were a TLS ClientHello (inspected or
    /// terminated); boxed so a plain connection pays one pointer.
    pub tls: Option<Box<TlsInfo>>,
    /// Unique across workers (`next_id`; `%CONNECTION_ID%`).
    pub id: u64,
}

/// TLS facts of a downstream connection.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// The ClientHello's server name (`%REQUESTED_SERVER_NAME%`, `requested_server_name`).
    pub sni: Option<Box<str>>,
    /// The negotiated (terminated) or first offered (passthrough) ALPN protocol.
    pub alpn: Option<Box<[u8]>>,
    /// True when meshcore terminated TLS on this connection (false: passthrough).
    pub terminated: bool,
    /// The verified client certificate, when the client sent one.
    pub peer_cert: Option<PeerCert>,
    /// The negotiated version (`TLSv1.2`, `TLSv1.3`; `%DOWNSTREAM_TLS_VERSION%`).
    pub version: Option<&'static str>,
    /// URI SANs of meshcore's own certificate on a terminated connection (XFCC `By`).
    pub local_uri_sans: Vec<String>,
    /// A TLS inspector read the ClientHello: as in Envoy, only then is the SNI the
    /// connection's requested server name (`%REQUESTED_SERVER_NAME%`).
    pub inspected: bool,
    /// The negotiated cipher suite, by its OpenSSL name (`%DOWNSTREAM_TLS_CIPHER%`).
    pub cipher: Option<&'static str>,
}

/// What RBAC's `authenticated` principal and XFCC need of a verified client certificate.
#[derive(Debug, Clone, Default)]
pub struct PeerCert {
    /// URI SANs, e.g. `spiffe://cluster.local/ns/default/sa/web`.
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
    /// The subject in RFC 2253 form (`CN=web,O=example`).
    pub subject: String,
    /// Lower-case hex SHA-256 of the certificate's DER (XFCC `Hash`).
    pub sha256_hex: String,
    /// The chain as the peer presented it, leaf first, DER (XFCC `Cert` and `Chain`).
    pub chain_der: Vec<Box<[u8]>>,
    /// Parsed from the leaf on the first access log line that reads them (once per
    /// connection, never when no format asks).
    pub details: OnceLock<Option<Box<CertDetails>>>,
}

/// Peer certificate fields only access logs read (`%DOWNSTREAM_PEER_ISSUER%`, ...).
#[derive(Debug, Clone)]
pub struct CertDetails {
    /// RFC 2253, as the subject.
    pub issuer: String,
    /// Lower-case hex, without the DER sign byte.
    pub serial: String,
    pub sha1_hex: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl PeerCert {
    /// The leaf's details, parsed on first use (None: no leaf, or it does not parse).
    pub fn details(&self) -> Option<&CertDetails> {
        self.details
            .get_or_init(|| {
                let leaf = self.chain_der.first()?;
                crate::tls::cert::details(leaf).map(Box::new)
            })
            .as_deref()
    }
}

impl ConnInfo {
    pub fn plain(peer: SocketAddr, local: SocketAddr) -> ConnInfo {
        ConnInfo {
            peer,
            local,
            tls: None,
            id: next_id(),
        }
    }

    pub fn peer_cert(&self) -> Option<&PeerCert> {
        self.tls.as_deref()?.peer_cert.as_ref()
    }

    pub fn sni(&self) -> Option<&str> {
        self.tls.as_deref()?.sni.as_deref()
    }
}
