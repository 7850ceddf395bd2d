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

fn lines(buf: &[u8]) -> Vec<String> {
    String::from_utf8(buf.to_vec())
        .unwrap()
        .lines()
        .map(|l| l.replace('\0', " "))
        .collect()
}

fn names(buf: &[u8]) -> Vec<String> {
    lines(buf)
        .into_iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// The flat export's histogram line that starts with `name`.
fn histogram_line(reg: &Registry, name: &str) -> String {
    lines(&reg.export_flat().histograms)
        .into_iter()
        .find(|l| l.starts_with(name))
        .unwrap()
}

/// What a full sort of the names gives (the flat export must match it, not just per scope).
fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn flat_export_is_sorted_by_full_name_across_nested_scopes() {
    let reg = Registry::new(2);
    // `a-b.` sorts before `a.` although `a` < `a-b`; `a.outlier_detection.` nests in `a.`;
    // a cluster named `a.upstream_rq_25` nests inside `a`'s run of status codes 200..299.
    for name in [
        "cluster.a",
        "cluster.a-b",
        "cluster.a.upstream_rq_25",
        "cluster.b",
    ] {
        ClusterStats::new(&reg, name);
    }
    OutlierStats::new(&reg, "cluster.a.outlier_detection");
    let a = ClusterStats::new(&reg, "cluster.a");
    a.status_code(0, 200);
    a.status_code(1, 200);
    a.status_code(1, 503);
    a.status_code(0, 299);
    let flat = reg.export_flat();
    let counters = names(&flat.counters);
    assert_eq!(counters, sorted(counters.clone()));
    assert_eq!(names(&flat.gauges), sorted(names(&flat.gauges)));
    assert_eq!(names(&flat.histograms), sorted(names(&flat.histograms)));
    let l = lines(&flat.counters);
    assert!(l.contains(&"cluster.a.upstream_rq_200 2".to_string()));
    assert!(l.contains(&"cluster.a.upstream_rq_299 1".to_string()));
    assert!(l.contains(&"cluster.a.upstream_rq_503 1".to_string()));
    assert!(l.contains(&"cluster.a.outlier_detection.ejections_total 0".to_string()));
    assert!(counters.contains(&"cluster.a.upstream_rq_25.upstream_rq_total".to_string()));
    // Every stat of the JSON view, once.
    let v: Value = serde_json::from_slice(&reg.export()).unwrap();
    let json_names: Vec<String> = v["counters"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(counters, sorted(json_names));
}

#[test]
fn flat_export_reads_values_and_follows_new_scopes() {
    let reg = Registry::new(2);
    let c = ClusterStats::new(&reg, "cluster.x");
    c.add(0, sets::cluster::Counter::UpstreamRqTotal, 5);
    c.add(1, sets::cluster::Counter::UpstreamRqTotal, 2);
    c.gauge_dec(1, sets::cluster::Gauge::UpstreamCxActive);
    c.set_global(sets::cluster::Global::MembershipTotal, 3);
    c.control_inc(sets::cluster::Control::MembershipChange);
    let l = lines(&reg.export_flat().counters);
    assert!(l.contains(&"cluster.x.upstream_rq_total 7".to_string()));
    assert!(l.contains(&"cluster.x.membership_change 1".to_string()));
    let g = lines(&reg.export_flat().gauges);
    assert!(g.contains(&"cluster.x.upstream_cx_active -1".to_string()));
    assert!(g.contains(&"cluster.x.membership_total 3".to_string()));
    // A scope added after an export shows in the next one.
    ClusterStats::new(&reg, "cluster.w");
    let n = names(&reg.export_flat().counters);
    assert_eq!(n[0], "cluster.w.lb_healthy_panic");
}

#[test]
fn flat_histograms_carry_buckets_and_the_last_flush_interval() {
    let reg = Registry::new(1);
    let h = HttpStats::new(&reg, "http.in");
    let t = sets::http::Histogram::DownstreamRqTime;
    let line = |name: &str| histogram_line(&reg, name);
    assert_eq!(
        line("http.in.downstream_rq_time "),
        "http.in.downstream_rq_time 0"
    );
    h.record_us(0, t, 300);
    h.record_us(0, t, 7_000);
    let zeros = |n: usize| vec!["0"; n].join(" ");
    // count, sum (ms), 20 buckets; no interval before a flush.
    let cumulative = format!("2 7.3 1 0 0 1 {}", zeros(16));
    assert_eq!(
        line("http.in.downstream_rq_time "),
        format!("http.in.downstream_rq_time {cumulative}")
    );
    reg.flush_histograms();
    h.record_us(0, t, 1_000);
    let cumulative = format!("3 8.3 1 1 0 1 {}", zeros(16));
    // The interval is what the last complete one saw (both first samples).
    assert_eq!(
        line("http.in.downstream_rq_time "),
        format!(
            "http.in.downstream_rq_time {cumulative} 1 0 0 1 {}",
            zeros(16)
        )
    );
    reg.flush_histograms();
    assert!(line("http.in.downstream_rq_time ").ends_with(&format!(" 0 1 0 0 {}", zeros(16))));
    reg.flush_histograms();
    // An interval without samples is left out.
    assert_eq!(
        line("http.in.downstream_rq_time "),
        format!("http.in.downstream_rq_time {cumulative}")
    );
}

#[test]
fn idle_flushes_skip_histograms_and_miss_no_later_sample() {
    let reg = Registry::new(3);
    let c = ClusterStats::new(&reg, "cluster.idle");
    let connect = sets::cluster::Histogram::UpstreamCxConnectMs;
    let line = |name: &str| histogram_line(&reg, name);
    reg.flush_histograms();
    reg.flush_histograms();
    // The second histogram of the scope, on the last shard: its count is the slot the idle
    // check reads.
    c.record_us(2, connect, 2_000);
    reg.flush_histograms();
    let zeros = |n: usize| vec!["0"; n].join(" ");
    let buckets = format!("0 0 1 {}", zeros(17));
    assert_eq!(
        line("cluster.idle.upstream_cx_connect_ms "),
        format!("cluster.idle.upstream_cx_connect_ms 1 2 {buckets} {buckets}")
    );
    assert_eq!(
        line("cluster.idle.upstream_rq_time "),
        "cluster.idle.upstream_rq_time 0"
    );
}
