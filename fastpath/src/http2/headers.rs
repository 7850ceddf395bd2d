//! Header translation between HTTP/2 messages (`http` types, as the `h2` crate gives them) and
//! the HTTP/1.1 heads the core reads and writes: pseudo-headers ⇄ request line / Host,
//! connection-specific headers dropped (RFC 9113 §8.2.2), `te: trailers` kept, cookies
//! joined (§8.2.3), trailers ⇄ chunked trailer sections, and the body framing each side uses.
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

/// Most header lines accepted in one HTTP/1.1 head or trailer section read from the core.
const MAX_HEADERS: usize = 128;

/// How an HTTP/1.1 message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `content-length`.
    Length(u64),
    /// `transfer-encoding: chunked` (trailers possible).
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// Why a message could not be translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslateError {
    /// No `:path` (CONNECT, or a malformed request).
    NoPath,
    /// `content-length` is not one decimal number, or disagrees with the body.
    BadContentLength,
    /// An HTTP/1.1 head that does not parse (or has too many headers).
    BadHead,
    /// A header value HTTP/2 cannot carry.
    BadHeader,
}

/// Headers that belong to one HTTP/1.1 connection and are never carried over HTTP/2
/// (RFC 9113 §8.2.2); `te` is handled separately (only `trailers` is allowed).
pub fn is_connection_specific(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == "keep-alive"
        || name == "proxy-connection"
        || name == "http2-settings"
}

/// Whether a `te` value may cross to HTTP/2 (only `trailers`).
fn te_allowed(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"trailers")
}

fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `content-length` of `headers`, if any; several values must agree (RFC 9110 §8.6).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, TranslateError> {
    let mut found: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        let s = v.to_str().map_err(|_| TranslateError::BadContentLength)?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TranslateError::BadContentLength);
        }
        let n: u64 = s.parse().map_err(|_| TranslateError::BadContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(TranslateError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// Writes the HTTP/1.1 head of an HTTP/2 request into `out` and returns its body framing.
/// `end_stream`: the HEADERS frame ended the stream (no body). `:authority` becomes `Host`
/// (a `host` header is dropped when `:authority` is present); `:scheme` is not carried: the
/// core sets `x-forwarded-proto` from the downstream connection, as Envoy does.
pub fn request_head(
    parts: &http::request::Parts,
    end_stream: bool,
    out: &mut Vec<u8>,
) -> Result<Framing, TranslateError> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .ok_or(TranslateError::NoPath)?;
    if parts.method == Method::CONNECT {
        return Err(TranslateError::NoPath);
    }
    let length = content_length(&parts.headers)?;
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_fields(parts, out);
    let framing = match (length, end_stream) {
        (Some(n), true) if n != 0 => return Err(TranslateError::BadContentLength),
        (Some(n), _) => {
            push_line(
                out,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
            if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            }
        }
        (None, true) => Framing::None,
        (None, false) => {
            push_line(out, b"transfer-encoding", b"chunked");
            Framing::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

/// The header lines of an HTTP/2 request as HTTP/1.1: `:authority` as `host`, the others but
/// connection-specific ones, `content-length` (the caller frames the body) and the internal
/// body token; cookies joined.
fn push_fields(parts: &http::request::Parts, out: &mut Vec<u8>) {
    let authority = parts.uri.authority();
    if let Some(a) = authority {
        push_line(out, b"host", a.as_str().as_bytes());
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in &parts.headers {
        if is_connection_specific(name)
            || name == header::CONTENT_LENGTH
            || name == super::handoff::BODY_HEADER
        {
            continue;
        }
        if name == header::HOST && authority.is_some() {
            continue;
        }
        if name == header::TE && !te_allowed(value.as_bytes()) {
            continue;
        }
        if name == header::COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !cookies.is_empty() {
        push_line(out, b"cookie", &cookies.join(&b"; "[..]));
    }
}

/// Writes the HTTP/1.1 head of a CONNECT stream into `out`: a plain CONNECT becomes
/// `CONNECT authority HTTP/1.1`; an extended CONNECT (RFC 8441, `:protocol` given) becomes
/// `GET :path` with `connection: upgrade` and `upgrade: <protocol>`, as Envoy turns it into
/// an HTTP/1.1 upgrade. Neither carries a body: the stream's DATA follow as tunnel bytes.
pub fn tunnel_request_head(
    parts: &http::request::Parts,
    protocol: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), TranslateError> {
    let authority = parts.uri.authority().ok_or(TranslateError::NoPath)?;
    match protocol {
        None => {
            out.extend_from_slice(b"CONNECT ");
            out.extend_from_slice(authority.as_str().as_bytes());
        }
        Some(_) => {
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .filter(|p| !p.is_empty())
                .ok_or(TranslateError::NoPath)?;
            out.extend_from_slice(b"GET ");
            out.extend_from_slice(path.as_bytes());
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    push_fields(parts, out);
    if let Some(p) = protocol {
        if p.bytes().any(|b| b.is_ascii_control() || b == b' ') || p.is_empty() {
            return Err(TranslateError::BadHeader);
        }
        push_line(out, b"connection", b"upgrade");
        push_line(out, b"upgrade", p.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Copies HTTP/1.1 header lines into an HTTP/2 header map, dropping connection-specific ones
/// and `te` other than `trailers`. `host` is returned instead of copied when `take_host`.
fn copy_headers(
    lines: &[httparse::Header<'_>],
    map: &mut HeaderMap,
    take_host: bool,
) -> Result<Option<Vec<u8>>, TranslateError> {
    let mut host = None;
    // Sized once: the map would otherwise grow (and rehash) as the lines are added.
    map.reserve(lines.len());
    for h in lines {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| TranslateError::BadHeader)?;
        if is_connection_specific(&name) || (name == header::TE && !te_allowed(h.value)) {
            continue;
        }
        if take_host && name == header::HOST {
            host = Some(h.value.to_vec());
            continue;
        }
        let value = HeaderValue::from_bytes(h.value).map_err(|_| TranslateError::BadHeader)?;
        map.append(name, value);
    }
    Ok(host)
}

/// The framing an HTTP/1.1 message declares (`chunked` wins over `content-length`; the core
/// never sends both).
fn declared_framing(lines: &[httparse::Header<'_>]) -> Result<Option<Framing>, TranslateError> {
    let mut framing = None;
    for h in lines {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !h.value.eq_ignore_ascii_case(b"chunked") {
                return Err(TranslateError::BadHead);
            }
            framing = Some(Framing::Chunked);
        } else if h.name.eq_ignore_ascii_case("content-length") && framing.is_none() {
            let s = std::str::from_utf8(h.value).map_err(|_| TranslateError::BadContentLength)?;
            let n = s.parse().map_err(|_| TranslateError::BadContentLength)?;
            framing = Some(if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            });
        }
    }
    Ok(framing)
}

/// An HTTP/1.1 response head parsed from the core: the HTTP/2 response, its body framing and
/// the head's length. `Ok(None)`: the head is not complete yet. `head_request` /
/// status 1xx, 204, 304: no body whatever the head says.
pub fn parse_response(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<(Response<()>, Framing, usize)>, TranslateError> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut lines);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(TranslateError::BadHead),
    };
    let code = r.code.ok_or(TranslateError::BadHead)?;
    let status = StatusCode::from_u16(code).map_err(|_| TranslateError::BadHead)?;
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    *resp.version_mut() = Version::HTTP_2;
    copy_headers(r.headers, resp.headers_mut(), false)?;
    let no_body = head_request || code < 200 || code == 204 || code == 304;
    let framing = if no_body {
        Framing::None
    } else {
        declared_framing(r.headers)?.unwrap_or(Framing::UntilClose)
    };
    Ok(Some((resp, framing, len)))
}

/// An HTTP/1.1 request head parsed from the core (upstream side): the HTTP/2 request (scheme
/// `http`, `:authority` from `Host`), its body framing and the head's length. `Ok(None)`: not
/// complete yet.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<()>, Framing, usize)>, TranslateError> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut lines);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(TranslateError::BadHead),
    };
    let method = Method::from_bytes(r.method.ok_or(TranslateError::BadHead)?.as_bytes())
        .map_err(|_| TranslateError::BadHead)?;
    let path = r.path.ok_or(TranslateError::BadHead)?;
    let mut req = Request::new(());
    let host = copy_headers(r.headers, req.headers_mut(), true)?;
    let host = host.ok_or(TranslateError::BadHead)?;
    let mut uri = Vec::with_capacity(7 + host.len() + path.len());
    uri.extend_from_slice(b"http://");
    uri.extend_from_slice(&host);
    uri.extend_from_slice(path.as_bytes());
    *req.uri_mut() = Uri::try_from(uri).map_err(|_| TranslateError::BadHead)?;
    *req.method_mut() = method;
    *req.version_mut() = Version::HTTP_2;
    let framing = declared_framing(r.headers)?.unwrap_or(Framing::None);
    Ok(Some((req, framing, len)))
}

/// Writes the HTTP/1.1 head of an HTTP/2 response into `out` and returns the framing used:
/// the upstream's `content-length` when it sent one, none when the HEADERS frame ended the
/// stream, else chunked (so that trailers, e.g. gRPC's `grpc-status`, can follow).
/// `head_request`: the response to HEAD keeps its `content-length` but has no body.
pub fn response_head(
    resp: &http::response::Parts,
    end_stream: bool,
    head_request: bool,
    out: &mut Vec<u8>,
) -> Result<Framing, TranslateError> {
    let length = content_length(&resp.headers)?;
    let code = resp.status.as_u16();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(resp.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(resp.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &resp.headers {
        if is_connection_specific(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let bodiless = code == 204 || code == 304 || (100..200).contains(&code);
    let framing = match length {
        _ if bodiless => Framing::None,
        Some(n) if head_request => {
            push_line(
                out,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
            Framing::None
        }
        None if head_request => Framing::None,
        Some(n) => {
            push_line(
                out,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
            if end_stream && n != 0 {
                return Err(TranslateError::BadContentLength);
            }
            if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            }
        }
        None if end_stream => {
            push_line(out, b"content-length", b"0");
            Framing::None
        }
        None => {
            push_line(out, b"transfer-encoding", b"chunked");
            Framing::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

/// The end of a chunked body carrying `trailers`: `0\r\n`, the trailer lines, `\r\n`.
/// Pseudo-headers cannot occur (the `h2` crate refuses them in trailers).
pub fn chunked_trailers(trailers: Option<&HeaderMap>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        if is_connection_specific(name) {
            continue;
        }
        push_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The trailers in the framing bytes that end a chunked body (`[\r\n]0[;ext]\r\n` +
/// trailer lines + `\r\n`, as collected after the last data run). `None`: no trailers.
pub fn parse_trailers(tail: &[u8]) -> Result<Option<HeaderMap>, TranslateError> {
    let tail = tail.strip_prefix(b"\r\n").unwrap_or(tail);
    let line_end = memchr::memchr(b'\n', tail).ok_or(TranslateError::BadHead)?;
    let rest = &tail[line_end + 1..];
    if rest == b"\r\n" || rest == b"\n" || rest.is_empty() {
        return Ok(None);
    }
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut lines) {
        Ok(httparse::Status::Complete((_, parsed))) => {
            let mut map = HeaderMap::new();
            copy_headers(parsed, &mut map, false)?;
            map.remove(header::TE);
            Ok((!map.is_empty()).then_some(map))
        }
        _ => Err(TranslateError::BadHead),
    }
}

#[cfg(test)]
mod tests;
