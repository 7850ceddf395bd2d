//! Request head parsing: httparse plus the framing and hop-by-hop rules of a strict proxy.
use std::mem::MaybeUninit;

use httparse::Header;

use super::headers::{self, ConnectionTokens, Kind};
use super::{Framing, HeadError, MAX_HEADERS, head};

/// A parsed request head, borrowed from the read buffer.
pub struct RequestHead<'h, 'b> {
    pub method: &'b str,
    /// Origin-form path (absolute-form targets are split into authority and path).
    pub path: &'b str,
    /// Authority: the absolute-form target's, else the Host header ("" when absent).
    pub authority: &'b str,
    /// True when the authority came from an absolute-form target (Host must be rewritten).
    pub authority_from_target: bool,
    /// Minor version: 0 or 1. HTTP/1.0 is returned as parsed; whether it is accepted is the
    /// connection manager's decision (`accept_http_10`).
    pub minor: u8,
    /// A `host` header or an absolute-form authority was present (only HTTP/1.0 may lack
    /// both; HTTP/1.1 without one is `HeadError::MissingHost`).
    pub has_host: bool,
    pub head_len: usize,
    pub headers: &'h [Header<'b>],
    /// Meaning of each header line, same index as `headers`.
    pub kinds: [Kind; MAX_HEADERS],
    pub framing: Framing,
    /// The client wants the connection kept open after this request.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// The target is `*` (`OPTIONS *`): Envoy answers 404 (`downstream_rq_non_relative_path`).
    pub non_relative_path: bool,
    /// A CONNECT request (authority-form `host:port` target, in `authority`; `path` is
    /// empty): only a `connect_matcher` route matches it (`proxy/connect.rs`).
    pub connect: bool,
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more (the caller
/// enforces `max_head` on incomplete heads too, via `HeadError::TooLarge` from here when
/// `buf` already exceeds it).
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>; MAX_HEADERS],
    max_head: usize,
) -> Result<Option<RequestHead<'h, 'b>>, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    let cfg = httparse::ParserConfig::default();
    let parsed = cfg.parse_request_with_uninit_headers(&mut req, buf, storage);
    let Some(head_len) = head::head_len(parsed, buf, max_head, |e| request_line_error(buf, e))?
    else {
        return Ok(None);
    };
    let method = req.method.ok_or(HeadError::Malformed("missing method"))?;
    let target = req.path.ok_or(HeadError::Malformed("missing target"))?;
    let minor = req.version.ok_or(HeadError::Malformed("missing version"))?;
    // httparse takes any token as a method; Envoy's codec only its list (400).
    if !headers::is_known_method(method) {
        return Err(HeadError::Malformed("unknown method"));
    }
    let headers: &'h [Header<'b>] = req.headers;

    let mut kinds = [Kind::Other; MAX_HEADERS];
    let mut host: Option<&'b [u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut te: Option<&'b [u8]> = None;
    let mut te_lines = 0;
    let mut conn = ConnectionTokens::default();
    let mut expect_continue = false;
    for (i, h) in headers.iter().enumerate() {
        let k = headers::classify(h.name);
        kinds[i] = k;
        match k {
            Kind::Host if host.replace(h.value).is_some() => {
                return Err(HeadError::Malformed("multiple host headers"));
            }
            Kind::ContentLength => {
                let n = headers::parse_content_length(h.value)
                    .ok_or(HeadError::Malformed("invalid content-length"))?;
                if content_length.replace(n).is_some() {
                    return Err(HeadError::Malformed("multiple content-length headers"));
                }
            }
            Kind::TransferEncoding => {
                te = Some(h.value);
                te_lines += 1;
            }
            Kind::Connection => conn.add(h.value),
            Kind::Expect => {
                // Only `100-continue` is answered by the proxy (and dropped upstream).
                if h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = minor == 1;
                } else {
                    kinds[i] = Kind::Other;
                }
            }
            // `te: trailers` is end-to-end; any other TE value is hop-by-hop.
            Kind::Te if !h.value.trim_ascii().eq_ignore_ascii_case(b"trailers") => {
                kinds[i] = Kind::HopByHop;
            }
            _ => {}
        }
    }
    conn.apply(headers, &mut kinds);

    // Envoy's codec checks the target before the framing.
    let host_str = match host {
        Some(v) => std::str::from_utf8(v).map_err(|_| HeadError::Malformed("invalid host"))?,
        None => "",
    };
    let target = split_target(method, target, host_str)?;
    // httparse does not look inside values: an authority with a space, `/`, a control
    // character... is Envoy's `http.invalid_authority` (400).
    if !headers::valid_authority(target.authority.as_bytes()) {
        return Err(HeadError::Malformed("invalid authority"));
    }

    // Envoy's order: both framings (400), then a coding other than exactly `chunked` (501;
    // several `transfer-encoding` lines are joined by Envoy, so they are never `chunked`).
    let framing = match (te, content_length) {
        (Some(_), Some(_)) => {
            return Err(HeadError::Malformed(
                "both content-length and transfer-encoding",
            ));
        }
        (Some(v), None) => {
            if te_lines > 1
                || !v.trim_ascii().eq_ignore_ascii_case(b"chunked")
                || method == "CONNECT"
            {
                return Err(HeadError::UnsupportedTransferEncoding);
            }
            Framing::Chunked
        }
        // A CONNECT carries no body before its tunnel (Envoy: 400).
        (None, Some(_)) if method == "CONNECT" => {
            return Err(HeadError::Malformed("content-length on CONNECT"));
        }
        (None, Some(0)) | (None, None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
    };

    let keep_alive = method != "CONNECT"
        && if minor == 1 {
            !conn.close
        } else {
            conn.keep_alive && !conn.close
        };

    let has_host = host.is_some() || target.from_target;
    if minor == 1 && !has_host {
        return Err(HeadError::MissingHost);
    }
    // A fragment is never sent in a request target; Envoy's connection manager answers 400
    // (`path_normalization_failed`) rather than forward a path an upstream may cut at `#`.
    if target.path.contains('#') {
        return Err(HeadError::InvalidPath);
    }
    Ok(Some(RequestHead {
        method,
        path: target.path,
        authority: target.authority,
        authority_from_target: target.from_target,
        minor,
        has_host,
        head_len,
        headers,
        kinds,
        framing,
        keep_alive,
        expect_continue: expect_continue && framing.has_body(),
        non_relative_path: target.asterisk,
        connect: method == "CONNECT",
    }))
}

/// A request target split into what routing needs.
struct Target<'b> {
    path: &'b str,
    authority: &'b str,
    /// The authority came from an absolute-form target.
    from_target: bool,
    /// `OPTIONS *`.
    asterisk: bool,
}

/// Splits an absolute-form target (`http://host/path`) into path and authority. Targets
/// that are neither origin-form, absolute-form with an http(s) scheme nor `OPTIONS *` are
/// malformed (Envoy's codec answers 400).
fn split_target<'b>(method: &str, target: &'b str, host: &'b str) -> Result<Target<'b>, HeadError> {
    let origin = |path, asterisk| Target {
        path,
        authority: host,
        from_target: false,
        asterisk,
    };
    if method == "CONNECT" {
        // Authority-form only: `host:port` (Envoy's codec answers 400 to anything else).
        let valid = target.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        });
        if !valid {
            return Err(HeadError::Malformed("invalid CONNECT target"));
        }
        return Ok(Target {
            path: "",
            authority: target,
            from_target: true,
            asterisk: false,
        });
    }
    if target.starts_with('/') {
        return Ok(origin(target, false));
    }
    if target == "*" && method == "OPTIONS" {
        return Ok(origin(target, true));
    }
    let invalid = HeadError::Malformed("invalid request target");
    let lower_starts = |p: &str| {
        target.len() >= p.len() && target.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return Err(invalid);
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(invalid);
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok(Target {
        path,
        authority,
        from_target: true,
        asterisk: false,
    })
}

/// The error for a head httparse refused. A request line of the right shape whose version is
/// not HTTP/1.x (`HTTP/9.9`, `HTTP/2.0`) or that has no version at all (HTTP/0.9 style) is
/// an unsupported version (Envoy: 426); anything else is malformed (400).
fn request_line_error(buf: &[u8], e: httparse::Error) -> HeadError {
    if e != httparse::Error::Version && e != httparse::Error::Token {
        return HeadError::Malformed(error_text(e));
    }
    match request_line_version(buf) {
        Some(_) => HeadError::UnsupportedVersion,
        None => HeadError::Malformed(error_text(e)),
    }
}

/// For a request line `METHOD SP target [SP HTTP/d.d] CRLF` (method a token, target
/// printable ASCII): the byte range of its version (empty, at the line end, when absent).
/// `None` for any other first line.
pub fn request_line_version(buf: &[u8]) -> Option<std::ops::Range<usize>> {
    let line_end = memchr::memchr(b'\r', buf)?;
    if buf.get(line_end + 1) != Some(&b'\n') {
        return None;
    }
    let line = &buf[..line_end];
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next();
    if parts.next().is_some()
        || method.is_empty()
        || !method.iter().all(|&b| headers::is_token(b))
        || target.is_empty()
        || !target.iter().all(|&b| b.is_ascii_graphic())
    {
        return None;
    }
    match version {
        None => Some(line_end..line_end),
        Some(&[b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some(line_end - 8..line_end)
        }
        Some(_) => None,
    }
}

/// Rewrites the request line at the start of `buf` to HTTP/1.0 (Envoy with `accept_http_10`
/// treats any version other than HTTP/1.1, and a missing one, as HTTP/1.0). Returns false
/// when the first line is not a request line. Rare path: may move the buffer's bytes.
pub fn rewrite_version_to_10(buf: &mut Vec<u8>, start: usize) -> bool {
    let Some(v) = request_line_version(&buf[start..]) else {
        return false;
    };
    let (from, to) = (start + v.start, start + v.end);
    if from == to {
        buf.splice(from..to, *b" HTTP/1.0");
    } else {
        buf[from..to].copy_from_slice(b"HTTP/1.0");
    }
    true
}

fn error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

pub(super) fn httparse_error_text(e: httparse::Error) -> &'static str {
    error_text(e)
}
