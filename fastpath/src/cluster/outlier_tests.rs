//! Outlier detection tests on a mock clock: consecutive-5xx ejection, the growing ejection
//! time, max_ejection_percent, enforcement, success rate.
use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::stats::Registry;

fn cfg(json: serde_json::Value) -> OutlierDetection {
    serde_json::from_value(json).unwrap()
}

fn hosts(n: usize) -> Vec<Host> {
    (0..n)
        .map(|i| Host {
            addr: SocketAddr::from(([127, 0, 0, 1], 1000 + i as u16)),
            weight: 1,
            healthy: true,
            priority: 0,
            counters: Arc::new(HostCounters::new()),
        })
        .collect()
}

fn detector(json: serde_json::Value) -> (Detector, Registry) {
    let reg = Registry::new(1);
    let stats = OutlierStats::new(&reg, "cluster.c.outlier_detection");
    (Detector::new(cfg(json), stats), reg)
}

fn stat(reg: &Registry, kind: &str, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&reg.export()).unwrap();
    v[kind][format!("cluster.c.outlier_detection.{name}")]
        .as_u64()
        .unwrap()
}

/// Sends `n` results; returns the ejection the last one detected.
fn send(d: &Detector, h: &HostCounters, outcome: Outcome, n: u32) -> Option<Ejection> {
    (0..n).map(|_| d.record(h, outcome)).last().flatten()
}

#[test]
fn defaults_are_envoys() {
    let c = cfg(serde_json::json!({}));
    assert_eq!(c.consecutive_5xx, 5);
    assert_eq!(c.interval_ms, 10_000);
    assert_eq!(c.base_ejection_time_ms, 30_000);
    assert_eq!(c.max_ejection_time_ms, 300_000);
    assert_eq!(c.max_ejection_percent, 10);
    assert_eq!(c.enforcing_consecutive_5xx, 100);
    assert_eq!(c.enforcing_consecutive_gateway_failure, 0);
    assert_eq!(c.success_rate_stdev_factor, 1900);
}

#[test]
fn fifth_consecutive_5xx_is_detected_and_success_resets() {
    let (d, _reg) = detector(serde_json::json!({}));
    let h = HostCounters::new();
    assert_eq!(send(&d, &h, Outcome::Status(500), 4), None);
    assert_eq!(d.record(&h, Outcome::Status(200)), None);
    assert_eq!(send(&d, &h, Outcome::Status(500), 4), None);
    assert_eq!(
        d.record(&h, Outcome::Status(500)),
        Some(Ejection::Consecutive5xx)
    );
    // Without the split, connect failures count as 503s (gateway errors too).
    let h = HostCounters::new();
    assert_eq!(
        send(&d, &h, Outcome::LocalFailure, 5),
        Some(Ejection::Consecutive5xx)
    );
}

#[test]
fn gateway_failures_are_detected_but_not_enforced_by_default() {
    let (d, reg) = detector(serde_json::json!({
        "consecutive_5xx": 100, "consecutive_gateway_failure": 3, "max_ejection_percent": 100
    }));
    let hs = hosts(2);
    let h = &hs[0].counters;
    let kind = send(&d, h, Outcome::Status(502), 3).unwrap();
    assert_eq!(kind, Ejection::ConsecutiveGatewayFailure);
    assert!(!d.eject(h, kind, 2, Instant::now()));
    assert!(!h.ejected.load(Relaxed));
    assert_eq!(
        stat(
            &reg,
            "counters",
            "ejections_detected_consecutive_gateway_failure"
        ),
        1
    );
    assert_eq!(
        stat(
            &reg,
            "counters",
            "ejections_enforced_consecutive_gateway_failure"
        ),
        0
    );
    // A non-gateway 5xx breaks the gateway run.
    let h = &hs[1].counters;
    send(&d, h, Outcome::Status(502), 2);
    d.record(h, Outcome::Status(500));
    assert_eq!(send(&d, h, Outcome::Status(502), 2), None);
}

#[test]
fn split_mode_counts_local_origin_failures_apart() {
    let (d, _reg) = detector(serde_json::json!({
        "split_external_local_origin_errors": true, "consecutive_local_origin_failure": 2
    }));
    let h = HostCounters::new();
    assert_eq!(d.record(&h, Outcome::LocalFailure), None);
    assert_eq!(
        d.record(&h, Outcome::LocalFailure),
        Some(Ejection::ConsecutiveLocalOriginFailure)
    );
    // Local failures no longer count as 5xx.
    assert_eq!(HostCounters::get(&h.outlier.total), 0);
}

#[test]
fn one_host_is_ejectable_even_below_the_percentage() {
    // Default 10% of 3 hosts is 0.3 hosts: Envoy still ejects the first one.
    let (d, reg) = detector(serde_json::json!({}));
    let hs = hosts(3);
    let t0 = Instant::now();
    assert!(d.eject(&hs[0].counters, Ejection::Consecutive5xx, 3, t0));
    assert!(!d.eject(&hs[1].counters, Ejection::Consecutive5xx, 3, t0));
    assert_eq!(stat(&reg, "counters", "ejections_overflow"), 1);
    assert_eq!(d.active(), 1);
}

#[test]
fn ejection_time_grows_and_hosts_return_on_the_interval() {
    let (d, reg) = detector(serde_json::json!({
        "interval_ms": 1000, "base_ejection_time_ms": 2000, "max_ejection_time_ms": 5000,
        "max_ejection_percent": 50
    }));
    let hs = hosts(2);
    let h = &hs[0].counters;
    let t0 = Instant::now();
    assert!(!d.tick(&hs, t0)); // arms the timer
    assert!(d.eject(h, Ejection::Consecutive5xx, 2, t0));
    assert_eq!(stat(&reg, "gauges", "ejections_active"), 1);
    assert_eq!(
        stat(&reg, "counters", "ejections_enforced_consecutive_5xx"),
        1
    );
    // 50% are ejected already, not below max_ejection_percent: overflow.
    assert!(!d.eject(&hs[1].counters, Ejection::Consecutive5xx, 2, t0));
    assert_eq!(stat(&reg, "counters", "ejections_overflow"), 1);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert!(!d.tick(&hs, at(1000)));
    assert!(h.ejected.load(Relaxed));
    assert!(d.tick(&hs, at(2000)), "returns after base × 1");
    assert!(!h.ejected.load(Relaxed));
    assert_eq!(stat(&reg, "gauges", "ejections_active"), 0);
    // Ejected again right away: 2 × base = 4 s.
    assert!(d.eject(h, Ejection::Consecutive5xx, 2, at(2000)));
    assert!(!d.tick(&hs, at(5000)));
    assert!(d.tick(&hs, at(6000)));
    // Third time: 3 × 2 s = 6 s, capped at 5 s.
    assert!(d.eject(h, Ejection::Consecutive5xx, 2, at(6000)));
    assert!(!d.tick(&hs, at(10_000)));
    assert!(d.tick(&hs, at(11_000)));
    assert_eq!(stat(&reg, "counters", "ejections_enforced_total"), 3);
}

#[test]
fn success_rate_ejects_the_outlier() {
    let (d, reg) = detector(serde_json::json!({
        "interval_ms": 1000, "success_rate_minimum_hosts": 5, "success_rate_request_volume": 10,
        "max_ejection_percent": 100, "consecutive_5xx": 1000
    }));
    let hs = hosts(6);
    let t0 = Instant::now();
    d.tick(&hs, t0);
    for (i, h) in hs.iter().enumerate() {
        for k in 0..100 {
            let fail = i == 5 && k % 2 == 0;
            d.record(&h.counters, Outcome::Status(if fail { 503 } else { 200 }));
        }
    }
    assert!(d.tick(&hs, t0 + Duration::from_millis(1000)));
    let ejected: Vec<bool> = hs
        .iter()
        .map(|h| h.counters.ejected.load(Relaxed))
        .collect();
    assert_eq!(ejected, [false, false, false, false, false, true]);
    assert_eq!(stat(&reg, "counters", "ejections_enforced_success_rate"), 1);
    // The window was reset.
    assert_eq!(HostCounters::get(&hs[0].counters.outlier.total), 0);
}

#[test]
fn success_rate_needs_enough_hosts_with_volume() {
    let (d, _reg) = detector(serde_json::json!({
        "interval_ms": 1000, "success_rate_request_volume": 10, "max_ejection_percent": 100,
        "consecutive_5xx": 1000
    }));
    let hs = hosts(4); // fewer than success_rate_minimum_hosts (5)
    let t0 = Instant::now();
    d.tick(&hs, t0);
    for h in &hs {
        send(&d, &h.counters, Outcome::Status(503), 50);
    }
    send(&d, &hs[0].counters, Outcome::Status(200), 50);
    assert!(!d.tick(&hs, t0 + Duration::from_secs(1)));
}

#[test]
fn threshold_is_mean_minus_factor_stdev() {
    // Rates 100, 100, 100, 100, 50: mean 90, population stdev 20.
    let t = success_rate_threshold(&[100.0, 100.0, 100.0, 100.0, 50.0], 1900);
    assert!((t - (90.0 - 1.9 * 20.0)).abs() < 1e-9, "{t}");
}
