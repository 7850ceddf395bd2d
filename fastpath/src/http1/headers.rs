//! Header names the proxy acts on, and strict parsers for the values that frame a message.
use httparse::Header;

/// What a header line means to the proxy. Everything not listed is forwarded untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Other,
    /// Removed on both sides: `connection`, `keep-alive`, `proxy-connection`, `upgrade`,
    /// `te` (unless `trailers`), and any header the `connection` header nominates.
    HopByHop,
    Host,
    Connection,
    TransferEncoding,
    ContentLength,
    Te,
    Expect,
    XForwardedProto,
    XForwardedFor,
    XRequestId,
    Server,
    Date,
    XEnvoyUpstreamServiceTime,
    /// `x-envoy-*` request headers Envoy trusts only from internal clients (retry and
    /// timeout overrides, `x-envoy-internal`, `x-envoy-expected-rq-timeout-ms`, ...). Envoy
    /// 1.40 treats no address as internal by default, so meshcore removes them from every
    /// request.
    XEnvoyUntrusted,
    /// `x-envoy-*` request headers Envoy removes from edge requests (`use_remote_address`):
    /// decorator operation, downstream service cluster/node, external address.
    XEnvoyEdge,
    /// `x-envoy-original-path`: removed from edge requests, replaced by a `prefix_rewrite`.
    XEnvoyOriginalPath,
    /// `x-forwarded-client-cert`: kept, removed or rewritten per
    /// `forward_client_cert_details` (`tls/xfcc.rs`).
    XForwardedClientCert,
}

/// Classifies a header name (ASCII case-insensitive).
pub fn classify(name: &str) -> Kind {
    let eq = |s: &str| name.eq_ignore_ascii_case(s);
    match name.len() {
        2 if eq("te") => Kind::Te,
        4 if eq("host") => Kind::Host,
        4 if eq("date") => Kind::Date,
        6 if eq("expect") => Kind::Expect,
        6 if eq("server") => Kind::Server,
        7 if eq("upgrade") => Kind::HopByHop,
        10 if eq("connection") => Kind::Connection,
        10 if eq("keep-alive") => Kind::HopByHop,
        12 if eq("x-request-id") => Kind::XRequestId,
        14 if eq("content-length") => Kind::ContentLength,
        15 if eq("x-forwarded-for") => Kind::XForwardedFor,
        16 if eq("proxy-connection") => Kind::HopByHop,
        17 if eq("transfer-encoding") => Kind::TransferEncoding,
        17 if eq("x-forwarded-proto") => Kind::XForwardedProto,
        23 if eq("x-forwarded-client-cert") => Kind::XForwardedClientCert,
        n if n > ENVOY_PREFIX.len()
            && name.as_bytes()[..ENVOY_PREFIX.len()].eq_ignore_ascii_case(ENVOY_PREFIX) =>
        {
            classify_envoy(&name[ENVOY_PREFIX.len()..])
        }
        _ => Kind::Other,
    }
}

const ENVOY_PREFIX: &[u8] = b"x-envoy-";

/// Envoy's own headers, by the part after `x-envoy-` (the lists of Envoy's
/// `ConnectionManagerUtility::cleanInternalHeaders`, checked against Envoy 1.40).
fn classify_envoy(rest: &str) -> Kind {
    const UNTRUSTED: [&str; 15] = [
        "internal",
        "retriable-status-codes",
        "retriable-header-names",
        "retry-on",
        "retry-grpc-on",
        "max-retries",
        "upstream-alt-stat-name",
        "upstream-rq-timeout-ms",
        "upstream-rq-per-try-timeout-ms",
        "upstream-rq-timeout-alt-response",
        "expected-rq-timeout-ms",
        "force-trace",
        "ip-tags",
        "original-url",
        "hedge-on-per-try-timeout",
    ];
    const EDGE: [&str; 4] = [
        "decorator-operation",
        "downstream-service-cluster",
        "downstream-service-node",
        "external-address",
    ];
    let eq = |s: &&str| rest.eq_ignore_ascii_case(s);
    if rest.eq_ignore_ascii_case("upstream-service-time") {
        Kind::XEnvoyUpstreamServiceTime
    } else if rest.eq_ignore_ascii_case("original-path") {
        Kind::XEnvoyOriginalPath
    } else if UNTRUSTED.iter().any(eq) {
        Kind::XEnvoyUntrusted
    } else if EDGE.iter().any(eq) {
        Kind::XEnvoyEdge
    } else {
        Kind::Other
    }
}

/// RFC 9110 `tchar`: the bytes of a token (method, header name).
pub fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The methods Envoy 1.40's HTTP/1 codec (balsa) accepts, case-sensitive; any other token
/// (`FOO`, `get`, `M-SEARCH`, `QUERY`) is a 400 there (`http1.codec_error`). httparse accepts
/// any token, so this list is checked by hand.
const KNOWN_METHODS: [&str; 34] = [
    "ACL",
    "BIND",
    "CHECKOUT",
    "CONNECT",
    "COPY",
    "DELETE",
    "GET",
    "HEAD",
    "LINK",
    "LOCK",
    "MERGE",
    "MKACTIVITY",
    "MKCALENDAR",
    "MKCOL",
    "MOVE",
    "MSEARCH",
    "NOTIFY",
    "OPTIONS",
    "PATCH",
    "POST",
    "PROPFIND",
    "PROPPATCH",
    "PURGE",
    "PUT",
    "REBIND",
    "REPORT",
    "SEARCH",
    "SOURCE",
    "SUBSCRIBE",
    "TRACE",
    "UNBIND",
    "UNLINK",
    "UNLOCK",
    "UNSUBSCRIBE",
];

/// A method Envoy's codec accepts (see `KNOWN_METHODS`).
pub fn is_known_method(m: &str) -> bool {
    match m {
        "GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "PATCH" => true,
        _ => KNOWN_METHODS.contains(&m),
    }
}

/// An authority (`host[:port]`, `[v6]:port`, `user@host`) made only of the bytes Envoy's
/// `HeaderUtility::authorityIsValid` allows: unreserved, sub-delims, `:`, `@`, `[`, `]`, `%`.
/// Anything else (space, `/`, `?`, `#`, controls, non-ASCII) is `http.invalid_authority`
/// (400). httparse does not look inside header values, so this is checked by hand.
pub fn valid_authority(v: &[u8]) -> bool {
    v.iter().all(|&b| AUTHORITY[b as usize])
}

/// The bytes `valid_authority` allows, as a table (it runs on every request).
const AUTHORITY: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~!$&'()*+,;=:@[]%";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

/// Parses a Content-Length value: 1 to 20 ASCII digits (overflow checked), nothing else (no sign, no list, no
/// spaces inside).
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Iterates the comma-separated, trimmed, non-empty tokens of a header value.
pub fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Options carried by `connection` headers.
#[derive(Default)]
pub struct ConnectionTokens<'b> {
    pub close: bool,
    pub keep_alive: bool,
    /// Other header names the `connection` header nominates as hop-by-hop.
    pub nominated: [&'b [u8]; 8],
    pub nominated_len: usize,
}

impl<'b> ConnectionTokens<'b> {
    pub fn add(&mut self, value: &'b [u8]) {
        for t in tokens(value) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if self.nominated_len < self.nominated.len() {
                self.nominated[self.nominated_len] = t;
                self.nominated_len += 1;
            }
        }
    }

    /// Marks nominated headers hop-by-hop (never the ones that frame or route the message).
    pub fn apply(&self, headers: &[Header<'_>], kinds: &mut [Kind]) {
        if self.nominated_len == 0 {
            return;
        }
        for (h, k) in headers.iter().zip(kinds.iter_mut()) {
            if matches!(*k, Kind::Other | Kind::Te | Kind::Expect)
                && self.nominated[..self.nominated_len]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(h.name.as_bytes()))
            {
                *k = Kind::HopByHop;
            }
        }
    }
}

/// Every LF in a head must follow a CR (httparse accepts bare LF; the proxy does not, so that
/// header bytes can be copied verbatim).
pub fn crlf_only(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).all(|i| i > 0 && head[i - 1] == b'\r')
}

/// Byte range of a header line within `base` (name start, value end), used to copy runs of
/// untouched header lines verbatim. `None` if the slices do not point into `base`.
pub fn line_span(base: &[u8], h: &Header<'_>) -> Option<(usize, usize)> {
    let b = base.as_ptr() as usize;
    let start = (h.name.as_ptr() as usize).checked_sub(b)?;
    let name_end = start + h.name.len();
    let end = if h.value.is_empty() {
        name_end + 1
    } else {
        (h.value.as_ptr() as usize).checked_sub(b)? + h.value.len()
    };
    (end <= base.len() && start < end).then_some((start, end))
}
