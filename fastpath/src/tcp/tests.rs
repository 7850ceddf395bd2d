//! Unit tests of the network filters' compilation and choices.
use super::*;
use crate::config::snapshot::{TcpCluster, TokenBucket as BucketCfg};

fn proxy_cfg(clusters: &[(&str, u32)]) -> snapshot::TcpProxy {
    snapshot::TcpProxy {
        stat_prefix: "t".into(),
        clusters: clusters
            .iter()
            .map(|(n, w)| TcpCluster {
                name: n.to_string(),
                weight: *w,
            })
            .collect(),
        idle_timeout_ms: 3_600_000,
        max_connect_attempts: 1,
        hash_source_ip: false,
        access_log: Vec::new(),
        access_log_flush_interval_ms: 0,
        flush_access_log_on_connected: false,
    }
}

fn index(name: &str) -> Option<usize> {
    match name {
        "a" => Some(0),
        "b" => Some(1),
        _ => None,
    }
}

#[test]
fn weighted_clusters_split_by_weight() {
    let reg = Registry::new(1);
    let t = TcpProxy::compile(&proxy_cfg(&[("a", 1), ("b", 3)]), &index, &reg, "p").unwrap();
    // Points 0 → a; 1, 2, 3 → b (cumulative weights 1 and 4).
    assert_eq!(t.pick_cluster(0), Some(0));
    assert_eq!(t.pick_cluster(1), Some(1));
    assert_eq!(t.pick_cluster(3), Some(1));
    assert_eq!(t.pick_cluster(4), Some(0));
    let b = (0..4000u64)
        .filter(|r| t.pick_cluster(*r) == Some(1))
        .count();
    assert_eq!(b, 3000);
}

#[test]
fn unknown_cluster_is_no_route_not_an_error() {
    let reg = Registry::new(1);
    let t = TcpProxy::compile(&proxy_cfg(&[("missing", 1)]), &index, &reg, "p").unwrap();
    assert_eq!(t.pick_cluster(7), None);
}

#[test]
fn bad_settings_name_their_path() {
    let reg = Registry::new(1);
    let e = TcpProxy::compile(
        &proxy_cfg(&[("a", 0)]),
        &index,
        &reg,
        "listeners[0].filter.tcp_proxy",
    )
    .err()
    .unwrap();
    assert_eq!(
        e,
        "listeners[0].filter.tcp_proxy.clusters[0].weight: must be at least 1"
    );
    let mut cfg = proxy_cfg(&[("a", 1)]);
    cfg.stat_prefix.clear();
    let e = TcpProxy::compile(&cfg, &index, &reg, "p").err().unwrap();
    assert_eq!(e, "p.stat_prefix: must not be empty");
    let mut cfg = proxy_cfg(&[("a", 1)]);
    cfg.max_connect_attempts = 0;
    assert!(TcpProxy::compile(&cfg, &index, &reg, "p").is_err());
    assert!(TcpProxy::compile(&proxy_cfg(&[]), &index, &reg, "p").is_err());
}

#[test]
fn rate_limit_admits_up_to_the_bucket_then_counts() {
    let reg = Registry::new(1);
    let cfg = snapshot::ConnectionRateLimit {
        stat_prefix: "rl".into(),
        token_bucket: BucketCfg {
            max_tokens: 2,
            tokens_per_fill: 1,
            fill_interval_ms: 3_600_000,
        },
    };
    let r = ConnectionRateLimit::compile(&cfg, &reg, "x").unwrap();
    let filters = NetworkFilters {
        rate_limits: vec![r].into(),
        connection_limits: Box::new([]),
        rbac: Box::new([]),
        tcp_proxy: None,
    };
    assert!(filters.admit(0));
    assert!(filters.admit(0));
    assert!(!filters.admit(0));
    assert!(!filters.admit(0));
    let stats: serde_json::Value = serde_json::from_slice(&reg.export()).unwrap();
    assert_eq!(stats["counters"]["local_rate_limit.rl.rate_limited"], 2);
}

#[test]
fn rate_limit_fill_interval_below_50ms_is_refused() {
    let reg = Registry::new(1);
    let cfg = snapshot::ConnectionRateLimit {
        stat_prefix: "rl".into(),
        token_bucket: BucketCfg {
            max_tokens: 2,
            tokens_per_fill: 1,
            fill_interval_ms: 10,
        },
    };
    let e = ConnectionRateLimit::compile(&cfg, &reg, "listeners[1].connection_rate_limits[0]")
        .err()
        .unwrap();
    assert_eq!(
        e,
        "listeners[1].connection_rate_limits[0].token_bucket.fill_interval: must be at least 50ms"
    );
}

#[test]
fn no_filters_admit_everything() {
    assert!(NetworkFilters::default().admit(0));
}
