//! Thread CPU of `Engine::apply_listeners` for a route change (the catch-all virtual host
//! switches cluster), warm (back to back) and cold (after 20 ms spent touching 32 MiB of
//! other memory, as in the real process between pushes): one route, 1,000 service virtual
//! hosts, and one route with 10,000 clusters applied. Prints p50/p99 (`cargo bench --bench
//! apply_listeners`; not a criterion bench, not in the regression guard).
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use meshcore_fastpath::engine::Engine;
use serde_json::{Value, json};

/// Istio's outbound virtual host for service `i` (as benchmarks/xds `--vhosts`).
fn service(i: usize) -> Value {
    let retry = json!({"retry_on": ["connect-failure", "refused-stream", "unavailable",
        "cancelled", "retriable-status-codes"], "num_retries": 2});
    json!({
        "name": format!("svc{i}"),
        "domains": [format!("svc{i}.ns.svc.cluster.local"), format!("svc{i}.ns"), format!("svc{i}")],
        "routes": [{"name": "default", "match": {"path": {"prefix": "/"}},
            "action": {"route": {"target": {"cluster": if i % 2 == 1 { "a" } else { "b" }},
                "retry_policy": retry}}}],
    })
}

/// The listeners-only snapshot: `vhosts` service virtual hosts, then `*` to `cluster`.
fn listeners(vhosts: usize, cluster: &str) -> Vec<u8> {
    let mut every: Vec<Value> = (0..vhosts).rev().map(service).collect();
    every.push(
        json!({"name": "all", "domains": ["*"], "routes": [{"match": {"path": {"prefix": "/"}},
        "action": {"route": {"target": {"cluster": cluster}}}}]}),
    );
    let hcm =
        json!({"stat_prefix": "ingress", "route_config": {"name": "r", "virtual_hosts": every}});
    let snap = json!({"listeners": [{"name": "l", "address": "127.0.0.1", "port": 0,
        "filter_chains": [{"filter": {"http_connection_manager": hcm}}]}], "clusters": []});
    serde_json::to_vec(&snap).unwrap()
}

fn clusters(n: usize) -> Vec<u8> {
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let name = match i {
                0 => "a".to_string(),
                1 => "b".to_string(),
                _ => format!("c{i}"),
            };
            json!({"name": name, "endpoints": [{"address": "127.0.0.1", "port": 1000}]})
        })
        .collect();
    serde_json::to_vec(&json!({"clusters": list})).unwrap()
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[((xs.len() as f64 * p) as usize).min(xs.len() - 1)]
}

fn run(label: &str, vhosts: usize, n_clusters: usize, rounds: usize) {
    let engine = Engine::new(1).unwrap();
    engine.apply(&clusters(n_clusters)).unwrap();
    let snaps = [listeners(vhosts, "a"), listeners(vhosts, "b")];
    let mut n = 0;
    let mut once = || {
        n += 1;
        let t = ThreadTime::now();
        engine.apply_listeners(&snaps[n % 2]).unwrap();
        t.elapsed().as_secs_f64() * 1e6
    };
    for _ in 0..20 {
        once();
    }
    let mut warm: Vec<f64> = (0..rounds).map(|_| once()).collect();
    let mut junk = vec![0u8; 32 << 20];
    let mut cold: Vec<f64> = (0..rounds / 2)
        .map(|_| {
            let end = Instant::now() + Duration::from_millis(20);
            let (mut i, len) = (0, junk.len());
            while Instant::now() < end {
                junk[i % len] = junk[i % len].wrapping_add(1);
                i += 4099;
            }
            once()
        })
        .collect();
    println!(
        "{label:>28}: {} bytes; warm p50 {:.0} p99 {:.0} us; cold p50 {:.0} p99 {:.0} us",
        snaps[0].len(),
        pct(&mut warm, 0.5),
        pct(&mut warm, 0.99),
        pct(&mut cold, 0.5),
        pct(&mut cold, 0.99),
    );
    engine.stop();
}

fn main() {
    // `cargo bench --bench apply_listeners -- vhosts` runs only the cases naming it.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for (label, vhosts, clusters, rounds) in [
        ("one route", 0, 2, 400),
        ("1,000 virtual hosts", 1000, 2, 60),
        ("one route, 10,000 clusters", 0, 10_000, 400),
    ] {
        if only.is_empty() || only.iter().any(|o| label.contains(o.as_str())) {
            run(label, vhosts, clusters, rounds);
        }
    }
}
