//! `update_endpoints` finds its cluster through the index `apply` keeps: it follows clusters
//! added, replaced (changed settings) and removed by a re-apply.
mod support;

use meshcore_fastpath::engine::EngineError;
use serde_json::{Value, json};
use support::{cluster, forward, one_listener, start_engine};

fn snapshot(clusters: Value) -> Vec<u8> {
    let routes = json!([forward("/", "a", json!({}))]);
    serde_json::to_vec(&one_listener(routes, json!({}), clusters, json!({}))).unwrap()
}

fn hosts(engine: &meshcore_fastpath::engine::Engine, name: &str) -> Vec<u64> {
    let all: Value = serde_json::from_slice(&engine.clusters()).unwrap();
    let c = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let ports = c["hosts"].as_array().unwrap().iter();
    ports.map(|h| h["port"].as_u64().unwrap()).collect()
}

#[test]
fn update_endpoints_follows_reapplied_clusters() {
    let first = json!([
        cluster("a", 1001, json!({})),
        cluster("gone", 1002, json!({}))
    ]);
    let snap: Value = serde_json::from_slice(&snapshot(first)).unwrap();
    let (engine, _port) = start_engine(&snap);
    engine
        .update_endpoints("gone", br#"[{"address": "127.0.0.1", "port": 2002}]"#)
        .unwrap();
    assert_eq!(hosts(&engine, "gone"), vec![2002]);

    // `a` changes settings (a new state), `gone` leaves, `new` arrives.
    let second = json!([
        cluster("a", 1001, json!({"connect_timeout_ms": 777})),
        cluster("new", 1003, json!({})),
    ]);
    engine.apply(&snapshot(second)).unwrap();
    assert!(matches!(
        engine.update_endpoints("gone", b"[]"),
        Err(EngineError::Key(_))
    ));
    for (name, port) in [("a", 3001), ("new", 3003)] {
        let eps = format!(r#"[{{"address": "127.0.0.1", "port": {port}}}]"#);
        engine.update_endpoints(name, eps.as_bytes()).unwrap();
        assert_eq!(hosts(&engine, name), vec![port]);
    }
    engine.stop();
}
