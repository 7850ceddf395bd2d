//! Route selection: virtual host by authority, route by path/headers/query, and the action.
//!
//! API contract used by the data path (`src/http1/`, `src/proxy/`). Bodies are filled in by
//! the router work; signatures change only together with their callers.
use std::borrow::Cow;
use std::sync::Arc;

use crate::config::snapshot;

mod domain;
mod forward;
mod hash;
mod headers;
mod matcher;
pub mod observe;
mod redirect;
pub mod retry;
#[cfg(test)]
mod reuse_tests;
mod rewrite;
mod string_match;
mod table;
#[cfg(test)]
mod tests;

pub use forward::{ForwardRoute, Mirror, StreamDuration};
/// One Envoy `HeaderMatcher` and `StringMatcher`, for filters that match on their own (RBAC).
pub use matcher::{HeaderMatch, split_target};
pub use string_match::StringMatch;

/// A header list the data path builds for the upstream request or the downstream response.
/// Names keep the case they arrived with; every comparison is ASCII case-insensitive.
pub type HeaderList<'a> = Vec<(Cow<'a, str>, Cow<'a, [u8]>)>;

/// What the router needs to see of one request. Borrowed from the codec's read buffer.
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Origin-form request target, query string included (e.g. "/a/b?x=1").
    pub path: &'a str,
    /// Host header value, possibly with ":port".
    pub authority: &'a str,
    /// "http" or "https".
    pub scheme: &'a str,
    pub headers: &'a [httparse::Header<'a>],
}

/// A compiled `RouteConfiguration`.
#[derive(Debug)]
pub struct RouteTable {
    domains: domain::DomainIndex,
    /// Shared with the table compiled before when unchanged (`compile_reusing`).
    virtual_hosts: Box<[Arc<table::VirtualHost>]>,
    /// Route configuration level.
    mutations: headers::Mutations,
}

/// The route a request matched.
#[derive(Clone, Copy)]
pub struct Selection<'t> {
    table: &'t RouteTable,
    /// The virtual host's position in `table`.
    vhost_index: usize,
    vhost: &'t table::VirtualHost,
    route: &'t table::Route,
}

/// What to do with a matched request.
#[derive(Debug)]
pub enum Action<'t> {
    Forward(&'t ForwardRoute),
    /// `direct_response`: status and body (empty when none).
    Direct {
        status: u16,
        body: &'t [u8],
    },
    /// `redirect`: the status and the full `location` value.
    Redirect {
        status: u16,
        location: String,
    },
}

impl RouteTable {
    /// Compiles a route config. `cluster_index` maps a cluster name to its index in the
    /// snapshot's cluster list; an unknown name is an error naming the route.
    ///
    /// Errors are paths relative to the route configuration (prefix them with where it sits),
    /// e.g. `virtual_hosts[0].routes[3].route.cluster: unknown cluster "x"`; they cover
    /// unknown clusters, bad regexes, zero total weight, duplicate domains, header mutations
    /// Envoy refuses (or that would break HTTP/1 framing), and redirect / direct response
    /// codes.
    pub fn compile(
        cfg: &snapshot::RouteConfig,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<RouteTable, String> {
        table::compile(cfg, cluster_index, None)
    }

    /// `compile`, reusing the compiled virtual hosts of `previous` (the table compiled from
    /// that route config with the same `cluster_index`) whose config is equal to the new
    /// one's, at the same position or of the same name: a route change recompiles only the
    /// virtual hosts it changes. Same result and errors as `compile`.
    pub fn compile_reusing(
        cfg: &snapshot::RouteConfig,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        previous: Option<(&snapshot::RouteConfig, &RouteTable)>,
    ) -> Result<RouteTable, String> {
        table::compile(cfg, cluster_index, previous)
    }

    /// Picks the virtual host by authority (port included, as Envoy; case-insensitive) and
    /// the first matching route; `None` is Envoy's NR (404).
    ///
    /// Allocation-free unless the authority has upper-case letters and is longer than 256
    /// bytes. See `domain::DomainIndex::find` for the exact host precedence.
    #[inline]
    pub fn select<'t>(&'t self, req: &RequestView<'_>) -> Option<Selection<'t>> {
        self.select_observed(req, &mut observe::Silent)
    }

    /// `select`, reporting each step to `obs` (`meshcore explain`); `select` is this with the
    /// no-op `observe::Silent`.
    pub fn select_observed<'t, O: observe::Observer>(
        &'t self,
        req: &RequestView<'_>,
        obs: &mut O,
    ) -> Option<Selection<'t>> {
        let Some(v) = self.domains.find_observed(req.authority, obs) else {
            obs.no_virtual_host();
            return None;
        };
        let vhost: &table::VirtualHost = &self.virtual_hosts[v];
        let (path, query) = matcher::split_target(req.path);
        let route = vhost.routes.iter().enumerate().find_map(|(i, r)| {
            obs.route(i);
            r.matcher
                .matches_observed(req, path, query, obs)
                .then_some(r)
        })?;
        Some(Selection {
            table: self,
            vhost_index: v,
            vhost,
            route,
        })
    }
}

/// A list of Envoy `HeaderMatcher`s that all must match (the route matcher's semantics), for
/// HTTP filters that match on request headers (the fault filter's `headers`).
#[derive(Debug)]
pub struct HeaderMatchers(Box<[matcher::HeaderMatch]>);

impl HeaderMatchers {
    /// Errors name `at.headers[i]`.
    pub fn compile(cfg: &[snapshot::HeaderMatcher], at: &str) -> Result<HeaderMatchers, String> {
        cfg.iter()
            .enumerate()
            .map(|(i, h)| matcher::HeaderMatch::compile(h, &format!("{at}.headers[{i}]")))
            .collect::<Result<_, _>>()
            .map(HeaderMatchers)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every matcher matches `req`.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.0.iter().all(|m| m.matches(req))
    }
}

/// A route `match` on its own (path, headers, query parameters, `case_sensitive`), for HTTP
/// filters that pick requests the way routes do (jwt_authn `rules`).
#[derive(Debug)]
pub struct RequestMatcher(matcher::RouteMatch);

impl RequestMatcher {
    /// `at` is the path of the `match` field.
    pub fn compile(cfg: &snapshot::RouteMatch, at: &str) -> Result<RequestMatcher, String> {
        matcher::RouteMatch::compile(cfg, at).map(RequestMatcher)
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let (path, query) = matcher::split_target(req.path);
        self.0.matches(req, path, query)
    }
}

/// An Envoy `StringMatcher`, for filters matching values that are not headers (jwt_authn
/// `subjects`).
#[derive(Debug)]
pub struct StringMatcher(string_match::StringMatch);

impl StringMatcher {
    /// Errors name `at.safe_regex`.
    pub fn compile(cfg: &snapshot::StringMatcher, at: &str) -> Result<StringMatcher, String> {
        string_match::StringMatch::compile(cfg, at).map(StringMatcher)
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        self.0.matches(value)
    }
}

impl<'t> Selection<'t> {
    /// The positions of the matched virtual host and route in the compiled configuration
    /// (`virtual_hosts[v].routes[r]`, as in the snapshot), for per-route filter configs.
    /// The route's is computed from the element addresses: O(1), no unsafe (address
    /// arithmetic only).
    pub fn indices(&self) -> (usize, usize) {
        let index = |base: usize, at: usize, size: usize| (at - base) / size.max(1);
        let v = self.vhost_index;
        let r = index(
            self.vhost.routes.as_ptr() as usize,
            self.route as *const table::Route as usize,
            std::mem::size_of::<table::Route>(),
        );
        (v, r)
    }

    /// The route's `name` (empty when unnamed).
    pub fn route_name(&self) -> &'t str {
        &self.route.name
    }

    /// The matched virtual host's `name`.
    pub fn virtual_host_name(&self) -> &'t str {
        &self.vhost.name
    }

    /// The route's action; redirects are rendered against `req`.
    pub fn action(&self, req: &RequestView<'_>) -> Action<'t> {
        match &self.route.action {
            table::RouteAction::Forward(f) => Action::Forward(f),
            table::RouteAction::Direct { status, body } => Action::Direct {
                status: *status,
                body,
            },
            table::RouteAction::Redirect(r) => Action::Redirect {
                status: r.status,
                location: r.location(req),
            },
        }
    }

    /// Applies request header mutations, most specific level first (weighted cluster
    /// `choice`, route, virtual host, route config), as Envoy does: each level removes, then
    /// overwrites, then appends, so for an overwritten header the least specific level wins.
    /// A `choice` with no weighted cluster skips that level.
    pub fn mutate_request_headers<'a>(&self, choice: usize, headers: &mut HeaderList<'a>)
    where
        't: 'a,
    {
        if let Some(m) = self.route.weighted.get(choice) {
            m.request.apply(headers);
        }
        self.route.mutations.request.apply(headers);
        self.vhost.mutations.request.apply(headers);
        self.table.mutations.request.apply(headers);
    }

    /// Applies response header mutations in the same order.
    pub fn mutate_response_headers<'a>(&self, choice: usize, headers: &mut HeaderList<'a>)
    where
        't: 'a,
    {
        if let Some(m) = self.route.weighted.get(choice) {
            m.response.apply(headers);
        }
        self.route.mutations.response.apply(headers);
        self.vhost.mutations.response.apply(headers);
        self.table.mutations.response.apply(headers);
    }

    /// True when any level has request (resp. response) mutations, so the data path can
    /// forward header bytes untouched otherwise. O(1): precomputed at compile time.
    pub fn has_request_mutations(&self, choice: usize) -> bool {
        self.route.request_mutations
            || self
                .route
                .weighted
                .get(choice)
                .is_some_and(|m| !m.request.is_empty())
    }
    pub fn has_response_mutations(&self, choice: usize) -> bool {
        self.route.response_mutations
            || self
                .route
                .weighted
                .get(choice)
                .is_some_and(|m| !m.response.is_empty())
    }
}
