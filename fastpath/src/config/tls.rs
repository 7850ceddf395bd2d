//! Snapshot types of TLS transport sockets (`envoy.transport_sockets.tls`): Envoy's
//! `CommonTlsContext`, `DownstreamTlsContext` and `UpstreamTlsContext`, pre-digested by
//! Python (`config/translate_tls.py`): PEM arrives inline (read from `filename`,
//! `inline_string` or `inline_bytes`; SDS will deliver the same shape).
use serde::Deserialize;

use super::snapshot::StringMatcher;

/// `CommonTlsContext`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CommonTls {
    /// `tls_certificates`: the certificate chain and key presented (the first is used).
    #[serde(default)]
    pub tls_certificates: Vec<TlsCertificate>,
    /// `validation_context`: how the peer's certificate is verified (None: not verified).
    #[serde(default)]
    pub validation: Option<Validation>,
    /// `alpn_protocols`, in preference order.
    #[serde(default)]
    pub alpn_protocols: Vec<String>,
    #[serde(default)]
    pub tls_params: TlsParams,
}

/// One `TlsCertificate`, PEM text.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificate {
    pub certificate_chain: String,
    pub private_key: String,
}

/// `CertificateValidationContext`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// `trusted_ca`: PEM, one or more CA certificates.
    pub trusted_ca: String,
    /// `match_typed_subject_alt_names`: the peer certificate must have a SAN matching one of
    /// them (empty: any).
    #[serde(default)]
    pub match_typed_subject_alt_names: Vec<SanMatcher>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SanMatcher {
    pub san_type: SanType,
    pub matcher: StringMatcher,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SanType {
    Dns,
    Uri,
    Email,
    IpAddress,
}

/// `TlsParameters`: protocol versions as Envoy's enum names (`TLSv1_2`, `TLSv1_3`;
/// None: Envoy's default, 1.2 to 1.3) and `cipher_suites` in Envoy's (BoringSSL) names.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsParams {
    #[serde(default)]
    pub minimum: Option<String>,
    #[serde(default)]
    pub maximum: Option<String>,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
}

/// `DownstreamTlsContext` on a listener's filter chain.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DownstreamTls {
    pub common: CommonTls,
    #[serde(default)]
    pub require_client_certificate: bool,
    /// The filter chain's `transport_socket_connect_timeout` in ms (0: meshcore's default).
    #[serde(default)]
    pub handshake_timeout_ms: u64,
}

/// `UpstreamTlsContext` on a cluster.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    pub common: CommonTls,
    /// `sni`: the server name sent (empty: none).
    #[serde(default)]
    pub sni: String,
}

/// The connection manager's `forward_client_cert_details` (x-forwarded-client-cert).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ForwardClientCert {
    #[default]
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

/// The connection manager's `set_current_client_cert_details`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientCertDetails {
    #[serde(default)]
    pub subject: bool,
    #[serde(default)]
    pub cert: bool,
    #[serde(default)]
    pub chain: bool,
    #[serde(default)]
    pub dns: bool,
    #[serde(default)]
    pub uri: bool,
}
