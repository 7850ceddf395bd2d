//! Upstream connection handling: no retry once the upstream may have the request, a fresh
//! connection when a pooled one died while idle, idle timeout, pool cleanup when a host
//! leaves, truncated heads, and the route's response headers on local replies.
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Client, Upstream, cluster, counter, forward, one_listener, settled, start_engine, stats_until,
    upstream,
};

fn snapshot(up: &Upstream, cluster_extra: Value) -> Value {
    let routes = json!([forward("/", "backend", json!({}))]);
    one_listener(
        routes,
        json!({}),
        json!([cluster("backend", up.addr.port(), cluster_extra)]),
        json!({}),
    )
}

fn gauge(v: &Value, name: &str) -> i64 {
    v["gauges"][name].as_i64().unwrap()
}

#[tokio::test]
async fn no_retry_once_the_upstream_accepted_the_request() {
    let mut up = upstream().await;
    let (engine, port) = start_engine(&snapshot(&up, json!({})));
    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .status,
        200
    );
    // The pooled connection is reused; the upstream reads the request and closes without
    // answering: 503 UC, and the request is not sent again.
    let r = c.exchange(b"GET /reset HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().ends_with("reset reason: connection termination"),
        "{}",
        r.text()
    );
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "no second connection"
    );
    let targets: Vec<String> = [up.seen.recv().await.unwrap(), up.seen.recv().await.unwrap()]
        .iter()
        .map(|s| s.head.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(targets, ["GET /a HTTP/1.1", "GET /reset HTTP/1.1"]);
    assert!(up.seen.try_recv().is_err(), "the request was retried");
    let s = settled(&engine, 2).await;
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_total"), 2);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_503"), 1);
    assert_eq!(
        counter(&s, "cluster.backend.upstream_cx_destroy_with_active_rq"),
        1
    );
    assert_eq!(
        counter(
            &s,
            "cluster.backend.upstream_cx_destroy_remote_with_active_rq"
        ),
        1
    );
}

#[tokio::test]
async fn a_pooled_connection_closed_while_idle_is_replaced_not_retried() {
    let mut up = upstream().await;
    let (engine, port) = start_engine(&snapshot(&up, json!({})));
    let mut c = Client::connect(port).await;
    // The upstream answers keep-alive, then closes the idle connection.
    let r = c
        .exchange(b"GET /then-close HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    // Let the FIN reach meshcore (the pool finds the connection dead at checkout).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = c.exchange(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
    let first = up.seen.recv().await.unwrap();
    let second = up.seen.recv().await.unwrap();
    assert!(first.head.starts_with("GET /then-close "));
    assert!(second.head.starts_with("GET /next "));
    assert!(up.seen.try_recv().is_err());
    let s = settled(&engine, 2).await;
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_total"), 2);
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_destroy_remote"), 1);
    assert_eq!(
        counter(&s, "cluster.backend.upstream_cx_destroy_with_active_rq"),
        0
    );
}

#[tokio::test]
async fn idle_upstream_connections_time_out() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(&up, json!({"idle_timeout_ms": 50})));
    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .status,
        200
    );
    let s = stats_until(&engine, |s| {
        s["counters"]["cluster.backend.upstream_cx_idle_timeout"] == 1
    })
    .await;
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_idle_timeout"), 1);
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_destroy_local"), 1);
    assert_eq!(gauge(&s, "cluster.backend.upstream_cx_active"), 0);
    // The next request needs a new connection.
    assert_eq!(
        c.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .status,
        200
    );
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn pooled_connections_to_a_removed_host_are_closed() {
    let old = upstream().await;
    let new = upstream().await;
    let (engine, port) = start_engine(&snapshot(&old, json!({})));
    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .status,
        200
    );
    assert_eq!(
        gauge(
            &support::stats(&engine),
            "cluster.backend.upstream_cx_active"
        ),
        1
    );
    let eps = format!(
        "[{{\"address\": \"127.0.0.1\", \"port\": {}}}]",
        new.addr.port()
    );
    engine.update_endpoints("backend", eps.as_bytes()).unwrap();
    // The worker's sweeper closes the idle connection to the host that left.
    let s = stats_until(&engine, |s| {
        s["gauges"]["cluster.backend.upstream_cx_active"] == 0
    })
    .await;
    assert_eq!(gauge(&s, "cluster.backend.upstream_cx_active"), 0);
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_destroy_local"), 1);
    assert_eq!(counter(&s, "cluster.backend.membership_change"), 1);
    assert_eq!(
        c.exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .status,
        200
    );
    assert_eq!(old.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(new.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_truncated_response_head_is_a_protocol_error() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(&up, json!({})));
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"GET /partial HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    assert_eq!(r.status, 502);
    assert!(
        r.text().ends_with("reset reason: protocol error"),
        "{}",
        r.text()
    );
    let s = settled(&engine, 1).await;
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_protocol_error"), 1);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_502"), 1);
    // Upstream bytes of heads and bodies are counted.
    assert_eq!(
        counter(&s, "cluster.backend.upstream_cx_rx_bytes_total"),
        "HTTP/1.1 200 OK\r\ncontent-le".len() as u64
    );
}

#[tokio::test]
async fn route_response_headers_apply_to_local_replies_after_routing() {
    let up = upstream().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let add = |k: &str| json!({"response_headers_to_add": [{"key": k, "value": "1"}]});
    let mut route = forward("/dead", "dead", json!({}));
    route["headers"] = add("x-route");
    let mut snap = one_listener(
        json!([route]),
        json!({}),
        json!([
            cluster("backend", up.addr.port(), json!({})),
            cluster("dead", dead_port, json!({})),
        ]),
        json!({}),
    );
    let rc = &mut snap["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"];
    rc["headers"] = add("x-rc");
    rc["virtual_hosts"][0]["headers"] = add("x-vh");
    let (engine, port) = start_engine(&snap);
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /dead HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 503);
    for h in ["x-route", "x-vh", "x-rc"] {
        assert_eq!(r.header(h).as_deref(), Some("1"), "{h}: {}", r.head);
    }
    // No route, no route headers.
    let r = c
        .exchange(b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    assert_eq!(r.status, 404);
    assert!(r.header("x-vh").is_none() && r.header("x-rc").is_none());
    drop(engine);
}

#[tokio::test]
async fn small_buffer_limits_still_stream_large_bodies() {
    let mut up = upstream().await;
    let mut snap = snapshot(&up, json!({"per_connection_buffer_limit_bytes": 1000}));
    snap["listeners"][0]["per_connection_buffer_limit_bytes"] = json!(700);
    let (engine, port) = start_engine(&snap);
    let mut c = Client::connect(port).await;
    let body = vec![b'b'; 100_000];
    let mut req = format!(
        "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = c.exchange(&req).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 5 + body.len());
    assert_eq!(up.seen.recv().await.unwrap().body.len(), body.len());
    let s = settled(&engine, 1).await;
    // Every byte read from the upstream is counted, the body included.
    assert!(counter(&s, "cluster.backend.upstream_cx_rx_bytes_total") > body.len() as u64);
    assert!(counter(&s, "http.ingress.downstream_cx_rx_bytes_total") > body.len() as u64);
}
