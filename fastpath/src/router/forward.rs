//! The `route` action: cluster or weighted clusters, prefix / host rewrite and timeout.
use std::time::Duration;

use super::RequestView;
use super::hash::HashPolicies;
use super::headers::Mutations;
use super::retry::RetryPolicy;
use super::rewrite::PrefixRewrite;
use crate::config::snapshot::{ClusterTarget, ForwardAction, RouteMatch};

/// A compiled `route` action.
#[derive(Debug)]
pub struct ForwardRoute {
    /// Cluster indices with the cumulative weight each one ends at.
    targets: Box<[Target]>,
    total_weight: u64,
    rewrite: Option<PrefixRewrite>,
    host_rewrite: Option<Box<str>>,
    timeout: Option<Duration>,
    /// Route `idle_timeout`: `Some(None)` disables the stream idle timeout, `None` keeps the
    /// connection manager's.
    idle_timeout: Option<Option<Duration>>,
    /// `hash_policy`; None when the route has none (no hash is computed).
    hash: Option<HashPolicies>,
    // Issue 4 (resilience).
    retry: Option<Box<RetryPolicy>>,
    attempt_count: bool,
    mirrors: Box<[Mirror]>,
    /// Route `upgrade_configs`: (lower-case type, enabled).
    upgrades: Box<[(Box<str>, bool)]>,
    /// The route's CONNECT entry has `connect_config`: CONNECT is terminated here.
    connect_terminate: bool,
    /// Route `max_stream_duration` (None: the message is unset).
    stream_duration: Option<StreamDuration>,
}

/// A compiled `RouteAction.max_stream_duration`; each field `None` when unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamDuration {
    pub max: Option<Duration>,
    pub grpc_max: Option<Duration>,
    pub grpc_offset: Option<Duration>,
}

/// A `request_mirror_policies` entry: the cluster index and the share mirrored (ppm).
#[derive(Debug, Clone, Copy)]
pub struct Mirror {
    pub cluster: usize,
    pub fraction_ppm: u32,
}

#[derive(Debug)]
struct Target {
    cluster: usize,
    end: u64,
}

impl ForwardRoute {
    /// `at` is the path of the `route` field. Also returns the weighted clusters' header
    /// mutations, by choice (empty for a single `cluster`).
    pub(super) fn compile(
        cfg: &ForwardAction,
        route_match: &RouteMatch,
        at: &str,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<(ForwardRoute, Vec<Mutations>), String> {
        let lookup = |name: &str, at: &str| {
            cluster_index(name).ok_or_else(|| format!("{at}: unknown cluster {name:?}"))
        };
        let mut targets = Vec::new();
        let mut weighted = Vec::new();
        let mut total: u64 = 0;
        match &cfg.target {
            ClusterTarget::Cluster(name) => {
                let cluster = cluster_index(name)
                    .ok_or_else(|| format!("{at}.cluster: unknown cluster {name:?}"))?;
                targets.push(Target { cluster, end: 1 });
                total = 1;
            }
            ClusterTarget::WeightedClusters(clusters) => {
                let wat = format!("{at}.weighted_clusters");
                if clusters.is_empty() {
                    return Err(format!("{wat}.clusters: must not be empty"));
                }
                for (i, wc) in clusters.iter().enumerate() {
                    let cat = format!("{wat}.clusters[{i}]");
                    let cluster = lookup(&wc.name, &format!("{cat}.name"))?;
                    total += u64::from(wc.weight);
                    targets.push(Target {
                        cluster,
                        end: total,
                    });
                    weighted.push(Mutations::compile(&wc.headers, &cat)?);
                }
                if total == 0 {
                    return Err(format!(
                        "{wat}: the sum of the weights must be greater than 0"
                    ));
                }
                if total > u64::from(u32::MAX) {
                    return Err(format!(
                        "{wat}: the sum of the weights must be at most {}",
                        u32::MAX
                    ));
                }
            }
        }
        for (field, value) in [
            ("prefix_rewrite", &cfg.prefix_rewrite),
            ("host_rewrite_literal", &cfg.host_rewrite_literal),
        ] {
            if let Some(v) = value
                && v.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n'))
            {
                return Err(format!("{at}.{field}: {v:?} contains NUL, CR or LF"));
            }
        }
        let retry = match &cfg.retry_policy {
            Some(p) => Some(Box::new(RetryPolicy::compile(
                p,
                &format!("{at}.retry_policy"),
            )?)),
            None => None,
        };
        let mut mirrors = Vec::new();
        for (i, m) in cfg.request_mirror_policies.iter().enumerate() {
            let mat = format!("{at}.request_mirror_policies[{i}].cluster");
            mirrors.push(Mirror {
                cluster: lookup(&m.cluster, &mat)?,
                fraction_ppm: m.fraction_ppm.min(1_000_000),
            });
        }
        let route = ForwardRoute {
            targets: targets.into_boxed_slice(),
            total_weight: total,
            rewrite: cfg
                .prefix_rewrite
                .as_deref()
                .and_then(|r| PrefixRewrite::new(r, &route_match.path, route_match.case_sensitive)),
            host_rewrite: cfg
                .host_rewrite_literal
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(Into::into),
            timeout: (cfg.timeout_ms > 0).then(|| Duration::from_millis(cfg.timeout_ms)),
            idle_timeout: cfg
                .idle_timeout_ms
                .map(|ms| (ms > 0).then(|| Duration::from_millis(ms))),
            retry,
            attempt_count: cfg.include_request_attempt_count,
            mirrors: mirrors.into(),
            hash: HashPolicies::compile(&cfg.hash_policy),
            upgrades: cfg
                .upgrade_configs
                .iter()
                .map(|u| (u.upgrade_type.to_ascii_lowercase().into(), u.enabled))
                .collect(),
            connect_terminate: cfg.upgrade_configs.iter().any(|u| {
                u.upgrade_type.eq_ignore_ascii_case("connect") && u.connect_config.is_some()
            }),
            stream_duration: cfg.max_stream_duration.as_ref().map(|d| StreamDuration {
                max: d.max_stream_duration_ms.map(Duration::from_millis),
                grpc_max: d.grpc_timeout_header_max_ms.map(Duration::from_millis),
                grpc_offset: d.grpc_timeout_header_offset_ms.map(Duration::from_millis),
            }),
        };
        Ok((route, weighted))
    }

    /// Picks the target: `(cluster index, choice)`, where `choice` is the weighted cluster's
    /// position (0 for a single `cluster`). `rand` is a uniformly random u64. Like Envoy,
    /// `rand % total_weight` walks the cumulative weights, so a zero-weight entry is never
    /// picked.
    pub fn pick_cluster(&self, rand: u64) -> (usize, usize) {
        if self.targets.len() == 1 {
            return (self.targets[0].cluster, 0);
        }
        let point = rand % self.total_weight;
        let choice = self.targets.partition_point(|t| t.end <= point);
        (self.targets[choice].cluster, choice)
    }

    /// The upstream path after `prefix_rewrite` (None when unchanged). `path` is the request
    /// target the route matched, query included; the query is kept.
    pub fn rewrite_path(&self, path: &str) -> Option<String> {
        self.rewrite.as_ref()?.apply(path)
    }

    /// `host_rewrite_literal`.
    pub fn host_rewrite(&self) -> Option<&str> {
        self.host_rewrite.as_deref()
    }

    /// Route timeout; `None` when disabled (0) or when the route sets `max_stream_duration`
    /// (Envoy then uses no route timeout: its "new timeouts").
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|_| self.stream_duration.is_none())
    }

    /// Route `max_stream_duration`, when the message is set.
    pub fn stream_duration(&self) -> Option<&StreamDuration> {
        self.stream_duration.as_ref()
    }

    /// Route `idle_timeout`: `Some(None)` disables the stream idle timeout, `Some(Some(d))`
    /// replaces it, `None` leaves the connection manager's.
    pub fn idle_timeout(&self) -> Option<Option<Duration>> {
        self.idle_timeout
    }

    /// Whether this route proxies an upgrade of `kind` (lower case): its own
    /// `upgrade_configs` entry decides, else `hcm_default` (the connection manager's).
    pub fn upgrade_enabled(&self, kind: &str, hcm_default: bool) -> bool {
        self.upgrades
            .iter()
            .find(|(t, _)| &**t == kind)
            .map_or(hcm_default, |(_, on)| *on)
    }

    /// Whether a CONNECT on this route is terminated here (`connect_config`): answered 200
    /// and relayed as bytes over a new TCP connection to the cluster.
    pub fn connect_terminate(&self) -> bool {
        self.connect_terminate
    }

    /// The retry policy, if any.
    pub fn retry(&self) -> Option<&RetryPolicy> {
        self.retry.as_deref()
    }

    /// `include_request_attempt_count`.
    pub fn attempt_count(&self) -> bool {
        self.attempt_count
    }

    /// `request_mirror_policies`.
    pub fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }

    /// The request hash for RING_HASH / MAGLEV (`hash_policy`); None without a policy or when
    /// no policy found its input.
    #[inline]
    pub fn request_hash(&self, req: &RequestView<'_>, peer: std::net::IpAddr) -> Option<u64> {
        self.hash.as_ref()?.hash(req, peer)
    }

    /// How many targets `pick_cluster` chooses from (the valid `choice` values are below it).
    pub fn choices(&self) -> usize {
        self.targets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::{PathMatch, WeightedCluster};

    fn clusters(name: &str) -> Option<usize> {
        ["a", "b", "c"].iter().position(|c| *c == name)
    }

    fn action(target: ClusterTarget) -> ForwardAction {
        ForwardAction {
            target,
            prefix_rewrite: None,
            host_rewrite_literal: None,
            timeout_ms: 15_000,
            retry_policy: None,
            include_request_attempt_count: false,
            request_mirror_policies: vec![],
            hash_policy: vec![],
            idle_timeout_ms: None,
            upgrade_configs: vec![],
            max_stream_duration: None,
        }
    }

    #[test]
    fn max_stream_duration_replaces_the_route_timeout() {
        let mut cfg = action(ClusterTarget::Cluster("a".into()));
        cfg.max_stream_duration = Some(crate::config::snapshot::RouteStreamDuration {
            max_stream_duration_ms: None,
            grpc_timeout_header_max_ms: Some(0),
            grpc_timeout_header_offset_ms: Some(50),
        });
        let (f, _) = ForwardRoute::compile(&cfg, &prefix("/"), "route", &clusters).unwrap();
        assert_eq!(f.timeout(), None);
        let d = f.stream_duration().unwrap();
        assert_eq!(d.max, None);
        assert_eq!(d.grpc_max, Some(Duration::ZERO));
        assert_eq!(d.grpc_offset, Some(Duration::from_millis(50)));
    }

    fn prefix(p: &str) -> RouteMatch {
        RouteMatch {
            path: PathMatch::Prefix(p.into()),
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
        }
    }

    fn weighted(weights: &[(&str, u32)]) -> ClusterTarget {
        ClusterTarget::WeightedClusters(
            weights
                .iter()
                .map(|(n, w)| WeightedCluster {
                    name: n.to_string(),
                    weight: *w,
                    headers: Default::default(),
                })
                .collect(),
        )
    }

    fn compile(cfg: &ForwardAction) -> Result<ForwardRoute, String> {
        ForwardRoute::compile(cfg, &prefix("/"), "r.route", &clusters).map(|(f, _)| f)
    }

    #[test]
    fn single_cluster_is_choice_zero() {
        let f = compile(&action(ClusterTarget::Cluster("b".into()))).unwrap();
        assert_eq!(f.pick_cluster(0), (1, 0));
        assert_eq!(f.pick_cluster(u64::MAX), (1, 0));
        assert_eq!(f.choices(), 1);
    }

    #[test]
    fn weighted_clusters_walk_cumulative_weights() {
        let f = compile(&action(weighted(&[("a", 1), ("b", 0), ("c", 3)]))).unwrap();
        assert_eq!(f.pick_cluster(0), (0, 0));
        assert_eq!(f.pick_cluster(1), (2, 2));
        assert_eq!(f.pick_cluster(3), (2, 2));
        assert_eq!(f.pick_cluster(4), (0, 0));
        let mut counts = [0u32; 3];
        for r in 0..4000u64 {
            counts[f.pick_cluster(r).1] += 1;
        }
        assert_eq!(counts, [1000, 0, 3000]);
        assert_eq!(f.choices(), 3);
    }

    #[test]
    fn errors_name_the_field() {
        let err = compile(&action(ClusterTarget::Cluster("x".into()))).unwrap_err();
        assert_eq!(err, "r.route.cluster: unknown cluster \"x\"");
        let err = compile(&action(weighted(&[("a", 1), ("zz", 1)]))).unwrap_err();
        assert_eq!(
            err,
            "r.route.weighted_clusters.clusters[1].name: unknown cluster \"zz\""
        );
        let err = compile(&action(weighted(&[("a", 0), ("b", 0)]))).unwrap_err();
        assert!(err.starts_with("r.route.weighted_clusters:"), "{err}");
        let err = compile(&action(weighted(&[]))).unwrap_err();
        assert!(
            err.starts_with("r.route.weighted_clusters.clusters:"),
            "{err}"
        );
        let err = compile(&action(weighted(&[("a", u32::MAX), ("b", 1)]))).unwrap_err();
        assert!(err.contains("at most"), "{err}");
        let mut bad = action(ClusterTarget::Cluster("a".into()));
        bad.host_rewrite_literal = Some("h\r\nx: y".into());
        let err = compile(&bad).unwrap_err();
        assert!(err.starts_with("r.route.host_rewrite_literal:"), "{err}");
    }

    #[test]
    fn rewrites_and_timeout() {
        let mut cfg = action(ClusterTarget::Cluster("a".into()));
        cfg.prefix_rewrite = Some("/v2/".into());
        cfg.host_rewrite_literal = Some("upstream.internal".into());
        cfg.timeout_ms = 0;
        let (f, _) = ForwardRoute::compile(&cfg, &prefix("/api/"), "r", &clusters).unwrap();
        assert_eq!(f.rewrite_path("/api/x?y=1").as_deref(), Some("/v2/x?y=1"));
        assert_eq!(f.host_rewrite(), Some("upstream.internal"));
        assert_eq!(f.timeout(), None);

        let cfg = action(ClusterTarget::Cluster("a".into()));
        let f = compile(&cfg).unwrap();
        assert_eq!(f.rewrite_path("/api/x"), None);
        assert_eq!(f.host_rewrite(), None);
        assert_eq!(f.timeout(), Some(Duration::from_secs(15)));
    }
}
