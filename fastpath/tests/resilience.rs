//! Issue 4 end to end: retries (reset, per-try timeout), the retry and request circuit
//! breakers, and request mirroring, through a real engine and sockets.
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, Upstream, cluster, counter, forward, one_listener, settled, upstream};

fn engine_with(routes: Value, clusters: Value) -> (meshcore_fastpath::engine::Engine, u16) {
    support::start_engine(&one_listener(routes, json!({}), clusters, json!({})))
}

async fn seen_count(up: &mut Upstream) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), up.seen.recv()).await {
        n += 1;
    }
    n
}

#[tokio::test]
async fn resets_are_retried_up_to_num_retries() {
    let mut up = upstream().await;
    let policy = json!({"retry_policy": {"retry_on": ["reset"], "num_retries": 2,
        "base_interval_ms": 1}});
    let (engine, port) = engine_with(
        json!([forward("/", "backend", policy)]),
        json!([cluster("backend", up.addr.port(), json!({}))]),
    );
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /reset HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 503);
    assert_eq!(seen_count(&mut up).await, 3);
    let s = settled(&engine, 1).await;
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_retry"), 2);
    assert_eq!(
        counter(&s, "cluster.backend.upstream_rq_retry_limit_exceeded"),
        1
    );
    assert_eq!(
        counter(&s, "cluster.backend.upstream_rq_retry_backoff_exponential"),
        2
    );
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_total"), 3);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_retry_success"), 0);
    // Every attempt ended: nothing is left counted active.
    assert_eq!(s["gauges"]["cluster.backend.upstream_rq_active"], 0);
}

#[tokio::test]
async fn per_try_timeouts_retry_then_answer_504() {
    let mut up = upstream().await;
    let policy = json!({"retry_policy": {"retry_on": ["5xx"], "num_retries": 1,
        "per_try_timeout_ms": 100, "base_interval_ms": 1}});
    let (engine, port) = engine_with(
        json!([forward("/", "backend", policy)]),
        json!([cluster("backend", up.addr.port(), json!({}))]),
    );
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /hang HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 504);
    assert_eq!(r.text(), "upstream request timeout");
    assert_eq!(seen_count(&mut up).await, 2);
    let s = settled(&engine, 1).await;
    assert_eq!(
        counter(&s, "cluster.backend.upstream_rq_per_try_timeout"),
        2
    );
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_retry"), 1);
}

#[tokio::test]
async fn circuit_breakers_refuse_with_503_uo() {
    let mut up = upstream().await;
    let no_retries = json!({"retry_policy": {"retry_on": ["reset"], "base_interval_ms": 1}});
    let (engine, port) = engine_with(
        json!([
            forward("/none", "closed", json!({})),
            forward("/", "no-retries", no_retries),
        ]),
        json!([
            cluster(
                "closed",
                up.addr.port(),
                json!({"circuit_breakers": {"max_requests": 0}})
            ),
            cluster(
                "no-retries",
                up.addr.port(),
                json!({"circuit_breakers": {"max_retries": 0}})
            ),
        ]),
    );
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /none HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 503);
    assert!(r.text().ends_with("reset reason: overflow"), "{}", r.text());
    let r = c.exchange(b"GET /reset HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 503);
    assert_eq!(seen_count(&mut up).await, 1, "only /reset, once");
    let s = settled(&engine, 2).await;
    assert_eq!(counter(&s, "cluster.closed.upstream_rq_active_overflow"), 1);
    assert_eq!(
        counter(&s, "cluster.no-retries.upstream_rq_retry_overflow"),
        1
    );
    assert_eq!(counter(&s, "cluster.no-retries.upstream_rq_retry"), 0);
}

#[tokio::test]
async fn mirrored_requests_get_a_shadow_host() {
    let mut main = upstream().await;
    let mut shadow = upstream().await;
    let mirror = json!({"request_mirror_policies": [{"cluster": "shadow"}]});
    let (_engine, port) = engine_with(
        json!([forward("/", "main", mirror)]),
        json!([
            cluster("main", main.addr.port(), json!({})),
            cluster("shadow", shadow.addr.port(), json!({})),
        ]),
    );
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"POST /m HTTP/1.1\r\nHost: svc:81\r\ncontent-length: 2\r\n\r\nhi")
        .await;
    assert_eq!(r.status, 200);
    let original = main.seen.recv().await.unwrap();
    let copy = tokio::time::timeout(Duration::from_secs(5), shadow.seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        original.head.contains("\r\nHost: svc:81\r\n"),
        "{}",
        original.head
    );
    assert!(
        copy.head.contains("\r\nhost: svc-shadow:81\r\n"),
        "{}",
        copy.head
    );
    assert_eq!(copy.body, b"hi");
}
