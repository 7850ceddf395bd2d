//! Tests of the router's public API over route configs written as snapshot JSON.
use std::borrow::Cow;

use super::*;

const CLUSTERS: [&str; 3] = ["web", "api", "canary"];

fn cluster_index(name: &str) -> Option<usize> {
    CLUSTERS.iter().position(|c| *c == name)
}

fn table(json: &str) -> RouteTable {
    let cfg: snapshot::RouteConfig = serde_json::from_str(json).expect("valid route config JSON");
    RouteTable::compile(&cfg, &cluster_index).expect("route config compiles")
}

fn compile_err(json: &str) -> String {
    let cfg: snapshot::RouteConfig = serde_json::from_str(json).expect("valid route config JSON");
    match RouteTable::compile(&cfg, &cluster_index) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn req<'a>(
    authority: &'a str,
    path: &'a str,
    headers: &'a [httparse::Header<'a>],
) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path,
        authority,
        scheme: "http",
        headers,
    }
}

fn routed(t: &RouteTable, authority: &str, path: &str) -> Option<String> {
    t.select(&req(authority, path, &[]))
        .map(|s| s.route_name().to_string())
}

const BASIC: &str = r#"{
  "name": "local",
  "virtual_hosts": [
    {"name": "api", "domains": ["api.example.com"], "routes": [
      {"name": "users", "match": {"path": {"prefix": "/users"}},
       "action": {"route": {"target": {"cluster": "api"}, "prefix_rewrite": "/v2/users"}}},
      {"name": "health", "match": {"path": {"path": "/health"}},
       "action": {"direct_response": {"status": 200, "body": "ok"}}}
    ]},
    {"name": "any", "domains": ["*"], "routes": [
      {"name": "old", "match": {"path": {"prefix": "/old/"}},
       "action": {"redirect": {"path_redirect": "/new/", "response_code": 302}}},
      {"name": "canary", "match": {"path": {"prefix": "/"},
         "headers": [{"name": "x-canary", "rule": {"present": true}}]},
       "action": {"route": {"target": {"cluster": "canary"}}}},
      {"name": "split", "match": {"path": {"prefix": "/"}},
       "action": {"route": {"target": {"weighted_clusters": [
          {"name": "web", "weight": 90}, {"name": "canary", "weight": 10}]}}}}
    ]}
  ]
}"#;

#[test]
fn first_matching_route_of_the_selected_virtual_host_wins() {
    let t = table(BASIC);
    assert_eq!(
        routed(&t, "api.example.com", "/users/7").as_deref(),
        Some("users")
    );
    assert_eq!(
        routed(&t, "API.example.com", "/health?x").as_deref(),
        Some("health")
    );
    // With a port the host is another one (Envoy does not strip it unless told to).
    assert_eq!(
        routed(&t, "api.example.com:443", "/health").as_deref(),
        Some("split")
    );
    assert_eq!(routed(&t, "api.example.com", "/other"), None);
    assert_eq!(
        routed(&t, "www.example.com", "/users").as_deref(),
        Some("split")
    );
    let canary = [httparse::Header {
        name: "X-Canary",
        value: b"1",
    }];
    let s = t.select(&req("x", "/", &canary)).unwrap();
    assert_eq!(s.route_name(), "canary");
    assert_eq!(s.virtual_host_name(), "any");
}

#[test]
fn actions_are_exposed() {
    let t = table(BASIC);
    let r = req("api.example.com", "/users/7?full=1", &[]);
    let Action::Forward(f) = t.select(&r).unwrap().action(&r) else {
        panic!("expected a forward action");
    };
    assert_eq!(f.pick_cluster(12345), (1, 0));
    assert_eq!(
        f.rewrite_path(r.path).as_deref(),
        Some("/v2/users/7?full=1")
    );
    assert_eq!(f.timeout(), Some(std::time::Duration::from_secs(15)));

    let r = req("api.example.com", "/health", &[]);
    match t.select(&r).unwrap().action(&r) {
        Action::Direct { status, body } => assert_eq!((status, body), (200, &b"ok"[..])),
        other => panic!("unexpected {other:?}"),
    }

    let r = req("shop.example.com:8080", "/old/a?b=1", &[]);
    match t.select(&r).unwrap().action(&r) {
        Action::Redirect { status, location } => {
            assert_eq!(status, 302);
            assert_eq!(location, "http://shop.example.com:8080/new/?b=1");
        }
        other => panic!("unexpected {other:?}"),
    }

    let r = req("x", "/", &[]);
    let Action::Forward(f) = t.select(&r).unwrap().action(&r) else {
        panic!("expected a forward action");
    };
    let mut counts = [0u32; 3];
    for rand in 0..1000u64 {
        counts[f.pick_cluster(rand).0] += 1;
    }
    assert_eq!(counts, [900, 0, 100]);
}

#[test]
fn no_virtual_host_means_no_route() {
    let t = table(
        r#"{"virtual_hosts": [{"name": "a", "domains": ["a.com"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 204}}}]}]}"#,
    );
    assert_eq!(routed(&t, "b.com", "/"), None);
    // The port is part of the host: `a.com:80` is not `a.com` (Envoy without port stripping).
    assert_eq!(routed(&t, "a.com:80", "/"), None);
    let r = req("a.com", "/", &[]);
    let s = t.select(&r).unwrap();
    assert_eq!(s.route_name(), "");
    assert!(matches!(
        s.action(&r),
        Action::Direct {
            status: 204,
            body: b""
        }
    ));
}

const MUTATIONS: &str = r#"{
  "virtual_hosts": [{"name": "v", "domains": ["*"],
    "headers": {
      "request_headers_to_add": [{"key": "x-level", "value": "vhost", "append_action": "overwrite_if_exists_or_add"}],
      "response_headers_to_remove": ["server"]
    },
    "routes": [
      {"name": "plain", "match": {"path": {"prefix": "/plain"}},
       "action": {"route": {"target": {"cluster": "web"}}}},
      {"name": "split", "match": {"path": {"prefix": "/"}},
       "headers": {"request_headers_to_add": [
          {"key": "x-level", "value": "route", "append_action": "overwrite_if_exists_or_add"},
          {"key": "x-route", "value": "1"}]},
       "action": {"route": {"target": {"weighted_clusters": [
          {"name": "web", "weight": 1, "headers": {
             "request_headers_to_add": [{"key": "x-level", "value": "wc", "append_action": "overwrite_if_exists_or_add"},
                                        {"key": "x-wc", "value": "web"}],
             "response_headers_to_add": [{"key": "x-served-by", "value": "web"}]}},
          {"name": "api", "weight": 1}]}}}}
    ]}],
  "headers": {"request_headers_to_add": [{"key": "x-level", "value": "config", "append_action": "add_if_absent"}],
              "response_headers_to_add": [{"key": "x-config", "value": "c"}]}
}"#;

fn apply_request(
    s: &Selection<'_>,
    choice: usize,
    input: &[(&'static str, &'static str)],
) -> Vec<String> {
    let mut h: HeaderList<'_> = input
        .iter()
        .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(v.as_bytes())))
        .collect();
    s.mutate_request_headers(choice, &mut h);
    h.iter()
        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
        .collect()
}

#[test]
fn mutations_apply_most_specific_level_first() {
    let t = table(MUTATIONS);
    let s = t.select(&req("h", "/x", &[])).unwrap();
    assert_eq!(s.route_name(), "split");
    // Weighted cluster, then route, then vhost overwrite x-level; the route config's
    // add_if_absent then sees it present. So the vhost (least specific overwrite) wins.
    assert_eq!(
        apply_request(&s, 0, &[("X-Level", "client")]),
        ["x-wc: web", "x-route: 1", "x-level: vhost"]
    );
    assert_eq!(apply_request(&s, 1, &[]), ["x-route: 1", "x-level: vhost"]);

    let mut resp: HeaderList<'_> = vec![(Cow::Borrowed("Server"), Cow::Borrowed(&b"up"[..]))];
    s.mutate_response_headers(0, &mut resp);
    let names: Vec<&str> = resp.iter().map(|(n, _)| n.as_ref()).collect();
    assert_eq!(names, ["x-served-by", "x-config"]);
}

#[test]
fn has_mutations_reflects_every_level() {
    let t = table(MUTATIONS);
    let split = t.select(&req("h", "/x", &[])).unwrap();
    assert!(split.has_request_mutations(0));
    assert!(split.has_response_mutations(0));
    let plain = t.select(&req("h", "/plain", &[])).unwrap();
    assert!(plain.has_request_mutations(0));

    let bare = table(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"route": {"target": {"weighted_clusters": [
          {"name": "web", "weight": 1, "headers": {"response_headers_to_add": [{"key": "x-a", "value": "1"}]}},
          {"name": "api", "weight": 1}]}}}}]}]}"#,
    );
    let s = bare.select(&req("h", "/", &[])).unwrap();
    assert!(!s.has_request_mutations(0));
    assert!(s.has_response_mutations(0));
    assert!(!s.has_response_mutations(1));
    assert!(!s.has_response_mutations(7));
    let mut h: HeaderList<'_> = Vec::new();
    s.mutate_request_headers(0, &mut h);
    s.mutate_response_headers(1, &mut h);
    assert!(h.is_empty());
}

#[test]
fn compile_errors_name_the_route_field() {
    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 200}}},
        {"match": {"path": {"prefix": "/"}}, "action": {"route": {"target": {"cluster": "nope"}}}}]}]}"#,
    );
    assert_eq!(
        err,
        "virtual_hosts[0].routes[1].route.cluster: unknown cluster \"nope\""
    );

    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"safe_regex": "(["}}, "action": {"direct_response": {"status": 200}}}]}]}"#,
    );
    assert!(
        err.starts_with("virtual_hosts[0].routes[0].match.safe_regex: invalid regex"),
        "{err}"
    );

    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}, "headers": [{"name": "x", "rule": {"string": {"pattern": {"regex": "+"}}}}]},
         "action": {"direct_response": {"status": 200}}}]}]}"#,
    );
    assert!(
        err.starts_with("virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex:"),
        "{err}"
    );

    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"route": {"target": {"weighted_clusters": [
          {"name": "web", "weight": 0}]}}}}]}]}"#,
    );
    assert!(
        err.starts_with("virtual_hosts[0].routes[0].route.weighted_clusters:"),
        "{err}"
    );

    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 99}}}]}]}"#,
    );
    assert!(
        err.starts_with("virtual_hosts[0].routes[0].direct_response.status:"),
        "{err}"
    );

    // Envoy accepts virtual hosts sharing a name.
    table(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["a"]}, {"name": "v", "domains": ["b"]}]}"#,
    );

    let err = compile_err(
        r#"{"virtual_hosts": [{"name": "v", "domains": ["a"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "headers": {"request_headers_to_add": [{"key": ":path", "value": "/"}]},
         "action": {"direct_response": {"status": 200}}}]}]}"#,
    );
    assert!(
        err.starts_with("virtual_hosts[0].routes[0].request_headers_to_add[0].header.key:"),
        "{err}"
    );

    let err =
        compile_err(r#"{"virtual_hosts": [], "headers": {"response_headers_to_remove": [""]}}"#);
    assert!(err.starts_with("response_headers_to_remove[0]:"), "{err}");
}

/// Route paths are built in one reused buffer: an error deep in a later virtual host or
/// route names exactly its own path, nothing left over from the levels compiled before it.
#[test]
fn errors_in_later_virtual_hosts_and_routes_name_their_own_path() {
    let good = r#"{"name": "r", "match": {"path": {"prefix": "/"}},
        "action": {"route": {"target": {"cluster": "web"},
                             "retry_policy": {"retry_on": ["5xx"]}}}}"#;
    let config = |bad_vh: &str, bad_route: &str| {
        format!(
            r#"{{"virtual_hosts": [
            {{"name": "a", "domains": ["a"], "routes": [{good}, {good}]}},
            {{"name": "b", "domains": ["b"], "routes": [{good}]}},
            {{"name": "c", "domains": ["c"], {bad_vh} "routes": [{good}, {good}, {bad_route}]}}]}}"#
        )
    };
    let route =
        |action: &str| format!(r#"{{"match": {{"path": {{"prefix": "/"}}}}, "action": {action}}}"#);
    for (bad_vh, bad_route, want) in [
        (
            "",
            route(r#"{"route": {"target": {"cluster": "nope"}}}"#),
            "virtual_hosts[2].routes[2].route.cluster: unknown cluster \"nope\"",
        ),
        (
            "",
            route(r#"{"route": {"target": {"cluster": "web"}, "retry_policy": {"retry_on": ["x"]}}}"#),
            "virtual_hosts[2].routes[2].route.retry_policy.retry_on[0]: \"x\" is not supported",
        ),
        (
            "",
            route(r#"{"redirect": {"response_code": 200}}"#),
            "virtual_hosts[2].routes[2].redirect.response_code: 200 is not a redirect code",
        ),
        (
            "",
            r#"{"match": {"path": {"safe_regex": "(["}}, "action": {"direct_response": {"status": 200}}}"#
                .to_string(),
            "virtual_hosts[2].routes[2].match.safe_regex: invalid regex",
        ),
        (
            "",
            r#"{"match": {"path": {"prefix": "/"}}, "headers": {"response_headers_to_remove": ["a b"]},
                "action": {"direct_response": {"status": 200}}}"#
                .to_string(),
            "virtual_hosts[2].routes[2].response_headers_to_remove[0]: ",
        ),
        (
            r#""headers": {"request_headers_to_add": [{"key": "", "value": "v"}]},"#,
            route(r#"{"direct_response": {"status": 200}}"#),
            "virtual_hosts[2].request_headers_to_add[0].header.key: ",
        ),
    ] {
        let err = compile_err(&config(bad_vh, &bad_route));
        assert!(err.starts_with(want), "{err}");
    }
    table(&config(
        "",
        &route(r#"{"direct_response": {"status": 200}}"#),
    ));
}

#[test]
fn an_empty_config_routes_nothing() {
    let t = table("{}");
    assert_eq!(routed(&t, "a", "/"), None);
}

#[test]
fn connect_matcher_matches_connect_requests_only() {
    let t = table(
        r#"{"name": "c", "virtual_hosts": [{"name": "any", "domains": ["*"], "routes": [
          {"name": "tunnel", "match": {"path": {"connect_matcher": {}}},
           "action": {"route": {"target": {"cluster": "web"}, "upgrade_configs": [
             {"upgrade_type": "connect", "connect_config": {}}]}}},
          {"name": "all", "match": {"path": {"prefix": ""}},
           "action": {"route": {"target": {"cluster": "api"}}}}
        ]}]}"#,
    );
    let connect = RequestView {
        method: "CONNECT",
        path: "",
        authority: "db.internal:5432",
        scheme: "http",
        headers: &[],
    };
    let sel = t.select(&connect).expect("the connect_matcher route");
    assert_eq!(sel.route_name(), "tunnel");
    let Action::Forward(route) = sel.action(&connect) else {
        panic!("a route action");
    };
    assert!(route.connect_terminate());
    assert!(route.upgrade_enabled("connect", false));
    // A GET never matches `connect_matcher`; an empty prefix never matches a CONNECT.
    assert_eq!(routed(&t, "h", "/").as_deref(), Some("all"));
    let t = table(
        r#"{"name": "c", "virtual_hosts": [{"name": "any", "domains": ["*"], "routes": [
          {"name": "all", "match": {"path": {"prefix": ""}},
           "action": {"route": {"target": {"cluster": "api"}}}}]}]}"#,
    );
    assert!(t.select(&connect).is_none());
}
