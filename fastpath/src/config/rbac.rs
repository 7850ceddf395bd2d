//! RBAC snapshot types (`envoy.filters.http.rbac`, its `RBACPerRoute`, and
//! `envoy.filters.network.rbac`), written by `python/meshcore/config/translate_rbac.py` and
//! re-exported from `snapshot.rs`.
use serde::Deserialize;

use super::snapshot::{HeaderMatcher, StringMatcher};

/// `envoy.extensions.filters.http.rbac.v3.RBAC`. No `rules`: the enforcing engine is off
/// (every request allowed, nothing counted), as in Envoy.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HttpRbac {
    #[serde(default)]
    pub rules: Option<RbacRules>,
    #[serde(default)]
    pub shadow_rules: Option<RbacRules>,
    #[serde(default)]
    pub rules_stat_prefix: String,
    #[serde(default)]
    pub shadow_rules_stat_prefix: String,
}

/// `RBACPerRoute`: its `rbac` replaces the filter's for the route; `None` disables the filter
/// there.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RbacPerRoute {
    #[serde(default)]
    pub rbac: Option<HttpRbac>,
}

/// `envoy.extensions.filters.network.rbac.v3.RBAC`, one per network filter before the
/// terminal one, in chain order.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkRbac {
    pub stat_prefix: String,
    #[serde(default)]
    pub rules: Option<RbacRules>,
    #[serde(default)]
    pub shadow_rules: Option<RbacRules>,
    #[serde(default)]
    pub shadow_rules_stat_prefix: String,
    #[serde(default)]
    pub enforcement_type: EnforcementType,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementType {
    #[default]
    OneTimeOnFirstByte,
    Continuous,
}

/// `envoy.config.rbac.v3.RBAC`: the action and the policies by name.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RbacRules {
    #[serde(default)]
    pub action: RbacAction,
    #[serde(default)]
    pub policies: Vec<RbacPolicy>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RbacAction {
    #[default]
    Allow,
    Deny,
    Log,
}

/// One `policies` entry: it matches when any permission and any principal match.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RbacPolicy {
    pub name: String,
    pub permissions: Vec<Permission>,
    pub principals: Vec<Principal>,
}

/// `envoy.config.rbac.v3.Permission` (the kinds meshcore implements).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Permission {
    Any,
    Header(HeaderMatcher),
    /// The path without query and fragment.
    UrlPath(StringMatcher),
    DestinationIp(Cidr),
    DestinationPort(u32),
    /// `[start, end)`.
    DestinationPortRange {
        start: i32,
        end: i32,
    },
    /// The SNI ("" without TLS).
    RequestedServerName(StringMatcher),
    AndRules(Vec<Permission>),
    OrRules(Vec<Permission>),
    NotRule(Box<Permission>),
    Metadata(MetadataMatcher),
}

/// `envoy.config.rbac.v3.Principal` (the kinds meshcore implements).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Principal {
    Any,
    /// `authenticated`: `None` (no `principal_name`) matches any TLS connection.
    Authenticated(Option<StringMatcher>),
    /// Also `source_ip` (Python writes the deprecated spelling as this).
    DirectRemoteIp(Cidr),
    RemoteIp(Cidr),
    Header(HeaderMatcher),
    UrlPath(StringMatcher),
    AndIds(Vec<Principal>),
    OrIds(Vec<Principal>),
    NotId(Box<Principal>),
    Metadata(MetadataMatcher),
}

/// `envoy.config.core.v3.CidrRange`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cidr {
    pub address_prefix: String,
    #[serde(default)]
    pub prefix_len: u32,
}

/// `envoy.type.matcher.v3.MetadataMatcher` on the request's dynamic metadata.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetadataMatcher {
    pub filter: String,
    /// The `path` keys (at least one).
    pub path: Vec<String>,
    pub value: ValueMatcher,
    #[serde(default)]
    pub invert: bool,
}

/// `envoy.type.matcher.v3.ValueMatcher`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueMatcher {
    NullMatch,
    /// `double_match.exact`.
    DoubleExact(f64),
    /// `double_match.range`: `[start, end)`.
    DoubleRange {
        start: f64,
        end: f64,
    },
    StringMatch(StringMatcher),
    BoolMatch(bool),
    PresentMatch(bool),
    /// `list_match.one_of`: a list with an element that matches.
    ListOneOf(Box<ValueMatcher>),
    /// `or_match.value_matchers`.
    OrMatch(Vec<ValueMatcher>),
}
