//! Peer certificate verification as Envoy's `CertificateValidationContext` does it: the chain
//! must lead to `trusted_ca` (rustls' webpki), then a SAN must match one of
//! `match_typed_subject_alt_names` (when any are set). Upstream, the host name is not
//! checked against `sni` (Envoy checks only the configured SAN matchers), and with no
//! validation context the upstream's certificate is accepted unverified, as Envoy does.
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};

use super::cert;
use crate::config::snapshot::{SanMatcher, SanType};
use crate::router::StringMatch;

/// Compiled `match_typed_subject_alt_names`.
#[derive(Debug)]
pub struct SanMatchers(Box<[(SanType, StringMatch)]>);

impl SanMatchers {
    pub fn compile(list: &[SanMatcher], path: &str) -> Result<SanMatchers, String> {
        list.iter()
            .enumerate()
            .map(|(i, m)| {
                StringMatch::compile(&m.matcher, &format!("{path}[{i}].matcher"))
                    .map(|s| (m.san_type, s))
            })
            .collect::<Result<Box<[_]>, _>>()
            .map(SanMatchers)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when no matcher is set or one matches a SAN of its type in `der`.
    pub fn accept(&self, der: &[u8]) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(sans) = cert::sans(der) else {
            return false;
        };
        self.0.iter().any(|(ty, m)| {
            let list = match ty {
                SanType::Dns => &sans.dns,
                SanType::Uri => &sans.uri,
                SanType::Email => &sans.email,
                SanType::IpAddress => &sans.ip,
            };
            list.iter().any(|s| m.matches(s.as_bytes()))
        })
    }
}

/// The error a SAN mismatch fails the handshake with (counted as `ssl.fail_verify_san`).
pub fn san_mismatch() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// Downstream: webpki's client verifier, then the SAN matchers.
#[derive(Debug)]
pub struct ClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub sans: SanMatchers,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if !self.sans.accept(end_entity) {
            return Err(san_mismatch());
        }
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Upstream: the chain against `roots` (None: not verified), then the SAN matchers; the
/// handshake signatures are always checked.
#[derive(Debug)]
pub struct ServerVerifier {
    pub roots: Option<Arc<RootCertStore>>,
    pub sans: SanMatchers,
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(roots) = &self.roots {
            let parsed = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
            if !self.sans.accept(end_entity) {
                return Err(san_mismatch());
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
