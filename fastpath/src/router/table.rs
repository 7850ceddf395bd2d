//! Compiles a `RouteConfiguration` into the `RouteTable` the data path selects from.
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use super::RouteTable;
use super::domain::DomainIndex;
use super::forward::ForwardRoute;
use super::headers::Mutations;
use super::matcher::RouteMatch;
use super::redirect::Redirect;
use crate::config::snapshot;

/// A compiled virtual host.
#[derive(Debug)]
pub(super) struct VirtualHost {
    pub(super) name: Box<str>,
    pub(super) routes: Box<[Route]>,
    pub(super) mutations: Mutations,
}

/// A compiled route.
#[derive(Debug)]
pub(super) struct Route {
    pub(super) name: Box<str>,
    pub(super) matcher: RouteMatch,
    pub(super) action: RouteAction,
    pub(super) mutations: Mutations,
    /// Weighted cluster level, by choice.
    pub(super) weighted: Box<[Mutations]>,
    /// Whether the route, virtual host or route config level has request (response)
    /// mutations; the weighted cluster level is checked per choice.
    pub(super) request_mutations: bool,
    pub(super) response_mutations: bool,
}

#[derive(Debug)]
pub(super) enum RouteAction {
    Forward(ForwardRoute),
    Direct { status: u16, body: Box<[u8]> },
    Redirect(Redirect),
}

/// Errors are paths relative to the route configuration, e.g.
/// `virtual_hosts[0].routes[3].route.cluster: unknown cluster "x"`.
pub(super) fn compile(
    cfg: &snapshot::RouteConfig,
    cluster_index: &dyn Fn(&str) -> Option<usize>,
    previous: Option<(&snapshot::RouteConfig, &RouteTable)>,
) -> Result<RouteTable, String> {
    let domains = DomainIndex::build(&cfg.virtual_hosts)?;
    let mutations = Mutations::compile(&cfg.headers, "")?;
    let mut virtual_hosts = Vec::with_capacity(cfg.virtual_hosts.len());
    // One buffer for every path (`virtual_hosts[i].routes[j].match`, ...): thousands of
    // routes, each path used only if its level is wrong.
    let mut at = String::with_capacity(64);
    let mut previous = previous.and_then(|(c, t)| Previous::new(c, t, &mutations));
    for (i, vh) in cfg.virtual_hosts.iter().enumerate() {
        if let Some(same) = previous.as_mut().and_then(|p| p.same(i, vh)) {
            virtual_hosts.push(same);
            continue;
        }
        at.clear();
        let _ = write!(at, "virtual_hosts[{i}]");
        let vh_mutations = Mutations::compile(&vh.headers, &at)?;
        let inherited_request = !mutations.request.is_empty() || !vh_mutations.request.is_empty();
        let inherited_response =
            !mutations.response.is_empty() || !vh_mutations.response.is_empty();
        let vh_len = at.len();
        let mut routes = Vec::with_capacity(vh.routes.len());
        for (j, r) in vh.routes.iter().enumerate() {
            at.truncate(vh_len);
            let _ = write!(at, ".routes[{j}]");
            let mut route = compile_route(r, &mut at, cluster_index)?;
            route.request_mutations |= inherited_request;
            route.response_mutations |= inherited_response;
            routes.push(route);
        }
        virtual_hosts.push(Arc::new(VirtualHost {
            name: vh.name.as_str().into(),
            routes: routes.into_boxed_slice(),
            mutations: vh_mutations,
        }));
    }
    Ok(RouteTable {
        domains,
        virtual_hosts: virtual_hosts.into_boxed_slice(),
        mutations,
    })
}

/// The virtual hosts of the table compiled before, to reuse where the config is unchanged.
/// A compiled virtual host depends on its config, the cluster positions (the caller's
/// promise: the same `cluster_index`) and whether the route config level has request and
/// response header mutations (inherited into each route's flags), so a table whose level
/// differs there offers none.
struct Previous<'p> {
    cfg: &'p [snapshot::VirtualHost],
    compiled: &'p [Arc<VirtualHost>],
    /// Position by name, built on the first virtual host not found at its own position.
    by_name: Option<HashMap<&'p str, usize>>,
}

impl<'p> Previous<'p> {
    fn new(
        cfg: &'p snapshot::RouteConfig,
        table: &'p RouteTable,
        mutations: &Mutations,
    ) -> Option<Previous<'p>> {
        let same_level = table.mutations.request.is_empty() == mutations.request.is_empty()
            && table.mutations.response.is_empty() == mutations.response.is_empty();
        (same_level && cfg.virtual_hosts.len() == table.virtual_hosts.len()).then_some(Previous {
            cfg: &cfg.virtual_hosts,
            compiled: &table.virtual_hosts,
            by_name: None,
        })
    }

    /// The compiled virtual host whose config equals `vh` (the new `virtual_hosts[i]`).
    fn same(&mut self, i: usize, vh: &snapshot::VirtualHost) -> Option<Arc<VirtualHost>> {
        let at = if self.cfg.get(i) == Some(vh) {
            i
        } else {
            let cfg = self.cfg;
            let by_name = self.by_name.get_or_insert_with(|| {
                cfg.iter()
                    .enumerate()
                    .map(|(j, v)| (v.name.as_str(), j))
                    .collect()
            });
            let j = *by_name.get(vh.name.as_str())?;
            if cfg[j] != *vh {
                return None;
            }
            j
        };
        Some(self.compiled[at].clone())
    }
}

/// `at`: the route's path; compiling its fields appends to it and truncates back.
fn compile_route(
    r: &snapshot::Route,
    at: &mut String,
    cluster_index: &dyn Fn(&str) -> Option<usize>,
) -> Result<Route, String> {
    let route_len = at.len();
    at.push_str(".match");
    let matcher = RouteMatch::compile(&r.matcher, at)?;
    at.truncate(route_len);
    let mut weighted = Vec::new();
    let action = match &r.action {
        snapshot::RouteAction::Route(f) => {
            at.push_str(".route");
            let (forward, w) = ForwardRoute::compile(f, &r.matcher, at, cluster_index)?;
            at.truncate(route_len);
            weighted = w;
            RouteAction::Forward(forward)
        }
        snapshot::RouteAction::DirectResponse(d) => {
            if !(200..600).contains(&d.status) {
                return Err(format!(
                    "{at}.direct_response.status: {} is not in [200, 600)",
                    d.status
                ));
            }
            RouteAction::Direct {
                status: d.status,
                body: d.body.as_deref().unwrap_or_default().as_bytes().into(),
            }
        }
        snapshot::RouteAction::Redirect(red) => RouteAction::Redirect(Redirect::compile(
            red,
            &r.matcher,
            &format!("{at}.redirect"),
        )?),
    };
    let mutations = Mutations::compile(&r.headers, at)?;
    Ok(Route {
        name: r.name.as_str().into(),
        matcher,
        action,
        request_mutations: !mutations.request.is_empty(),
        response_mutations: !mutations.response.is_empty(),
        mutations,
        weighted: weighted.into_boxed_slice(),
    })
}
