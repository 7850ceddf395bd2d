//! The `tcp_proxy` network filter end to end through an engine: byte-exact bulk transfer,
//! half-close, weighted clusters, connect attempts, the connection circuit breaker, the idle
//! timeout and the network `local_ratelimit`.
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::{counter, start_engine, stats, stats_until};

/// An echo server: writes back everything, shuts down its write side on EOF.
async fn echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn snapshot(proxy_extra: Value, clusters: Value, chain_extra: Value) -> Value {
    let mut tcp = json!({"stat_prefix": "relay", "clusters": [{"name": "echo", "weight": 1}]});
    tcp.as_object_mut()
        .unwrap()
        .extend(proxy_extra.as_object().unwrap().clone());
    let mut chain = json!({"filter": {"tcp_proxy": tcp}});
    chain
        .as_object_mut()
        .unwrap()
        .extend(chain_extra.as_object().unwrap().clone());
    let listener = json!({
        "name": "tcp", "address": "127.0.0.1", "port": 0, "filter_chains": [chain],
    });
    json!({"listeners": [listener], "clusters": clusters})
}

fn echo_cluster(name: &str, ports: &[u16], extra: Value) -> Value {
    let eps: Vec<Value> = ports
        .iter()
        .map(|p| json!({"address": "127.0.0.1", "port": p}))
        .collect();
    let mut c = json!({"name": name, "endpoints": eps});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

/// Sends `data`, shuts down the write side, and reads until EOF.
async fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    let _ = writer.await.unwrap();
    got
}

/// True when the proxy closed the connection without relaying anything.
async fn closed_at_once(port: u16) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = s.write_all(b"x").await;
    let mut buf = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn bulk_transfer_is_byte_exact_and_counted() {
    let up = echo().await;
    let (engine, port) = start_engine(&snapshot(
        json!({}),
        json!([echo_cluster("echo", &[up], json!({}))]),
        json!({}),
    ));
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let got = round_trip(port, &data).await;
    assert!(
        got == data,
        "echo differs ({} of {} bytes)",
        got.len(),
        data.len()
    );
    let n = data.len() as u64;
    let s = stats_until(&engine, |s| {
        s["counters"]
            ["listener.127.0.0.1_".to_string() + &port.to_string() + ".downstream_cx_destroy"]
            == 1
    })
    .await;
    assert_eq!(counter(&s, "tcp.relay.downstream_cx_total"), 1);
    assert_eq!(counter(&s, "tcp.relay.downstream_cx_rx_bytes_total"), n);
    assert_eq!(counter(&s, "tcp.relay.downstream_cx_tx_bytes_total"), n);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_tx_bytes_total"), n);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_rx_bytes_total"), n);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_total"), 1);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_http1_total"), 0);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_destroy_remote"), 1);
}

#[tokio::test]
async fn half_close_keeps_the_other_direction_open() {
    // The upstream reads everything to EOF first, then answers: only possible when the
    // proxy passes the client's FIN on and keeps relaying the answer back.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        s.write_all(format!("got {} bytes", all.len()).as_bytes())
            .await
            .unwrap();
    });
    let (_engine, port) = start_engine(&snapshot(
        json!({}),
        json!([echo_cluster("echo", &[up], json!({}))]),
        json!({}),
    ));
    let got = round_trip(port, &[b'a'; 100_000]).await;
    assert_eq!(got, b"got 100000 bytes");
}

#[tokio::test]
async fn weighted_clusters_split_connections() {
    let (a, b) = (echo().await, echo().await);
    let clusters = json!([
        echo_cluster("a", &[a], json!({})),
        echo_cluster("b", &[b], json!({}))
    ]);
    let proxy = json!({"clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]});
    let (engine, port) = start_engine(&snapshot(proxy, clusters, json!({})));
    for _ in 0..200 {
        assert_eq!(round_trip(port, b"ping").await, b"ping");
    }
    let s = stats(&engine);
    let (na, nb) = (
        counter(&s, "cluster.a.upstream_cx_total"),
        counter(&s, "cluster.b.upstream_cx_total"),
    );
    assert_eq!(na + nb, 200);
    assert!((20..=80).contains(&na), "a got {na} of 200 (expected ~50)");
}

#[tokio::test]
async fn unknown_cluster_is_no_route() {
    let up = echo().await;
    let proxy = json!({"clusters": [{"name": "nowhere", "weight": 1}]});
    let (engine, port) = start_engine(&snapshot(
        proxy,
        json!([echo_cluster("echo", &[up], json!({}))]),
        json!({}),
    ));
    assert!(closed_at_once(port).await);
    let s = stats_until(&engine, |s| {
        s["counters"]["tcp.relay.downstream_cx_no_route"] == 1
    })
    .await;
    assert_eq!(counter(&s, "tcp.relay.downstream_cx_no_route"), 1);
}

#[tokio::test]
async fn connect_attempts_try_another_host() {
    let up = echo().await;
    let dead = closed_port();
    // Round robin alternates, so the second attempt after the dead host reaches the live one.
    let clusters = json!([echo_cluster("echo", &[dead, up], json!({}))]);
    let (engine, port) = start_engine(&snapshot(
        json!({"max_connect_attempts": 2}),
        clusters,
        json!({}),
    ));
    for _ in 0..20 {
        assert_eq!(round_trip(port, b"hi").await, b"hi");
    }
    let s = stats(&engine);
    assert!(counter(&s, "cluster.echo.upstream_cx_connect_fail") >= 9);
    assert_eq!(
        counter(&s, "cluster.echo.upstream_cx_connect_attempts_exceeded"),
        0
    );
}

#[tokio::test]
async fn last_failed_attempt_closes_the_connection() {
    let dead = closed_port();
    let clusters = json!([echo_cluster("echo", &[dead], json!({}))]);
    let (engine, port) = start_engine(&snapshot(
        json!({"max_connect_attempts": 3}),
        clusters,
        json!({}),
    ));
    assert!(closed_at_once(port).await);
    let s = stats_until(&engine, |s| {
        s["counters"]["cluster.echo.upstream_cx_connect_attempts_exceeded"] == 1
    })
    .await;
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_connect_fail"), 3);
    assert_eq!(
        counter(&s, "cluster.echo.upstream_cx_connect_attempts_exceeded"),
        1
    );
}

#[tokio::test]
async fn circuit_breaker_refuses_connections_over_the_limit() {
    let up = echo().await;
    let cb = json!({"circuit_breakers": {"max_connections": 1, "max_pending_requests": 1024, "max_requests": 1024, "max_retries": 3, "track_remaining": false}});
    let (engine, port) = start_engine(&snapshot(
        json!({}),
        json!([echo_cluster("echo", &[up], cb)]),
        json!({}),
    ));
    let mut held = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    held.write_all(b"one").await.unwrap();
    let mut buf = [0u8; 3];
    held.read_exact(&mut buf).await.unwrap();
    assert!(closed_at_once(port).await);
    let s = stats_until(&engine, |s| {
        s["counters"]["cluster.echo.upstream_cx_overflow"] == 1
    })
    .await;
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_overflow"), 1);
    drop(held);
    stats_until(&engine, |s| {
        s["gauges"]["cluster.echo.upstream_cx_active"] == 0
    })
    .await;
    assert_eq!(round_trip(port, b"again").await, b"again");
}

#[tokio::test]
async fn idle_timeout_closes_both_sides() {
    let up = echo().await;
    let (engine, port) = start_engine(&snapshot(
        json!({"idle_timeout_ms": 200}),
        json!([echo_cluster("echo", &[up], json!({}))]),
        json!({}),
    ));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).await.unwrap(), 1);
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("idle connection was not closed");
    assert!(matches!(n, Ok(0) | Err(_)));
    let st = stats_until(&engine, |s| s["counters"]["tcp.relay.idle_timeout"] == 1).await;
    assert_eq!(counter(&st, "tcp.relay.idle_timeout"), 1);
}

#[tokio::test]
async fn network_rate_limit_closes_connections_without_a_token() {
    let up = echo().await;
    let rl = json!({"connection_rate_limits": [{"stat_prefix": "conns", "token_bucket": {"max_tokens": 2, "tokens_per_fill": 1, "fill_interval_ms": 3_600_000}}]});
    let (engine, port) = start_engine(&snapshot(
        json!({}),
        json!([echo_cluster("echo", &[up], json!({}))]),
        rl,
    ));
    assert_eq!(round_trip(port, b"1").await, b"1");
    assert_eq!(round_trip(port, b"2").await, b"2");
    assert!(closed_at_once(port).await);
    assert!(closed_at_once(port).await);
    let s = stats(&engine);
    assert_eq!(counter(&s, "local_rate_limit.conns.rate_limited"), 2);
    // As in Envoy, the tcp_proxy counts the connections the rate limit closed too.
    assert_eq!(counter(&s, "tcp.relay.downstream_cx_total"), 4);
    assert_eq!(counter(&s, "cluster.echo.upstream_cx_total"), 2);
}

/// A listener reconfigured from the HTTP connection manager to `tcp_proxy` (same name and
/// address): an open HTTP keep-alive connection is answered by its old HTTP config once more,
/// with `Connection: close`, and closed; new connections are relayed as TCP.
#[tokio::test]
async fn http_connections_close_when_their_listener_becomes_tcp_proxy() {
    let up = support::upstream().await;
    let http = support::one_listener(
        json!([support::forward("/", "web", json!({}))]),
        json!({}),
        json!([support::cluster("web", up.addr.port(), json!({}))]),
        json!({}),
    );
    let (engine, port) = start_engine(&http);
    let mut client = support::Client::connect(port).await;
    let get = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n";
    assert_eq!(client.exchange(get).await.status, 200);
    // Let the connection reach its idle wait first: one that loops back to wait only after
    // the change sees it there and closes at once (as Envoy closes idle connections of a
    // drained chain), which is right but not what this test is about.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let echo_port = echo().await;
    let mut tcp = snapshot(
        json!({}),
        json!([echo_cluster("echo", &[echo_port], json!({}))]),
        json!({}),
    );
    tcp["listeners"][0]["name"] = json!("ingress");
    engine.apply(&serde_json::to_vec(&tcp).unwrap()).unwrap();
    assert_eq!(
        engine.listener_ports()[0].1,
        port,
        "the listener kept its socket"
    );

    let resp = client.exchange(get).await;
    assert_eq!(resp.status, 200, "served by the connection's HTTP config");
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(client.closed().await);

    let mut relayed = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    relayed.write_all(b"not http").await.unwrap();
    let mut back = [0u8; 8];
    relayed.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"not http");
}
