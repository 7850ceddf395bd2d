//! Configuration as the engine receives it: the serde snapshot types and their parsing.
pub mod access_log;
pub mod http2;
pub mod jwt;
pub mod rbac;
pub mod snapshot;
pub mod tls;
pub mod tracing;

/// Parses a snapshot from JSON bytes; unknown fields and bad values are errors naming the
/// JSON path (`listeners[0].filter.http_connection_manager.strip_port_mode: unknown variant
/// ...`).
///
/// A plain `serde_json` parse first: tracking the path costs about as much as the parse
/// itself (a key string per map entry), so only a snapshot that fails is parsed again, by
/// `serde_path_to_error` over the same deserializer, to name the path of the same error.
pub fn parse(bytes: &[u8]) -> Result<snapshot::Snapshot, String> {
    // `Deserialize` on the deserializer, not `serde_json::from_slice`: like the path-tracking
    // parse, it does not check for bytes after the snapshot.
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match <snapshot::Snapshot as serde::Deserialize>::deserialize(de) {
        Ok(snap) => Ok(snap),
        Err(plain) => Err(parse_error(bytes, plain)),
    }
}

/// The error of a snapshot `serde_json` refused (`plain`), with its JSON path.
#[cold]
fn parse_error(bytes: &[u8], plain: serde_json::Error) -> String {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, snapshot::Snapshot>(de) {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                format!("invalid snapshot: {inner}")
            } else {
                format!("{path}: {inner}")
            }
        }
        // Not expected (the same deserializer over the same bytes): the error without a path.
        Ok(_) => format!("invalid snapshot: {plain}"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn errors_name_the_json_path() {
        let e = parse(
            br#"{"listeners": [{"name": "a", "address": "::", "port": 1,
            "filter_chains": [{"filter": {"http_connection_manager": {"stat_prefix": "s", "route_config": {},
            "strip_port_mode": "sometimes"}}}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "listeners[0].filter_chains[0].filter.http_connection_manager.strip_port_mode: unknown variant"
            ),
            "{e}"
        );
        let e = parse(br#"{"clusters": [{"name": "c"}, {"name": "d", "conect_timeout_ms": 1}]}"#)
            .unwrap_err();
        assert!(
            e.starts_with("clusters[1].conect_timeout_ms: unknown field"),
            "{e}"
        );
        let e = parse(b"[").unwrap_err();
        assert!(e.starts_with("invalid snapshot: "), "{e}");
        let e = parse(b"{\"listeners\": 3}").unwrap_err();
        assert!(e.starts_with("listeners: invalid type: integer `3`"), "{e}");
        assert_eq!(parse(b"{}").unwrap().local_address, "127.0.0.1");
    }

    /// The snapshot is parsed with plain `serde_json` first and re-parsed with
    /// `serde_path_to_error` only on error: the message must be the one the path-tracking
    /// parse alone gives, path included.
    #[test]
    fn a_failed_fast_parse_reports_the_path_tracking_error() {
        let tracked = |bytes: &[u8]| {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            let e = serde_path_to_error::deserialize::<_, super::snapshot::Snapshot>(de)
                .map(|_| ())
                .unwrap_err();
            let path = e.path().to_string();
            format!("{path}: {}", e.into_inner())
        };
        let route = |action: &str| {
            format!(r#"{{"match": {{"path": {{"prefix": "/"}}}}, "action": {action}}}"#)
        };
        let good = route(r#"{"route": {"target": {"cluster": "c"}}}"#);
        for bad in [
            route(r#"{"route": {"target": {"cluster": "c"}, "timeout_ms": -1}}"#),
            route(
                r#"{"route": {"target": {"cluster": "c"}, "retry_policy": {"num_retries": "2"}}}"#,
            ),
            route(r#"{"route": {"target": {"clustr": "c"}}}"#),
            route(r#"{"teleport": {}}"#),
        ] {
            let snap = format!(
                r#"{{"listeners": [{{"name": "a", "address": "::", "port": 1, "filter_chains": [{{"filter":
                {{"http_connection_manager": {{"stat_prefix": "s", "route_config": {{"virtual_hosts": [
                {{"name": "v0", "domains": ["a"], "routes": [{good}]}},
                {{"name": "v1", "domains": ["b"], "routes": [{good}, {bad}]}}]}}}}}}}}]}}]}}"#
            );
            let e = parse(snap.as_bytes()).unwrap_err();
            assert_eq!(e, tracked(snap.as_bytes()));
            assert!(
                e.starts_with(
                    "listeners[0].filter_chains[0].filter.http_connection_manager.route_config\
                     .virtual_hosts[1].routes[1].action"
                ),
                "{e}"
            );
        }
        let fine = format!(
            r#"{{"listeners": [{{"name": "a", "address": "::", "port": 1, "filter_chains": [{{"filter":
            {{"http_connection_manager": {{"stat_prefix": "s", "route_config": {{"virtual_hosts": [
            {{"name": "v0", "domains": ["a"], "routes": [{good}]}}]}}}}}}}}]}}]}}"#
        );
        assert_eq!(parse(fine.as_bytes()).unwrap().listeners.len(), 1);
    }
}
