//! Stats tests: sharded counting, merge, histogram buckets, registry reuse.
use super::*;
use serde_json::Value;

#[test]
fn counters_merge_over_shards_and_survive_lookup() {
    let reg = Registry::new(3);
    let c = ClusterStats::new(&reg, "cluster.a");
    c.inc(0, sets::cluster::Counter::UpstreamRqTotal);
    c.inc(2, sets::cluster::Counter::UpstreamRqTotal);
    c.gauge_inc(1, sets::cluster::Gauge::UpstreamCxActive);
    c.gauge_inc(1, sets::cluster::Gauge::UpstreamCxActive);
    c.gauge_dec(0, sets::cluster::Gauge::UpstreamCxActive);
    c.status_code(1, 503);
    c.set_global(sets::cluster::Global::MembershipTotal, 4);
    c.control_inc(sets::cluster::Control::MembershipChange);
    c.control_inc(sets::cluster::Control::MembershipChange);
    let again = ClusterStats::new(&reg, "cluster.a");
    again.inc(1, sets::cluster::Counter::UpstreamRqTotal);
    let v: Value = serde_json::from_slice(&reg.export()).unwrap();
    assert_eq!(v["counters"]["cluster.a.upstream_rq_total"], 3);
    assert_eq!(v["counters"]["cluster.a.upstream_rq_503"], 1);
    assert!(v["counters"].get("cluster.a.upstream_rq_200").is_none());
    assert_eq!(v["gauges"]["cluster.a.upstream_cx_active"], 1);
    assert_eq!(v["gauges"]["cluster.a.membership_total"], 4);
    assert_eq!(v["counters"]["cluster.a.membership_change"], 2);
}

#[test]
fn histogram_buckets_follow_envoy_bounds() {
    let reg = Registry::new(1);
    let h = HttpStats::new(&reg, "http.ingress");
    let t = sets::http::Histogram::DownstreamRqTime;
    h.record_us(0, t, 300); // 0.3 ms -> bucket 0 (<= 0.5)
    h.record_us(0, t, 1_000); // exactly 1 ms -> bucket 1
    h.record_us(0, t, 7_000); // 7 ms -> bucket 3 (<= 10)
    h.record_us(0, t, 4_000_000_000); // beyond the last bound -> overflow
    let v: Value = serde_json::from_slice(&reg.export()).unwrap();
    let hist = &v["histograms"]["http.ingress.downstream_rq_time"];
    let counts: Vec<u64> = serde_json::from_value(hist["counts"].clone()).unwrap();
    assert_eq!(counts.len(), BUCKET_BOUNDS_MS.len() + 1);
    assert_eq!(counts[0], 1);
    assert_eq!(counts[1], 1);
    assert_eq!(counts[3], 1);
    assert_eq!(counts[BUCKET_BOUNDS_MS.len()], 1);
    assert_eq!(hist["count"], 4);
    assert_eq!(hist["sum"], 4_000_008.3);
}
