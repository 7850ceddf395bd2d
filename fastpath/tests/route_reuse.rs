//! `Engine::apply_listeners` reusing the compiled virtual hosts of the running listener: a
//! changed virtual host serves its new config, unchanged ones go on routing to the same
//! clusters (also after a full apply moved the clusters' positions), and a refused update
//! gives a fresh compile's error and leaves every route as it was.
mod support;

use meshcore_fastpath::engine::{Engine, EngineError};
use serde_json::{Value, json};
use support::{Client, Upstream, cluster, upstream};

fn vhost(name: &str, target: Value) -> Value {
    json!({"name": name, "domains": [name], "routes": [{"match": {"path": {"prefix": "/"}},
        "action": target}]})
}

fn to(cluster: &str) -> Value {
    json!({"route": {"target": {"cluster": cluster}}})
}

fn direct(body: &str) -> Value {
    json!({"direct_response": {"status": 200, "body": body}})
}

/// Virtual hosts `x` (to cluster a), `y` (to `y_to`) and `d` (answers `d_body`).
fn snapshot(clusters: Value, y_to: &str, d_body: &str) -> Vec<u8> {
    let vhosts = [
        vhost("x", to("a")),
        vhost("y", to(y_to)),
        vhost("d", direct(d_body)),
    ];
    serde_json::to_vec(&json!({
        "listeners": [{"name": "ingress", "address": "127.0.0.1", "port": 0,
            "filter_chains": [{"filter": {"http_connection_manager": {"stat_prefix": "ingress",
                "route_config": {"virtual_hosts": vhosts}}}}]}],
        "clusters": clusters,
    }))
    .unwrap()
}

/// The status and body of `GET /` to `host`, and which upstream (0: a's, 1: b's) got it.
async fn get(
    c: &mut Client,
    host: &str,
    ups: &mut [&mut Upstream; 2],
) -> (u16, String, Option<usize>) {
    let r = c
        .exchange(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await;
    let by = ups.iter_mut().position(|u| u.seen.try_recv().is_ok());
    (r.status, r.text(), by)
}

#[tokio::test]
async fn unchanged_virtual_hosts_keep_routing_and_a_refused_update_changes_nothing() {
    let (mut ua, mut ub) = (upstream().await, upstream().await);
    let (pa, pb) = (ua.addr.port(), ub.addr.port());
    let ab = json!([cluster("a", pa, json!({})), cluster("b", pb, json!({}))]);
    let engine = Engine::new(1).unwrap();
    engine.apply(&snapshot(ab.clone(), "b", "d1")).unwrap();
    let port = engine.listener_ports()[0].1;
    let mut c = Client::connect(port).await;
    let mut ups = [&mut ua, &mut ub];
    assert_eq!(get(&mut c, "x", &mut ups).await.2, Some(0));
    assert_eq!(get(&mut c, "y", &mut ups).await.2, Some(1));

    // One virtual host changed: it serves its new config, the others as before.
    engine
        .apply_listeners(&snapshot(json!([]), "b", "d2"))
        .unwrap();
    assert_eq!(get(&mut c, "d", &mut ups).await.1, "d2");
    assert_eq!(get(&mut c, "x", &mut ups).await.2, Some(0));
    assert_eq!(get(&mut c, "y", &mut ups).await.2, Some(1));

    // Refused (an unknown cluster in y, d changed too): the error of an engine compiling it
    // afresh, and every route as it was.
    let bad = snapshot(json!([]), "nope", "d3");
    let err = match engine.apply_listeners(&bad) {
        Err(EngineError::Value(m)) => m,
        other => panic!("{other:?}"),
    };
    let fresh = Engine::new(1).unwrap();
    fresh
        .apply(&serde_json::to_vec(&json!({"clusters": ab})).unwrap())
        .unwrap();
    match fresh.apply_listeners(&bad) {
        Err(EngineError::Value(m)) => assert_eq!(m, err),
        other => panic!("{other:?}"),
    }
    fresh.stop();
    assert!(
        err.contains("virtual_hosts[1]") && err.contains("nope"),
        "{err}"
    );
    assert_eq!(get(&mut c, "d", &mut ups).await.1, "d2");
    assert_eq!(get(&mut c, "y", &mut ups).await.2, Some(1));

    // A full apply that moves the clusters' positions, then a route change over them: the
    // unchanged virtual hosts still reach their own clusters.
    let ba = json!([cluster("b", pb, json!({})), cluster("a", pa, json!({}))]);
    engine.apply(&snapshot(ba, "b", "d2")).unwrap();
    assert_eq!(get(&mut c, "x", &mut ups).await.2, Some(0));
    engine
        .apply_listeners(&snapshot(json!([]), "a", "d2"))
        .unwrap();
    assert_eq!(get(&mut c, "x", &mut ups).await.2, Some(0));
    assert_eq!(get(&mut c, "y", &mut ups).await.2, Some(0));
    engine
        .apply_listeners(&snapshot(json!([]), "b", "d4"))
        .unwrap();
    assert_eq!(get(&mut c, "d", &mut ups).await.1, "d4");
    assert_eq!(get(&mut c, "x", &mut ups).await.2, Some(0));
    assert_eq!(get(&mut c, "y", &mut ups).await.2, Some(1));
    engine.stop();
}
