//! Unit tests of the operators of `extra.rs` (addresses and ports, ids, counts, transfer
//! durations, long flags, constants, the peer certificate's details) and of their JSON types.
use std::collections::BTreeMap;

use super::format::{Format, parse, simple_operators};
use super::tests::{REQ, entry, fields, text};
use crate::config::access_log::{AccessLogFormat, JsonFormatValue};
use crate::conn_info::{PeerCert, TlsInfo};
use crate::local_reply::ResponseFlag;

fn json(fields: &[(&str, &str)], e: &super::Entry<'_>) -> serde_json::Value {
    let map: BTreeMap<String, JsonFormatValue> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), JsonFormatValue::Text(v.to_string())))
        .collect();
    let mut out = Vec::new();
    Format::compile(&AccessLogFormat::Json(map))
        .unwrap()
        .render(e, &mut out);
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn addresses_and_ports() {
    let f = fields();
    let e = entry(&f, REQ);
    assert_eq!(
        text(
            "%UPSTREAM_REMOTE_ADDRESS% %UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_REMOTE_PORT% \
             %UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %UPSTREAM_LOCAL_PORT%",
            &e
        ),
        "127.0.0.1:18802 127.0.0.1 18802 127.0.0.1 51762"
    );
    assert_eq!(
        text(
            "%DOWNSTREAM_REMOTE_PORT% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% \
             %DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% \
             %DOWNSTREAM_DIRECT_REMOTE_PORT%",
            &e
        ),
        "50196 127.0.0.1 18801 127.0.0.1:50196 127.0.0.1 50196"
    );
    let v = json(
        &[
            ("port", "%UPSTREAM_REMOTE_PORT%"),
            ("dport", "%DOWNSTREAM_LOCAL_PORT%"),
            ("ip", "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%"),
        ],
        &e,
    );
    assert_eq!(
        v,
        serde_json::json!({"port": 18802, "dport": 18801, "ip": "127.0.0.1"})
    );
}

#[test]
fn a_client_address_from_x_forwarded_for_has_port_zero() {
    let mut f = fields();
    f.remote = Some("203.0.113.7:0".parse().unwrap());
    let e = entry(&f, REQ);
    assert_eq!(
        text(
            "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
            &e
        ),
        "203.0.113.7:0 203.0.113.7 0 127.0.0.1:50196"
    );
}

#[test]
fn a_failed_connect_has_a_host_but_no_upstream_connection() {
    let mut f = fields();
    f.upstream_local = None;
    f.first_byte = None;
    let e = entry(&f, REQ);
    assert_eq!(
        text(
            "%UPSTREAM_HOST% %UPSTREAM_REMOTE_ADDRESS% %UPSTREAM_REMOTE_PORT% %UPSTREAM_LOCAL_PORT% %REQUEST_TX_DURATION% %RESPONSE_TX_DURATION%",
            &e
        ),
        "127.0.0.1:18802 - - - - -"
    );
    let v = json(
        &[
            ("port", "%UPSTREAM_REMOTE_PORT%"),
            ("tx", "%RESPONSE_TX_DURATION%"),
        ],
        &e,
    );
    assert_eq!(v, serde_json::json!({"port": null, "tx": null}));
}

#[test]
fn counts_ids_and_durations_are_numbers() {
    let mut f = fields();
    f.attempts = 2;
    let e = entry(&f, REQ);
    // Start +0 ms: request sent; first response byte +5 ms; end +6 ms.
    let v = json(
        &[
            ("attempts", "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"),
            ("conn", "%CONNECTION_ID%"),
            ("rq_tx", "%REQUEST_TX_DURATION%"),
            ("rs_tx", "%RESPONSE_TX_DURATION%"),
        ],
        &e,
    );
    assert_eq!(
        v,
        serde_json::json!({"attempts": 2, "conn": 7, "rq_tx": 0, "rs_tx": 1})
    );
    // A body still arriving when the response started: sent by the first response byte.
    let mut f = fields();
    f.req_done = None;
    let e = entry(&f, REQ);
    assert_eq!(text("%REQUEST_TX_DURATION%", &e), "5");
    let f = super::Fields::new();
    let e = entry(&f, REQ);
    assert_eq!(text("%UPSTREAM_REQUEST_ATTEMPT_COUNT%", &e), "0");
}

#[test]
fn long_response_flags_in_envoys_order() {
    let f = fields();
    let mut e = entry(&f, REQ);
    assert_eq!(text("%RESPONSE_FLAGS_LONG%", &e), "-");
    e.flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
    e.flags.insert(ResponseFlag::UpstreamConnectionFailure);
    assert_eq!(
        text("%RESPONSE_FLAGS% %RESPONSE_FLAGS_LONG%", &e),
        "UF,URX UpstreamConnectionFailure,UpstreamRetryLimitExceeded"
    );
    e.flags = Default::default();
    e.flags.insert(ResponseFlag::NoRoute);
    assert_eq!(text("%RESPONSE_FLAGS_LONG%", &e), "NoRouteFound");
}

#[test]
fn request_header_without_query() {
    let f = fields();
    let e = entry(&f, REQ);
    assert_eq!(
        text(
            "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)% %REQ_WITHOUT_QUERY(:PATH):3% %REQ_WITHOUT_QUERY(NOPE)% %REQ_WITHOUT_QUERY(USER-AGENT)%",
            &e
        ),
        "/a/b /a/ - curl/8"
    );
}

#[test]
fn stream_id_is_the_request_id_and_trace_id_needs_a_trace() {
    let mut f = fields();
    let e = entry(&f, REQ);
    assert_eq!(text("%STREAM_ID% %TRACE_ID%", &e), "rid-1 -");
    f.trace = Some(crate::tracing::SpanCtx {
        trace_hi: 0x463a_c35c_9f64_13ad,
        trace_lo: 0x4848_5a39_53bb_6124,
        trace128: true,
        span: 1,
        parent: 0,
        sampled: true,
        shared: false,
        rid: None,
    });
    let e = entry(&f, REQ);
    assert_eq!(text("%TRACE_ID%", &e), "463ac35c9f6413ad48485a3953bb6124");
    f.trace.as_mut().unwrap().trace128 = false;
    let e = entry(&f, REQ);
    assert_eq!(text("%TRACE_ID%", &e), "48485a3953bb6124");
    // No x-request-id: the generated one, the same as %REQ(X-REQUEST-ID)%.
    let e = entry(&f, b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    let line = text("%STREAM_ID% %REQ(X-REQUEST-ID)%", &e);
    let (a, b) = line.split_once(' ').unwrap();
    assert_eq!((a.len(), a), (36, b));
}

#[test]
fn a_connection_stream_id_replaces_the_request_id() {
    let mut f = fields();
    f.stream_id = Some(*b"0f8c6d2e-1b3a-4c5d-9e7f-a1b2c3d4e5f6");
    f.attempts = 3;
    let e = entry(&f, b"");
    assert_eq!(
        text("%STREAM_ID% %UPSTREAM_REQUEST_ATTEMPT_COUNT%", &e),
        "0f8c6d2e-1b3a-4c5d-9e7f-a1b2c3d4e5f6 3"
    );
    assert_eq!(
        json(&[("id", "%STREAM_ID%")], &e),
        serde_json::json!({"id": "0f8c6d2e-1b3a-4c5d-9e7f-a1b2c3d4e5f6"})
    );
}

#[test]
fn hostname_and_environment_are_read_once() {
    let f = fields();
    let e = entry(&f, REQ);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(text("%HOSTNAME%", &e), host.trim());
    // PATH is set for every test process; a variable nobody sets is missing.
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        text("%ENVIRONMENT(PATH):4%", &e),
        &path[..4.min(path.len())]
    );
    assert_eq!(
        text("%ENVIRONMENT(MESHCORE_SURELY_UNSET_VARIABLE)%", &e),
        "-"
    );
    let v = json(
        &[("e", "%ENVIRONMENT(MESHCORE_SURELY_UNSET_VARIABLE)%")],
        &e,
    );
    assert_eq!(v, serde_json::json!({"e": "-"}));
}

#[test]
fn tls_cipher_local_san_and_peer_certificate_details() {
    let ca = crate::tls::test_certs::Ca::generate();
    let leaf = ca.leaf("web", &["web.default.svc", "web"], &[]);
    let der = leaf.der();
    let mut peer = crate::tls::cert::peer_cert(&der);
    peer.chain_der = vec![der.clone().into()];
    let tls = TlsInfo {
        terminated: true,
        cipher: Some("TLS_AES_128_GCM_SHA256"),
        local_uri_sans: vec!["spiffe://cluster.local/ns/default/sa/proxy".into()],
        peer_cert: Some(peer),
        ..Default::default()
    };
    let f = fields();
    let mut e = entry(&f, REQ);
    e.tls = Some(&tls);
    assert_eq!(
        text(
            "%DOWNSTREAM_TLS_CIPHER% %DOWNSTREAM_LOCAL_URI_SAN% %DOWNSTREAM_PEER_DNS_SAN% %DOWNSTREAM_PEER_ISSUER%",
            &e
        ),
        "TLS_AES_128_GCM_SHA256 spiffe://cluster.local/ns/default/sa/proxy web.default.svc,web CN=test ca,O=meshcore test"
    );
    let sha1 = data_encoding::HEXLOWER
        .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref());
    let line = text(
        "%DOWNSTREAM_PEER_FINGERPRINT_1% %DOWNSTREAM_PEER_FINGERPRINT_256% %DOWNSTREAM_PEER_CERT_V_START% %DOWNSTREAM_PEER_CERT_V_END(%Y)%",
        &e,
    );
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts[0], sha1);
    assert_eq!(parts[1].len(), 64);
    // rcgen's default validity.
    assert_eq!(&parts[2..], ["1975-01-01T00:00:00.000Z", "4096"]);
    let serial = text("%DOWNSTREAM_PEER_SERIAL%", &e);
    assert!(
        !serial.starts_with("00") && serial.len() >= 2 && serial.len().is_multiple_of(2),
        "{serial}"
    );
    assert!(
        serial
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    // Plain connections and connections without a client certificate: missing.
    let plain = entry(&f, REQ);
    let all = "%DOWNSTREAM_TLS_CIPHER% %DOWNSTREAM_LOCAL_URI_SAN% %DOWNSTREAM_PEER_DNS_SAN% %DOWNSTREAM_PEER_ISSUER% %DOWNSTREAM_PEER_SERIAL% %DOWNSTREAM_PEER_FINGERPRINT_1% %DOWNSTREAM_PEER_FINGERPRINT_256% %DOWNSTREAM_PEER_CERT_V_START% %DOWNSTREAM_PEER_CERT_V_END%";
    assert_eq!(text(all, &plain), "- - - - - - - - -");
    let no_cert = TlsInfo {
        terminated: true,
        peer_cert: None,
        ..Default::default()
    };
    e.tls = Some(&no_cert);
    assert_eq!(text(all, &e), "- - - - - - - - -");
    // A certificate that does not parse has no details.
    let junk = PeerCert {
        chain_der: vec![b"junk"[..].into()],
        ..Default::default()
    };
    assert!(junk.details().is_none());
}

#[test]
fn upstream_cluster_raw_is_the_clusters_name() {
    let f = fields();
    let mut e = entry(&f, REQ);
    assert_eq!(text("%UPSTREAM_CLUSTER_RAW%", &e), "live");
    e.cluster = None;
    assert_eq!(text("%UPSTREAM_CLUSTER_RAW%", &e), "-");
}

#[test]
fn upstream_cluster_is_the_alt_stat_name_and_raw_the_name() {
    let f = fields();
    let mut e = entry(&f, REQ);
    e.cluster = Some(super::fields::ClusterNames {
        name: "live",
        stat: "live_stats",
    });
    assert_eq!(
        text("%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%", &e),
        "live_stats live"
    );
}

#[test]
fn needs_and_argument_errors() {
    let needs = |s: &str| {
        Format::compile(&AccessLogFormat::Text(s.into()))
            .unwrap()
            .needs()
    };
    assert!(needs("%DOWNSTREAM_REMOTE_ADDRESS%").remote);
    assert!(needs("%DOWNSTREAM_REMOTE_PORT%").remote);
    assert!(!needs("%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_PORT%").remote);
    assert!(needs("%UPSTREAM_LOCAL_PORT%").upstream_local);
    assert!(!needs("%UPSTREAM_REMOTE_PORT%").upstream_local);
    assert!(needs("%STREAM_ID%").req_head && needs("%STREAM_ID%").stream_id);
    assert!(!needs("%REQ(X-REQUEST-ID)% %CONNECTION_ID%").stream_id);
    assert!(needs("%REQ_WITHOUT_QUERY(:PATH)%").req_head);
    assert_eq!(
        needs("%CONNECTION_ID% %HOSTNAME% %RESPONSE_FLAGS_LONG%"),
        Default::default()
    );
    for (fmt, want) in [
        ("%ENVIRONMENT%", "needs a variable name"),
        ("%ENVIRONMENT()%", "needs a variable name"),
        ("%HOSTNAME(x)%", "takes no argument"),
        ("%CONNECTION_ID:3%", "length limit"),
        ("%REQ_WITHOUT_QUERY%", "needs a header name"),
        ("%DOWNSTREAM_PEER_CERT_V_START(%Q)%", "%Q"),
        ("%UPSTREAM_CONNECTION_ID%", "unknown command operator"),
    ] {
        let err = parse(fmt).unwrap_err();
        assert!(err.contains(want), "{fmt}: {err}");
    }
}

#[test]
fn a_traced_local_reply_logs_the_request_id_tracing_decided() {
    let mut f = fields();
    let rid = *b"11111111-2222-9333-8444-555555555555";
    f.trace = Some(crate::tracing::SpanCtx {
        rid: Some(rid),
        ..Default::default()
    });
    let e = entry(&f, b"GET /nowhere HTTP/1.1\r\nhost: a\r\n\r\n");
    let want = String::from_utf8(rid.to_vec()).unwrap();
    assert_eq!(
        text("%STREAM_ID% %REQ(X-REQUEST-ID)%", &e),
        format!("{want} {want}")
    );
}

#[test]
fn a_tcp_proxy_connection_has_an_upstream_remote_address_once_connected() {
    let mut f = fields();
    f.first_byte = None;
    let e = entry(&f, b"");
    assert_eq!(
        text("%UPSTREAM_REMOTE_ADDRESS% %UPSTREAM_REMOTE_PORT%", &e),
        "127.0.0.1:18802 18802"
    );
}

/// The list the config check uses (`_fastpath.access_log_operators()`) is what `parse` takes:
/// each name alone, and not with an argument.
#[test]
fn every_exported_operator_parses_without_an_argument() {
    let names: Vec<&str> = simple_operators().collect();
    assert!(names.contains(&"RESPONSE_CODE") && names.contains(&"HOSTNAME"));
    for name in names {
        let ops = parse(&format!("%{name}%")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ops.len(), 1, "{name}");
        assert!(
            parse(&format!("%{name}(x)%")).is_err(),
            "{name} takes no argument"
        );
    }
    for with_argument in ["REQ", "RESP", "START_TIME", "ENVIRONMENT"] {
        assert!(!simple_operators().any(|n| n == with_argument));
    }
}
