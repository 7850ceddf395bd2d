//! Requests meshcore answers itself as Envoy 1.40 does (426, 501, 400 without a host),
//! ambiguous requests that never reach the upstream (docs/http1-hardening.md), the
//! HTTP/1.0 options, how they are counted, and the delayed close that keeps a reply from
//! being destroyed by a TCP reset.
mod support;

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use support::{Client, counter, forward, one_listener, start_engine, stats_until, upstream};
use tokio::io::AsyncWriteExt;

fn snapshot(up_port: u16, hcm: Value) -> Value {
    one_listener(
        json!([forward("/", "backend", json!({}))]),
        hcm,
        json!([support::cluster("backend", up_port, json!({}))]),
        json!({}),
    )
}

#[tokio::test]
async fn envoy_answers_for_requests_it_will_not_proxy() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(up.addr.port(), json!({})));
    let cases: [(&[u8], u16, &str); 6] = [
        (
            b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n",
            426,
            "Upgrade Required",
        ),
        (
            b"GET /a HTTP/9.9\r\nHost: h\r\n\r\n",
            426,
            "Upgrade Required",
        ),
        // The version is checked first.
        (
            b"POST /a HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n",
            426,
            "Upgrade Required",
        ),
        (
            b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "Not Implemented",
        ),
        (b"GET /a HTTP/1.1\r\n\r\n", 400, ""),
        (b"GET a HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Bad Request"),
    ];
    for (raw, status, body) in cases {
        let mut c = Client::connect(port).await;
        let r = c.exchange(raw).await;
        let what = String::from_utf8_lossy(raw);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{what}");
        assert!(r.head.starts_with("HTTP/1.1 "), "{what}: {}", r.head);
        assert_eq!(r.header("connection").as_deref(), Some("close"), "{what}");
        assert_eq!(
            r.header("content-type").is_some(),
            !body.is_empty(),
            "{what}"
        );
        assert!(c.closed().await, "{what}");
    }
    // CONNECT is not routed (no connect_matcher): 404, and the connection closes.
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n")
        .await;
    assert_eq!((r.status, r.body.len()), (404, 0));
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.closed().await);
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    // Rejected requests count as requests, as in Envoy: the class counters add up.
    let s = stats_until(&engine, |s| {
        s["counters"]["http.ingress.downstream_rq_completed"] == 7
    })
    .await;
    let total = counter(&s, "http.ingress.downstream_rq_total");
    let classes: u64 = (1..=5)
        .map(|c| counter(&s, &format!("http.ingress.downstream_rq_{c}xx")))
        .sum();
    assert_eq!((total, classes), (7, 7));
    assert_eq!(counter(&s, "http.ingress.downstream_rq_4xx"), 6);
    assert_eq!(counter(&s, "http.ingress.downstream_rq_5xx"), 1);
    // The missing host is rejected after the codec: not a protocol error.
    assert_eq!(counter(&s, "http.ingress.downstream_cx_protocol_error"), 5);
    assert!(
        s["counters"]
            .get("http.ingress.downstream_rq_too_large")
            .is_none()
    );
    // Local replies are counted in the bytes sent.
    assert!(counter(&s, "http.ingress.downstream_cx_tx_bytes_total") > 6 * 100);
}

#[tokio::test]
async fn accept_http_10_with_a_default_host() {
    let mut up = upstream().await;
    let hcm = json!({"accept_http_10": true, "default_host_for_http_10": "default.example"});
    let (_engine, port) = start_engine(&snapshot(up.addr.port(), hcm));
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /a HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(r.head.starts_with("HTTP/1.0 200 OK\r\n"), "{}", r.head);
    assert!(c.closed().await);
    let seen = up.seen.recv().await.unwrap();
    assert!(
        seen.head.starts_with("GET /a HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(seen.header("host").as_deref(), Some("default.example"));
    // Any other version is taken as HTTP/1.0 too; keep-alive only when asked for.
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"GET /b HTTP/9.9\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert!(r.head.starts_with("HTTP/1.0 200 OK\r\n"), "{}", r.head);
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    let r = c.exchange(b"GET /c HTTP/1.0\r\nHost: h\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(c.closed().await);
    assert_eq!(
        up.seen.recv().await.unwrap().header("host").as_deref(),
        Some("h")
    );

    // Without a default host, an HTTP/1.0 request without Host is a 400 in HTTP/1.0.
    let hcm = json!({"accept_http_10": true});
    let (_engine, port) = start_engine(&snapshot(up.addr.port(), hcm));
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /a HTTP/1.0\r\n\r\n").await;
    assert!(
        r.head.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{}",
        r.head
    );
    assert_eq!(r.body.len(), 0);
}

#[tokio::test]
async fn a_reply_is_not_destroyed_by_a_reset_while_the_client_still_sends() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(up.addr.port(), json!({})));
    let mut c = Client::connect(port).await;
    c.send(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n")
        .await;
    // The client goes on sending a body meshcore never reads.
    let (mut rd, mut wr) = c.s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..32 {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        wr
    });
    // The whole reply arrives, then EOF (not a reset).
    let mut got = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut got);
    let r = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    assert!(matches!(r, Ok(Ok(_))), "{r:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nNot Implemented"), "{text}");
    // meshcore drained the body, then gave up after the delayed close timeout.
    let wr = writer.await.unwrap();
    // The timeout is counted just before the connection is destroyed: wait for both.
    let s = stats_until(&engine, |s| {
        s["counters"]["http.ingress.downstream_cx_delayed_close_timeout"] == 1
            && s["counters"]["http.ingress.downstream_cx_destroy_local"] == 1
    })
    .await;
    assert_eq!(
        counter(&s, "http.ingress.downstream_cx_delayed_close_timeout"),
        1
    );
    assert!(counter(&s, "http.ingress.downstream_cx_rx_bytes_total") > 64 * 1024);
    assert_eq!(counter(&s, "http.ingress.downstream_cx_destroy_local"), 1);
    drop((wr, rd));
}

#[tokio::test]
async fn a_client_that_closes_ends_the_delayed_close_at_once() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(up.addr.port(), json!({})));
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /a HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 426);
    assert!(c.closed().await);
    drop(c);
    let s = stats_until(&engine, |s| {
        s["gauges"]["http.ingress.downstream_cx_active"] == 0
    })
    .await;
    assert_eq!(s["gauges"]["http.ingress.downstream_cx_active"], 0);
    assert_eq!(
        counter(&s, "http.ingress.downstream_cx_delayed_close_timeout"),
        0
    );
}

#[tokio::test]
async fn ambiguous_requests_never_reach_the_upstream() {
    let up = upstream().await;
    let (engine, port) = start_engine(&snapshot(up.addr.port(), json!({})));
    // (request, status, body, a codec error)
    let cases: [(&[u8], u16, &str, bool); 6] = [
        (b"FOO /a HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Bad Request", true),
        (b"GET /a HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Bad Request", true),
        (b"GET /a HTTP/1.1\r\nX-A: a\r\n b\r\nHost: h\r\n\r\n", 400, "Bad Request", true),
        // A malformed chunk behind the head: refused before anything is sent upstream.
        (
            b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 ;x\r\na\r\n0\r\n\r\n",
            400,
            "Bad Request",
            true,
        ),
        (
            b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX\r\n0\r\n\r\n",
            400,
            "Bad Request",
            true,
        ),
        // A fragment: refused after the codec, as Envoy (`path_normalization_failed`).
        (b"GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "", false),
    ];
    for (raw, status, body, _) in cases {
        let mut c = Client::connect(port).await;
        let r = c.exchange(raw).await;
        let what = String::from_utf8_lossy(raw);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{what}");
        assert_eq!(r.header("connection").as_deref(), Some("close"), "{what}");
        assert!(c.closed().await, "{what}");
    }
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    let s = stats_until(&engine, |s| {
        s["counters"]["http.ingress.downstream_rq_completed"] == cases.len()
    })
    .await;
    let codec = cases.iter().filter(|c| c.3).count() as u64;
    assert_eq!(
        counter(&s, "http.ingress.downstream_rq_4xx"),
        cases.len() as u64
    );
    assert_eq!(
        counter(&s, "http.ingress.downstream_cx_protocol_error"),
        codec
    );
}
