//! Cluster tests: host-set swaps keep counters of surviving hosts; errors name the field.
use super::*;
use crate::stats::Registry;
use std::time::Instant;

fn ep(addr: &str, port: u16, healthy: bool) -> snapshot::Endpoint {
    snapshot::Endpoint {
        address: addr.into(),
        port,
        weight: 1,
        healthy,
        priority: 0,
    }
}

fn cluster(endpoints: Vec<snapshot::Endpoint>) -> snapshot::Cluster {
    serde_json::from_value::<snapshot::Cluster>(serde_json::json!({"name": "c"}))
        .map(|c| snapshot::Cluster { endpoints, ..c })
        .unwrap()
}

#[test]
fn swap_keeps_counters_of_surviving_hosts() {
    let reg = Registry::new(1);
    let cfg = cluster(vec![ep("127.0.0.1", 1, true), ep("127.0.0.2", 2, true)]);
    let c = ClusterState::new(&cfg, ClusterStats::new(&reg, "cluster.c"), "clusters[0]").unwrap();
    let first = c.hosts.load().hosts[0].counters.clone();
    let second = c.hosts.load().hosts[1].counters.clone();
    first.rq_total.fetch_add(7, Ordering::Relaxed);
    c.set_endpoints(
        &[ep("127.0.0.1", 1, false), ep("127.0.0.3", 3, true)],
        "eps",
    )
    .unwrap();
    let set = c.hosts.load();
    assert!(Arc::ptr_eq(&set.hosts[0].counters, &first));
    assert!(!set.hosts[0].healthy);
    assert_eq!(HostCounters::get(&set.hosts[0].counters.rq_total), 7);
    assert!(second.removed.load(Ordering::Relaxed));
    assert!(!first.removed.load(Ordering::Relaxed));
    let v: serde_json::Value = serde_json::from_slice(&reg.export()).unwrap();
    assert_eq!(v["gauges"]["cluster.c.membership_total"], 2);
    assert_eq!(v["gauges"]["cluster.c.membership_healthy"], 1);
    assert_eq!(v["counters"]["cluster.c.membership_change"], 1);
}

#[test]
fn bad_endpoints_are_named() {
    let reg = Registry::new(1);
    let cfg = cluster(vec![ep("localhost", 1, true)]);
    let e = ClusterState::new(&cfg, ClusterStats::new(&reg, "cluster.c"), "clusters[3]")
        .err()
        .unwrap();
    assert_eq!(
        e,
        "clusters[3].endpoints[0].address: \"localhost\" is not an IP address"
    );
    let c = ClusterState::new(&cluster(vec![]), ClusterStats::new(&reg, "cluster.c"), "x").unwrap();
    let e = c
        .set_endpoints(&[ep("::1", 0, true)], "endpoints")
        .unwrap_err();
    assert_eq!(e, "endpoints[0].port: must be 1..65535");
    assert!(
        c.hosts.load().hosts.is_empty(),
        "a bad update changes nothing"
    );
}

#[test]
fn a_duplicate_is_named_at_its_second_place_and_nothing_is_swapped() {
    let reg = Registry::new(1);
    let cfg = cluster(vec![ep("127.0.0.1", 1, true)]);
    let c = ClusterState::new(&cfg, ClusterStats::new(&reg, "cluster.c"), "clusters[0]").unwrap();
    let before = c.hosts.load_full();
    let e = c
        .set_endpoints(
            &[
                ep("127.0.0.1", 1, true),
                ep("127.0.0.2", 2, true),
                ep("127.0.0.3", 3, true),
                ep("127.0.0.2", 2, false),
            ],
            "endpoints",
        )
        .unwrap_err();
    assert_eq!(e, "endpoints[3]: duplicate endpoint 127.0.0.2:2");
    assert!(Arc::ptr_eq(&c.hosts.load_full(), &before));
    // The same address on another port is another host.
    c.set_endpoints(
        &[ep("127.0.0.2", 2, true), ep("127.0.0.2", 3, true)],
        "endpoints",
    )
    .unwrap();
    assert_eq!(c.hosts.load().hosts.len(), 2);
}

#[test]
fn reported_5xx_eject_the_host_from_the_balancer_until_the_interval_returns_it() {
    let reg = Registry::new(1);
    let mut cfg = cluster(vec![
        ep("127.0.0.1", 1, true),
        ep("127.0.0.1", 2, true),
        ep("127.0.0.1", 3, true),
    ]);
    cfg.outlier_detection = Some(
        serde_json::from_value(serde_json::json!({
            "interval_ms": 100, "base_ejection_time_ms": 1000, "max_ejection_percent": 50
        }))
        .unwrap(),
    );
    let od = crate::stats::OutlierStats::new(&reg, "cluster.c.outlier_detection");
    let c = ClusterState::new(&cfg, ClusterStats::new(&reg, "cluster.c"), "clusters[0]")
        .unwrap()
        .with_outlier_stats(Some(od));
    let t0 = Instant::now();
    c.outlier_tick(t0); // arms the interval
    let bad = c.hosts.load().hosts[0].counters.clone();
    for _ in 0..4 {
        c.report_result(&bad, Outcome::Status(503));
    }
    assert!(!bad.ejected.load(Ordering::Relaxed));
    c.report_result(&bad, Outcome::Status(503));
    assert!(bad.ejected.load(Ordering::Relaxed));
    let picks = |c: &ClusterState| -> Vec<usize> {
        let set = c.hosts.load();
        (0..300u64)
            .map(|r| set.balancer.pick(r, &|_| 0).unwrap())
            .collect()
    };
    assert!(
        picks(&c).iter().all(|i| *i != 0),
        "the ejected host was picked"
    );
    // An endpoint update keeps the ejection.
    c.set_endpoints(&cfg.endpoints, "eps").unwrap();
    assert!(picks(&c).iter().all(|i| *i != 0));
    // Still ejected before base_ejection_time; back after it, on an interval tick.
    c.outlier_tick(t0 + Duration::from_millis(500));
    assert!(bad.ejected.load(Ordering::Relaxed));
    c.outlier_tick(t0 + Duration::from_millis(1100));
    assert!(!bad.ejected.load(Ordering::Relaxed));
    assert!(picks(&c).contains(&0));
    // Without outlier detection, reports change nothing.
    let plain = ClusterState::new(
        &cluster(vec![ep("127.0.0.1", 1, true)]),
        ClusterStats::new(&reg, "cluster.p"),
        "x",
    )
    .unwrap();
    let h = plain.hosts.load().hosts[0].counters.clone();
    for _ in 0..10 {
        plain.report_result(&h, Outcome::Status(503));
    }
    assert!(!h.ejected.load(Ordering::Relaxed));
}
