//! Envoy's TLS stats: `listener.<prefix>.ssl.*` (termination) and `cluster.<name>.ssl.*`
//! (origination).
use std::sync::Arc;

use crate::stats::{Registry, Scope, stat_set};

stat_set! { ssl, prefix_codes: None,
    counters {
        ConnectionError => "connection_error",
        Handshake => "handshake",
        NoCertificate => "no_certificate",
        FailVerifyNoCert => "fail_verify_no_cert",
        FailVerifySan => "fail_verify_san",
        FailVerifyError => "fail_verify_error",
        VersionTls12 => "versions.TLSv1.2",
        VersionTls13 => "versions.TLSv1.3",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}

pub use ssl::Counter;

/// One `ssl` scope.
#[derive(Clone)]
pub struct SslStats(Arc<Scope>);

impl SslStats {
    /// `prefix` is `listener.<prefix>` or `cluster.<name>`.
    pub fn new(registry: &Registry, prefix: &str) -> SslStats {
        SslStats(registry.scope(&format!("{prefix}.ssl"), &ssl::LAYOUT))
    }

    #[inline]
    pub fn inc(&self, w: usize, c: Counter) {
        self.0.add(w, c as usize, 1);
    }

    /// Counts a completed handshake: `handshake`, the version, and `no_certificate` when the
    /// peer presented none.
    pub fn handshake(&self, w: usize, version: Option<rustls::ProtocolVersion>, peer_cert: bool) {
        self.inc(w, Counter::Handshake);
        match version {
            Some(rustls::ProtocolVersion::TLSv1_2) => self.inc(w, Counter::VersionTls12),
            Some(rustls::ProtocolVersion::TLSv1_3) => self.inc(w, Counter::VersionTls13),
            _ => {}
        }
        if !peer_cert {
            self.inc(w, Counter::NoCertificate);
        }
    }

    /// Counts a failed handshake as Envoy does: the `fail_verify_*` counter when a
    /// certificate check failed it, else `connection_error` for a TLS protocol error (a
    /// socket closed or timed out mid-handshake counts neither).
    pub fn failed(&self, w: usize, err: &super::stream::HandshakeError) {
        match (verify_failure(err), err) {
            (Some(c), _) => self.inc(w, c),
            (None, super::stream::HandshakeError::Tls(_)) => self.inc(w, Counter::ConnectionError),
            (None, super::stream::HandshakeError::Io(_)) => {}
        }
    }
}

/// The `fail_verify_*` counter of a failed handshake, when a certificate check failed it.
pub fn verify_failure(err: &super::stream::HandshakeError) -> Option<Counter> {
    use rustls::{CertificateError, Error};
    match err {
        super::stream::HandshakeError::Tls(e) => match e {
            Error::NoCertificatesPresented => Some(Counter::FailVerifyNoCert),
            Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
                Some(Counter::FailVerifySan)
            }
            Error::InvalidCertificate(_) => Some(Counter::FailVerifyError),
            _ => None,
        },
        super::stream::HandshakeError::Io(_) => None,
    }
}
