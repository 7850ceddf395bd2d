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
pub fn parse(bytes: &[u8]) -> Result<snapshot::Snapshot, String> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("invalid snapshot: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })
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
        assert_eq!(parse(b"{}").unwrap().local_address, "127.0.0.1");
    }
}
