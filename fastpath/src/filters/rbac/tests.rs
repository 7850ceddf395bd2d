//! RBAC engine and filter tests: every permission and principal kind, and/or/not nesting,
//! ALLOW / DENY / LOG, shadow rules, stats names, per-route overrides, the network filter.
use std::net::SocketAddr;

use serde_json::{Value, json};

use super::*;
use crate::config::rbac::{NetworkRbac as NetworkConfig, RbacRules};
use crate::config::snapshot::{self, HttpFilterConfig};
use crate::conn_info::{PeerCert, TlsInfo};
use crate::filters::local_ratelimit::ConnBuckets;
use crate::filters::{FilterChain, FilterRequest};
use crate::stats::Registry;

fn conn(peer: &str, local: &str) -> ConnInfo {
    ConnInfo::plain(peer.parse().unwrap(), local.parse().unwrap())
}

fn plain() -> ConnInfo {
    conn("192.0.2.7:40000", "10.1.2.3:8080")
}

fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
    httparse::Header {
        name,
        value: value.as_bytes(),
    }
}

fn view<'a>(path: &'a str, headers: &'a [httparse::Header<'a>]) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path,
        authority: "example.com",
        scheme: "http",
        headers,
    }
}

fn rules(action: &str, policies: Value) -> RbacRules {
    serde_json::from_value(json!({"action": action, "policies": policies})).unwrap()
}

fn one(permission: Value, principal: Value) -> RbacRules {
    rules(
        "allow",
        json!([{"name": "p", "permissions": [permission], "principals": [principal]}]),
    )
}

/// A request seen by an engine: its connection, path, headers, metadata and XFF settings.
struct Req<'a> {
    conn: &'a ConnInfo,
    path: &'a str,
    headers: &'a [httparse::Header<'a>],
    metadata: &'a [Metadata],
    use_remote_address: bool,
    hops: u32,
}

impl<'a> Req<'a> {
    fn new(conn: &'a ConnInfo) -> Req<'a> {
        Req {
            conn,
            path: "/",
            headers: &[],
            metadata: &[],
            use_remote_address: false,
            hops: 0,
        }
    }

    fn allowed(&self, engine: &Engine) -> bool {
        let v = view(self.path, self.headers);
        let input = Input {
            conn: self.conn,
            http: Some(HttpInput::new(&v, self.use_remote_address, self.hops)),
            metadata: self.metadata,
        };
        engine.evaluate(&input).allowed
    }
}

fn engine(r: &RbacRules) -> Engine {
    Engine::compile(r, false, "rules").unwrap()
}

fn permission_matches(permission: Value, req: &Req<'_>) -> bool {
    req.allowed(&engine(&one(permission, json!("any"))))
}

fn principal_matches(principal: Value, req: &Req<'_>) -> bool {
    req.allowed(&engine(&one(json!("any"), principal)))
}

fn exact(s: &str) -> Value {
    json!({"pattern": {"exact": s}, "ignore_case": false})
}

#[test]
fn header_permission_uses_the_router_matcher() {
    let c = plain();
    let header = json!({"header": {"name": "x-role", "rule": {"string": exact("admin")}}});
    let mut req = Req::new(&c);
    assert!(!permission_matches(header.clone(), &req));
    let lines = [h("X-Role", "user"), h("x-role", "admin")];
    req.headers = &lines;
    assert!(permission_matches(header, &req));
    let path = json!({"header": {"name": ":path", "rule": {"string": exact("/a?b=1")}}});
    req.path = "/a?b=1";
    assert!(permission_matches(path, &req));
}

#[test]
fn url_path_ignores_the_query_and_honours_ignore_case() {
    let c = plain();
    let mut req = Req::new(&c);
    req.path = "/Admin/x?token=1#f";
    let prefix =
        |ci: bool| json!({"url_path": {"pattern": {"prefix": "/admin/"}, "ignore_case": ci}});
    assert!(!permission_matches(prefix(false), &req));
    assert!(permission_matches(prefix(true), &req));
    let whole = json!({"url_path": exact("/Admin/x")});
    assert!(permission_matches(whole, &req));
    let with_query = json!({"url_path": exact("/Admin/x?token=1")});
    assert!(!permission_matches(with_query, &req));
}

#[test]
fn destination_ip_port_and_range() {
    let c = plain();
    let req = Req::new(&c);
    let ip =
        |a: &str, len: u32| json!({"destination_ip": {"address_prefix": a, "prefix_len": len}});
    assert!(permission_matches(ip("10.1.0.0", 16), &req));
    assert!(permission_matches(ip("10.1.2.99", 24), &req));
    assert!(!permission_matches(ip("10.2.0.0", 16), &req));
    assert!(permission_matches(ip("0.0.0.0", 0), &req));
    assert!(!permission_matches(ip("::", 0), &req), "families differ");
    assert!(permission_matches(ip("10.1.2.3", 32), &req));
    assert!(permission_matches(json!({"destination_port": 8080}), &req));
    assert!(!permission_matches(json!({"destination_port": 8081}), &req));
    let range = |s: i32, e: i32| json!({"destination_port_range": {"start": s, "end": e}});
    assert!(permission_matches(range(8000, 8081), &req));
    assert!(
        !permission_matches(range(8000, 8080), &req),
        "end is exclusive"
    );
    assert!(permission_matches(range(8080, 8081), &req));
    // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6.
    let mapped = conn("[::ffff:192.0.2.7]:1", "[::ffff:10.1.2.3]:8080");
    assert!(permission_matches(ip("10.1.0.0", 16), &Req::new(&mapped)));
}

#[test]
fn requested_server_name_is_empty_without_tls() {
    let mut c = plain();
    let sni = |s: &str| json!({"requested_server_name": exact(s)});
    assert!(permission_matches(sni(""), &Req::new(&c)));
    c.tls = Some(Box::new(TlsInfo {
        sni: Some("api.example.com".into()),
        ..Default::default()
    }));
    assert!(permission_matches(sni("api.example.com"), &Req::new(&c)));
    assert!(!permission_matches(sni(""), &Req::new(&c)));
}

#[test]
fn direct_and_remote_ip_principals_follow_xff_settings() {
    let c = conn("127.0.0.1:5000", "127.0.0.1:80");
    let xff = [h("x-forwarded-for", "203.0.113.9, 198.51.100.4")];
    let cidr =
        |kind: &str, a: &str, len: u32| json!({kind: {"address_prefix": a, "prefix_len": len}});
    let mut req = Req::new(&c);
    req.headers = &xff;
    assert!(principal_matches(
        cidr("direct_remote_ip", "127.0.0.0", 8),
        &req
    ));
    assert!(!principal_matches(
        cidr("direct_remote_ip", "198.51.100.4", 32),
        &req
    ));
    // Without use_remote_address: the last XFF entry (hops 0), or hops entries before it.
    assert!(principal_matches(
        cidr("remote_ip", "198.51.100.4", 32),
        &req
    ));
    req.hops = 1;
    assert!(principal_matches(
        cidr("remote_ip", "203.0.113.9", 32),
        &req
    ));
    req.hops = 2;
    assert!(principal_matches(cidr("remote_ip", "127.0.0.1", 32), &req));
    // With use_remote_address and no trusted hops: the peer.
    req.use_remote_address = true;
    req.hops = 0;
    assert!(principal_matches(cidr("remote_ip", "127.0.0.1", 32), &req));
    req.hops = 1;
    assert!(principal_matches(
        cidr("remote_ip", "198.51.100.4", 32),
        &req
    ));
    // Without XFF the remote address is the peer.
    let none = Req::new(&c);
    assert!(principal_matches(cidr("remote_ip", "127.0.0.1", 32), &none));
}

fn tls(terminated: bool, cert: Option<PeerCert>) -> ConnInfo {
    let mut c = plain();
    c.tls = Some(Box::new(TlsInfo {
        terminated,
        peer_cert: cert,
        ..Default::default()
    }));
    c
}

#[test]
fn authenticated_matches_uri_san_then_dns_san_then_subject() {
    let any = json!({"authenticated": null});
    let named = |s: &str| json!({"authenticated": exact(s)});
    assert!(!principal_matches(any.clone(), &Req::new(&plain())));
    assert!(
        !principal_matches(any.clone(), &Req::new(&tls(false, None))),
        "passthrough"
    );
    assert!(principal_matches(any, &Req::new(&tls(true, None))));
    let cert = PeerCert {
        uri_sans: vec![
            "spiffe://cluster.local/ns/a/sa/x".into(),
            "spiffe://other/y".into(),
        ],
        dns_sans: vec!["web.example.com".into()],
        subject: "CN=web,O=example".into(),
        ..Default::default()
    };
    let c = tls(true, Some(cert));
    let req = Req::new(&c);
    assert!(principal_matches(named("spiffe://other/y"), &req));
    assert!(principal_matches(named("web.example.com"), &req));
    assert!(principal_matches(named("CN=web,O=example"), &req));
    assert!(!principal_matches(
        named("spiffe://cluster.local/ns/b/sa/x"),
        &req
    ));
    let prefix = json!({"authenticated": {"pattern": {"prefix": "spiffe://cluster.local/ns/a/"}, "ignore_case": false}});
    assert!(principal_matches(prefix, &req));
    // A terminated connection without a client certificate has an empty subject.
    assert!(principal_matches(named(""), &Req::new(&tls(true, None))));
}

#[test]
fn header_and_url_path_principals() {
    let c = plain();
    let lines = [h("x-user", "alice")];
    let mut req = Req::new(&c);
    req.headers = &lines;
    req.path = "/u/alice?x";
    let header = json!({"header": {"name": "x-user", "rule": {"string": exact("alice")}}});
    assert!(principal_matches(header, &req));
    assert!(principal_matches(
        json!({"url_path": exact("/u/alice")}),
        &req
    ));
    assert!(!principal_matches(
        json!({"url_path": exact("/u/bob")}),
        &req
    ));
}

#[test]
fn and_or_not_nest() {
    let c = plain();
    let lines = [h("x-a", "1")];
    let mut req = Req::new(&c);
    req.headers = &lines;
    let has = |n: &str| json!({"header": {"name": n, "rule": {"present": true}}});
    let port = json!({"destination_port": 8080});
    assert!(permission_matches(
        json!({"and_rules": [has("x-a"), port.clone()]}),
        &req
    ));
    assert!(!permission_matches(
        json!({"and_rules": [has("x-a"), has("x-b")]}),
        &req
    ));
    assert!(permission_matches(
        json!({"or_rules": [has("x-b"), port.clone()]}),
        &req
    ));
    assert!(!permission_matches(
        json!({"or_rules": [has("x-b"), has("x-c")]}),
        &req
    ));
    assert!(permission_matches(json!({"not_rule": has("x-b")}), &req));
    let nested = json!({"and_rules": [{"not_rule": {"or_rules": [has("x-b"), has("x-c")]}}, {"or_rules": [has("x-a")]}]});
    assert!(permission_matches(nested, &req));
    let ids =
        json!({"or_ids": [{"not_id": "any"}, {"and_ids": ["any", {"url_path": exact("/")}]}]});
    assert!(principal_matches(ids, &req));
    assert!(!principal_matches(
        json!({"not_id": {"and_ids": ["any"]}}),
        &req
    ));
}

fn md(namespace: &'static str, key: &str, value: Value) -> Metadata {
    Metadata {
        namespace,
        key: key.into(),
        value,
    }
}

#[test]
fn metadata_matchers_read_earlier_filters_metadata() {
    let c = plain();
    let jwt = "envoy.filters.http.jwt_authn";
    let payload = json!({"sub": "alice", "admin": true, "level": 3, "aud": ["a", "b"],
                         "org": {"team": "core"}, "none": null});
    let entries = [md(jwt, "payload", payload)];
    let mut req = Req::new(&c);
    req.metadata = &entries;
    let m = |path: &[&str], value: Value| json!({"metadata": {"filter": jwt, "path": path, "value": value}});
    let s = |v: &str| json!({"string_match": exact(v)});
    assert!(permission_matches(m(&["payload", "sub"], s("alice")), &req));
    assert!(!permission_matches(m(&["payload", "sub"], s("bob")), &req));
    assert!(permission_matches(
        m(&["payload", "org", "team"], s("core")),
        &req
    ));
    assert!(permission_matches(
        m(&["payload", "admin"], json!({"bool_match": true})),
        &req
    ));
    assert!(!permission_matches(
        m(&["payload", "admin"], json!({"bool_match": false})),
        &req
    ));
    assert!(permission_matches(
        m(&["payload", "level"], json!({"double_exact": 3.0})),
        &req
    ));
    let range = |s: f64, e: f64| json!({"double_range": {"start": s, "end": e}});
    assert!(permission_matches(
        m(&["payload", "level"], range(1.0, 3.5)),
        &req
    ));
    assert!(!permission_matches(
        m(&["payload", "level"], range(1.0, 3.0)),
        &req
    ));
    assert!(permission_matches(
        m(&["payload", "aud"], json!({"list_one_of": s("b")})),
        &req
    ));
    assert!(!permission_matches(
        m(&["payload", "aud"], json!({"list_one_of": s("c")})),
        &req
    ));
    assert!(permission_matches(
        m(&["payload", "none"], json!("null_match")),
        &req
    ));
    assert!(permission_matches(
        m(&["payload", "sub"], json!({"present_match": true})),
        &req
    ));
    assert!(!permission_matches(
        m(&["payload", "nope"], json!({"present_match": true})),
        &req
    ));
    // A string value is not an object: a longer path finds nothing.
    assert!(!permission_matches(
        m(&["payload", "sub", "x"], json!({"present_match": true})),
        &req
    ));
    let or = json!({"or_match": [s("bob"), s("alice")]});
    assert!(permission_matches(m(&["payload", "sub"], or), &req));
    // invert negates, including a missing value.
    let inverted = json!({"metadata": {"filter": jwt, "path": ["payload", "nope"],
        "value": s("x"), "invert": true}});
    assert!(permission_matches(inverted, &req));
    // Another namespace, or no metadata at all, has no value.
    assert!(!principal_matches(
        json!({"metadata": {"filter": "other", "path": ["payload"],
        "value": {"present_match": true}}}),
        &req
    ));
    assert!(!principal_matches(
        m(&["payload"], json!({"present_match": true})),
        &Req::new(&c)
    ));
    // The latest entry for a key wins.
    let twice = [md(jwt, "k", json!("old")), md(jwt, "k", json!("new"))];
    req.metadata = &twice;
    assert!(permission_matches(m(&["k"], s("new")), &req));
}

#[test]
fn allow_deny_and_log_actions_with_the_first_policy_by_name() {
    let c = plain();
    let lines = [h("x-a", "1")];
    let mut req = Req::new(&c);
    req.headers = &lines;
    let policies = json!([
        {"name": "z last", "permissions": ["any"], "principals": ["any"]},
        {"name": "a first", "permissions": [{"header": {"name": "x-a", "rule": {"present": true}}}],
         "principals": ["any"]},
    ]);
    let v = view("/", &lines);
    let input = Input {
        conn: &c,
        http: Some(HttpInput::new(&v, false, 0)),
        metadata: &[],
    };
    let allow = engine(&rules("allow", policies.clone()));
    let d = allow.evaluate(&input);
    assert!(d.allowed);
    assert_eq!(d.policy.map(|p| &*p.name), Some("a first"));
    let deny = engine(&rules("deny", policies.clone()));
    let d = deny.evaluate(&input);
    assert!(!d.allowed);
    assert_eq!(d.details(), "rbac_access_denied_matched_policy[a_first]");
    let log = engine(&rules("log", policies));
    let d = log.evaluate(&input);
    assert!(d.allowed && d.policy.is_some());
    // ALLOW with nothing matching denies with policy `none`; DENY allows.
    let nothing =
        json!([{"name": "p", "permissions": [{"destination_port": 1}], "principals": ["any"]}]);
    let allow_nothing = engine(&rules("allow", nothing.clone()));
    let d = allow_nothing.evaluate(&input);
    assert!(!d.allowed && d.policy.is_none());
    assert_eq!(d.details(), "rbac_access_denied_matched_policy[none]");
    assert!(
        engine(&rules("deny", nothing.clone()))
            .evaluate(&input)
            .allowed
    );
    assert!(engine(&rules("log", nothing)).evaluate(&input).allowed);
    // No policies: ALLOW denies everything, DENY allows everything.
    assert!(!req.allowed(&engine(&rules("allow", json!([])))));
    assert!(req.allowed(&engine(&rules("deny", json!([])))));
}

#[test]
fn compile_errors_name_the_field() {
    let err = |r: RbacRules, network: bool| Engine::compile(&r, network, "rules").err().unwrap();
    let e = err(
        one(
            json!({"destination_ip": {"address_prefix": "10.0.0", "prefix_len": 8}}),
            json!("any"),
        ),
        false,
    );
    assert!(
        e.starts_with("rules.policies[0].permissions[0].destination_ip.address_prefix: malformed"),
        "{e}"
    );
    let e = err(
        one(
            json!({"destination_ip": {"address_prefix": "10.0.0.0", "prefix_len": 33}}),
            json!("any"),
        ),
        false,
    );
    assert!(
        e.starts_with("rules.policies[0].permissions[0].destination_ip.prefix_len:"),
        "{e}"
    );
    let e = err(
        one(
            json!({"destination_port_range": {"start": 90, "end": 80}}),
            json!("any"),
        ),
        false,
    );
    assert!(
        e.ends_with("range start 90 cannot be greater or equal than range end 80"),
        "{e}"
    );
    let e = err(
        one(
            json!({"url_path": {"pattern": {"regex": "("}, "ignore_case": false}}),
            json!("any"),
        ),
        false,
    );
    assert!(
        e.starts_with("rules.policies[0].permissions[0].url_path.path.safe_regex: invalid regex"),
        "{e}"
    );
    let header = json!({"header": {"name": "x", "rule": {"present": true}}});
    let e = err(
        one(json!({"and_rules": [header.clone()]}), json!("any")),
        true,
    );
    assert!(e.starts_with("rules.policies[0].permissions[0].and_rules.rules[0].header: header rules are not supported"), "{e}");
    let e = err(one(json!("any"), json!({"not_id": header})), true);
    assert!(
        e.starts_with("rules.policies[0].principals[0].not_id.header:"),
        "{e}"
    );
    let e = err(one(json!({"or_rules": []}), json!("any")), false);
    assert!(
        e.starts_with("rules.policies[0].permissions[0].or_rules.rules: must not be empty"),
        "{e}"
    );
    let dup = rules(
        "allow",
        json!([{"name": "p", "permissions": ["any"], "principals": ["any"]},
        {"name": "p", "permissions": ["any"], "principals": ["any"]}]),
    );
    assert!(err(dup, false).contains("duplicate policy"));
}

fn stat(reg: &Registry, name: &str) -> i64 {
    let v: Value = serde_json::from_slice(&reg.export()).unwrap();
    v["counters"][name].as_i64().unwrap_or(-1)
}

fn rbac_filter(config: Value) -> snapshot::HttpFilter {
    snapshot::HttpFilter {
        name: "envoy.filters.http.rbac".into(),
        config: HttpFilterConfig::Rbac(serde_json::from_value(config).unwrap()),
    }
}

fn hcm(filters: Vec<snapshot::HttpFilter>, vhost: Value) -> snapshot::HttpConnectionManager {
    let json = json!({"stat_prefix": "in", "route_config": {"virtual_hosts": [vhost]}});
    let mut h: snapshot::HttpConnectionManager = serde_json::from_value(json).unwrap();
    h.http_filters = filters;
    h
}

fn run(
    chain: &FilterChain,
    path: &str,
    route: Option<(usize, usize)>,
) -> (Option<u16>, String, Vec<Metadata>) {
    let v = view(path, &[]);
    let c = plain();
    let req = FilterRequest {
        view: &v,
        route,
        cluster: None,
        conn: &ConnBuckets::default(),
        downstream: &c,
    };
    let verdict = chain.run(&req, 0);
    (
        verdict.reply.map(|r| r.status),
        verdict.details.to_string(),
        verdict.metadata,
    )
}

fn allow_prefix(prefix: &str) -> Value {
    json!({"action": "allow", "policies": [{"name": "pub", "principals": ["any"],
        "permissions": [{"url_path": {"pattern": {"prefix": prefix}, "ignore_case": false}}]}]})
}

#[test]
fn http_filter_denies_with_403_details_and_counts() {
    let reg = Registry::new(1);
    let filter = rbac_filter(json!({
        "rules": allow_prefix("/pub"),
        "shadow_rules": {"action": "deny", "policies": [
            {"name": "all", "permissions": ["any"], "principals": ["any"]}]},
        "rules_stat_prefix": "rp",
        "shadow_rules_stat_prefix": "sp_",
    }));
    let chain = FilterChain::compile(
        &hcm(vec![filter], json!({"name": "v", "domains": ["*"]})),
        &|_| None,
        &reg,
        "hcm",
    )
    .unwrap();
    assert_eq!(run(&chain, "/pub/x", None).0, None);
    let (status, details, metadata) = run(&chain, "/private", None);
    assert_eq!(status, Some(403));
    assert_eq!(details, "rbac_access_denied_matched_policy[none]");
    assert!(metadata.is_empty(), "no later filter reads it");
    // Envoy 1.40's names (checked against Envoy by tests/integration/test_rbac.py).
    assert_eq!(stat(&reg, "http.in.rbac.rp.allowed"), 1);
    assert_eq!(stat(&reg, "http.in.rbac.rp.denied"), 1);
    assert_eq!(stat(&reg, "http.in.rbac.sp_.shadow_denied"), 2);
    assert_eq!(stat(&reg, "http.in.rbac.sp_.shadow_allowed"), 0);
}

#[test]
fn metadata_is_left_for_a_later_rbac_filter_that_reads_it() {
    let reg = Registry::new(1);
    let first = rbac_filter(json!({
        "shadow_rules": {"action": "deny", "policies": [
            {"name": "s", "permissions": ["any"], "principals": ["any"]}]},
    }));
    let second = rbac_filter(json!({"rules": {"action": "deny", "policies": [
        {"name": "shadow-said-no", "permissions": ["any"], "principals": [{"metadata": {
            "filter": "envoy.filters.http.rbac", "path": ["shadow_engine_result"],
            "value": {"string_match": exact("denied")}}}]}]}}));
    let chain = FilterChain::compile(
        &hcm(vec![first, second], json!({"name": "v", "domains": ["*"]})),
        &|_| None,
        &reg,
        "hcm",
    )
    .unwrap();
    let (status, details, metadata) = run(&chain, "/", None);
    assert_eq!(status, Some(403));
    assert_eq!(details, "rbac_access_denied_matched_policy[shadow-said-no]");
    let keys: Vec<_> = metadata
        .iter()
        .map(|m| (&*m.key, m.value.clone()))
        .collect();
    assert!(
        keys.contains(&("shadow_effective_policy_id", json!("s"))),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("shadow_engine_result", json!("denied"))),
        "{keys:?}"
    );
    // Both filters count under the same names (no stat prefixes).
    assert_eq!(stat(&reg, "http.in.rbac.shadow_denied"), 1);
    assert_eq!(stat(&reg, "http.in.rbac.denied"), 1);
}

#[test]
fn per_route_config_replaces_or_disables_the_filter() {
    let reg = Registry::new(1);
    let filter = rbac_filter(json!({"rules": allow_prefix("/pub")}));
    let per = |rbac: Value| json!({"name": "envoy.filters.http.rbac", "config": {"rbac_per_route": {"rbac": rbac}}});
    let vhost = json!({"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/off"}}, "action": {"direct_response": {"status": 200}},
         "typed_per_filter_config": [per(Value::Null)]},
        {"match": {"path": {"prefix": "/other"}}, "action": {"direct_response": {"status": 200}},
         "typed_per_filter_config": [per(json!({"rules": allow_prefix("/other/ok")}))]},
        {"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 200}}},
    ]});
    let chain = FilterChain::compile(&hcm(vec![filter], vhost), &|_| None, &reg, "hcm").unwrap();
    assert_eq!(run(&chain, "/off/x", Some((0, 0))).0, None, "disabled");
    assert_eq!(run(&chain, "/other/ok", Some((0, 1))).0, None);
    assert_eq!(run(&chain, "/other/no", Some((0, 1))).0, Some(403));
    assert_eq!(run(&chain, "/pub", Some((0, 2))).0, None);
    assert_eq!(run(&chain, "/x", Some((0, 2))).0, Some(403));
    // The route configs count in the filter's stats; the disabled route counts nothing.
    assert_eq!(stat(&reg, "http.in.rbac.allowed"), 2);
    assert_eq!(stat(&reg, "http.in.rbac.denied"), 2);
    // A full RBAC config is not a per-route config.
    let wrong = json!({"name": "v", "domains": ["*"], "routes": [
        {"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 200}},
         "typed_per_filter_config": [{"name": "envoy.filters.http.rbac", "config": {"rbac": {}}}]}]});
    let filter = rbac_filter(json!({}));
    let err = FilterChain::compile(&hcm(vec![filter], wrong), &|_| None, &reg, "hcm")
        .err()
        .unwrap();
    assert!(
        err.contains("typed_per_filter_config[envoy.filters.http.rbac]: not a rbac config"),
        "{err}"
    );
}

fn network(config: Value, reg: &Registry) -> NetworkRbac {
    let c: NetworkConfig = serde_json::from_value(config).unwrap();
    NetworkRbac::compile(&c, reg, "rbac[0]").unwrap()
}

#[test]
fn network_filter_decides_on_the_connection_and_counts() {
    let reg = Registry::new(1);
    let f = network(
        json!({"stat_prefix": "tcp", "shadow_rules_stat_prefix": "sh.",
        "rules": {"action": "allow", "policies": [{"name": "local", "principals": [
            {"direct_remote_ip": {"address_prefix": "127.0.0.0", "prefix_len": 8}}],
            "permissions": [{"destination_port": 8080}]}]},
        "shadow_rules": {"action": "allow", "policies": [{"name": "path", "principals": ["any"],
            "permissions": [{"url_path": exact("/")}]}]}}),
        &reg,
    );
    assert!(f.allows(&conn("127.0.0.5:1", "127.0.0.1:8080"), 0));
    assert!(!f.allows(&conn("192.0.2.1:1", "127.0.0.1:8080"), 0));
    assert!(!f.allows(&conn("127.0.0.5:1", "127.0.0.1:9090"), 0));
    assert_eq!(stat(&reg, "tcp.rbac.allowed"), 1);
    assert_eq!(stat(&reg, "tcp.rbac.denied"), 2);
    // url_path never matches a connection: the shadow ALLOW engine denies all three.
    assert_eq!(stat(&reg, "tcp.rbac.sh.shadow_denied"), 3);
    // No rules: allowed, not counted.
    let reg = Registry::new(1);
    let f = network(json!({"stat_prefix": "n."}), &reg);
    assert!(f.allows(&plain(), 0));
    assert_eq!(stat(&reg, "n.rbac.allowed"), 0);
    let _: SocketAddr = "127.0.0.1:1".parse().unwrap();
}
