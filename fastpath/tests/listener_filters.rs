//! The TLS inspector listener filter and chain selection through an engine: the
//! `listener_filters_timeout` (close, or go on as plain text), a ClientHello over
//! `max_client_hello_size`, a hostile half ClientHello, and config errors of duplicate
//! chains.
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use meshcore_fastpath::engine::Engine;
use support::{counter, start_engine, stats_until};

fn answer(body: &str, matched: Value) -> Value {
    json!({
        "name": body,
        "filter_chain_match": matched,
        "filter": {"http_connection_manager": {
            "stat_prefix": body,
            "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                {"match": {"path": {"prefix": "/"}},
                 "action": {"direct_response": {"status": 200, "body": body}}}]}]},
        }},
    })
}

fn inspected(extra: Value) -> Value {
    let mut l = json!({
        "name": "l", "address": "127.0.0.1", "port": 0, "stat_prefix": "l",
        "tls_inspector": {"max_client_hello_size": 16384},
        "filter_chains": [answer("tls", json!({"transport_protocol": "tls"})), answer("plain", json!({}))],
    });
    for (k, v) in extra.as_object().unwrap() {
        l[k] = v.clone();
    }
    json!({"listeners": [l]})
}

/// Reads until the proxy closes: what it sent first (panics if it has not closed in 10 s).
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection is still open");
    out
}

#[tokio::test]
async fn plain_text_goes_to_the_raw_buffer_chain() {
    let (engine, port) = start_engine(&inspected(json!({})));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.ends_with(b"plain"), "{}", String::from_utf8_lossy(&got));
    let st = stats_until(&engine, |s| {
        s["counters"]["tls_inspector.tls_not_found"] == 1
    })
    .await;
    assert_eq!(counter(&st, "tls_inspector.tls_not_found"), 1);
    assert_eq!(st["gauges"]["listener.l.downstream_pre_cx_active"], 0);
}

#[tokio::test]
async fn listener_filters_timeout_closes_by_default() {
    let (engine, port) = start_engine(&inspected(json!({"listener_filters_timeout_ms": 100})));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // A record header of a handshake, then nothing: the inspector waits for more.
    s.write_all(&[22, 3, 1]).await.unwrap();
    assert_eq!(read_to_close(&mut s).await, b"");
    let st = stats_until(&engine, |s| {
        s["counters"]["listener.l.downstream_pre_cx_timeout"] == 1
    })
    .await;
    assert_eq!(counter(&st, "listener.l.downstream_pre_cx_timeout"), 1);
    assert_eq!(counter(&st, "listener.l.downstream_cx_total"), 0);
}

#[tokio::test]
async fn listener_filters_timeout_can_go_on_as_plain_text() {
    let (engine, port) = start_engine(&inspected(json!({
        "listener_filters_timeout_ms": 100,
        "continue_on_listener_filters_timeout": true,
    })));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Nothing until the timeout has passed (the stat says so), then a request.
    stats_until(&engine, |s| {
        s["counters"]["listener.l.downstream_pre_cx_timeout"] == 1
    })
    .await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s).await;
    assert!(got.ends_with(b"plain"), "{}", String::from_utf8_lossy(&got));
}

/// A ClientHello record header announcing `len` bytes of handshake.
fn hello_head(len: usize) -> Vec<u8> {
    let record = (len + 4).min(16384) as u16;
    let mut out = vec![22, 3, 1];
    out.extend_from_slice(&record.to_be_bytes());
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out
}

#[tokio::test]
async fn a_client_hello_over_the_limit_is_closed_and_counted() {
    let (engine, port) = start_engine(&inspected(
        json!({"tls_inspector": {"max_client_hello_size": 512}}),
    ));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&hello_head(4000)).await.unwrap();
    assert_eq!(read_to_close(&mut s).await, b"");
    let st = stats_until(&engine, |s| {
        s["counters"]["tls_inspector.client_hello_too_large"] == 1
    })
    .await;
    assert_eq!(counter(&st, "tls_inspector.client_hello_too_large"), 1);
}

#[tokio::test]
async fn a_peer_that_half_closes_mid_hello_is_closed() {
    let (_engine, port) = start_engine(&inspected(json!({})));
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(&hello_head(300)[..7]).await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut s).await, b"");
}

#[test]
fn duplicate_and_overlapping_chains_are_errors_naming_the_chain() {
    let engine = Engine::new(1).unwrap();
    let dup = json!({"listeners": [{
        "name": "l", "address": "127.0.0.1", "port": 0,
        "filter_chains": [answer("a", json!({"server_names": ["x.com"]})),
                          answer("b", json!({"server_names": ["x.com"]}))],
    }]});
    let e = engine
        .apply(&serde_json::to_vec(&dup).unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "listeners[0].filter_chains[1].filter_chain_match: the same matching rules as \
         listeners[0].filter_chains[0]"
    );
    let none = json!({"listeners": [{"name": "l", "address": "127.0.0.1", "port": 0,
        "filter_chains": []}]});
    let e = engine
        .apply(&serde_json::to_vec(&none).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("listeners[0].filter_chains: a listener needs"),
        "{e}"
    );
    assert!(engine.listener_ports().is_empty(), "nothing was applied");
}
