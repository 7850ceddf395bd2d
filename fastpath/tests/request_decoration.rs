//! What the upstream sees, as Envoy 1.40 sends it: x-forwarded-for and the trusted client
//! address, x-envoy-* headers, x-request-id, Host port stripping and x-envoy-original-path.
mod support;

use serde_json::{Value, json};
use support::{Client, Seen, Upstream, cluster, forward, one_listener, start_engine, upstream};

const LOCAL: &str = "192.0.2.2";

/// An engine whose connection manager has `hcm` settings, in front of `up`.
fn engine(up: &Upstream, hcm: Value) -> (meshcore_fastpath::engine::Engine, u16) {
    let routes = json!([
        forward("/v2/", "backend", json!({"prefix_rewrite": "/"})),
        forward("/", "backend", json!({})),
    ]);
    let snap = one_listener(
        routes,
        hcm,
        json!([cluster("backend", up.addr.port(), json!({}))]),
        json!({"local_address": LOCAL}),
    );
    start_engine(&snap)
}

async fn send(port: u16, up: &mut Upstream, headers: &str) -> Seen {
    send_to(port, up, "/x", "svc", headers).await
}

async fn send_to(port: u16, up: &mut Upstream, path: &str, host: &str, headers: &str) -> Seen {
    let mut c = Client::connect(port).await;
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n");
    assert_eq!(c.exchange(raw.as_bytes()).await.status, 200);
    up.seen.recv().await.unwrap()
}

fn all(seen: &Seen, name: &str) -> Vec<String> {
    seen.head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .collect()
}

const ENVOY_HEADERS: &str = "x-envoy-retry-on: 5xx\r\nx-envoy-max-retries: 3\r\n\
x-envoy-internal: true\r\nx-envoy-external-address: 9.9.9.9\r\nx-envoy-foo: bar\r\n\
x-envoy-upstream-rq-timeout-ms: 100\r\nx-envoy-expected-rq-timeout-ms: 5\r\n\
x-envoy-original-path: /zz\r\nx-envoy-decorator-operation: op\r\n\
x-envoy-downstream-service-cluster: c\r\nx-envoy-force-trace: 1\r\n";

#[tokio::test]
async fn use_remote_address_appends_the_local_address_for_a_loopback_peer() {
    let mut up = upstream().await;
    let (_engine, port) = engine(&up, json!({"use_remote_address": true}));
    let seen = send(port, &mut up, "").await;
    assert_eq!(all(&seen, "x-forwarded-for"), [LOCAL]);
    // The trusted client address is the peer, not the appended address.
    assert_eq!(all(&seen, "x-envoy-external-address"), ["127.0.0.1"]);
    assert_eq!(all(&seen, "x-forwarded-proto"), ["http"]);
    assert!(seen.header("x-envoy-internal").is_none());

    // Appended with ',' and no space; several lines become one.
    let seen = send(
        port,
        &mut up,
        "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nX-Forwarded-For: 1.2.3.4\r\n",
    )
    .await;
    assert_eq!(
        all(&seen, "x-forwarded-for"),
        [format!("203.0.113.7, 10.0.0.1,1.2.3.4,{LOCAL}")]
    );
}

#[tokio::test]
async fn edge_requests_lose_client_envoy_headers_and_request_ids() {
    let mut up = upstream().await;
    let (_engine, port) = engine(&up, json!({"use_remote_address": true}));
    let seen = send(
        port,
        &mut up,
        &format!("{ENVOY_HEADERS}x-request-id: client\r\nx-forwarded-proto: https\r\n"),
    )
    .await;
    for gone in [
        "x-envoy-retry-on",
        "x-envoy-max-retries",
        "x-envoy-internal",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-original-path",
        "x-envoy-decorator-operation",
        "x-envoy-downstream-service-cluster",
        "x-envoy-force-trace",
    ] {
        assert!(
            seen.header(gone).is_none(),
            "{gone} forwarded: {}",
            seen.head
        );
    }
    assert_eq!(all(&seen, "x-envoy-foo"), ["bar"]);
    assert_eq!(all(&seen, "x-envoy-external-address"), ["127.0.0.1"]);
    assert_eq!(all(&seen, "x-envoy-expected-rq-timeout-ms"), ["15000"]);
    assert_eq!(all(&seen, "x-forwarded-proto"), ["http"]);
    let rid = all(&seen, "x-request-id");
    assert_eq!(rid.len(), 1);
    assert_ne!(rid[0], "client");
    assert_eq!(rid[0].len(), 36);
}

#[tokio::test]
async fn preserve_external_request_id_keeps_the_clients() {
    let mut up = upstream().await;
    let hcm = json!({"use_remote_address": true, "preserve_external_request_id": true});
    let (_engine, port) = engine(&up, hcm);
    let seen = send(port, &mut up, "x-request-id: client\r\n").await;
    assert_eq!(all(&seen, "x-request-id"), ["client"]);
}

#[tokio::test]
async fn trusted_hops_pick_the_client_address_from_xff() {
    let mut up = upstream().await;
    let hcm = json!({"use_remote_address": true, "xff_num_trusted_hops": 1});
    let (_engine, port) = engine(&up, hcm);
    let seen = send(
        port,
        &mut up,
        "X-Forwarded-For: 203.0.113.7, 198.51.100.4\r\nx-forwarded-proto: https\r\n",
    )
    .await;
    assert_eq!(all(&seen, "x-envoy-external-address"), ["198.51.100.4"]);
    assert_eq!(
        all(&seen, "x-forwarded-for"),
        [format!("203.0.113.7, 198.51.100.4,{LOCAL}")]
    );
    // A trusted proxy's x-forwarded-proto is kept.
    assert_eq!(all(&seen, "x-forwarded-proto"), ["https"]);
    // Not an address: the peer is the client.
    let seen = send(port, &mut up, "X-Forwarded-For: unknown\r\n").await;
    assert_eq!(all(&seen, "x-envoy-external-address"), ["127.0.0.1"]);
}

#[tokio::test]
async fn skip_xff_append_leaves_xff_alone() {
    let mut up = upstream().await;
    let hcm = json!({"use_remote_address": true, "skip_xff_append": true});
    let (_engine, port) = engine(&up, hcm);
    let seen = send(port, &mut up, "X-Forwarded-For: 203.0.113.7\r\n").await;
    assert_eq!(all(&seen, "x-forwarded-for"), ["203.0.113.7"]);
    assert_eq!(all(&seen, "x-envoy-external-address"), ["127.0.0.1"]);
}

#[tokio::test]
async fn without_use_remote_address_only_untrusted_envoy_headers_go() {
    let mut up = upstream().await;
    let (_engine, port) = engine(&up, json!({}));
    let seen = send(
        port,
        &mut up,
        &format!("{ENVOY_HEADERS}x-request-id: client\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"),
    )
    .await;
    for gone in [
        "x-envoy-retry-on",
        "x-envoy-max-retries",
        "x-envoy-internal",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-force-trace",
    ] {
        assert!(
            seen.header(gone).is_none(),
            "{gone} forwarded: {}",
            seen.head
        );
    }
    for (kept, value) in [
        ("x-envoy-external-address", "9.9.9.9"),
        ("x-envoy-original-path", "/zz"),
        ("x-envoy-decorator-operation", "op"),
        ("x-envoy-downstream-service-cluster", "c"),
        ("x-request-id", "client"),
        ("x-forwarded-for", "1.1.1.1,2.2.2.2"),
        ("x-envoy-expected-rq-timeout-ms", "15000"),
    ] {
        assert_eq!(all(&seen, kept), [value], "{}", seen.head);
    }
}

#[tokio::test]
async fn prefix_rewrite_records_the_original_path() {
    let mut up = upstream().await;
    let (_engine, port) = engine(&up, json!({}));
    let seen = send_to(
        port,
        &mut up,
        "/v2/a?q=1",
        "svc",
        "x-envoy-original-path: /forged\r\n",
    )
    .await;
    assert!(
        seen.head.starts_with("GET /a?q=1 HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(all(&seen, "x-envoy-original-path"), ["/v2/a?q=1"]);
    let seen = send_to(port, &mut up, "/plain", "svc", "").await;
    assert!(seen.header("x-envoy-original-path").is_none());
}

/// Virtual hosts `a.com` (header x-vh: exact) and `*`; `hcm` sets the strip mode.
fn ported(up: &Upstream, hcm: Value) -> (meshcore_fastpath::engine::Engine, u16) {
    let mut snap = one_listener(
        json!([]),
        hcm,
        json!([cluster("backend", up.addr.port(), json!({}))]),
        json!({}),
    );
    let exact = json!({"request_headers_to_add": [{"key": "x-vh", "value": "exact"}]});
    snap["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
        ["virtual_hosts"] = json!([
        {"name": "exact", "domains": ["a.com"], "routes": [forward("/", "backend", json!({}))], "headers": exact},
        {"name": "star", "domains": ["*"], "routes": [forward("/", "backend", json!({}))]},
    ]);
    start_engine(&snap)
}

#[tokio::test]
async fn host_port_is_matched_as_sent_unless_stripped() {
    let mut up = upstream().await;
    let (_e, port) = ported(&up, json!({}));
    let seen = send_to(port, &mut up, "/", "a.com:80", "").await;
    assert_eq!(
        (seen.header("x-vh"), seen.header("host")),
        (None, Some("a.com:80".into()))
    );

    let (_e, port) = ported(&up, json!({"strip_port_mode": "any"}));
    let seen = send_to(port, &mut up, "/", "a.com:80", "").await;
    assert_eq!(seen.header("x-vh").as_deref(), Some("exact"));
    assert_eq!(all(&seen, "host"), ["a.com"]);
    let seen = send_to(port, &mut up, "/", "a.com:x", "").await;
    assert_eq!(
        (seen.header("x-vh"), seen.header("host")),
        (None, Some("a.com:x".into()))
    );

    let (_e, port) = ported(&up, json!({"strip_port_mode": "matching"}));
    let seen = send_to(port, &mut up, "/", "a.com:80", "").await;
    assert_eq!(
        (seen.header("x-vh"), seen.header("host")),
        (None, Some("a.com:80".into()))
    );
    let seen = send_to(port, &mut up, "/", &format!("a.com:{port}"), "").await;
    assert_eq!(seen.header("x-vh").as_deref(), Some("exact"));
    assert_eq!(all(&seen, "host"), ["a.com"]);
}
