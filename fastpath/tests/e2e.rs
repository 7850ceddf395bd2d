//! End-to-end: an Engine on 127.0.0.1:0 in front of a scripted upstream, driven by a raw client.
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use meshcore_fastpath::engine::{Engine, EngineError};
use serde_json::{Value, json};
use support::{Client, counter, settled, stats, upstream};

fn snapshot(up_port: u16, extra_clusters: Value) -> Vec<u8> {
    let mut clusters = vec![json!({
        "name": "backend",
        "connect_timeout_ms": 1000,
        "endpoints": [{"address": "127.0.0.1", "port": up_port}],
    })];
    clusters.extend(extra_clusters.as_array().cloned().unwrap_or_default());
    serde_json::to_vec(&json!({
        "listeners": [{
            "name": "ingress",
            "address": "127.0.0.1",
            "port": 0,
            "filter_chains": [{"filter": {"http_connection_manager": {
                "stat_prefix": "ingress",
                "route_config": {"virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"path": {"prefix": "/hang"}},
                         "action": {"route": {"target": {"cluster": "backend"}, "timeout_ms": 300}}},
                        {"match": {"path": {"prefix": "/dead"}},
                         "action": {"route": {"target": {"cluster": "dead"}}}},
                        {"match": {"path": {"prefix": "/empty"}},
                         "action": {"route": {"target": {"cluster": "empty"}}}},
                        {"match": {"path": {"prefix": "/direct"}},
                         "action": {"direct_response": {"status": 418, "body": "teapot"}}},
                        {"match": {"path": {"prefix": "/api"}},
                         "action": {"route": {"target": {"cluster": "backend"}}}},
                        {"match": {"path": {"prefix": "/"}},
                         "action": {"route": {"target": {"cluster": "backend"}, "timeout_ms": 0}}},
                    ],
                }, {
                    "name": "none",
                    "domains": ["nothing.example"],
                    "routes": [],
                }]},
            }}}],
        }],
        "clusters": clusters,
    }))
    .unwrap()
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn extra_clusters() -> Value {
    json!([
        {"name": "dead", "connect_timeout_ms": 500, "endpoints": [{"address": "127.0.0.1", "port": closed_port()}]},
        {"name": "empty"},
    ])
}

fn start(up_port: u16) -> (Engine, u16) {
    let engine = Engine::new(2).unwrap();
    assert_eq!(
        engine.apply(&snapshot(up_port, extra_clusters())).unwrap(),
        1
    );
    let port = engine.listener_ports()[0].1;
    assert_ne!(port, 0);
    (engine, port)
}

#[tokio::test]
async fn proxies_get_with_envoy_decoration_and_reuses_connections() {
    let mut up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"GET /api/x?y=1 HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Custom: yes\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "echo:");
    assert_eq!(r.header("server").as_deref(), Some("envoy"));
    assert_eq!(r.header("x-up").as_deref(), Some("1"));
    assert!(
        r.header("x-envoy-upstream-service-time")
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(r.header("date").is_some());
    let seen = up.seen.recv().await.unwrap();
    assert!(
        seen.head.starts_with("GET /api/x?y=1 HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    assert_eq!(seen.header("host").as_deref(), Some("svc"));
    assert_eq!(seen.header("x-custom").as_deref(), Some("yes"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen.header("x-envoy-expected-rq-timeout-ms").as_deref(),
        Some("15000")
    );
    assert_eq!(seen.header("x-request-id").map(|v| v.len()), Some(36));
    for hop in ["connection", "x-hop", "keep-alive"] {
        assert!(seen.header(hop).is_none(), "{hop} forwarded: {}", seen.head);
    }

    // A second request on the same client connection reuses the upstream connection, and a
    // present x-request-id is kept; no route timeout means no expected-timeout header.
    let r = c
        .exchange(b"GET /other HTTP/1.1\r\nHost: svc\r\nx-request-id: abc\r\n\r\n")
        .await;
    assert_eq!(r.status, 200);
    let seen = up.seen.recv().await.unwrap();
    assert_eq!(seen.header("x-request-id").as_deref(), Some("abc"));
    assert!(seen.header("x-envoy-expected-rq-timeout-ms").is_none());
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "upstream connection reused"
    );

    let s = settled(&engine, 2).await;
    assert_eq!(counter(&s, "http.ingress.downstream_rq_total"), 2);
    assert_eq!(counter(&s, "http.ingress.downstream_rq_2xx"), 2);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_total"), 2);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_200"), 2);
    assert_eq!(counter(&s, "cluster.backend.upstream_cx_total"), 1);
    let lname = format!("listener.127.0.0.1_{port}.downstream_cx_total");
    assert_eq!(counter(&s, &lname), 1);
    assert_eq!(s["gauges"]["http.ingress.downstream_cx_active"], 1);
    assert_eq!(s["gauges"]["cluster.backend.upstream_cx_active"], 1);
    assert_eq!(s["gauges"]["cluster.backend.membership_total"], 1);
    assert_eq!(
        s["histograms"]["cluster.backend.upstream_rq_time"]["count"],
        2
    );
    assert_eq!(
        s["histograms"]["http.ingress.downstream_rq_time"]["count"],
        2
    );
    let hosts: Value = serde_json::from_slice(&engine.clusters()).unwrap();
    assert_eq!(hosts[0]["name"], "backend");
    assert_eq!(hosts[0]["hosts"][0]["rq_total"], 2);
    assert_eq!(hosts[0]["hosts"][0]["cx_active"], 1);
    assert_eq!(engine.active_connections(), 1);
    engine.stop();
    engine.stop();
    assert_eq!(engine.active_connections(), 0);
}

#[tokio::test]
async fn streams_chunked_and_length_bodies_both_ways() {
    let mut up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;
    // Chunked request body arriving in pieces, with an extension and a trailer.
    c.send(b"POST /api HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel")
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b"lo\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n").await;
    let r = tokio::time::timeout(Duration::from_secs(5), c.read(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "echo:hello world");
    let seen = up.seen.recv().await.unwrap();
    assert_eq!(seen.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(seen.body, b"hello world");

    // Content-Length body larger than one buffer, with 100-continue answered by the proxy.
    let body = vec![b'z'; 100_000];
    let mut req = format!(
        "PUT /api HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    c.send(&req).await;
    let cont = tokio::time::timeout(Duration::from_secs(5), c.read(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cont.status, 100);
    c.send(&body).await;
    let r = tokio::time::timeout(Duration::from_secs(5), c.read(false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 5 + body.len());
    let seen = up.seen.recv().await.unwrap();
    assert!(seen.header("expect").is_none());
    assert_eq!(seen.body.len(), body.len());

    // Chunked and close-delimited responses are re-framed for the HTTP/1.1 client.
    let r = c
        .exchange(b"GET /chunked HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "echo:"));
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    let r = c.exchange(b"GET /eof HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (200, "echo:"));
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    // HEAD: no body even though the upstream sends a length.
    let r = c.exchange(b"HEAD /api HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("5"));
    // The connection still works after all of that.
    let r = c.exchange(b"GET /api HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!(r.status, 200);
    req.clear();
    drop(engine);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;
    c.send(b"GET /a HTTP/1.1\r\nHost: svc\r\n\r\nPOST /b HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nxyzGET /direct HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    let a = c.read(false).await.unwrap();
    let b = c.read(false).await.unwrap();
    let d = c.read(false).await.unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "echo:"));
    assert_eq!((b.status, b.text().as_str()), (200, "echo:xyz"));
    assert_eq!((d.status, d.text().as_str()), (418, "teapot"));
    assert_eq!(d.header("content-type").as_deref(), Some("text/plain"));
    drop(engine);
}

#[tokio::test]
async fn local_replies_carry_envoy_codes_and_bodies() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;

    let r = c
        .exchange(b"GET / HTTP/1.1\r\nHost: nothing.example\r\n\r\n")
        .await;
    assert_eq!((r.status, r.body.len()), (404, 0));
    let r = c.exchange(b"GET /dead HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
    );
    let r = c
        .exchange(b"GET /empty HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await;
    assert_eq!((r.status, r.text().as_str()), (503, "no healthy upstream"));
    let r = c.exchange(b"GET /hang HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (504, "upstream request timeout")
    );
    let r = c
        .exchange(b"GET /reset HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await;
    assert_eq!(r.status, 503);
    assert!(
        r.text().ends_with("reset reason: connection termination"),
        "{}",
        r.text()
    );
    let r = c
        .exchange(b"GET /garbage HTTP/1.1\r\nHost: svc\r\n\r\n")
        .await;
    assert_eq!(r.status, 502);
    // The connection survived all local replies.
    let r = c.exchange(b"GET /api HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert_eq!(r.status, 200);

    let s = settled(&engine, 7).await;
    assert_eq!(counter(&s, "http.ingress.no_route"), 1);
    assert_eq!(counter(&s, "cluster.dead.upstream_cx_connect_fail"), 1);
    assert_eq!(counter(&s, "cluster.empty.upstream_cx_none_healthy"), 1);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_timeout"), 1);
    assert_eq!(counter(&s, "cluster.backend.upstream_rq_504"), 1);
    assert_eq!(counter(&s, "http.ingress.downstream_rq_5xx"), 5);
    assert_eq!(counter(&s, "http.ingress.downstream_rq_4xx"), 1);
    drop(engine);
}

#[tokio::test]
async fn malformed_requests_get_400_and_never_reach_upstream() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    for raw in [
        &b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"GET /api HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        b"GET /api HTTP/1.1\r\nHost: a\r\nBad Name: y\r\n\r\n",
        b"POST /api HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = Client::connect(port).await;
        let r = c.exchange(raw).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(raw));
        assert_eq!(r.header("connection").as_deref(), Some("close"));
        assert!(c.closed().await);
    }
    let mut c = Client::connect(port).await;
    let mut big = b"GET /api HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 70 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let r = c.exchange(&big).await;
    assert_eq!(r.status, 431);
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    let s = stats(&engine);
    assert_eq!(counter(&s, "http.ingress.downstream_cx_protocol_error"), 6);
    drop(engine);
}

#[tokio::test]
async fn http10_and_connection_close() {
    let up = upstream().await;
    // Envoy's default: HTTP/1.0 is refused with 426.
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /api HTTP/1.0\r\n\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (426, "Upgrade Required"));
    assert!(r.head.starts_with("HTTP/1.1 426 "), "{}", r.head);
    assert!(c.closed().await);
    drop(engine);

    // accept_http_10: proxied and answered in HTTP/1.0.
    let mut snap: Value =
        serde_json::from_slice(&snapshot(up.addr.port(), extra_clusters())).unwrap();
    snap["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]["accept_http_10"] =
        json!(true);
    let engine = Engine::new(2).unwrap();
    engine.apply(&serde_json::to_vec(&snap).unwrap()).unwrap();
    let port = engine.listener_ports()[0].1;
    let mut c = Client::connect(port).await;
    let r = c.exchange(b"GET /api HTTP/1.0\r\nHost: a\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert!(r.head.starts_with("HTTP/1.0 200 OK\r\n"), "{}", r.head);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.closed().await);
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"GET /api HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    let r = c
        .exchange(b"GET /chunked HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "echo:"),
        "de-chunked for HTTP/1.0"
    );
    assert!(c.closed().await);
    let mut c = Client::connect(port).await;
    let r = c
        .exchange(b"GET /api HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.closed().await);
    // Upstream `connection: close` is not pooled: the next request opens a new connection.
    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    let before = up.accepted.load(Ordering::SeqCst);
    assert_eq!(
        c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    assert_eq!(up.accepted.load(Ordering::SeqCst), before + 1);
    drop(engine);
}

#[tokio::test]
async fn apply_errors_change_nothing_and_endpoints_update() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let bad = json!({"listeners": [], "clusters": [{"name": "x", "endpoints": [{"address": "nope", "port": 1}]}]});
    match engine.apply(&serde_json::to_vec(&bad).unwrap()) {
        Err(EngineError::Value(m)) => assert_eq!(
            m,
            "clusters[0].endpoints[0].address: \"nope\" is not an IP address"
        ),
        other => panic!("{other:?}"),
    }
    match engine.apply(b"{\"listeners\": [], \"bogus\": 1}") {
        Err(EngineError::Value(m)) => assert!(m.contains("bogus"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A taken port is an OSError and nothing changes.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut snap: Value =
        serde_json::from_slice(&snapshot(up.addr.port(), extra_clusters())).unwrap();
    snap["listeners"][0]["name"] = json!("other");
    snap["listeners"][0]["port"] = json!(taken.local_addr().unwrap().port());
    assert!(matches!(
        engine.apply(&serde_json::to_vec(&snap).unwrap()),
        Err(EngineError::Os(Some(98), _))
    ));
    assert_eq!(engine.listener_ports(), vec![("ingress".to_string(), port)]);

    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    // No endpoints: UH. Then back.
    engine.update_endpoints("backend", b"[]").unwrap();
    assert_eq!(
        c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        503
    );
    let eps = format!(
        "[{{\"address\": \"127.0.0.1\", \"port\": {}}}]",
        up.addr.port()
    );
    engine.update_endpoints("backend", eps.as_bytes()).unwrap();
    assert_eq!(
        c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    assert!(matches!(
        engine.update_endpoints("nope", b"[]"),
        Err(EngineError::Key(_))
    ));
    assert!(matches!(
        engine.update_endpoints("backend", b"{"),
        Err(EngineError::Value(_))
    ));

    // Re-applying keeps the listener socket and counters; the open connection sees the new
    // routes on its next request.
    let mut snap: Value =
        serde_json::from_slice(&snapshot(up.addr.port(), extra_clusters())).unwrap();
    snap["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
        ["virtual_hosts"][0]["routes"] = json!([{"match": {"path": {"prefix": "/"}}, "action": {"direct_response": {"status": 200, "body": "v2"}}}]);
    assert_eq!(
        engine.apply(&serde_json::to_vec(&snap).unwrap()).unwrap(),
        2
    );
    assert_eq!(engine.listener_ports(), vec![("ingress".to_string(), port)]);
    let r = c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (200, "v2"));
    let s = settled(&engine, 4).await;
    assert_eq!(counter(&s, "http.ingress.downstream_rq_total"), 4);
    drop(engine);
}

#[tokio::test]
async fn drain_closes_idle_connections_and_stops_accepting() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut idle = Client::connect(port).await;
    assert_eq!(
        idle.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    assert_eq!(engine.active_connections(), 1);
    engine.drain();
    assert!(idle.closed().await);
    for _ in 0..100 {
        if engine.active_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.active_connections(), 0);
    // drain() returns at once; every worker closes its socket when it handles the command.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after drain");
    drop(engine);
}

#[tokio::test]
async fn listener_stat_prefix_and_local_address_are_checked_and_used() {
    let up = upstream().await;
    let mut snap: Value =
        serde_json::from_slice(&snapshot(up.addr.port(), extra_clusters())).unwrap();
    snap["listeners"][0]["stat_prefix"] = json!("edge");
    let engine = Engine::new(1).unwrap();
    engine.apply(&serde_json::to_vec(&snap).unwrap()).unwrap();
    let port = engine.listener_ports()[0].1;
    let mut c = Client::connect(port).await;
    assert_eq!(
        c.exchange(b"GET /api HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .status,
        200
    );
    let s = settled(&engine, 1).await;
    assert_eq!(counter(&s, "listener.edge.downstream_cx_total"), 1);
    assert!(
        s["counters"]
            .get(format!("listener.127.0.0.1_{port}.downstream_cx_total"))
            .is_none()
    );

    snap["local_address"] = json!("not an address\r\n");
    match engine.apply(&serde_json::to_vec(&snap).unwrap()) {
        Err(EngineError::Value(m)) => assert!(m.starts_with("local_address: "), "{m}"),
        other => panic!("{other:?}"),
    }
    drop(engine);
}

#[tokio::test]
async fn apply_listeners_swaps_routes_and_keeps_the_clusters_as_they_are() {
    let up = upstream().await;
    let (engine, port) = start(up.addr.port());
    let mut c = Client::connect(port).await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes();
    // Hosts set since the last apply stay: no endpoints for backend now (UH).
    engine.update_endpoints("backend", b"[]").unwrap();
    assert_eq!(c.exchange(&get("/api")).await.status, 503);

    let full: Value = serde_json::from_slice(&snapshot(up.addr.port(), extra_clusters())).unwrap();
    let with_routes = |routes: Value| {
        let mut snap = full.clone();
        snap["clusters"] = json!([]);
        snap["listeners"][0]["filter_chains"][0]["filter"]["http_connection_manager"]["route_config"]
            ["virtual_hosts"][0]["routes"] = routes;
        serde_json::to_vec(&snap).unwrap()
    };
    let v2 = with_routes(json!([
        {"match": {"path": {"prefix": "/v2"}}, "action": {"direct_response": {"status": 200, "body": "v2"}}},
        {"match": {"path": {"prefix": "/"}}, "action": {"route": {"target": {"cluster": "backend"}}}},
    ]));
    assert_eq!(engine.apply_listeners(&v2).unwrap(), 2);
    assert_eq!(engine.listener_ports(), vec![("ingress".to_string(), port)]);
    let r = c.exchange(&get("/v2")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "v2"));
    assert_eq!(c.exchange(&get("/api")).await.status, 503);

    // Refused, nothing changes: clusters in the snapshot, a route to a cluster not applied.
    match engine.apply_listeners(&serde_json::to_vec(&full).unwrap()) {
        Err(EngineError::Value(m)) => assert!(m.starts_with("clusters: must be empty"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown = with_routes(json!([
        {"match": {"path": {"prefix": "/"}}, "action": {"route": {"target": {"cluster": "nope"}}}},
    ]));
    match engine.apply_listeners(&unknown) {
        Err(EngineError::Value(m)) => assert!(m.contains("nope"), "{m}"),
        other => panic!("{other:?}"),
    }
    let r = c.exchange(&get("/v2")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "v2"));

    // The routes use the clusters the engine keeps: an endpoint update reaches them.
    let eps = format!(
        "[{{\"address\": \"127.0.0.1\", \"port\": {}}}]",
        up.addr.port()
    );
    engine.update_endpoints("backend", eps.as_bytes()).unwrap();
    assert_eq!(c.exchange(&get("/api")).await.status, 200);
    // A whole apply afterwards finds the clusters by name as before.
    assert_eq!(
        engine.apply(&serde_json::to_vec(&full).unwrap()).unwrap(),
        3
    );
    assert_eq!(c.exchange(&get("/dead")).await.status, 503);
    assert_eq!(c.exchange(&get("/api")).await.status, 200);
    drop(engine);
}
