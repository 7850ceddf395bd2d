//! Tests of `RouteTable::compile_reusing`: unchanged virtual hosts shared, changed ones
//! compiled again, and the same table and errors as a fresh compile.
use std::sync::Arc;

use super::*;

fn cluster_index(name: &str) -> Option<usize> {
    ["web", "api"].iter().position(|c| *c == name)
}

fn cfg(json: &str) -> snapshot::RouteConfig {
    serde_json::from_str(json).expect("valid route config JSON")
}

fn vhost(name: &str, domain: &str, cluster: &str) -> String {
    format!(
        r#"{{"name": "{name}", "domains": ["{domain}"], "routes": [{{"name": "{name}-r",
        "match": {{"path": {{"prefix": "/"}}}}, "action": {{"route": {{"target": {{"cluster": "{cluster}"}}}}}}}}]}}"#
    )
}

fn config(vhosts: &[String], headers: &str) -> snapshot::RouteConfig {
    cfg(&format!(
        r#"{{"virtual_hosts": [{}], "headers": {headers}}}"#,
        vhosts.join(",")
    ))
}

fn reusing(new: &snapshot::RouteConfig, old: &snapshot::RouteConfig, t: &RouteTable) -> RouteTable {
    RouteTable::compile_reusing(new, &cluster_index, Some((old, t))).expect("compiles")
}

/// The compiled virtual hosts as text (the domain index holds hash maps, whose order varies).
fn shown(t: &RouteTable) -> String {
    format!("{:?}", t.virtual_hosts)
}

fn cluster_of(t: &RouteTable, authority: &str) -> Option<usize> {
    let view = RequestView {
        method: "GET",
        path: "/",
        authority,
        scheme: "http",
        headers: &[],
    };
    match t.select(&view)?.action(&view) {
        Action::Forward(f) => Some(f.pick_cluster(0).0),
        _ => None,
    }
}

#[test]
fn a_changed_virtual_host_is_compiled_again_and_the_others_are_shared() {
    let old_cfg = config(
        &[
            vhost("a", "a", "web"),
            vhost("b", "b", "web"),
            vhost("c", "c", "web"),
        ],
        "{}",
    );
    let old = RouteTable::compile(&old_cfg, &cluster_index).unwrap();
    let new_cfg = config(
        &[
            vhost("a", "a", "web"),
            vhost("b", "b", "api"),
            vhost("c", "c", "web"),
        ],
        "{}",
    );
    let new = reusing(&new_cfg, &old_cfg, &old);
    assert!(Arc::ptr_eq(&new.virtual_hosts[0], &old.virtual_hosts[0]));
    assert!(!Arc::ptr_eq(&new.virtual_hosts[1], &old.virtual_hosts[1]));
    assert!(Arc::ptr_eq(&new.virtual_hosts[2], &old.virtual_hosts[2]));
    assert_eq!(cluster_of(&new, "b"), Some(1));
    assert_eq!(cluster_of(&old, "b"), Some(0));
    let fresh = RouteTable::compile(&new_cfg, &cluster_index).unwrap();
    assert_eq!(shown(&new), shown(&fresh));
}

#[test]
fn a_moved_virtual_host_is_found_by_name_and_reports_its_new_position() {
    let old_cfg = config(&[vhost("a", "a", "web"), vhost("b", "b", "api")], "{}");
    let old = RouteTable::compile(&old_cfg, &cluster_index).unwrap();
    let new_cfg = config(
        &[
            vhost("n", "n", "web"),
            vhost("b", "b", "api"),
            vhost("a", "a", "web"),
        ],
        "{}",
    );
    let new = reusing(&new_cfg, &old_cfg, &old);
    assert!(Arc::ptr_eq(&new.virtual_hosts[2], &old.virtual_hosts[0]));
    assert!(Arc::ptr_eq(&new.virtual_hosts[1], &old.virtual_hosts[1]));
    let view = RequestView {
        method: "GET",
        path: "/",
        authority: "a",
        scheme: "http",
        headers: &[],
    };
    // Per-route filter configs are looked up by these positions: the new ones.
    assert_eq!(new.select(&view).unwrap().indices(), (2, 0));
    assert_eq!(old.select(&view).unwrap().indices(), (0, 0));
    let fresh = RouteTable::compile(&new_cfg, &cluster_index).unwrap();
    assert_eq!(shown(&new), shown(&fresh));
}

#[test]
fn route_config_level_mutations_appearing_recompile_every_virtual_host() {
    let old_cfg = config(&[vhost("a", "a", "web")], "{}");
    let old = RouteTable::compile(&old_cfg, &cluster_index).unwrap();
    let new_cfg = config(
        &[vhost("a", "a", "web")],
        r#"{"request_headers_to_add": [{"key": "x-mesh", "value": "1"}]}"#,
    );
    let new = reusing(&new_cfg, &old_cfg, &old);
    assert!(!Arc::ptr_eq(&new.virtual_hosts[0], &old.virtual_hosts[0]));
    assert!(new.virtual_hosts[0].routes[0].request_mutations);
    assert!(!old.virtual_hosts[0].routes[0].request_mutations);
    // Other route-config-level values (same presence) keep the virtual hosts shared.
    let other_cfg = config(
        &[vhost("a", "a", "web")],
        r#"{"request_headers_to_add": [{"key": "x-mesh", "value": "2"}]}"#,
    );
    let other = reusing(&other_cfg, &new_cfg, &new);
    assert!(Arc::ptr_eq(&other.virtual_hosts[0], &new.virtual_hosts[0]));
    let fresh = RouteTable::compile(&other_cfg, &cluster_index).unwrap();
    assert_eq!(shown(&other), shown(&fresh));
}

#[test]
fn errors_are_a_fresh_compiles_and_leave_the_previous_table_as_it_was() {
    let old_cfg = config(&[vhost("a", "a", "web"), vhost("b", "b", "web")], "{}");
    let old = RouteTable::compile(&old_cfg, &cluster_index).unwrap();
    let before = shown(&old);
    for bad in [
        config(&[vhost("a", "a", "web"), vhost("b", "b", "nope")], "{}"),
        config(&[vhost("a", "a", "web"), vhost("b", "a", "web")], "{}"),
    ] {
        let err = RouteTable::compile_reusing(&bad, &cluster_index, Some((&old_cfg, &old)))
            .map(|_| ())
            .unwrap_err();
        let fresh = RouteTable::compile(&bad, &cluster_index)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err, fresh);
        assert!(err.starts_with("virtual_hosts[1]"), "{err}");
    }
    assert_eq!(shown(&old), before);
    assert_eq!(cluster_of(&old, "b"), Some(0));
}
