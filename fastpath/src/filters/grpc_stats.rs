//! Envoy's `grpc_stats` HTTP filter: for a gRPC request routed to a cluster, the call's
//! `grpc-status` (from the trailers, or a trailers-only response) counts in
//! `cluster.<c>.grpc.<service>.<method>.{success,failure,total,<status>}` for an allowlisted
//! method, else in `cluster.<c>.grpc.*`. Scopes are made at compile time for every cluster the
//! routes name and every allowlisted method, so a request only looks them up.
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::snapshot::{self, ClusterTarget, GrpcStatsFilter, RouteAction};
use crate::stats::sets::grpc;
use crate::stats::{Registry, Scope};

/// One `cluster.<c>.grpc[.<service>.<method>]` scope.
#[derive(Clone)]
pub struct GrpcScope(Arc<Scope>);

impl std::fmt::Debug for GrpcScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.prefix())
    }
}

/// The compiled filter: by cluster index, the method-less scope and the allowlisted methods'
/// scopes by `/<service>/<method>`.
#[derive(Debug, Default)]
pub struct GrpcStats {
    clusters: HashMap<usize, (GrpcScope, HashMap<Box<str>, GrpcScope>)>,
}

impl GrpcStats {
    /// `names` are the cluster names of the snapshot, by index (`cluster_index` inverted).
    pub fn compile(
        cfg: &GrpcStatsFilter,
        hcm: &snapshot::HttpConnectionManager,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        registry: &Registry,
    ) -> GrpcStats {
        let mut clusters = HashMap::new();
        for name in route_clusters(hcm) {
            let Some(i) = cluster_index(name) else {
                continue;
            };
            if clusters.contains_key(&i) {
                continue;
            }
            let prefix = format!("cluster.{name}.grpc");
            let scope = |p: &str| GrpcScope(registry.scope(p, &grpc::LAYOUT));
            let mut methods = HashMap::new();
            for service in &cfg.allowlist {
                let name = &service.name;
                for m in &service.method_names {
                    let key: Box<str> = format!("/{name}/{m}").into();
                    methods.insert(key, scope(&format!("{prefix}.{name}.{m}")));
                }
            }
            clusters.insert(i, (scope(&prefix), methods));
        }
        GrpcStats { clusters }
    }

    /// The scope a gRPC request to `cluster` with `:path` `path` counts in (allocation-free).
    pub fn scope(&self, cluster: usize, path: &str) -> Option<&GrpcScope> {
        let (plain, methods) = self.clusters.get(&cluster)?;
        let path = path.split('?').next().unwrap_or_default();
        Some(methods.get(path).unwrap_or(plain))
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
}
