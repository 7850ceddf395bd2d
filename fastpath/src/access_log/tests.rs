//! Unit tests of the access log format parser, formatter and filters (no timing asserts:
//! every instant is fixed relative to the entry's start).
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use super::fields::{ClusterNames, Entry, Fields, LogType};
use super::filter::Filter;
use super::format::{Format, parse};
use crate::config::access_log::{
    AccessLogFilter, AccessLogFormat, Comparison, ComparisonOp, JsonFormatValue,
};
use crate::local_reply::{ResponseFlag, ResponseFlags};

pub(super) const REQ: &[u8] = b"GET /a/b?x=1 HTTP/1.1\r\nhost: example.com\r\nuser-agent: curl/8\r\nx-forwarded-for: 1.2.3.4\r\nx-dup: a\r\nX-Dup: b\r\nx-request-id: rid-1\r\n\r\n";
const RESP: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-envoy-upstream-service-time: 7\r\n\r\n";

pub(super) fn fields() -> Fields {
    let mut f = Fields::new();
    f.start = UNIX_EPOCH + Duration::new(1_795_683_627, 967_410_000);
    f.req_done = Some(f.begun);
    f.first_byte = Some(f.begun + Duration::from_millis(5));
    f.bytes_received = 10;
    f.bytes_sent = 335;
    f.upstream_host = Some("127.0.0.1:18802".parse().unwrap());
    f.upstream_local = Some("127.0.0.1:51762".parse().unwrap());
    f.details = "via_upstream";
    f.resp_head = RESP.to_vec();
    f
}

pub(super) fn entry<'a>(f: &'a Fields, req: &'a [u8]) -> Entry<'a> {
    Entry {
        fields: f,
        kind: LogType::DownstreamEnd,
        termination: "",
        transport_failure: "",
        status: 200,
        flags: ResponseFlags::default(),
        minor: Some(1),
        req_head: req,
        route_name: "r1",
        cluster: Some(ClusterNames {
            name: "live",
            stat: "live",
        }),
        downstream_remote: "127.0.0.1:50196".parse().unwrap(),
        downstream_local: "127.0.0.1:18801".parse().unwrap(),
        connection_id: 7,
        tls: None,
        end: f.begun + Duration::from_millis(6),
        generate_request_id: true,
        generated_id: OnceCell::new(),
        req_index: OnceCell::new(),
    }
}

pub(super) fn text(fmt: &str, e: &Entry<'_>) -> String {
    let mut out = Vec::new();
    Format::compile(&AccessLogFormat::Text(fmt.into()))
        .unwrap()
        .render(e, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn default_format_renders_like_envoy() {
    let f = fields();
    let e = entry(&f, REQ);
    let mut out = Vec::new();
    Format::compile(&AccessLogFormat::Default)
        .unwrap()
        .render(&e, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "[2026-11-26T09:00:27.967Z] \"GET /a/b?x=1 HTTP/1.1\" 200 - 10 335 6 7 \"1.2.3.4\" \
         \"curl/8\" \"rid-1\" \"example.com\" \"127.0.0.1:18802\"\n"
    );
}

#[test]
fn operators_and_missing_values() {
    let f = fields();
    let e = entry(&f, REQ);
    assert_eq!(
        text(
            "%REQ(:METHOD)%|%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%|%REQ(:AUTHORITY)%|%REQ(USER-AGENT):3%|%REQ(X-DUP)%|%REQ(NOPE)%",
            &e
        ),
        "GET|/a/b?x=1|example.com|cur|a,b|-"
    );
    assert_eq!(
        text(
            "%RESP(CONTENT-TYPE)%|%RESP(NOPE?X-ENVOY-UPSTREAM-SERVICE-TIME)%|%PROTOCOL%|%RESPONSE_CODE%|%RESPONSE_FLAGS%|%RESPONSE_CODE_DETAILS%",
            &e
        ),
        "text/plain|7|HTTP/1.1|200|-|via_upstream"
    );
    assert_eq!(
        text(
            "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %REQUEST_DURATION% %RESPONSE_DURATION%",
            &e
        ),
        "10 335 6 0 5"
    );
    assert_eq!(
        text(
            "%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %ROUTE_NAME%",
            &e
        ),
        "127.0.0.1:18802 live 127.0.0.1:51762 127.0.0.1:50196 127.0.0.1 127.0.0.1:18801 r1"
    );
    assert_eq!(
        text(
            "%UPSTREAM_TRANSPORT_FAILURE_REASON% %REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_URI_SAN%",
            &e
        ),
        "- - -"
    );
    let tls = crate::conn_info::TlsInfo {
        sni: Some("api.test".into()),
        terminated: true,
        inspected: true,
        version: Some("TLSv1.3"),
        peer_cert: Some(crate::conn_info::PeerCert {
            uri_sans: vec!["spiffe://cluster.local/ns/default/sa/web".into()],
            subject: "CN=web,O=test".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut with_tls = entry(&f, REQ);
    with_tls.tls = Some(&tls);
    assert_eq!(
        text(
            "%REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_PEER_SUBJECT% %DOWNSTREAM_TLS_VERSION%",
            &with_tls
        ),
        "api.test spiffe://cluster.local/ns/default/sa/web CN=web,O=test TLSv1.3"
    );
    assert_eq!(
        text("%START_TIME(%s.%3f)% no newline", &e),
        "1795683627.967 no newline"
    );
}

#[test]
fn a_local_reply_without_upstream_prints_dashes_and_a_generated_request_id() {
    let mut f = fields();
    f.upstream_host = None;
    f.first_byte = None;
    f.resp_head.clear();
    let mut e = entry(&f, b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n");
    e.cluster = None;
    e.route_name = "";
    e.status = 404;
    e.flags.insert(ResponseFlag::NoRoute);
    let line = text(
        "%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME% %RESPONSE_DURATION% %RESPONSE_FLAGS% %RESP(CONTENT-TYPE)% %REQ(X-REQUEST-ID)% %REQ(X-REQUEST-ID)%",
        &e,
    );
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(&parts[..6], ["-", "-", "-", "-", "NR", "-"]);
    assert_eq!(parts[6].len(), 36, "a UUID: {line}");
    assert_eq!(parts[6], parts[7], "one id per line");
    // No parsed head (a rejected request): no request id is made up.
    let e = entry(&f, b"");
    assert_eq!(text("%REQ(X-REQUEST-ID)% %PROTOCOL%", &e), "- HTTP/1.1");
}

#[test]
fn json_format_types_values_like_envoy() {
    let f = fields();
    let mut e = entry(&f, REQ);
    e.route_name = "";
    let mut nested = BTreeMap::new();
    nested.insert(
        "code".to_string(),
        JsonFormatValue::Text("%RESPONSE_CODE%".into()),
    );
    nested.insert("lit".to_string(), JsonFormatValue::Text("lit".into()));
    let mut map = BTreeMap::new();
    for (k, v) in [
        ("status", "%RESPONSE_CODE%"),
        ("bytes", "%BYTES_SENT%"),
        ("dur", "%DURATION%"),
        ("route", "%ROUTE_NAME%"),
        ("flags", "%RESPONSE_FLAGS%"),
        ("method", "%REQ(:METHOD)%"),
        ("mixed", "x %RESPONSE_CODE% %ROUTE_NAME% \"q\""),
        ("sni", "%REQUESTED_SERVER_NAME%"),
    ] {
        map.insert(k.to_string(), JsonFormatValue::Text(v.into()));
    }
    map.insert("nested".to_string(), JsonFormatValue::Object(nested));
    let mut out = Vec::new();
    Format::compile(&AccessLogFormat::Json(map))
        .unwrap()
        .render(&e, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"bytes\":335,\"dur\":6,\"flags\":\"-\",\"method\":\"GET\",\"mixed\":\"x 200 - \\\"q\\\"\",\
         \"nested\":{\"code\":200,\"lit\":\"lit\"},\"route\":null,\"sni\":null,\"status\":200}\n"
    );
}

#[test]
fn malformed_formats_are_errors() {
    for (fmt, want) in [
        ("%FOO%", "unknown command operator %FOO%"),
        ("100%", "invalid command at position 3"),
        ("%REQ%", "needs a header name"),
        ("%REQ()%", "expected one header name"),
        ("%REQ(a?b?c)%", "expected one header name"),
        ("%RESPONSE_CODE(x)%", "takes no argument"),
        ("%DURATION:3%", "length limit"),
        ("%REQ(x", "invalid command"),
        ("%START_TIME(%Q)%", "%Q"),
        ("%req(x)%", "invalid command"),
    ] {
        let err = parse(fmt).unwrap_err();
        assert!(err.contains(want), "{fmt}: {err}");
    }
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), JsonFormatValue::Text("%NOPE%".into()));
    let err = Format::compile(&AccessLogFormat::Json(map)).unwrap_err();
    assert!(err.starts_with("k: unknown command"), "{err}");
}

#[test]
fn needs_follow_the_operators() {
    let f = Format::compile(&AccessLogFormat::Default).unwrap();
    assert!(f.needs().resp_head);
    assert!(!f.needs().upstream_local);
    let f = Format::compile(&AccessLogFormat::Text("%UPSTREAM_LOCAL_ADDRESS%".into())).unwrap();
    assert!(!f.needs().resp_head);
    assert!(f.needs().upstream_local);
}

fn cmp(op: ComparisonOp, value: u64) -> Comparison {
    Comparison { op, value }
}

#[test]
fn filters() {
    let f = fields();
    let mut e = entry(&f, REQ);
    e.status = 503;
    e.flags.insert(ResponseFlag::NoHealthyUpstream);
    let c = |cfg: AccessLogFilter| Filter::compile(&cfg).unwrap();
    assert!(c(AccessLogFilter::StatusCode(cmp(ComparisonOp::Ge, 500))).matches(&e));
    assert!(!c(AccessLogFilter::StatusCode(cmp(ComparisonOp::Le, 499))).matches(&e));
    assert!(c(AccessLogFilter::StatusCode(cmp(ComparisonOp::Eq, 503))).matches(&e));
    assert!(!c(AccessLogFilter::StatusCode(cmp(ComparisonOp::Ne, 503))).matches(&e));
    assert!(c(AccessLogFilter::Duration(cmp(ComparisonOp::Ge, 6))).matches(&e));
    assert!(!c(AccessLogFilter::Duration(cmp(ComparisonOp::Ge, 7))).matches(&e));
    assert!(c(AccessLogFilter::NotHealthCheck).matches(&e));
    assert!(c(AccessLogFilter::ResponseFlag(vec![])).matches(&e));
    assert!(
        c(AccessLogFilter::ResponseFlag(vec![
            "NR".into(),
            "UH".into()
        ]))
        .matches(&e)
    );
    // A valid Envoy flag meshcore never sets compiles and never matches.
    assert!(!c(AccessLogFilter::ResponseFlag(vec!["LH".into()])).matches(&e));
    let and = AccessLogFilter::And(vec![
        AccessLogFilter::StatusCode(cmp(ComparisonOp::Ge, 500)),
        AccessLogFilter::ResponseFlag(vec!["NR".into()]),
    ]);
    assert!(!c(and.clone()).matches(&e));
    let AccessLogFilter::And(parts) = and else {
        unreachable!()
    };
    assert!(c(AccessLogFilter::Or(parts)).matches(&e));
    let mut ok = entry(&f, REQ);
    ok.status = 200;
    assert!(!c(AccessLogFilter::ResponseFlag(vec![])).matches(&ok));
    let err = Filter::compile(&AccessLogFilter::Or(vec![AccessLogFilter::ResponseFlag(
        vec!["XX".into()],
    )]))
    .unwrap_err();
    assert_eq!(
        err,
        "or_filter.filters[0].response_flag_filter.flags[0]: unknown flag \"XX\""
    );
}

#[test]
fn a_connect_has_no_path() {
    let f = fields();
    let e = entry(
        &f,
        b"CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\n\r\n",
    );
    assert_eq!(
        text("%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)%", &e),
        "CONNECT - db.internal:5432"
    );
}

#[test]
fn connection_operators_render_the_entry_or_a_dash() {
    let f = fields();
    let mut e = entry(&f, REQ);
    let ops =
        "%ACCESS_LOG_TYPE% %CONNECTION_TERMINATION_DETAILS% %DOWNSTREAM_TRANSPORT_FAILURE_REASON%";
    assert_eq!(text(ops, &e), "DownstreamEnd - -");
    e.kind = LogType::TcpPeriodic;
    e.termination = "rbac_access_denied_matched_policy[none]";
    e.transport_failure = "TLS_error:|x:TLS_error_end";
    assert_eq!(
        text(ops, &e),
        "TcpPeriodic rbac_access_denied_matched_policy[none] TLS_error:|x:TLS_error_end"
    );
    let names = [
        (LogType::NotSet, "NotSet"),
        (LogType::TcpUpstreamConnected, "TcpUpstreamConnected"),
        (LogType::TcpConnectionEnd, "TcpConnectionEnd"),
        (LogType::DownstreamStart, "DownstreamStart"),
        (LogType::DownstreamPeriodic, "DownstreamPeriodic"),
        (
            LogType::DownstreamTunnelSuccessfullyEstablished,
            "DownstreamTunnelSuccessfullyEstablished",
        ),
    ];
    for (kind, name) in names {
        assert_eq!(kind.name(), name);
    }
    // JSON: a missing value is null, a present one a string.
    let mut json = BTreeMap::new();
    json.insert(
        "why".to_string(),
        JsonFormatValue::Text("%CONNECTION_TERMINATION_DETAILS%".into()),
    );
    json.insert(
        "type".to_string(),
        JsonFormatValue::Text("%ACCESS_LOG_TYPE%".into()),
    );
    let mut out = Vec::new();
    e.termination = "";
    Format::compile(&AccessLogFormat::Json(json))
        .unwrap()
        .render(&e, &mut out);
    assert_eq!(out, b"{\"type\":\"TcpPeriodic\",\"why\":null}\n");
}

#[test]
fn addresses_render_as_their_display() {
    for a in [
        "127.0.0.1:80",
        "10.201.0.2:65535",
        "0.0.0.0:0",
        "255.255.255.255:8080",
        "[::1]:443",
        "[2001:db8::7]:9",
    ] {
        let a: std::net::SocketAddr = a.parse().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            super::format::addr(&mut out, Some(a)),
            super::format::Kind::Str
        );
        assert_eq!(String::from_utf8(out).unwrap(), a.to_string());
    }
    let mut out = Vec::new();
    assert_eq!(
        super::format::addr(&mut out, None),
        super::format::Kind::Missing
    );
    assert!(out.is_empty());
}

#[test]
fn copy_from_and_reset_keep_the_buffers() {
    let mut src = fields();
    src.req_head = REQ.to_vec();
    src.route_name = "r1".into();
    src.filter_details = "rbac_access_denied_matched_policy[none]".into();
    src.attempts = 2;
    let mut copy = Fields::new();
    copy.req_head = Vec::with_capacity(1024);
    copy.resp_head = Vec::with_capacity(1024);
    let (req_buf, resp_buf) = (copy.req_head.as_ptr(), copy.resp_head.as_ptr());
    copy.copy_from(&src);
    assert_eq!(format!("{copy:?}"), format!("{src:?}"));
    assert_eq!(copy.req_head.as_ptr(), req_buf);
    assert_eq!(copy.resp_head.as_ptr(), resp_buf);
    // A new request: every value fresh, the buffers empty but kept.
    copy.reset(Default::default());
    assert!(copy.req_head.is_empty() && copy.route_name.is_empty() && copy.attempts == 0);
    assert!(copy.upstream_host.is_none() && !copy.ready);
    assert_eq!(copy.req_head.as_ptr(), req_buf);
}
