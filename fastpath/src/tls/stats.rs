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

    /// Counts a failed handshake: `connection_error`, and the verification failure when it
    /// was one.
    pub fn failed(&self, w: usize, err: &super::stream::HandshakeError) {
        use rustls::{CertificateError, Error};
        self.inc(w, Counter::ConnectionError);
        if let super::stream::HandshakeError::Tls(e) = err {
            match e {
                Error::NoCertificatesPresented => self.inc(w, Counter::FailVerifyNoCert),
                Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
                    self.inc(w, Counter::FailVerifySan)
                }
                Error::InvalidCertificate(_) => self.inc(w, Counter::FailVerifyError),
                _ => {}
            }
        }
    }
}
