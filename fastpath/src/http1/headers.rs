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
    XEnvoyExpectedRqTimeoutMs,
    Server,
    Date,
    XEnvoyUpstreamServiceTime,
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
        30 if eq("x-envoy-upstream-service-time") => Kind::XEnvoyUpstreamServiceTime,
        30 if eq("x-envoy-expected-rq-timeout-ms") => Kind::XEnvoyExpectedRqTimeoutMs,
        _ => Kind::Other,
    }
}

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

/// Transfer-Encoding: `Some(true)` when the last coding is `chunked` (and no earlier one is),
/// `Some(false)` when chunked is absent, `None` when the value is invalid (empty, or chunked
/// not last).
pub fn te_is_chunked(v: &[u8]) -> Option<bool> {
    let mut last_chunked = false;
    let mut any = false;
    for t in tokens(v) {
        if last_chunked {
            return None;
        }
        any = true;
        last_chunked = t.eq_ignore_ascii_case(b"chunked");
    }
    any.then_some(last_chunked)
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
