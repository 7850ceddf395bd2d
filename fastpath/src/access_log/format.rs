//! Access log formats: Envoy's command operators (`%REQ(X?Y):Z%`, `%START_TIME(...)%`, ...)
//! parsed once per config into a list of operators, and rendered per request as text or as
//! a JSON object with typed values (numbers for codes, bytes and durations, `null` for a
//! missing value), as Envoy 1.40 renders them.
use std::collections::BTreeMap;

use super::extra::{self, Ext};
use super::fields::{Entry, ms};
use super::head::HeadIndex;
use super::time::{self, TimeFormat};
use crate::config::access_log::{AccessLogFormat, JsonFormatValue};

/// Envoy's default text format (`log_format` absent).
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

/// A header lookup: the name, the fallback name (`X?Y`) and the `:Z` truncation, lower-case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderOp {
    name: Box<str>,
    alt: Option<Box<str>>,
    max: Option<usize>,
}

impl HeaderOp {
    /// A lookup of `name` (lower-case), without fallback or limit.
    pub fn new(name: &str) -> HeaderOp {
        HeaderOp {
            name: name.into(),
            alt: None,
            max: None,
        }
    }

    /// The same lookup without its length limit.
    pub fn unlimited(&self) -> HeaderOp {
        HeaderOp {
            max: None,
            ..self.clone()
        }
    }

    pub fn max(&self) -> Option<usize> {
        self.max
    }
}

/// One piece of a format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Lit(Box<[u8]>),
    StartTime(TimeFormat),
    Req(HeaderOp),
    Resp(HeaderOp),
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    BytesReceived,
    BytesSent,
    Duration,
    RequestDuration,
    ResponseDuration,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    UpstreamTransportFailureReason,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    RouteName,
    RequestedServerName,
    DownstreamPeerUriSan,
    DownstreamPeerSubject,
    DownstreamTlsVersion,
    AccessLogType,
    ConnectionTerminationDetails,
    DownstreamTransportFailureReason,
    /// The operators of `extra.rs`.
    Ext(Ext),
}

/// What rendering wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Missing,
    Str,
    Num,
}

/// The operators without an argument meshcore supports (the Python config check reads this
/// list through `simple_operators`).
const SIMPLE: &[(&str, Op)] = &[
    ("PROTOCOL", Op::Protocol),
    ("RESPONSE_CODE", Op::ResponseCode),
    ("RESPONSE_FLAGS", Op::ResponseFlags),
    ("RESPONSE_CODE_DETAILS", Op::ResponseCodeDetails),
    ("BYTES_RECEIVED", Op::BytesReceived),
    ("BYTES_SENT", Op::BytesSent),
    ("DURATION", Op::Duration),
    ("REQUEST_DURATION", Op::RequestDuration),
    ("RESPONSE_DURATION", Op::ResponseDuration),
    ("UPSTREAM_HOST", Op::UpstreamHost),
    ("UPSTREAM_CLUSTER", Op::UpstreamCluster),
    ("UPSTREAM_LOCAL_ADDRESS", Op::UpstreamLocalAddress),
    (
        "UPSTREAM_TRANSPORT_FAILURE_REASON",
        Op::UpstreamTransportFailureReason,
    ),
    ("DOWNSTREAM_REMOTE_ADDRESS", Op::DownstreamRemoteAddress),
    (
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Op::DownstreamRemoteAddressWithoutPort,
    ),
    ("DOWNSTREAM_LOCAL_ADDRESS", Op::DownstreamLocalAddress),
    ("ROUTE_NAME", Op::RouteName),
    ("REQUESTED_SERVER_NAME", Op::RequestedServerName),
    ("DOWNSTREAM_PEER_URI_SAN", Op::DownstreamPeerUriSan),
    ("DOWNSTREAM_PEER_SUBJECT", Op::DownstreamPeerSubject),
    ("DOWNSTREAM_TLS_VERSION", Op::DownstreamTlsVersion),
    ("ACCESS_LOG_TYPE", Op::AccessLogType),
    (
        "CONNECTION_TERMINATION_DETAILS",
        Op::ConnectionTerminationDetails,
    ),
    (
        "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
        Op::DownstreamTransportFailureReason,
    ),
    ("UPSTREAM_CLUSTER_RAW", Op::Ext(Ext::UpstreamClusterRaw)),
    (
        "UPSTREAM_REMOTE_ADDRESS",
        Op::Ext(Ext::UpstreamRemoteAddress),
    ),
    (
        "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        Op::Ext(Ext::UpstreamRemoteAddressWithoutPort),
    ),
    ("UPSTREAM_REMOTE_PORT", Op::Ext(Ext::UpstreamRemotePort)),
    (
        "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        Op::Ext(Ext::UpstreamLocalAddressWithoutPort),
    ),
    ("UPSTREAM_LOCAL_PORT", Op::Ext(Ext::UpstreamLocalPort)),
    ("DOWNSTREAM_REMOTE_PORT", Op::Ext(Ext::DownstreamRemotePort)),
    (
        "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
        Op::Ext(Ext::DownstreamLocalAddressWithoutPort),
    ),
    ("DOWNSTREAM_LOCAL_PORT", Op::Ext(Ext::DownstreamLocalPort)),
    (
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
        Op::Ext(Ext::DownstreamDirectRemoteAddress),
    ),
    (
        "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
        Op::Ext(Ext::DownstreamDirectRemoteAddressWithoutPort),
    ),
    (
        "DOWNSTREAM_DIRECT_REMOTE_PORT",
        Op::Ext(Ext::DownstreamDirectRemotePort),
    ),
    ("RESPONSE_FLAGS_LONG", Op::Ext(Ext::ResponseFlagsLong)),
    ("TRACE_ID", Op::Ext(Ext::TraceId)),
    ("STREAM_ID", Op::Ext(Ext::StreamId)),
    (
        "UPSTREAM_REQUEST_ATTEMPT_COUNT",
        Op::Ext(Ext::UpstreamRequestAttemptCount),
    ),
    ("REQUEST_TX_DURATION", Op::Ext(Ext::RequestTxDuration)),
    ("RESPONSE_TX_DURATION", Op::Ext(Ext::ResponseTxDuration)),
    ("CONNECTION_ID", Op::Ext(Ext::ConnectionId)),
    // meshcore has no `virtual_clusters` (a config error), so no request matches one.
    ("VIRTUAL_CLUSTER_NAME", Op::Ext(Ext::Constant(None))),
    ("DOWNSTREAM_TLS_CIPHER", Op::Ext(Ext::DownstreamTlsCipher)),
    (
        "DOWNSTREAM_LOCAL_URI_SAN",
        Op::Ext(Ext::DownstreamLocalUriSan),
    ),
    (
        "DOWNSTREAM_PEER_DNS_SAN",
        Op::Ext(Ext::DownstreamPeerDnsSan),
    ),
    ("DOWNSTREAM_PEER_ISSUER", Op::Ext(Ext::DownstreamPeerIssuer)),
    ("DOWNSTREAM_PEER_SERIAL", Op::Ext(Ext::DownstreamPeerSerial)),
    (
        "DOWNSTREAM_PEER_FINGERPRINT_256",
        Op::Ext(Ext::DownstreamPeerFingerprint256),
    ),
    (
        "DOWNSTREAM_PEER_FINGERPRINT_1",
        Op::Ext(Ext::DownstreamPeerFingerprint1),
    ),
];

/// The names of the operators that take no argument: `SIMPLE` and `HOSTNAME` (read when
/// the format is compiled). Exported to the config check (`_fastpath.access_log_operators`).
pub fn simple_operators() -> impl Iterator<Item = &'static str> {
    SIMPLE.iter().map(|(n, _)| *n).chain(["HOSTNAME"])
}

/// Parses a format string into operators; errors say what is wrong and where.
pub fn parse(s: &str) -> Result<Vec<Op>, String> {
    let b = s.as_bytes();
    let mut ops = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        if i > lit_start {
            ops.push(Op::Lit(b[lit_start..i].into()));
        }
        let (op, next) = parse_command(s, i)?;
        ops.push(op);
        i = next;
        lit_start = i;
    }
    if lit_start < b.len() {
        ops.push(Op::Lit(b[lit_start..].into()));
    }
    Ok(ops)
}

/// Parses the command at `at` (a `%`): `%NAME%`, `%NAME(arg)%`, `%NAME(arg):N%`.
fn parse_command(s: &str, at: usize) -> Result<(Op, usize), String> {
    let b = s.as_bytes();
    let bad = || {
        format!(
            "invalid command at position {at}: expected %COMMAND%, %COMMAND(arg)% or \
             %COMMAND(arg):N% (a literal '%' is not allowed)"
        )
    };
    let mut i = at + 1;
    while i < b.len() && (b[i].is_ascii_uppercase() || b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let name = &s[at + 1..i];
    if name.is_empty() {
        return Err(bad());
    }
    let mut arg = None;
    if b.get(i) == Some(&b'(') {
        let close = s[i..].find(')').ok_or_else(bad)? + i;
        arg = Some(&s[i + 1..close]);
        i = close + 1;
    }
    let mut max = None;
    if b.get(i) == Some(&b':') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        max = Some(s[start..i].parse::<usize>().map_err(|_| bad())?);
    }
    if b.get(i) != Some(&b'%') {
        return Err(bad());
    }
    let op = command(name, arg, max)?;
    Ok((op, i + 1))
}

fn command(name: &str, arg: Option<&str>, max: Option<usize>) -> Result<Op, String> {
    if max.is_some() && !matches!(name, "REQ" | "RESP" | "REQ_WITHOUT_QUERY" | "ENVIRONMENT") {
        return Err(format!(
            "%{name}%: a :N length limit applies to REQ, RESP, REQ_WITHOUT_QUERY and \
             ENVIRONMENT only"
        ));
    }
    match name {
        "REQ" | "RESP" | "REQ_WITHOUT_QUERY" => {
            let arg = arg.ok_or_else(|| format!("%{name}%: needs a header name: %{name}(X)%"))?;
            let mut names = arg.split('?');
            let first = names.next().unwrap_or("");
            let alt = names.next();
            if names.next().is_some() || first.is_empty() || alt == Some("") {
                return Err(format!(
                    "%{name}({arg})%: expected one header name or two separated by '?'"
                ));
            }
            let h = HeaderOp {
                name: first.to_ascii_lowercase().into(),
                alt: alt.map(|a| a.to_ascii_lowercase().into()),
                max,
            };
            Ok(match name {
                "REQ" => Op::Req(h),
                "RESP" => Op::Resp(h),
                _ => Op::Ext(Ext::ReqWithoutQuery(h)),
            })
        }
        "START_TIME" => {
            let fmt = match arg {
                None | Some("") => time::DEFAULT,
                Some(f) => f,
            };
            Ok(Op::StartTime(
                TimeFormat::compile(fmt).map_err(|e| format!("%START_TIME%: {e}"))?,
            ))
        }
        "ENVIRONMENT" => match arg {
            Some(var) if !var.is_empty() => Ok(Op::Ext(extra::environment(var, max))),
            _ => Err("%ENVIRONMENT%: needs a variable name: %ENVIRONMENT(X)%".into()),
        },
        "HOSTNAME" => match arg {
            None => Ok(Op::Ext(extra::hostname())),
            Some(_) => Err("%HOSTNAME%: takes no argument".into()),
        },
        "DOWNSTREAM_PEER_CERT_V_START" | "DOWNSTREAM_PEER_CERT_V_END" => {
            let fmt = match arg {
                None | Some("") => time::DEFAULT,
                Some(f) => f,
            };
            let t = TimeFormat::compile(fmt).map_err(|e| format!("%{name}%: {e}"))?;
            Ok(Op::Ext(if name.ends_with("START") {
                Ext::DownstreamPeerCertVStart(t)
            } else {
                Ext::DownstreamPeerCertVEnd(t)
            }))
        }
        _ => {
            let op = SIMPLE
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, op)| op.clone())
                .ok_or_else(|| format!("unknown command operator %{name}%"))?;
            if arg.is_some() {
                return Err(format!("%{name}%: takes no argument"));
            }
            Ok(op)
        }
    }
}

/// A compiled JSON object: (key already JSON-encoded, value) in output order.
type JsonFields = Vec<(Box<[u8]>, JsonNode)>;

/// A compiled `json_format` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonNode {
    /// Exactly one operator: a typed value.
    Single(Op),
    /// Text around operators (or only text): a string.
    Text(Vec<Op>),
    Object(JsonFields),
}

/// A compiled `log_format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Text(Vec<Op>),
    Json(JsonFields),
}

/// What the data path must keep for a format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub req_head: bool,
    pub resp_head: bool,
    pub upstream_local: bool,
    /// The client address after x-forwarded-for (`%DOWNSTREAM_REMOTE_ADDRESS%`).
    pub remote: bool,
    /// `%STREAM_ID%`: a `tcp_proxy` connection draws its random id (`Fields::stream_id`).
    pub stream_id: bool,
}

impl Format {
    /// Compiles a snapshot format; errors are prefixed with the failing JSON key, if any.
    pub fn compile(cfg: &AccessLogFormat) -> Result<Format, String> {
        match cfg {
            AccessLogFormat::Default => Ok(Format::Text(parse(DEFAULT_FORMAT)?)),
            AccessLogFormat::Text(s) => Ok(Format::Text(parse(s)?)),
            AccessLogFormat::Json(map) => Ok(Format::Json(json_object(map, "")?)),
        }
    }

    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        self.for_each_op(&mut |op| match op {
            Op::Req(_) => n.req_head = true,
            Op::Resp(_) => n.resp_head = true,
            Op::UpstreamLocalAddress => n.upstream_local = true,
            Op::DownstreamRemoteAddress | Op::DownstreamRemoteAddressWithoutPort => n.remote = true,
            Op::Ext(x) => x.needs(&mut n),
            _ => {}
        });
        n
    }

    fn for_each_op(&self, f: &mut dyn FnMut(&Op)) {
        fn node(n: &JsonNode, f: &mut dyn FnMut(&Op)) {
            match n {
                JsonNode::Single(op) => f(op),
                JsonNode::Text(ops) => ops.iter().for_each(&mut *f),
                JsonNode::Object(fields) => fields.iter().for_each(|(_, n)| node(n, f)),
            }
        }
        match self {
            Format::Text(ops) => ops.iter().for_each(&mut *f),
            Format::Json(fields) => fields.iter().for_each(|(_, n)| node(n, f)),
        }
    }

    /// Appends the line for `e` to `out` (a JSON line ends with a newline, as Envoy's does;
    /// a text format is written as configured).
    pub fn render(&self, e: &Entry<'_>, out: &mut Vec<u8>) {
        match self {
            Format::Text(ops) => render_text(ops, e, out),
            Format::Json(fields) => {
                render_object(fields, e, out);
                out.push(b'\n');
            }
        }
    }
}

fn json_object(map: &BTreeMap<String, JsonFormatValue>, at: &str) -> Result<JsonFields, String> {
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        let node = match v {
            JsonFormatValue::Text(s) => {
                let ops = parse(s).map_err(|e| format!("{path}: {e}"))?;
                match <[Op; 1]>::try_from(ops) {
                    Ok([op]) if !matches!(op, Op::Lit(_)) => JsonNode::Single(op),
                    Ok([op]) => JsonNode::Text(vec![op]),
                    Err(ops) => JsonNode::Text(ops),
                }
            }
            JsonFormatValue::Object(m) => JsonNode::Object(json_object(m, &path)?),
        };
        let key = serde_json::to_vec(k).map_err(|e| e.to_string())?;
        out.push((key.into(), node));
    }
    Ok(out)
}

fn render_text(ops: &[Op], e: &Entry<'_>, out: &mut Vec<u8>) {
    for op in ops {
        if value(op, e, out) == Kind::Missing {
            out.push(b'-');
        }
    }
}

fn render_object(fields: &[(Box<[u8]>, JsonNode)], e: &Entry<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut scratch = Vec::new();
    for (i, (key, node)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        out.push(b':');
        match node {
            JsonNode::Object(inner) => render_object(inner, e, out),
            JsonNode::Single(op) => {
                scratch.clear();
                match value(op, e, &mut scratch) {
                    Kind::Missing => out.extend_from_slice(b"null"),
                    Kind::Num => out.extend_from_slice(&scratch),
                    Kind::Str => json_string(&scratch, out),
                }
            }
            JsonNode::Text(ops) => {
                scratch.clear();
                render_text(ops, e, &mut scratch);
                json_string(&scratch, out);
            }
        }
    }
    out.push(b'}');
}

fn json_string(raw: &[u8], out: &mut Vec<u8>) {
    let s = String::from_utf8_lossy(raw);
    // Serialising a str cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*s);
}

pub(super) fn num(out: &mut Vec<u8>, v: u64) -> Kind {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    Kind::Num
}

pub(super) fn text(out: &mut Vec<u8>, s: &[u8]) -> Kind {
    if s.is_empty() {
        return Kind::Missing;
    }
    out.extend_from_slice(s);
    Kind::Str
}

pub(super) fn addr(out: &mut Vec<u8>, a: Option<std::net::SocketAddr>) -> Kind {
    match a {
        // Written by hand: `Display` for a socket address goes through `core::fmt` and a
        // padding buffer, which showed in the profile of a logged request.
        Some(std::net::SocketAddr::V4(a)) => {
            let mut b = itoa::Buffer::new();
            for (i, octet) in a.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(b.format(*octet).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(b.format(a.port()).as_bytes());
            Kind::Str
        }
        Some(a) => {
            use std::io::Write;
            let _ = write!(out, "{a}");
            Kind::Str
        }
        None => Kind::Missing,
    }
}

/// Writes `op`'s raw value for `e` into `out`.
fn value(op: &Op, e: &Entry<'_>, out: &mut Vec<u8>) -> Kind {
    let f = e.fields;
    match op {
        Op::Lit(s) => {
            out.extend_from_slice(s);
            Kind::Str
        }
        Op::StartTime(t) => {
            t.render(f.start, out);
            Kind::Str
        }
        Op::Req(h) => request_header(h, e, out),
        Op::Resp(h) => header(h, &f.resp_head, out),
        Op::Protocol => match e.minor {
            Some(0) => text(out, b"HTTP/1.0"),
            Some(super::fields::MINOR_HTTP2) => text(out, b"HTTP/2"),
            Some(_) => text(out, b"HTTP/1.1"),
            None => Kind::Missing,
        },
        Op::ResponseCode => num(out, u64::from(e.status)),
        // Most requests have no flag: `-` without `core::fmt`.
        Op::ResponseFlags if e.flags.is_empty() => text(out, b"-"),
        Op::ResponseFlags => {
            use std::io::Write;
            let _ = write!(out, "{}", e.flags);
            Kind::Str
        }
        Op::ResponseCodeDetails => match f.filter_details.as_str() {
            "" => text(out, f.details.as_bytes()),
            d => text(out, d.as_bytes()),
        },
        Op::BytesReceived => num(out, f.bytes_received),
        Op::BytesSent => num(out, f.bytes_sent),
        Op::Duration => num(out, e.duration_ms()),
        Op::RequestDuration => match f.req_done {
            Some(t) => num(out, ms(t.saturating_duration_since(f.begun))),
            None => Kind::Missing,
        },
        Op::ResponseDuration => match f.first_byte {
            Some(t) => num(out, ms(t.saturating_duration_since(f.begun))),
            None => Kind::Missing,
        },
        Op::UpstreamHost => addr(out, f.upstream_host),
        Op::UpstreamLocalAddress => addr(out, f.upstream_local),
        Op::UpstreamCluster => text(out, e.cluster.map_or("", |c| c.stat).as_bytes()),
        Op::UpstreamTransportFailureReason => text(out, f.failure_reason.as_bytes()),
        // The client address after x-forwarded-for, as Envoy's (port 0 when from XFF).
        Op::DownstreamRemoteAddress => addr(out, Some(f.remote.unwrap_or(e.downstream_remote))),
        Op::DownstreamRemoteAddressWithoutPort => {
            use std::io::Write;
            let _ = write!(out, "{}", f.remote.unwrap_or(e.downstream_remote).ip());
            Kind::Str
        }
        Op::DownstreamLocalAddress => addr(out, Some(e.downstream_local)),
        Op::RouteName => text(out, e.route_name.as_bytes()),
        // TLS facts of the downstream connection (`-` on a plain one).
        // Envoy's requested server name comes from the TLS inspector, not the handshake.
        Op::RequestedServerName => {
            match e.tls.filter(|t| t.inspected).and_then(|t| t.sni.as_deref()) {
                Some(sni) => text(out, sni.as_bytes()),
                None => Kind::Missing,
            }
        }
        Op::DownstreamPeerUriSan => match e.tls.and_then(|t| t.peer_cert.as_ref()) {
            Some(p) if !p.uri_sans.is_empty() => text(out, p.uri_sans.join(",").as_bytes()),
            _ => Kind::Missing,
        },
        Op::DownstreamPeerSubject => match e.tls.and_then(|t| t.peer_cert.as_ref()) {
            Some(p) if !p.subject.is_empty() => text(out, p.subject.as_bytes()),
            _ => Kind::Missing,
        },
        Op::DownstreamTlsVersion => match e.tls.and_then(|t| t.version) {
            Some(v) => text(out, v.as_bytes()),
            None => Kind::Missing,
        },
        Op::AccessLogType => text(out, e.kind.name().as_bytes()),
        Op::ConnectionTerminationDetails => text(out, e.termination.as_bytes()),
        Op::DownstreamTransportFailureReason => text(out, e.transport_failure.as_bytes()),
        Op::Ext(x) => extra::value(x, e, out),
    }
}

/// `%REQ(...)%`: pseudo headers from the request line, `:authority` from `host`, and a
/// generated `x-request-id` when the request had none (Envoy logs the one it generated).
pub(super) fn request_header(h: &HeaderOp, e: &Entry<'_>, out: &mut Vec<u8>) -> Kind {
    let start = out.len();
    let mut found = lookup_request(&h.name, e, out);
    if !found && let Some(alt) = &h.alt {
        found = lookup_request(alt, e, out);
    }
    if !found
        && e.generate_request_id
        && !e.req_head.is_empty()
        && h.name.as_ref() == "x-request-id"
    {
        out.extend_from_slice(e.generated_id.get_or_init(crate::http1::write::request_id));
        found = true;
    }
    finish(found, start, h.max, out)
}

fn lookup_request(name: &str, e: &Entry<'_>, out: &mut Vec<u8>) -> bool {
    let idx = e.req_index.get_or_init(|| HeadIndex::new(e.req_head));
    let mut parts = idx.first_line().split(|&c| c == b' ');
    // A traced local reply: the request id as tracing decided it (generated, with the trace
    // status in its version digit, as Envoy's header holds it).
    let traced_rid = e.fields.trace.and_then(|t| t.rid);
    let v = match name {
        ":method" => parts.next(),
        // A CONNECT has no path (its target is the authority): Envoy logs `-`.
        ":path" => parts
            .nth(1)
            .filter(|_| !idx.first_line().starts_with(b"CONNECT ")),
        ":authority" => return idx.find("host", out),
        ":scheme" if !e.req_head.is_empty() => Some(&b"http"[..]),
        "x-request-id" if traced_rid.is_some() => traced_rid.as_ref().map(|r| &r[..]),
        _ => return idx.find(name, out),
    };
    match v {
        Some(v) if !v.is_empty() => {
            out.extend_from_slice(v);
            true
        }
        _ => false,
    }
}

fn header(h: &HeaderOp, head: &[u8], out: &mut Vec<u8>) -> Kind {
    let start = out.len();
    let idx = HeadIndex::new(head);
    let mut found = idx.find(&h.name, out);
    if !found && let Some(alt) = &h.alt {
        found = idx.find(alt, out);
    }
    finish(found, start, h.max, out)
}

fn finish(found: bool, start: usize, max: Option<usize>, out: &mut Vec<u8>) -> Kind {
    if !found {
        return Kind::Missing;
    }
    if let Some(m) = max
        && out.len() - start > m
    {
        out.truncate(start + m);
    }
    Kind::Str
}
