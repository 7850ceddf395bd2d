//! The HTTP filter chain: the HCM's `http_filters` before the router, compiled per connection
//! manager and run in order on each request head once it is parsed and routed (as in Envoy,
//! the route is known, so per-route `typed_per_filter_config` applies; the most specific of
//! route and virtual host wins). A filter continues, answers locally, or delays the request.
//!
//! The chain decides synchronously, while the parsed head is still borrowed from the read
//! buffer; the connection then sleeps for a delay (a tokio timer: the worker runs on) and
//! writes the reply, if any. So a filter after a delay sees the request when its head
//! arrived, not after the delay (token buckets are charged at arrival). An empty chain costs
//! one length check per request.
pub mod fault;
pub mod grpc_frames;
pub mod grpc_stats;
pub mod jwt_authn;
pub mod local_ratelimit;
mod percent;
pub mod rbac;

use std::time::Duration;

use crate::config::snapshot;
use crate::local_reply::ResponseFlags;
use crate::router::RequestView;
use crate::stats::Registry;

pub use percent::Percent;

/// The compiled filters of one connection manager.
#[derive(Default)]
pub struct FilterChain {
    filters: Box<[Filter]>,
}

enum Filter {
    Fault(PerRoute<fault::Fault>),
    RateLimit(PerRoute<local_ratelimit::RateLimit>),
    Jwt(PerRoute<jwt_authn::JwtAuthn>),
    Rbac(PerRoute<rbac::Rbac>),
}

/// One filter's configs: index 0 is the filter-level one; `by_route[v][r]` is the index of
/// the config that applies to `virtual_hosts[v].routes[r]` (route, else virtual host, else
/// filter level), resolved at compile time.
struct PerRoute<T> {
    configs: Box<[T]>,
    by_route: Box<[Box<[u32]>]>,
}

impl<T> PerRoute<T> {
    fn get(&self, route: Option<(usize, usize)>) -> &T {
        let i = route
            .and_then(|(v, r)| self.by_route.get(v)?.get(r).copied())
            .unwrap_or(0);
        &self.configs[i as usize]
    }
}

/// What the filters see of a request: its head, the selected route (`(vhost, route)`
/// indices) and cluster, when there is one.
pub struct FilterRequest<'a> {
    pub view: &'a RequestView<'a>,
    pub route: Option<(usize, usize)>,
    pub cluster: Option<usize>,
    /// The downstream connection's own rate limit buckets.
    pub conn: &'a local_ratelimit::ConnBuckets,
    /// The downstream connection: addresses, SNI, the client certificate (RBAC).
    pub downstream: &'a crate::conn_info::ConnInfo,
}

/// A reply a filter makes instead of forwarding.
#[derive(Debug, PartialEq, Eq)]
pub struct FilterReply {
    pub status: u16,
    pub body: &'static [u8],
    /// Header lines (`name: value\r\n`) added to the reply.
    pub headers: Vec<u8>,
}

/// What the chain decided for one request.
#[derive(Default)]
pub struct Verdict<'v> {
    /// Wait this long before going on (fault delay).
    pub delay: Option<Duration>,
    /// Answer with this instead of routing on (after the delay).
    pub reply: Option<FilterReply>,
    /// FI, DI, RL for the request record.
    pub flags: ResponseFlags,
    /// Header lines (`name: value\r\n`) to add to the upstream request.
    pub request_lines: Vec<u8>,
    /// Header lines to add to the response (proxied or local): `x-ratelimit-*`.
    pub response_lines: Vec<u8>,
    /// Faults counted in `active_faults` until the request ends.
    pub faults: Vec<fault::ActiveFault<'v>>,
    /// Dynamic metadata set by a filter for the filters after it, as Envoy's
    /// `filter_metadata[namespace][key]` (JWT `payload_in_metadata` read by RBAC `metadata`
    /// matchers).
    pub metadata: Vec<Metadata>,
    /// Request headers (lower-case names) to drop from the upstream request (JWT
    /// `forward: false`), before `request_lines` are added.
    pub remove_request_headers: Vec<Box<str>>,
    /// `%RESPONSE_CODE_DETAILS%` of `reply` (empty: `direct_response`), e.g.
    /// `rbac_access_denied_matched_policy[name]`.
    pub details: &'v str,
}

/// One dynamic metadata entry: `filter_metadata[namespace][key] = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The filter's name, e.g. `envoy.filters.http.jwt_authn`.
    pub namespace: &'static str,
    pub key: Box<str>,
    pub value: serde_json::Value,
}

impl Verdict<'_> {
    pub fn is_continue(&self) -> bool {
        self.delay.is_none()
            && self.reply.is_none()
            && self.request_lines.is_empty()
            && self.response_lines.is_empty()
    }
}

impl FilterChain {
    /// Compiles `cfg.http_filters` against the route table in `cfg.route_config`; `path` names
    /// the connection manager in errors.
    pub fn compile(
        cfg: &snapshot::HttpConnectionManager,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        registry: &Registry,
        path: &str,
    ) -> Result<FilterChain, String> {
        let mut filters = Vec::with_capacity(cfg.http_filters.len());
        let vhosts = &cfg.route_config.virtual_hosts;
        for (i, f) in cfg.http_filters.iter().enumerate() {
            let at = format!("{path}.http_filters[{i}]");
            let ctx = Ctx {
                hcm_prefix: &cfg.stat_prefix,
                registry,
                cluster_index,
            };
            let filter = match &f.config {
                snapshot::HttpFilterConfig::Fault(c) => {
                    let shared = fault::Shared::new(&ctx);
                    let pick: fn(&snapshot::HttpFilterConfig) -> Option<&_> = |p| match p {
                        snapshot::HttpFilterConfig::Fault(c) => Some(c),
                        _ => None,
                    };
                    Filter::Fault(per_route(f, vhosts, &at, path, c, pick, |c, at| {
                        fault::Fault::compile(c, shared.clone(), &ctx, at)
                    })?)
                }
                snapshot::HttpFilterConfig::LocalRatelimit(c) => {
                    let pick: fn(&snapshot::HttpFilterConfig) -> Option<&_> = |p| match p {
                        snapshot::HttpFilterConfig::LocalRatelimit(c) => Some(c),
                        _ => None,
                    };
                    Filter::RateLimit(per_route(f, vhosts, &at, path, c, pick, |c, at| {
                        local_ratelimit::RateLimit::compile(c, &ctx, at)
                    })?)
                }
                snapshot::HttpFilterConfig::JwtAuthn(c) => {
                    let shared = jwt_authn::Shared::compile(c, &ctx, &at)?;
                    let any: fn(&snapshot::HttpFilterConfig) -> Option<&_> = |p| Some(p);
                    Filter::Jwt(per_route(f, vhosts, &at, path, &f.config, any, |c, at| {
                        jwt_authn::compile_entry(&shared, c, at)
                    })?)
                }
                snapshot::HttpFilterConfig::JwtAuthnPerRoute(_) => {
                    return Err(format!(
                        "{at}: a jwt_authn PerRouteConfig is per-route only"
                    ));
                }
                snapshot::HttpFilterConfig::Rbac(c) => {
                    let shared = rbac::Shared::new(c, &ctx, cfg, &cfg.http_filters[i + 1..]);
                    let pick: fn(&snapshot::HttpFilterConfig) -> Option<&_> = |p| match p {
                        snapshot::HttpFilterConfig::RbacPerRoute(c) => Some(c),
                        _ => None,
                    };
                    let top = snapshot::RbacPerRoute {
                        rbac: Some(c.clone()),
                    };
                    Filter::Rbac(per_route(f, vhosts, &at, path, &top, pick, |c, at| {
                        rbac::Rbac::compile(c, &shared, at)
                    })?)
                }
                snapshot::HttpFilterConfig::RbacPerRoute(_) => {
                    return Err(format!(
                        "{at}: RBACPerRoute belongs in typed_per_filter_config"
                    ));
                }
                // Counts responses only (`grpc_stats.rs`, kept on the `Hcm`): no request work.
                snapshot::HttpFilterConfig::GrpcStats(_) => continue,
            };
            filters.push(filter);
        }
        Ok(FilterChain {
            filters: filters.into_boxed_slice(),
        })
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Runs the filters in order on `req` (worker `w`) until one answers.
    pub fn run<'v>(&'v self, req: &FilterRequest<'_>, w: usize) -> Verdict<'v> {
        let mut verdict = Verdict::default();
        for f in self.filters.iter() {
            let stop = match f {
                Filter::Fault(p) => p.get(req.route).on_request(req, w, &mut verdict),
                Filter::RateLimit(p) => p.get(req.route).on_request(req, w, &mut verdict),
                Filter::Jwt(p) => p.get(req.route).on_request(req, w, &mut verdict),
                Filter::Rbac(p) => p.get(req.route).on_request(req, w, &mut verdict),
            };
            if stop {
                break;
            }
        }
        verdict
    }
}

/// What compiling a filter config needs.
pub struct Ctx<'a> {
    pub hcm_prefix: &'a str,
    pub registry: &'a Registry,
    pub cluster_index: &'a dyn Fn(&str) -> Option<usize>,
}

/// The per-route table for the filter `filter`: its filter-level config `top` (at `at`), and
/// the `typed_per_filter_config` entries of every virtual host and route (below `path`), all
/// compiled by `make`. `pick` takes an entry's config of the filter's type; an entry of
/// another type is an error.
fn per_route<C, T>(
    filter: &snapshot::HttpFilter,
    vhosts: &[snapshot::VirtualHost],
    at: &str,
    path: &str,
    top: &C,
    pick: impl Fn(&snapshot::HttpFilterConfig) -> Option<&C>,
    make: impl Fn(&C, &str) -> Result<T, String>,
) -> Result<PerRoute<T>, String> {
    let name = filter.name.as_str();
    let kind = match filter.config {
        snapshot::HttpFilterConfig::Fault(_) => "fault",
        snapshot::HttpFilterConfig::LocalRatelimit(_) => "local rate limit",
        snapshot::HttpFilterConfig::JwtAuthn(_)
        | snapshot::HttpFilterConfig::JwtAuthnPerRoute(_) => "jwt_authn",
        snapshot::HttpFilterConfig::Rbac(_) | snapshot::HttpFilterConfig::RbacPerRoute(_) => "rbac",
        snapshot::HttpFilterConfig::GrpcStats(_) => "grpc_stats",
    };
    let make_entry = |p: &snapshot::HttpFilterConfig, at: &str| match pick(p) {
        Some(c) => make(c, at),
        None => Err(format!("{at}: not a {kind} config")),
    };
    let mut configs = vec![make(top, at)?];
    let mut by_route = Vec::with_capacity(vhosts.len());
    let mut find = |list: &[snapshot::PerFilterConfig], at: &str| -> Result<Option<u32>, String> {
        match list.iter().position(|p| p.name == name) {
            Some(k) => {
                let at = format!("{at}.typed_per_filter_config[{name}]");
                configs.push(make_entry(&list[k].config, &at)?);
                Ok(Some((configs.len() - 1) as u32))
            }
            None => Ok(None),
        }
    };
    for (v, vh) in vhosts.iter().enumerate() {
        let at = format!("{path}.route_config.virtual_hosts[{v}]");
        let vh_idx = find(&vh.typed_per_filter_config, &at)?.unwrap_or(0);
        let mut routes = Vec::with_capacity(vh.routes.len());
        for (r, route) in vh.routes.iter().enumerate() {
            let at = format!("{at}.routes[{r}]");
            routes.push(find(&route.typed_per_filter_config, &at)?.unwrap_or(vh_idx));
        }
        by_route.push(routes.into_boxed_slice());
    }
    Ok(PerRoute {
        configs: configs.into_boxed_slice(),
        by_route: by_route.into_boxed_slice(),
    })
}

/// Appends `name: value\r\n`.
pub(crate) fn push_line(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The header lines of a list of `HeaderValueOption`s (append only).
pub(crate) fn render_lines(
    list: &[snapshot::HeaderValueOption],
    at: &str,
) -> Result<Box<[u8]>, String> {
    let mut out = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let bad = |b: &u8| *b == b'\r' || *b == b'\n' || *b == 0;
        if h.key.is_empty() || h.key.bytes().any(|b| bad(&b) || b == b':' || b == b' ') {
            return Err(format!(
                "{at}[{i}].header.key: invalid header name {:?}",
                h.key
            ));
        }
        if h.value.bytes().any(|b| bad(&b)) {
            return Err(format!("{at}[{i}].header.value: invalid header value"));
        }
        if h.value.is_empty() && !h.keep_empty_value {
            continue;
        }
        push_line(&mut out, &h.key, h.value.as_bytes());
    }
    Ok(out.into_boxed_slice())
}

/// The first value of header `name` (case-insensitive).
pub(crate) fn header<'a>(view: &RequestView<'a>, name: &str) -> Option<&'a [u8]> {
    view.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// `absl::SimpleAtoi` for unsigned values (surrounding whitespace allowed).
pub(crate) fn parse_u64(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value.trim_ascii()).ok()?;
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

#[cfg(test)]
mod tests;
