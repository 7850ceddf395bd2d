//! Snapshot types of the `envoy.filters.http.jwt_authn` filter (Envoy's
//! `JwtAuthentication` and its per-route `PerRouteConfig`), written by
//! `python/meshcore/config/translate_jwt.py`.
use serde::Deserialize;

use super::snapshot::{RouteMatch, StringMatcher};

fn default_skew() -> u64 {
    60
}

/// `JwtAuthentication`: the providers, and which of them a request needs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtAuthn {
    /// `providers`, sorted by name (Python).
    pub providers: Vec<JwtProvider>,
    #[serde(default)]
    pub rules: Vec<JwtRule>,
    /// `requirement_map`, sorted by name.
    #[serde(default)]
    pub requirement_map: Vec<NamedRequirement>,
    #[serde(default)]
    pub bypass_cors_preflight: bool,
}

/// `JwtProvider`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtProvider {
    pub name: String,
    /// Empty: any issuer.
    #[serde(default)]
    pub issuer: String,
    /// Empty: any audience.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Empty: any subject.
    #[serde(default)]
    pub subjects: Option<StringMatcher>,
    pub jwks: JwksSource,
    #[serde(default)]
    pub from_headers: Vec<JwtHeader>,
    #[serde(default)]
    pub from_params: Vec<String>,
    #[serde(default)]
    pub from_cookies: Vec<String>,
    #[serde(default)]
    pub forward: bool,
    #[serde(default)]
    pub forward_payload_header: String,
    #[serde(default)]
    pub pad_forward_payload_header: bool,
    #[serde(default)]
    pub payload_in_metadata: String,
    /// `normalize_payload_in_metadata.space_delimited_claims`.
    #[serde(default)]
    pub space_delimited_claims: Vec<String>,
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    #[serde(default)]
    pub require_expiration: bool,
    /// `max_lifetime` in seconds (needs `iat`... as Envoy: `exp - iat` at most this).
    #[serde(default)]
    pub max_lifetime_s: Option<u64>,
    /// `jwt_cache_config.jwt_cache_size` when `jwt_cache_config` is set (0: Envoy's 100).
    #[serde(default)]
    pub jwt_cache_size: Option<u32>,
    /// `jwt_cache_config.jwt_max_token_size` (0: Envoy's 4096).
    #[serde(default)]
    pub jwt_max_token_size: u32,
}

/// Where a provider's keys come from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JwksSource {
    /// `local_jwks`, the JWKS text (read by Python).
    Local(String),
    /// `remote_jwks`: fetched by the control layer, pushed with `Engine.set_jwks(key, ...)`.
    Remote(RemoteJwks),
}

/// `RemoteJwks`. The engine uses `key` and `cluster`; the rest is for the fetcher
/// (`python/meshcore/auth/jwks.py`), which reads it from the snapshot.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwks {
    /// Names the JWKS source (`cluster|uri`) for `Engine.set_jwks`.
    pub key: String,
    pub uri: String,
    pub cluster: String,
    pub timeout_ms: u64,
    pub cache_duration_ms: u64,
    /// `async_fetch.failed_refetch_duration` (default 1 s) when set; otherwise the fetcher's
    /// retry back-off.
    #[serde(default)]
    pub failed_refetch_ms: Option<u64>,
    /// `retry_policy.num_retries` and back-off (base, max) in ms.
    #[serde(default)]
    pub num_retries: u32,
    #[serde(default)]
    pub retry_base_ms: u64,
    #[serde(default)]
    pub retry_max_ms: u64,
}

/// `JwtHeader`: a header carrying the token after `value_prefix`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtHeader {
    /// Lower-cased by Python.
    pub name: String,
    #[serde(default)]
    pub value_prefix: String,
}

/// `JwtClaimToHeader`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    pub header_name: String,
    /// Nested claims with `.` (`a.b`).
    pub claim_name: String,
}

/// `RequirementRule`: the first rule whose `match` matches picks the requirement.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtRule {
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// `requires` or a `requirement_name` of `requirement_map`; neither: no JWT needed.
    #[serde(default)]
    pub requires: Option<JwtRequirement>,
    #[serde(default)]
    pub requirement_name: Option<String>,
}

/// One `requirement_map` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamedRequirement {
    pub name: String,
    pub requires: JwtRequirement,
}

/// `JwtRequirement`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JwtRequirement {
    ProviderName(String),
    ProviderAndAudiences {
        provider_name: String,
        audiences: Vec<String>,
    },
    RequiresAny(Vec<JwtRequirement>),
    RequiresAll(Vec<JwtRequirement>),
    AllowMissingOrFailed,
    AllowMissing,
}

/// `PerRouteConfig` (a route's or virtual host's `typed_per_filter_config`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JwtPerRoute {
    /// `disabled: true`: no JWT checks on this route.
    Disabled,
    /// A `requirement_map` entry.
    RequirementName(String),
}
