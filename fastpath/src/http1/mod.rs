//! HTTP/1.1 codec: request and response heads (on httparse), body framing, chunked decoding,
//! head serialisation helpers. No I/O here; the proxy drives it with scripted-testable calls.
pub mod chunked;
pub mod date;
mod head;
pub mod headers;
pub mod request;
pub mod response;
pub mod write;

pub use chunked::{ChunkError, ChunkedDecoder};
pub use headers::Kind;
pub use request::{RequestHead, parse_request};
pub use response::{ResponseHead, parse_response};

/// Most header lines accepted in one head (Envoy's `max_headers_count` default).
pub const MAX_HEADERS: usize = 100;

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    None,
    Length(u64),
    Chunked,
    /// Response body delimited by the upstream closing the connection.
    UntilClose,
}

impl Framing {
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::None | Framing::Length(0))
    }
}

/// Why a head was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Syntax or framing error (400 downstream, 502 upstream); the text names it.
    Malformed(&'static str),
    /// The header section is larger than allowed (431 downstream).
    TooLarge,
    /// More than `MAX_HEADERS` header lines (431 downstream).
    TooManyHeaders,
    /// A request `transfer-encoding` other than exactly `chunked` (501, as Envoy).
    UnsupportedTransferEncoding,
    /// HTTP/1.0 (when not accepted) or an unknown version such as `HTTP/9.9` (426).
    UnsupportedVersion,
    /// No `host` header and no absolute-form authority (400 with an empty body; not a codec
    /// error in Envoy, so no `downstream_cx_protocol_error`).
    MissingHost,
    /// A request target with a fragment (`#`): 400 with an empty body, answered by Envoy's
    /// connection manager after the codec (`path_normalization_failed`), so no
    /// `downstream_cx_protocol_error`.
    InvalidPath,
    /// A header name with an underscore under `headers_with_underscores_action:
    /// REJECT_REQUEST` (400, a codec error in Envoy: `http1.unexpected_underscore`).
    UnderscoreInHeader,
}

impl HeadError {
    /// Envoy counts this rejection as a codec error (`downstream_cx_protocol_error`).
    pub fn is_codec_error(self) -> bool {
        !matches!(self, HeadError::MissingHost | HeadError::InvalidPath)
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;
