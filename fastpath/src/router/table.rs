//! Compiles a `RouteConfiguration` into the `RouteTable` the data path selects from.
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
) -> Result<RouteTable, String> {
    let domains = DomainIndex::build(&cfg.virtual_hosts)?;
    let mutations = Mutations::compile(&cfg.headers, "")?;
    let mut virtual_hosts = Vec::with_capacity(cfg.virtual_hosts.len());
    for (i, vh) in cfg.virtual_hosts.iter().enumerate() {
        let at = format!("virtual_hosts[{i}]");
        let vh_mutations = Mutations::compile(&vh.headers, &at)?;
        let inherited_request = !mutations.request.is_empty() || !vh_mutations.request.is_empty();
        let inherited_response =
            !mutations.response.is_empty() || !vh_mutations.response.is_empty();
        let routes = vh
            .routes
            .iter()
            .enumerate()
            .map(|(j, r)| {
                let mut route = compile_route(r, &format!("{at}.routes[{j}]"), cluster_index)?;
                route.request_mutations |= inherited_request;
                route.response_mutations |= inherited_response;
                Ok(route)
            })
            .collect::<Result<_, String>>()?;
        virtual_hosts.push(VirtualHost {
            name: vh.name.as_str().into(),
            routes,
            mutations: vh_mutations,
        });
    }
    Ok(RouteTable {
        domains,
        virtual_hosts: virtual_hosts.into_boxed_slice(),
        mutations,
    })
}

fn compile_route(
    r: &snapshot::Route,
    at: &str,
    cluster_index: &dyn Fn(&str) -> Option<usize>,
) -> Result<Route, String> {
    let matcher = RouteMatch::compile(&r.matcher, &format!("{at}.match"))?;
    let mut weighted = Vec::new();
    let action = match &r.action {
        snapshot::RouteAction::Route(f) => {
            let (forward, w) =
                ForwardRoute::compile(f, &r.matcher, &format!("{at}.route"), cluster_index)?;
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
