//! Envoy's `grpc_stats` HTTP filter: for a gRPC request routed to a cluster whose `:path` is
//! `/<service>/<method>`, the call's `grpc-status` (from the trailers, or a trailers-only
//! response), its messages each way and (`enable_upstream_stats`) its upstream time count in
//! `cluster.<c>.grpc.<service>.<method>.*` for an allowlisted method, else in
//! `cluster.<c>.grpc.*`; with `stats_for_all_methods` every method gets its own scope, made on
//! its first call (unbounded, as in Envoy) and cached per worker. Allowlisted scopes are made
//! at compile time, so such a request only looks them up.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::snapshot::{self, ClusterTarget, GrpcStatsFilter, RouteAction};
use crate::stats::sets::{grpc, grpc_upstream};
use crate::stats::{Layout, Registry, Scope, ScopeMaker};

/// One `cluster.<c>.grpc[.<service>.<method>]` scope.
#[derive(Clone)]
pub struct GrpcScope(Arc<Scope>);

impl std::fmt::Debug for GrpcScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.prefix())
    }
}

/// Scopes by service, then method.
type Methods = HashMap<Box<str>, HashMap<Box<str>, GrpcScope>>;

/// One cluster's scopes.
#[derive(Debug)]
struct ClusterScopes {
    /// `cluster.<name>.grpc`.
    prefix: Box<str>,
    /// The method-less scope (`None` with `stats_for_all_methods`).
    plain: Option<GrpcScope>,
    /// The allowlisted methods' scopes.
    methods: Methods,
}

/// `stats_for_all_methods`: where per-method scopes come from, and those each worker made or
/// found so far (by cluster index; a worker only locks its own map).
struct Dynamic {
    maker: ScopeMaker,
    replace_dots: bool,
    made: Box<[Mutex<HashMap<usize, Methods>>]>,
}

impl std::fmt::Debug for Dynamic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dynamic")
            .field("replace_dots", &self.replace_dots)
            .finish()
    }
}

/// The compiled filter: by cluster index, the cluster's scopes.
pub struct GrpcStats {
    clusters: HashMap<usize, ClusterScopes>,
    /// `grpc` or (`enable_upstream_stats`) `grpc_upstream`.
    layout: &'static Layout,
    dynamic: Option<Dynamic>,
}

impl std::fmt::Debug for GrpcStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcStats")
            .field("clusters", &self.clusters)
            .field("upstream_stats", &!self.layout.histograms.is_empty())
            .field("dynamic", &self.dynamic)
            .finish()
    }
}

impl GrpcStats {
    /// `cluster_index`: a cluster's position in the snapshot; `stat_name`: the stats name of
    /// the cluster at a position (its `alt_stat_name` or its name: the scope is the
    /// cluster's, `cluster.<stat_name>.grpc`, as in Envoy).
    pub fn compile(
        cfg: &GrpcStatsFilter,
        hcm: &snapshot::HttpConnectionManager,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        stat_name: &dyn Fn(usize) -> String,
        registry: &Registry,
    ) -> GrpcStats {
        let layout = if cfg.upstream_stats {
            &grpc_upstream::LAYOUT
        } else {
            &grpc::LAYOUT
        };
        let mut clusters = HashMap::new();
        for name in route_clusters(hcm) {
            let Some(i) = cluster_index(name) else {
                continue;
            };
            if clusters.contains_key(&i) {
                continue;
            }
            let prefix = format!("cluster.{}.grpc", stat_name(i));
            let scope = |p: &str| GrpcScope(registry.scope(p, layout));
            let mut methods = Methods::new();
            if !cfg.all_methods {
                for service in &cfg.allowlist {
                    let name = &service.name;
                    let by_method = methods.entry(name.as_str().into()).or_default();
                    for m in &service.method_names {
                        by_method.insert(m.as_str().into(), scope(&format!("{prefix}.{name}.{m}")));
                    }
                }
            }
            let plain = (!cfg.all_methods).then(|| scope(&prefix));
            clusters.insert(
                i,
                ClusterScopes {
                    prefix: prefix.into(),
                    plain,
                    methods,
                },
            );
        }
        let dynamic = cfg.all_methods.then(|| Dynamic {
            maker: registry.maker(),
            replace_dots: cfg.replace_dots,
            made: (0..registry.workers().max(1))
                .map(|_| Mutex::default())
                .collect(),
        });
        GrpcStats {
            clusters,
            layout,
            dynamic,
        }
    }

    /// The scope a gRPC request to `cluster` with `:path` `path` counts in, on worker `w`;
    /// `None`: not counted (the path is not `/<service>/<method>`, as Envoy). Allocation-free
    /// unless `stats_for_all_methods` meets a method for the first time on this worker.
    pub fn scope(&self, w: usize, cluster: usize, path: &str) -> Option<GrpcScope> {
        let c = self.clusters.get(&cluster)?;
        let (service, method) = service_and_method(path)?;
        if let Some(d) = &self.dynamic {
            return Some(d.scope(w, cluster, &c.prefix, service, method, self.layout));
        }
        let listed = c.methods.get(service).and_then(|m| m.get(method));
        listed.or(c.plain.as_ref()).cloned()
    }
}

impl Dynamic {
    fn scope(
        &self,
        w: usize,
        cluster: usize,
        prefix: &str,
        service: &str,
        method: &str,
        layout: &'static Layout,
    ) -> GrpcScope {
        let mut made = self.made[w % self.made.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let services = made.entry(cluster).or_default();
        if let Some(s) = services.get(service).and_then(|m| m.get(method)) {
            return s.clone();
        }
        let name = if self.replace_dots {
            format!("{prefix}.{}.{method}", service.replace('.', "_"))
        } else {
            format!("{prefix}.{service}.{method}")
        };
        let scope = GrpcScope(self.maker.scope(&name, layout));
        services
            .entry(service.into())
            .or_default()
            .insert(method.into(), scope.clone());
        scope
    }
}

/// Envoy's `Grpc::Common::resolveServiceAndMethod`: the `:path` without its query, split on
/// `/` with empty parts dropped, must have exactly two parts.
pub fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let path = path.split('?').next().unwrap_or_default();
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let (service, method) = (parts.next()?, parts.next()?);
    parts.next().is_none().then_some((service, method))
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// A counted call in progress: its scope, its worker and when it went upstream (the start of
/// `upstream_rq_time`). Left by the core in the stream's slot for the HTTP/2 bridges.
#[derive(Debug)]
pub struct GrpcCall {
    pub scope: GrpcScope,
    pub w: usize,
    pub started: Instant,
}

impl GrpcCall {
    /// Counts `n` messages that started going `dir`.
    pub fn messages(&self, dir: Direction, n: u64) {
        let c = match dir {
            Direction::Request => grpc::Counter::RequestMessageCount,
            Direction::Response => grpc::Counter::ResponseMessageCount,
        };
        self.scope.0.add(self.w, c as usize, n);
    }

    /// Ends the call: counts its `grpc-status` (if any) and, for a response that came from
    /// the upstream, its `upstream_rq_time` (with `enable_upstream_stats`).
    pub fn finish(self, status: Option<&[u8]>, from_upstream: bool) {
        if let Some(status) = status {
            self.scope.charge(self.w, status);
        }
        if from_upstream && !self.scope.0.layout().histograms.is_empty() {
            let us = self.started.elapsed().as_micros().min(u64::MAX as u128) as u64;
            let h = grpc_upstream::Histogram::UpstreamRqTime as usize;
            self.scope.0.record_us(self.w, h, us);
        }
    }
}

impl GrpcScope {
    /// Counts a finished call with `grpc-status` `status` (Envoy: "0" is a success, anything
    /// else a failure; a status outside 0..=16 counts only in success/failure/total).
    pub fn charge(&self, w: usize, status: &[u8]) {
        let ok = status == b"0";
        let outcome = if ok {
            grpc::Counter::Success
        } else {
            grpc::Counter::Failure
        };
        self.0.add(w, outcome as usize, 1);
        self.0.add(w, grpc::Counter::Total as usize, 1);
        let code = std::str::from_utf8(status)
            .ok()
            .filter(|s| s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&c| c <= 16);
        if let Some(c) = code {
            self.0.add(w, grpc::Counter::S0 as usize + c, 1);
        }
    }
}

/// The cluster names the connection manager's routes forward to (plain and weighted).
fn route_clusters(hcm: &snapshot::HttpConnectionManager) -> impl Iterator<Item = &str> {
    let routes = hcm
        .route_config
        .virtual_hosts
        .iter()
        .flat_map(|v| v.routes.iter());
    routes.flat_map(|r| {
        let names: Vec<&str> = match &r.action {
            RouteAction::Route(f) => match &f.target {
                ClusterTarget::Cluster(c) => vec![c.as_str()],
                ClusterTarget::WeightedClusters(w) => w.iter().map(|c| c.name.as_str()).collect(),
            },
            _ => Vec::new(),
        };
        names
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_count_as_envoy() {
        let reg = Registry::new(1);
        let s = GrpcScope(reg.scope("cluster.c.grpc", &grpc::LAYOUT));
        s.charge(0, b"0");
        s.charge(0, b"4");
        s.charge(0, b"4");
        s.charge(0, b"99");
        let v = |c: grpc::Counter| s.0.counter(c as usize);
        assert_eq!(v(grpc::Counter::Success), 1);
        assert_eq!(v(grpc::Counter::Failure), 3);
        assert_eq!(v(grpc::Counter::Total), 4);
        assert_eq!(v(grpc::Counter::S0), 1);
        assert_eq!(v(grpc::Counter::S4), 2);
        assert_eq!(v(grpc::Counter::S16), 0);
    }

    #[test]
    fn paths_resolve_as_envoy() {
        assert_eq!(service_and_method("/pkg.Svc/Get"), Some(("pkg.Svc", "Get")));
        assert_eq!(
            service_and_method("/pkg.Svc/Get?x=1"),
            Some(("pkg.Svc", "Get"))
        );
        assert_eq!(
            service_and_method("//pkg.Svc//Get/"),
            Some(("pkg.Svc", "Get"))
        );
        assert_eq!(service_and_method("/bad"), None);
        assert_eq!(service_and_method("/a/b/c"), None);
        assert_eq!(service_and_method("/"), None);
    }

    #[test]
    fn all_methods_makes_each_scope_once_and_replaces_dots() {
        let reg = Registry::new(2);
        let d = Dynamic {
            maker: reg.maker(),
            replace_dots: true,
            made: (0..2).map(|_| Mutex::default()).collect(),
        };
        let p = "cluster.c.grpc";
        let a = d.scope(0, 3, p, "pkg.Svc", "Get", &grpc::LAYOUT);
        assert_eq!(a.0.prefix(), "cluster.c.grpc.pkg_Svc.Get");
        let again = d.scope(0, 3, p, "pkg.Svc", "Get", &grpc::LAYOUT);
        assert!(Arc::ptr_eq(&a.0, &again.0));
        // Another worker finds the same registry scope.
        let other = d.scope(1, 3, p, "pkg.Svc", "Get", &grpc::LAYOUT);
        assert!(Arc::ptr_eq(&a.0, &other.0));
        let b = d.scope(0, 3, p, "pkg.Svc", "Put", &grpc::LAYOUT);
        assert_eq!(b.0.prefix(), "cluster.c.grpc.pkg_Svc.Put");
        let exported = String::from_utf8(reg.export()).unwrap();
        assert!(
            exported.contains("cluster.c.grpc.pkg_Svc.Put.total"),
            "{exported}"
        );
    }

    #[test]
    fn a_finished_call_counts_messages_status_and_upstream_time() {
        let reg = Registry::new(1);
        let scope = GrpcScope(reg.scope("cluster.c.grpc.s.m", &grpc_upstream::LAYOUT));
        let call = GrpcCall {
            scope: scope.clone(),
            w: 0,
            started: Instant::now(),
        };
        call.messages(Direction::Request, 3);
        call.messages(Direction::Response, 2);
        call.finish(Some(b"0"), true);
        let v = |c: grpc::Counter| scope.0.counter(c as usize);
        assert_eq!(v(grpc::Counter::RequestMessageCount), 3);
        assert_eq!(v(grpc::Counter::ResponseMessageCount), 2);
        assert_eq!(v(grpc::Counter::Total), 1);
        let exported: serde_json::Value = serde_json::from_slice(&reg.export()).unwrap();
        let h = &exported["histograms"]["cluster.c.grpc.s.m.upstream_rq_time"];
        assert_eq!(h["count"], 1, "{exported}");
        // A local reply: no upstream time.
        let plain = GrpcScope(reg.scope("cluster.d.grpc", &grpc::LAYOUT));
        let local = GrpcCall {
            scope: plain.clone(),
            w: 0,
            started: Instant::now(),
        };
        local.finish(Some(b"14"), false);
        assert_eq!(plain.0.counter(grpc::Counter::S14 as usize), 1);
    }
}
