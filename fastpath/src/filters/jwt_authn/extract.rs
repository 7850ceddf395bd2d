//! Where tokens are found (Envoy's extractor): headers (after a `value_prefix`), query
//! parameters, cookies; by default `Authorization: Bearer <token>` and `?access_token=`.
use std::borrow::Cow;

use crate::config::jwt as cfg;
use crate::router::RequestView;

/// One place a provider looks for its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Header { name: Box<str>, prefix: Box<str> },
    Param(Box<str>),
    Cookie(Box<str>),
}

/// A token found in a request, and where.
#[derive(Debug)]
pub struct Found<'r> {
    pub token: Cow<'r, str>,
    /// Index into the extractor's locations.
    pub at: usize,
}

/// The characters of a base64url token and its dots.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=')
}

/// The token in `value` after `prefix` (Envoy 1.40: the prefix anywhere in the value, then
/// from the first token character to the end of the value).
fn after_prefix<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &value[value.find(prefix)? + prefix.len()..];
    Some(match rest.bytes().position(is_token_char) {
        Some(begin) => &rest[begin..],
        None => rest,
    })
}

/// A provider's locations from its config (Envoy's defaults when none is set).
pub fn locations(p: &cfg::JwtProvider) -> Vec<Location> {
    if p.from_headers.is_empty() && p.from_params.is_empty() && p.from_cookies.is_empty() {
        return vec![
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            Location::Param("access_token".into()),
        ];
    }
    let headers = p.from_headers.iter().map(|h| Location::Header {
        name: h.name.to_ascii_lowercase().into(),
        prefix: h.value_prefix.as_str().into(),
    });
    let params = p
        .from_params
        .iter()
        .map(|n| Location::Param(n.as_str().into()));
    let cookies = p
        .from_cookies
        .iter()
        .map(|n| Location::Cookie(n.as_str().into()));
    headers.chain(params).chain(cookies).collect()
}

/// Every token of `req` at `locs`, in the locations' order (headers, then params, cookies).
pub fn extract<'r>(locs: &[Location], req: &RequestView<'r>) -> Vec<Found<'r>> {
    let mut out = Vec::new();
    let query = req.path.split_once('?').map(|(_, q)| q);
    for (at, loc) in locs.iter().enumerate() {
        match loc {
            Location::Header { name, prefix } => {
                let mut lines = req
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .filter_map(|h| std::str::from_utf8(h.value).ok());
                let Some(first) = lines.next() else { continue };
                // Several lines are one value joined by ',' (Envoy's getAllOfHeaderAsString).
                let value: Cow<'r, str> = match lines.next() {
                    None => Cow::Borrowed(first),
                    Some(second) => {
                        let mut v = format!("{first},{second}");
                        for l in lines {
                            v.push(',');
                            v.push_str(l);
                        }
                        Cow::Owned(v)
                    }
                };
                let token = if prefix.is_empty() {
                    Some(value)
                } else {
                    match value {
                        Cow::Borrowed(v) => after_prefix(v, prefix).map(Cow::Borrowed),
                        Cow::Owned(v) => after_prefix(&v, prefix).map(|t| Cow::Owned(t.into())),
                    }
                };
                if let Some(token) = token {
                    out.push(Found { token, at });
                }
            }
            Location::Param(name) => {
                if let Some(v) = query.and_then(|q| param(q, name)) {
                    out.push(Found { token: v, at });
                }
            }
            Location::Cookie(name) => {
                if let Some(v) = cookie(req, name) {
                    out.push(Found {
                        token: Cow::Borrowed(v),
                        at,
                    });
                }
            }
        }
    }
    out
}

/// The first value of query parameter `name`, percent-decoded.
fn param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k).as_ref() == name).then(|| decode(v))
    })
}

/// Percent-decoding (`+` stays `+`, as Envoy's `parseAndDecodeQueryString`).
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The value of cookie `name` in the request's `cookie` lines.
fn cookie<'r>(req: &RequestView<'r>, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}
