//! Request head parsing: httparse plus the framing and hop-by-hop rules of a strict proxy.
use std::mem::MaybeUninit;

use httparse::Header;

use super::headers::{self, ConnectionTokens, Kind};
use super::{Framing, HeadError, MAX_HEADERS};

/// A parsed request head, borrowed from the read buffer.
pub struct RequestHead<'h, 'b> {
    pub method: &'b str,
    /// Origin-form path (absolute-form targets are split into authority and path).
    pub path: &'b str,
    /// Authority: the absolute-form target's, else the Host header ("" when absent).
    pub authority: &'b str,
    /// True when the authority came from an absolute-form target (Host must be rewritten).
    pub authority_from_target: bool,
    /// Minor version: 0 or 1.
    pub minor: u8,
    pub head_len: usize,
    pub headers: &'h [Header<'b>],
    /// Meaning of each header line, same index as `headers`.
    pub kinds: [Kind; MAX_HEADERS],
    pub framing: Framing,
    /// The client wants the connection kept open after this request.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// The target was neither origin-form, absolute-form nor `*` (Envoy answers 404).
    pub non_relative_path: bool,
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
    let head_len = match cfg.parse_request_with_uninit_headers(&mut req, buf, storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > max_head {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(error_text(e))),
    };
    if head_len > max_head {
        return Err(HeadError::TooLarge);
    }
    if !headers::crlf_only(&buf[..head_len]) {
        return Err(HeadError::Malformed("bare LF in head"));
    }
    let method = req.method.ok_or(HeadError::Malformed("missing method"))?;
    let target = req.path.ok_or(HeadError::Malformed("missing target"))?;
    let minor = req.version.ok_or(HeadError::Malformed("missing version"))?;
    let headers: &'h [Header<'b>] = req.headers;

    let mut kinds = [Kind::Other; MAX_HEADERS];
    let mut host: Option<&'b [u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut te: Option<&'b [u8]> = None;
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
            Kind::TransferEncoding if te.replace(h.value).is_some() => {
                return Err(HeadError::Malformed("multiple transfer-encoding headers"));
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

    let framing = match (te, content_length) {
        (Some(_), Some(_)) => {
            return Err(HeadError::Malformed(
                "both content-length and transfer-encoding",
            ));
        }
        (Some(v), None) => {
            if minor == 0 {
                return Err(HeadError::Malformed(
                    "transfer-encoding in HTTP/1.0 request",
                ));
            }
            match headers::te_is_chunked(v) {
                Some(true) => Framing::Chunked,
                _ => {
                    return Err(HeadError::Malformed(
                        "transfer-encoding not ending in chunked",
                    ));
                }
            }
        }
        (None, Some(0)) | (None, None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
    };

    let keep_alive = if minor == 1 {
        !conn.close
    } else {
        conn.keep_alive && !conn.close
    };

    let host_str = match host {
        Some(v) => std::str::from_utf8(v).map_err(|_| HeadError::Malformed("invalid host"))?,
        None => "",
    };
    let (path, authority, from_target, non_relative) = split_target(method, target, host_str);
    if minor == 1 && host.is_none() && !from_target {
        return Err(HeadError::Malformed("missing host header"));
    }
    Ok(Some(RequestHead {
        method,
        path,
        authority,
        authority_from_target: from_target,
        minor,
        head_len,
        headers,
        kinds,
        framing,
        keep_alive,
        expect_continue: expect_continue && framing.has_body(),
        non_relative_path: non_relative,
    }))
}

/// Splits an absolute-form target (`http://host/path`) into path and authority.
fn split_target<'b>(
    method: &str,
    target: &'b str,
    host: &'b str,
) -> (&'b str, &'b str, bool, bool) {
    if target.starts_with('/') {
        return (target, host, false, false);
    }
    if target == "*" && method == "OPTIONS" {
        return (target, host, false, false);
    }
    let lower_starts = |p: &str| {
        target.len() >= p.len() && target.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    };
    let rest = if lower_starts("http://") {
        &target[7..]
    } else if lower_starts("https://") {
        &target[8..]
    } else {
        return (target, host, false, true);
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return (target, host, false, true);
    }
    let path = if path.is_empty() { "/" } else { path };
    (path, authority, true, false)
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
