//! Explanations of requests against a small snapshot, through the public entry point.
use serde_json::{Value, json};

use super::{ExplainError, explain};

fn hcm(prefix: &str, vhosts: Value) -> Value {
    json!({"http_connection_manager": {"stat_prefix": prefix, "route_config": {"virtual_hosts": vhosts}}})
}

fn snapshot() -> Vec<u8> {
    let api = json!([
        {"name": "api", "domains": ["api.example.com", "*.api.example.com"], "routes": [
            {"name": "canary", "match": {"path": {"prefix": "/v1"},
               "headers": [{"name": "x-canary", "rule": {"string": {"pattern": {"exact": "1"}}}}]},
             "action": {"route": {"target": {"cluster": "canary"}}}},
            {"name": "v1", "match": {"path": {"prefix": "/v1"}},
             "action": {"route": {"target": {"weighted_clusters": [
                 {"name": "stable", "weight": 3}, {"name": "canary", "weight": 1}]},
                 "prefix_rewrite": "/v2", "timeout_ms": 2000}}},
            {"name": "old", "match": {"path": {"path": "/old"}},
             "action": {"redirect": {"path_redirect": "/new", "response_code": 302}}}
        ]}
    ]);
    let secure = json!([
        {"name": "secure", "domains": ["*"], "routes": [
            {"name": "all", "match": {"path": {"prefix": "/"}},
             "action": {"route": {"target": {"cluster": "stable"}}}}
        ]}
    ]);
    let snap = json!({
        "clusters": [{"name": "stable"}, {"name": "canary"}],
        "listeners": [{
            "name": "ingress", "address": "127.0.0.1", "port": 10000,
            "tls_inspector": {},
            "filter_chains": [
                {"name": "by-sni", "filter_chain_match": {"server_names": ["secure.example.com"]},
                 "filter": hcm("secure", secure)},
                {"name": "plain", "filter_chain_match": {"transport_protocol": "raw_buffer"},
                 "filter": hcm("plain", api)}
            ]
        }]
    });
    serde_json::to_vec(&snap).unwrap()
}

fn run(req: Value) -> Value {
    let out = explain(&snapshot(), &serde_json::to_vec(&req).unwrap()).expect("explains");
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn near_miss_names_the_failing_header_and_the_weighted_choice_is_reported() {
    let out = run(
        json!({"method": "GET", "authority": "api.example.com", "path": "/v1/users?x=1",
                         "headers": [["x-canary", "0"]], "random": 3}),
    );
    assert_eq!(out["filter_chain"]["name"], "plain");
    assert_eq!(out["virtual_host"]["matched_domain"], "api.example.com");
    assert_eq!(out["virtual_host"]["match_kind"], "exact");
    let routes = out["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["near_miss"], true);
    assert_eq!(routes[0]["conditions"][1]["field"], "headers[0]");
    assert_eq!(routes[0]["conditions"][1]["matched"], false);
    assert_eq!(routes[0]["conditions"][1]["request_value"], json!(["0"]));
    assert_eq!(routes[1]["matched"], true);
    assert_eq!(out["routes_not_checked"], 1);
    let action = &out["action"];
    assert_eq!(action["weighted"], true);
    assert_eq!(action["clusters"][0]["probability"], 0.75);
    // rand % 4 == 3 falls in the second cluster's range [3, 4).
    assert_eq!(action["picked"]["cluster"], "canary");
    assert_eq!(action["upstream_path"], "/v2/users?x=1");
    assert_eq!(action["timeouts"]["route_ms"], 2000);
    assert_eq!(out["outcome"]["kind"], "forward");
}

#[test]
fn sni_picks_the_chain_and_wildcard_domains_are_named() {
    let out =
        run(json!({"method": "GET", "authority": "x", "path": "/", "sni": "Secure.Example.com"}));
    assert_eq!(out["filter_chain"]["name"], "by-sni");
    assert_eq!(
        out["filter_chain"]["match"]["server_names"],
        json!(["secure.example.com"])
    );
    assert_eq!(out["virtual_host"]["match_kind"], "catch-all");
    assert_eq!(out["action"]["picked"]["cluster"], "stable");
    // TLS without a matching chain: the plain chain wants raw_buffer, so none matches.
    let out = run(json!({"method": "GET", "authority": "x", "path": "/", "tls": true}));
    assert_eq!(out["outcome"]["kind"], "no_filter_chain");
    let out = run(json!({"method": "GET", "authority": "a.api.example.com", "path": "/old"}));
    assert_eq!(out["virtual_host"]["matched_domain"], "*.api.example.com");
    assert_eq!(out["outcome"]["kind"], "redirect");
    assert_eq!(out["action"]["location"], "http://a.api.example.com/new");
    let out = run(json!({"method": "GET", "authority": "api.example.com", "path": "/x"}));
    assert_eq!(out["outcome"]["kind"], "no_route");
    assert_eq!(out["outcome"]["status"], 404);
}

#[test]
fn errors_name_what_is_wrong() {
    let bad = |req: Value| match explain(&snapshot(), &serde_json::to_vec(&req).unwrap()) {
        Err(ExplainError::Request(m)) => m,
        other => panic!("expected a request error, got {other:?}"),
    };
    let m = bad(json!({"method": "GET", "authority": "a", "path": "nope"}));
    assert!(m.starts_with("request.path:"), "{m}");
    let m = bad(json!({"method": "GET", "authority": "a", "path": "/", "listener": "zz"}));
    assert!(m.contains("no listener named \"zz\""), "{m}");
    let m = bad(json!({"method": "GET", "authority": "a", "path": "/", "source": "1.2.3.4"}));
    assert!(m.starts_with("request.source:"), "{m}");
    let m = bad(json!({"method": "GET", "authority": "a", "path": "/", "bogus": 1}));
    assert!(m.contains("bogus"), "{m}");
    let mut snap: Value = serde_json::from_slice(&snapshot()).unwrap();
    snap["listeners"][0]["filter_chains"][1]["filter"]["http_connection_manager"]["route_config"]
        ["virtual_hosts"][0]["routes"][1]["action"]["route"]["target"]["weighted_clusters"][0]["name"] =
        json!("missing");
    let req = json!({"method": "GET", "authority": "a", "path": "/"});
    match explain(&serde_json::to_vec(&snap).unwrap(), &serde_json::to_vec(&req).unwrap()) {
        Err(ExplainError::Config(m)) => assert!(
            m.starts_with("listeners[0].filter_chains[1].filter.http_connection_manager.route_config.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[0].name: unknown cluster"),
            "{m}"
        ),
        other => panic!("expected a config error, got {other:?}"),
    }
}
