//! `envoy.filters.http.jwt_authn`: JWT end-user authentication. Providers (issuer,
//! audiences, keys, where the token is), requirements picked per request by `rules` or per
//! route (`requirement_name`, `disabled`), Envoy's 401/403 replies with `www-authenticate`,
//! and what a good token leaves behind: the token header removed (`forward: false`), the
//! payload header, claim headers, and the payload as dynamic metadata for RBAC.
//!
//! Everything runs on the worker: local keys are parsed at compile time; remote keys are
//! read from a slot the control layer fills (`jwks::set`), never fetched per request.
mod cache;
mod extract;
pub mod jwks;
mod provider;
mod requirement;
mod status;
#[cfg(test)]
mod test_keys;
#[cfg(test)]
mod tests;
mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Ctx, FilterReply, FilterRequest, Verdict, header, push_line};
use crate::config::{jwt as cfg, snapshot};
use crate::router::{RequestMatcher, RequestView};
use crate::stats::{Scope, stat_set};
use provider::Provider;
use requirement::Requirement;
pub use status::Status;

/// The metadata namespace of the verified payloads.
pub const NAMESPACE: &str = "envoy.filters.http.jwt_authn";

stat_set! { jwt_stats, prefix_codes: None,
    counters {
        Allowed => "allowed",
        Denied => "denied",
        CorsPreflightBypassed => "cors_preflight_bypassed",
        JwtCacheHit => "jwt_cache_hit",
        JwtCacheMiss => "jwt_cache_miss",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}
use jwt_stats::Counter;

/// One filter config, shared by its per-route entries.
pub struct Shared {
    providers: Box<[Provider]>,
    /// (match, requirement index; None: no JWT needed).
    rules: Box<[(RequestMatcher, Option<usize>)]>,
    requirements: Box<[Requirement]>,
    by_name: HashMap<Box<str>, usize>,
    /// Every provider's locations, with the issuers that may use each (for
    /// `allow_missing` / `allow_missing_or_failed`, which take tokens of any provider).
    all_locations: Box<[extract::Location]>,
    location_issuers: Box<[Box<[Box<str>]>]>,
    bypass_cors_preflight: bool,
    stats: Arc<Scope>,
}

/// What a request's route makes of the filter.
enum Mode {
    Rules,
    Disabled,
    Named(usize),
}

/// One compiled config (filter level or per route).
pub struct JwtAuthn {
    shared: Arc<Shared>,
    mode: Mode,
}

impl Shared {
    pub fn compile(c: &cfg::JwtAuthn, ctx: &Ctx<'_>, at: &str) -> Result<Arc<Shared>, String> {
        let mut providers = Vec::with_capacity(c.providers.len());
        let mut index = HashMap::new();
        for (i, p) in c.providers.iter().enumerate() {
            let at = format!("{at}.providers[{}]", p.name);
            providers.push(Provider::compile(p, ctx, &at)?);
            if index.insert(p.name.as_str(), i).is_some() {
                return Err(format!("{at}: duplicate provider"));
            }
        }
        let mut requirements = Vec::new();
        let mut by_name = HashMap::new();
        for n in &c.requirement_map {
            let at = format!("{at}.requirement_map[{}]", n.name);
            requirements.push(Requirement::compile(&n.requires, &index, &at)?);
            by_name.insert(n.name.as_str().into(), requirements.len() - 1);
        }
        let mut rules = Vec::with_capacity(c.rules.len());
        for (i, r) in c.rules.iter().enumerate() {
            let at = format!("{at}.rules[{i}]");
            let m = RequestMatcher::compile(&r.matcher, &format!("{at}.match"))?;
            let req = match (&r.requires, &r.requirement_name) {
                (Some(req), _) => {
                    requirements.push(Requirement::compile(
                        req,
                        &index,
                        &format!("{at}.requires"),
                    )?);
                    Some(requirements.len() - 1)
                }
                (None, Some(name)) => Some(*by_name.get(name.as_str()).ok_or_else(|| {
                    format!("{at}.requirement_name: {name:?} is not in requirement_map")
                })?),
                (None, None) => None,
            };
            rules.push((m, req));
        }
        let mut all_locations: Vec<extract::Location> = Vec::new();
        let mut location_issuers: Vec<Vec<Box<str>>> = Vec::new();
        for p in &providers {
            for loc in &p.locations {
                let k = match all_locations.iter().position(|l| l == loc) {
                    Some(k) => k,
                    None => {
                        all_locations.push(loc.clone());
                        location_issuers.push(Vec::new());
                        all_locations.len() - 1
                    }
                };
                location_issuers[k].push(p.issuer.clone());
            }
        }
        let prefix = format!("http.{}.jwt_authn", ctx.hcm_prefix);
        Ok(Arc::new(Shared {
            providers: providers.into_boxed_slice(),
            rules: rules.into_boxed_slice(),
            requirements: requirements.into_boxed_slice(),
            by_name,
            all_locations: all_locations.into_boxed_slice(),
            location_issuers: location_issuers
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
            bypass_cors_preflight: c.bypass_cors_preflight,
            stats: ctx.registry.scope(&prefix, &jwt_stats::LAYOUT),
        }))
    }
}

impl JwtAuthn {
    /// The filter-level config (its `rules` apply).
    pub fn top(shared: Arc<Shared>) -> JwtAuthn {
        JwtAuthn {
            shared,
            mode: Mode::Rules,
        }
    }

    /// A route's `PerRouteConfig`.
    pub fn per_route(shared: Arc<Shared>, c: &cfg::JwtPerRoute, at: &str) -> Result<Self, String> {
        let mode = match c {
            cfg::JwtPerRoute::Disabled => Mode::Disabled,
            cfg::JwtPerRoute::RequirementName(n) => {
                Mode::Named(*shared.by_name.get(n.as_str()).ok_or_else(|| {
                    format!("{at}.requirement_name: {n:?} is not in the filter's requirement_map")
                })?)
            }
        };
        Ok(JwtAuthn { shared, mode })
    }

    /// Checks the request; true stops the chain (a 401/403 reply is in `verdict`).
    pub fn on_request(&self, req: &FilterRequest<'_>, w: usize, verdict: &mut Verdict<'_>) -> bool {
        let s = &*self.shared;
        if s.bypass_cors_preflight && is_cors_preflight(req.view) {
            s.stats.add(w, Counter::CorsPreflightBypassed as usize, 1);
            s.stats.add(w, Counter::Allowed as usize, 1);
            return false;
        }
        let requirement = match self.mode {
            Mode::Disabled => None,
            Mode::Named(i) => Some(i),
            Mode::Rules => s
                .rules
                .iter()
                .find(|(m, _)| m.matches(req.view))
                .and_then(|(_, r)| *r),
        };
        let Some(r) = requirement else {
            s.stats.add(w, Counter::Allowed as usize, 1);
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut check = requirement::Check {
            shared: s,
            req: req.view,
            now,
            effects: Effects::default(),
            tokens_checked: 0,
            cache_hits: 0,
            w,
        };
        let status = check.run(&s.requirements[r]);
        // Every token of a named provider is a hit or a miss (a miss when the provider has
        // no `jwt_cache_config`, as Envoy counts them).
        let hits = check.cache_hits;
        s.stats.add(w, Counter::JwtCacheHit as usize, hits);
        s.stats.add(
            w,
            Counter::JwtCacheMiss as usize,
            check.tokens_checked - hits,
        );
        if status != Status::Ok {
            s.stats.add(w, Counter::Denied as usize, 1);
            deny(status, req.view, verdict);
            return true;
        }
        s.stats.add(w, Counter::Allowed as usize, 1);
        let e = check.effects;
        verdict.request_lines.extend_from_slice(&e.lines);
        verdict.remove_request_headers.extend(e.remove);
        verdict
            .metadata
            .extend(e.metadata.into_iter().map(|(key, value)| super::Metadata {
                namespace: NAMESPACE,
                key,
                value,
            }));
        false
    }
}

/// What good tokens leave for the upstream request.
#[derive(Default)]
pub(crate) struct Effects {
    /// Header lines to add (payload, claims).
    pub lines: Vec<u8>,
    /// Token headers to remove (`forward: false`).
    pub remove: Vec<Box<str>>,
    /// `payload_in_metadata` entries.
    pub metadata: Vec<(Box<str>, serde_json::Value)>,
}

/// Envoy's `isCorsPreflightRequest`: OPTIONS with non-empty `origin` and
/// `access-control-request-method`.
fn is_cors_preflight(v: &RequestView<'_>) -> bool {
    v.method == "OPTIONS"
        && header(v, "origin").is_some_and(|o| !o.is_empty())
        && header(v, "access-control-request-method").is_some_and(|m| !m.is_empty())
}

/// The 401/403 reply: the status message as body, `www-authenticate` with the original URI.
fn deny(status: Status, v: &RequestView<'_>, verdict: &mut Verdict<'_>) {
    let scheme = header(v, "x-forwarded-proto")
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or(v.scheme);
    let path = header(v, "x-envoy-original-path")
        .and_then(|p| std::str::from_utf8(p).ok())
        .unwrap_or(v.path);
    let mut value = format!("Bearer realm=\"{scheme}://{}{path}\"", v.authority);
    if status != Status::JwtMissed {
        value.push_str(", error=\"invalid_token\"");
    }
    let mut headers = Vec::new();
    push_line(&mut headers, "www-authenticate", value.as_bytes());
    verdict.reply = Some(FilterReply {
        status: status.http_status(),
        body: status.message().as_bytes(),
        headers,
    });
    verdict.details = status.details();
}

/// The compiled filter's per-route table entry maker (see `filters::per_route`).
pub(crate) fn compile_entry(
    shared: &Arc<Shared>,
    c: &snapshot::HttpFilterConfig,
    at: &str,
) -> Result<JwtAuthn, String> {
    match c {
        snapshot::HttpFilterConfig::JwtAuthn(_) => Ok(JwtAuthn::top(shared.clone())),
        snapshot::HttpFilterConfig::JwtAuthnPerRoute(p) => {
            JwtAuthn::per_route(shared.clone(), p, at)
        }
        _ => Err(format!("{at}: not a jwt_authn PerRouteConfig")),
    }
}
