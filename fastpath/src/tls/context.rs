//! Compiling TLS snapshot contexts into rustls configs, once per apply: certificates and keys
//! (PEM), `trusted_ca`, SAN matchers, versions, cipher suites (Envoy's BoringSSL names) and
//! ALPN. Every error names the field's path; nothing is half-applied.
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};

use super::alpn_offer::{HTTP1, Offer};
use super::verify::{ClientVerifier, SanMatchers, ServerVerifier};
use crate::config::snapshot::{CommonTls, DownstreamTls, TlsParams, UpstreamTls};

/// How long a downstream handshake may take when the filter chain sets no
/// `transport_socket_connect_timeout` (Envoy sets none; an unbounded handshake would let a
/// silent client hold a connection and its task forever).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A compiled `DownstreamTlsContext`.
pub struct ServerTlsConfig {
    pub config: Arc<rustls::ServerConfig>,
    pub handshake_timeout: Duration,
    /// URI SANs of the listener's own certificate (XFCC `By`).
    pub local_uri_sans: Box<[String]>,
}

/// A compiled `UpstreamTlsContext`.
#[derive(Debug)]
pub struct ClientTlsConfig {
    pub config: Arc<rustls::ClientConfig>,
    /// `use_downstream_protocol_config` with HTTP/2: the config offering `http/1.1`, for
    /// HTTP/1.1 requests (`config` offers `h2`).
    pub http1: Option<Arc<rustls::ClientConfig>>,
    /// `sni` (None: no SNI; the host's IP is used as the rustls server name, which sends
    /// none).
    pub sni: Option<ServerName<'static>>,
}

fn certs(pem: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let list = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: invalid PEM: {e}"))?;
    if list.is_empty() {
        return Err(format!("{path}: no PEM certificate found"));
    }
    Ok(list)
}

fn key(pem: &str, path: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("{path}: no usable PEM private key: {e}"))
}

fn roots(pem: &str, path: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for (i, c) in certs(pem, path)?.into_iter().enumerate() {
        store
            .add(c)
            .map_err(|e| format!("{path}: certificate {i} is not a usable CA: {e}"))?;
    }
    Ok(Arc::new(store))
}

fn version(name: &str, path: &str) -> Result<Option<u8>, String> {
    match name {
        "TLS_AUTO" => Ok(None),
        "TLSv1_2" => Ok(Some(2)),
        "TLSv1_3" => Ok(Some(3)),
        "TLSv1_0" | "TLSv1_1" => Err(format!(
            "{path}: {name} is not supported (rustls speaks TLS 1.2 and 1.3 only)"
        )),
        other => Err(format!("{path}: unknown TLS version {other:?}")),
    }
}

/// The protocol versions between `minimum` and `maximum` (Envoy's defaults: 1.2 to 1.3
/// for servers, 1.2 to 1.2 for clients).
fn versions(
    p: &TlsParams,
    default_max: u8,
    path: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let min = match &p.minimum {
        Some(v) => version(v, &format!("{path}.tls_minimum_protocol_version"))?.unwrap_or(2),
        None => 2,
    };
    let max = match &p.maximum {
        Some(v) => {
            version(v, &format!("{path}.tls_maximum_protocol_version"))?.unwrap_or(default_max)
        }
        None => default_max,
    };
    if min > max {
        return Err(format!(
            "{path}.tls_minimum_protocol_version: above tls_maximum_protocol_version"
        ));
    }
    let mut out = Vec::new();
    if min <= 2 {
        out.push(&rustls::version::TLS12);
    }
    if max >= 3 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

/// rustls' TLS 1.2 suite for a BoringSSL cipher name.
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    use ring::cipher_suite::*;
    Some(match name {
        "ECDHE-ECDSA-AES128-GCM-SHA256" => TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256" => TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES256-GCM-SHA384" => TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384" => TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-CHACHA20-POLY1305" => TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305" => TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// The provider with `cipher_suites` applied to TLS 1.2 (BoringSSL names, `[a|b]` groups
/// of equal preference flattened; TLS 1.3 suites are not configurable, as in Envoy).
fn provider(p: &TlsParams, path: &str) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = ring::default_provider();
    if !p.cipher_suites.is_empty() {
        let mut suites: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for (i, entry) in p.cipher_suites.iter().enumerate() {
            let group = entry.trim_start_matches('[').trim_end_matches(']');
            for name in group.split('|') {
                let suite = tls12_suite(name).ok_or_else(|| {
                    format!(
                        "{path}.cipher_suites[{i}]: {name:?} is not supported (rustls offers \
                         ECDHE with AES-GCM or CHACHA20-POLY1305 only)"
                    )
                })?;
                if !suites.contains(&suite) {
                    suites.push(suite);
                }
            }
        }
        provider.cipher_suites = suites;
    }
    Ok(Arc::new(provider))
}

fn alpn(list: &[String]) -> Vec<Vec<u8>> {
    list.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The one certificate a context presents (None: none configured).
fn identity(
    c: &CommonTls,
    path: &str,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    match c.tls_certificates.as_slice() {
        [] => Ok(None),
        [one] => {
            let at = format!("{path}.tls_certificates[0]");
            Ok(Some((
                certs(&one.certificate_chain, &format!("{at}.certificate_chain"))?,
                key(&one.private_key, &format!("{at}.private_key"))?,
            )))
        }
        _ => Err(format!(
            "{path}.tls_certificates: more than one certificate is not supported"
        )),
    }
}

impl ServerTlsConfig {
    /// `path` names the transport socket's typed config (`...transport_socket`).
    pub fn compile(t: &DownstreamTls, path: &str) -> Result<ServerTlsConfig, String> {
        let common_path = format!("{path}.common_tls_context");
        let c = &t.common;
        let provider = provider(&c.tls_params, &format!("{common_path}.tls_params"))?;
        let versions = versions(&c.tls_params, 3, &format!("{common_path}.tls_params"))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("{common_path}.tls_params: {e}"))?;
        let builder = match &c.validation {
            Some(v) => {
                let vpath = format!("{common_path}.validation_context");
                let roots = roots(&v.trusted_ca, &format!("{vpath}.trusted_ca"))?;
                let sans = SanMatchers::compile(
                    &v.match_typed_subject_alt_names,
                    &format!("{vpath}.match_typed_subject_alt_names"),
                )?;
                let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
                // As Envoy (BoringSSL's SSL_VERIFY_FAIL_IF_NO_PEER_CERT): SAN matchers make a
                // client certificate mandatory even without `require_client_certificate`.
                if !t.require_client_certificate && sans.is_empty() {
                    b = b.allow_unauthenticated();
                }
                let inner = b.build().map_err(|e| format!("{vpath}.trusted_ca: {e}"))?;
                builder.with_client_cert_verifier(Arc::new(ClientVerifier { inner, sans }))
            }
            None if t.require_client_certificate => {
                return Err(format!(
                    "{path}.require_client_certificate: needs \
                     common_tls_context.validation_context.trusted_ca"
                ));
            }
            None => builder.with_no_client_auth(),
        };
        let (chain, key) = identity(c, &common_path)?.ok_or_else(|| {
            format!("{common_path}.tls_certificates: a listener needs a certificate")
        })?;
        let local_uri_sans = super::cert::sans(&chain[0])
            .map(|s| s.uri.into_boxed_slice())
            .unwrap_or_default();
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("{common_path}.tls_certificates[0]: {e}"))?;
        config.alpn_protocols = alpn(&c.alpn_protocols);
        Ok(ServerTlsConfig {
            config: Arc::new(config),
            handshake_timeout: match t.handshake_timeout_ms {
                0 => DEFAULT_HANDSHAKE_TIMEOUT,
                ms => Duration::from_millis(ms),
            },
            local_uri_sans,
        })
    }
}

impl ClientTlsConfig {
    /// `path` names the cluster's transport socket typed config.
    /// `offer`: what ALPN offers, from the cluster's HTTP protocol options.
    pub fn compile(t: &UpstreamTls, offer: Offer, path: &str) -> Result<ClientTlsConfig, String> {
        let common_path = format!("{path}.common_tls_context");
        let c = &t.common;
        let provider = provider(&c.tls_params, &format!("{common_path}.tls_params"))?;
        let versions = versions(&c.tls_params, 2, &format!("{common_path}.tls_params"))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("{common_path}.tls_params: {e}"))?;
        let (roots, sans) = match &c.validation {
            Some(v) => {
                let vpath = format!("{common_path}.validation_context");
                (
                    Some(roots(&v.trusted_ca, &format!("{vpath}.trusted_ca"))?),
                    SanMatchers::compile(
                        &v.match_typed_subject_alt_names,
                        &format!("{vpath}.match_typed_subject_alt_names"),
                    )?,
                )
            }
            None => (None, SanMatchers::compile(&[], "")?),
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                roots,
                sans,
                provider,
            }));
        let mut config = match identity(c, &common_path)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{common_path}.tls_certificates[0]: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        // ALPN offers the cluster's codec(s) (`alpn_offer.rs`; Envoy's pools add the same
        // fallback when no ALPN is configured).
        let offered =
            offer.protocols(&c.alpn_protocols, &format!("{common_path}.alpn_protocols"))?;
        config.alpn_protocols = offered.iter().map(|p| p.as_bytes().to_vec()).collect();
        let http1 = (offer == Offer::FollowDownstream).then(|| {
            let mut h1 = config.clone();
            h1.alpn_protocols = vec![HTTP1.as_bytes().to_vec()];
            Arc::new(h1)
        });
        let sni = match t.sni.as_str() {
            "" => None,
            s => Some(
                ServerName::try_from(s.to_string())
                    .map_err(|e| format!("{path}.sni: {s:?} is not a valid server name: {e}"))?,
            ),
        };
        Ok(ClientTlsConfig {
            config: Arc::new(config),
            http1,
            sni,
        })
    }
}

impl ServerTlsConfig {
    /// The listener's `transport_socket`, if it has one (`path`: `listeners[i]`).
    /// The filter chain's `transport_socket`, if it has one (`path`: the chain's).
    pub fn compile_chain(
        c: &crate::config::snapshot::FilterChain,
        path: &str,
    ) -> Result<Option<ServerTlsConfig>, String> {
        c.transport_socket
            .as_ref()
            .map(|t| ServerTlsConfig::compile(t, &format!("{path}.transport_socket")))
            .transpose()
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
