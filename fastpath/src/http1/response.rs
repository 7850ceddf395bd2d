//! Response head parsing (upstream side): httparse plus framing per RFC 9112 section 6.3.
use std::mem::MaybeUninit;

use httparse::Header;

use super::headers::{self, ConnectionTokens, Kind};
use super::{ChunkedDecoder, Framing, HeadError, MAX_HEADERS, head};

pub struct ResponseHead<'h, 'b> {
    pub code: u16,
    pub minor: u8,
    pub head_len: usize,
    pub headers: &'h [Header<'b>],
    pub kinds: [Kind; MAX_HEADERS],
    pub framing: Framing,
    /// The upstream keeps the connection open after this response.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`; `head_request` says the request was HEAD
/// (so the response has no body whatever its headers say).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<Header<'b>>; MAX_HEADERS],
    max_head: usize,
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let cfg = httparse::ParserConfig::default();
    let parsed = cfg.parse_response_with_uninit_headers(&mut resp, buf, storage);
    let Some(head_len) = head::head_len(parsed, buf, max_head, |e| {
        HeadError::Malformed(super::request::httparse_error_text(e))
    })?
    else {
        return Ok(None);
    };
    let code = resp.code.ok_or(HeadError::Malformed("missing status"))?;
    if !(100..=599).contains(&code) {
        return Err(HeadError::Malformed("invalid status"));
    }
    let minor = resp
        .version
        .ok_or(HeadError::Malformed("missing version"))?;
    let headers: &'h [Header<'b>] = resp.headers;

    let mut kinds = [Kind::Other; MAX_HEADERS];
    let mut content_length: Option<u64> = None;
    let mut te: Option<&'b [u8]> = None;
    let mut conn = ConnectionTokens::default();
    for (i, h) in headers.iter().enumerate() {
        let k = headers::classify(h.name);
        kinds[i] = k;
        match k {
            Kind::ContentLength => {
                let n = headers::parse_content_length(h.value)
                    .ok_or(HeadError::Malformed("invalid content-length"))?;
                // Even an equal repeated value is refused, as Envoy does (502).
                if content_length.replace(n).is_some() {
                    return Err(HeadError::Malformed("multiple content-length headers"));
                }
            }
            Kind::TransferEncoding if te.replace(h.value).is_some() => {
                return Err(HeadError::Malformed("multiple transfer-encoding headers"));
            }
            Kind::Connection => conn.add(h.value),
            Kind::Te => kinds[i] = Kind::HopByHop,
            _ => {}
        }
    }
    conn.apply(headers, &mut kinds);

    let no_body = head_request || (100..200).contains(&code) || code == 204 || code == 304;
    let framing = if no_body {
        Framing::None
    } else {
        match (te, content_length) {
            (Some(_), Some(_)) => {
                return Err(HeadError::Malformed(
                    "both content-length and transfer-encoding",
                ));
            }
            // Only exactly `chunked`, as Envoy (502 for `gzip`, `chunked, gzip`, ...): a
            // body read until close under another coding is one the client cannot frame.
            (Some(v), None) if v.trim_ascii().eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            (Some(_), None) => return Err(HeadError::Malformed("invalid transfer-encoding")),
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    // Chunk framing that arrived with the head is checked now, so a malformed body the
    // proxy can still refuse is a 502 (UPE) rather than a response cut after its head.
    if framing == Framing::Chunked && ChunkedDecoder::new().validate(&buf[head_len..]).is_err() {
        return Err(HeadError::Malformed("invalid chunked body"));
    }
    let keep_alive = if minor == 1 {
        !conn.close
    } else {
        conn.keep_alive && !conn.close
    };
    Ok(Some(ResponseHead {
        code,
        minor,
        head_len,
        headers,
        kinds,
        framing,
        keep_alive: keep_alive && framing != Framing::UntilClose,
    }))
}
