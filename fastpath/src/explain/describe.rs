//! Words and JSON for config pieces (matchers, filter chain matches, retry policies), read
//! from the parsed snapshot with its defaults applied. Display only: deciding is the data
//! path's compiled matchers' job.
use serde_json::{Map, Value, json};

use super::request::Request;
use crate::config::snapshot::{
    self, FilterChainMatch, HeaderMatcher, HeaderRule, PathMatch, QueryParameterMatcher, QueryRule,
    RetryPolicy, SourceType, StringMatcher, StringPattern,
};
use crate::router::observe::Condition;

fn string_matcher(m: &StringMatcher) -> String {
    let (kind, v) = match &m.pattern {
        StringPattern::Exact(v) => ("exact", v),
        StringPattern::Prefix(v) => ("prefix", v),
        StringPattern::Suffix(v) => ("suffix", v),
        StringPattern::Contains(v) => ("contains", v),
        StringPattern::Regex(v) => ("safe_regex", v),
    };
    let ci = if m.ignore_case && !matches!(m.pattern, StringPattern::Regex(_)) {
        " (ignore_case)"
    } else {
        ""
    };
    format!("{kind} {v:?}{ci}")
}

/// `prefix "/api"`, `path "/health" (case-insensitive)`.
pub fn path(m: &snapshot::RouteMatch) -> String {
    let (kind, v) = match &m.path {
        PathMatch::Prefix(v) => ("prefix", v),
        PathMatch::Path(v) => ("path", v),
        PathMatch::SafeRegex(v) => ("safe_regex", v),
        PathMatch::PathSeparatedPrefix(v) => ("path_separated_prefix", v),
        PathMatch::ConnectMatcher {} => return "connect_matcher {} (CONNECT requests)".into(),
    };
    let ci = if !m.case_sensitive && !matches!(m.path, PathMatch::SafeRegex(_)) {
        " (case_sensitive: false)"
    } else {
        ""
    };
    format!("{kind} {v:?}{ci}")
}

fn header(h: &HeaderMatcher) -> String {
    let rule = match &h.rule {
        HeaderRule::Present(true) => "present".to_string(),
        HeaderRule::Present(false) => "absent".to_string(),
        HeaderRule::String(m) => string_matcher(m),
        HeaderRule::Range { start, end } => format!("range [{start}, {end})"),
    };
    let mut out = format!("header {:?} {rule}", h.name);
    if h.invert {
        out.push_str(" (invert_match)");
    }
    if h.treat_missing_header_as_empty {
        out.push_str(" (treat_missing_header_as_empty)");
    }
    out
}

fn query(q: &QueryParameterMatcher) -> String {
    let rule = match &q.rule {
        QueryRule::Present(true) => "present".to_string(),
        QueryRule::Present(false) => "absent".to_string(),
        QueryRule::String(m) => string_matcher(m),
    };
    format!("query parameter {:?} {rule}", q.name)
}

/// What the request had for a header: its values, or null when absent (pseudo-headers
/// from the request line).
fn header_values(req: &Request, routed: &super::Routed<'_>, name: &str) -> Value {
    let pseudo = match name {
        ":path" => Some(routed.path),
        ":method" => Some(req.method.as_str()),
        ":authority" => Some(routed.authority),
        ":scheme" => Some(routed.scheme),
        _ => None,
    };
    if let Some(p) = pseudo {
        return json!([p]);
    }
    let values: Vec<&str> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        Value::Null
    } else {
        json!(values)
    }
}

/// The first value of query parameter `name` (raw), null when absent.
fn query_value(path: &str, name: &str) -> Value {
    let (_, q) = crate::router::split_target(path);
    q.split('&')
        .filter(|p| !p.is_empty())
        .find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k == name).then(|| json!(v))
        })
        .unwrap_or(Value::Null)
}

/// One checked condition: the field path, the rule, whether it held and what the request
/// had.
pub fn condition(
    c: Condition,
    matched: bool,
    m: &snapshot::RouteMatch,
    req: &Request,
    routed: &super::Routed<'_>,
) -> Value {
    let (field, rule, value) = match c {
        Condition::Path => {
            let (p, _) = crate::router::split_target(routed.path);
            (m.path_field().to_string(), path(m), json!(p))
        }
        Condition::Header(i) => {
            let h = &m.headers[i];
            (
                format!("headers[{i}]"),
                header(h),
                header_values(req, routed, &h.name),
            )
        }
        Condition::Query(i) => {
            let q = &m.query_parameters[i];
            (
                format!("query_parameters[{i}]"),
                query(q),
                query_value(routed.path, &q.name),
            )
        }
    };
    json!({"field": field, "rule": rule, "matched": matched, "request_value": value})
}

trait PathField {
    fn path_field(&self) -> &'static str;
}

impl PathField for snapshot::RouteMatch {
    fn path_field(&self) -> &'static str {
        match self.path {
            PathMatch::Prefix(_) => "prefix",
            PathMatch::Path(_) => "path",
            PathMatch::SafeRegex(_) => "safe_regex",
            PathMatch::PathSeparatedPrefix(_) => "path_separated_prefix",
            PathMatch::ConnectMatcher {} => "connect_matcher",
        }
    }
}

/// The fields a `filter_chain_match` sets (an empty object: matches every connection).
pub fn chain_match(m: &FilterChainMatch) -> Value {
    let mut out = Map::new();
    let cidrs = |l: &[snapshot::CidrRange]| {
        json!(
            l.iter()
                .map(|c| format!("{}/{}", c.address_prefix, c.prefix_len))
                .collect::<Vec<_>>()
        )
    };
    if let Some(p) = m.destination_port {
        out.insert("destination_port".into(), json!(p));
    }
    if !m.prefix_ranges.is_empty() {
        out.insert("prefix_ranges".into(), cidrs(&m.prefix_ranges));
    }
    if !m.server_names.is_empty() {
        out.insert("server_names".into(), json!(m.server_names));
    }
    if !m.transport_protocol.is_empty() {
        out.insert("transport_protocol".into(), json!(m.transport_protocol));
    }
    if !m.application_protocols.is_empty() {
        out.insert(
            "application_protocols".into(),
            json!(m.application_protocols),
        );
    }
    if !m.direct_source_prefix_ranges.is_empty() {
        out.insert(
            "direct_source_prefix_ranges".into(),
            cidrs(&m.direct_source_prefix_ranges),
        );
    }
    match m.source_type {
        SourceType::Any => {}
        SourceType::SameIpOrLoopback => {
            out.insert("source_type".into(), json!("SAME_IP_OR_LOOPBACK"));
        }
        SourceType::External => {
            out.insert("source_type".into(), json!("EXTERNAL"));
        }
    }
    if !m.source_prefix_ranges.is_empty() {
        out.insert(
            "source_prefix_ranges".into(),
            cidrs(&m.source_prefix_ranges),
        );
    }
    if !m.source_ports.is_empty() {
        out.insert("source_ports".into(), json!(m.source_ports));
    }
    Value::Object(out)
}

pub fn retry_policy(p: &RetryPolicy) -> Value {
    json!({
        "retry_on": p.retry_on,
        "num_retries": p.num_retries,
        "per_try_timeout_ms": p.per_try_timeout_ms,
        "per_try_idle_timeout_ms": p.per_try_idle_timeout_ms,
        "base_interval_ms": p.base_interval_ms,
        "max_interval_ms": p.max_interval_ms.unwrap_or(p.base_interval_ms * 10),
        "retriable_status_codes": p.retriable_status_codes,
        "retriable_headers": p.retriable_headers.iter().map(header).collect::<Vec<_>>(),
        "previous_hosts": p.previous_hosts,
    })
}

/// The HTTP filter's kind, for display.
pub fn filter_kind(c: &snapshot::HttpFilterConfig) -> &'static str {
    match c {
        snapshot::HttpFilterConfig::Fault(_) => "fault",
        snapshot::HttpFilterConfig::LocalRatelimit(_) => "local_ratelimit",
        snapshot::HttpFilterConfig::JwtAuthn(_)
        | snapshot::HttpFilterConfig::JwtAuthnPerRoute(_) => "jwt_authn",
        snapshot::HttpFilterConfig::Rbac(_) | snapshot::HttpFilterConfig::RbacPerRoute(_) => "rbac",
        snapshot::HttpFilterConfig::GrpcStats(_) => "grpc_stats",
    }
}
