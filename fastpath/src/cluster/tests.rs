//! Cluster tests: host-set swaps keep counters of surviving hosts; errors name the field.
use super::*;
use crate::stats::Registry;

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
