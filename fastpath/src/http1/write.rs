//! Head serialisation: status lines, header lines, verbatim runs of forwarded header lines,
//! request ids.
use httparse::Header;

use super::headers::{Kind, line_span};

/// Standard reason phrase for a status code ("" when unknown).
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `HTTP/1.<minor> <code> <reason>\r\n` (the reason is Envoy's standard phrase; upstream
/// phrases are not kept, as in Envoy). `minor` is 0 only for an accepted HTTP/1.0 client.
pub fn push_status_line(out: &mut Vec<u8>, minor: u8, code: u16) {
    out.extend_from_slice(if minor == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    push_u64(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason(code).as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Copies the header lines `keep` selects from `base` (the buffer they were parsed from),
/// merging adjacent kept lines into one copy. Lines are strict CRLF (checked at parse time).
pub fn push_kept_lines(
    out: &mut Vec<u8>,
    base: &[u8],
    headers: &[Header<'_>],
    kinds: &[Kind],
    keep: impl Fn(Kind) -> bool,
) {
    let mut run: Option<(usize, usize)> = None;
    for (h, &k) in headers.iter().zip(kinds) {
        if !keep(k) {
            continue;
        }
        match line_span(base, h) {
            Some((s, e)) => match run {
                Some((rs, re)) if s == re + 2 => run = Some((rs, e)),
                _ => {
                    if let Some((rs, re)) = run.replace((s, e)) {
                        out.extend_from_slice(&base[rs..re]);
                        out.extend_from_slice(b"\r\n");
                    }
                }
            },
            None => {
                if let Some((rs, re)) = run.take() {
                    out.extend_from_slice(&base[rs..re]);
                    out.extend_from_slice(b"\r\n");
                }
                push_header(out, h.name.as_bytes(), h.value);
            }
        }
    }
    if let Some((rs, re)) = run {
        out.extend_from_slice(&base[rs..re]);
        out.extend_from_slice(b"\r\n");
    }
}

/// A random (version 4) UUID in its 36-character text form.
pub fn request_id() -> [u8; 36] {
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 36];
    let mut j = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[j] = b'-';
            j += 1;
        }
        out[j] = HEX[(byte >> 4) as usize];
        out[j + 1] = HEX[(byte & 0xf) as usize];
        j += 2;
    }
    out
}
