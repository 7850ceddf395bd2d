//! Local replies: the status, body and Envoy response flag for every error, in one place,
//! and their serialisation.
use crate::error::ErrorKind;
use crate::http1::write::{push_header, push_status_line, push_u64};
use crate::http1::{HeadError, date};

/// Envoy response flags (as in access logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFlag {
    /// NR: no route.
    NoRoute,
    /// UH: no healthy upstream host.
    NoHealthyUpstream,
    /// UF: upstream connection failure.
    UpstreamConnectionFailure,
    /// UT: upstream request timeout.
    UpstreamRequestTimeout,
    /// UC: upstream connection termination.
    UpstreamConnectionTermination,
    /// UPE: upstream protocol error.
    UpstreamProtocolError,
    /// DC: downstream connection termination.
    DownstreamConnectionTermination,
    /// DPE: downstream protocol error.
    DownstreamProtocolError,
}

impl ResponseFlag {
    pub fn short(self) -> &'static str {
        match self {
            ResponseFlag::NoRoute => "NR",
            ResponseFlag::NoHealthyUpstream => "UH",
            ResponseFlag::UpstreamConnectionFailure => "UF",
            ResponseFlag::UpstreamRequestTimeout => "UT",
            ResponseFlag::UpstreamConnectionTermination => "UC",
            ResponseFlag::UpstreamProtocolError => "UPE",
            ResponseFlag::DownstreamConnectionTermination => "DC",
            ResponseFlag::DownstreamProtocolError => "DPE",
        }
    }
}

/// What Envoy answers for an error: status, body, flag. `None` when nothing can be sent
/// (the client is gone).
pub fn for_error(kind: ErrorKind) -> Option<(u16, &'static str, ResponseFlag)> {
    use ResponseFlag::*;
    Some(match kind {
        ErrorKind::DownstreamProtocol(HeadError::TooLarge | HeadError::TooManyHeaders) => (
            431,
            "Request Header Fields Too Large",
            DownstreamProtocolError,
        ),
        ErrorKind::DownstreamProtocol(HeadError::Malformed(_)) => {
            (400, "Bad Request", DownstreamProtocolError)
        }
        ErrorKind::DownstreamClosed => return None,
        ErrorKind::NoRoute => (404, "", NoRoute),
        ErrorKind::NoHealthyUpstream => (503, "no healthy upstream", NoHealthyUpstream),
        ErrorKind::ConnectFailure => (503, reset::FAILURE, UpstreamConnectionFailure),
        ErrorKind::ConnectTimeout => (503, reset::TIMEOUT, UpstreamConnectionFailure),
        ErrorKind::UpstreamReset => (503, reset::TERMINATION, UpstreamConnectionTermination),
        ErrorKind::UpstreamProtocol => (502, reset::PROTOCOL, UpstreamProtocolError),
        ErrorKind::UpstreamTimeout => (504, "upstream request timeout", UpstreamRequestTimeout),
    })
}

/// Envoy's "upstream connect error or disconnect/reset before headers" bodies.
mod reset {
    pub const FAILURE: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
    pub const TIMEOUT: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection timeout";
    pub const TERMINATION: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
    pub const PROTOCOL: &str =
        "upstream connect error or disconnect/reset before headers. reset reason: protocol error";
}

/// A local reply's head fields besides status and body.
pub struct ReplyHead<'a> {
    pub status: u16,
    pub body_len: usize,
    /// `content-type: text/plain` is added when the body is not empty.
    pub location: Option<&'a str>,
    pub server: &'a [u8],
    pub close: bool,
    /// HTTP/1.0 client that asked for keep-alive.
    pub keep_alive_10: bool,
    /// Extra header lines, already serialised (`name: value\r\n` each).
    pub extra: &'a [u8],
}

/// Serialises a local reply head (Envoy's local reply headers: content-length, content-type,
/// date, server).
pub fn push_head(out: &mut Vec<u8>, h: &ReplyHead<'_>) {
    push_status_line(out, h.status);
    out.extend_from_slice(b"content-length: ");
    push_u64(out, h.body_len as u64);
    out.extend_from_slice(b"\r\n");
    if h.body_len > 0 {
        push_header(out, b"content-type", b"text/plain");
    }
    if let Some(loc) = h.location {
        push_header(out, b"location", loc.as_bytes());
    }
    push_header(out, b"date", &date::now());
    if !h.server.is_empty() {
        push_header(out, b"server", h.server);
    }
    out.extend_from_slice(h.extra);
    if h.close {
        push_header(out, b"connection", b"close");
    } else if h.keep_alive_10 {
        push_header(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_mapping_matches_envoy() {
        assert_eq!(for_error(ErrorKind::NoRoute).unwrap().0, 404);
        let (s, b, f) = for_error(ErrorKind::ConnectFailure).unwrap();
        assert_eq!((s, f.short()), (503, "UF"));
        assert!(b.ends_with("reset reason: connection failure"));
        assert_eq!(
            for_error(ErrorKind::UpstreamTimeout).unwrap().1,
            "upstream request timeout"
        );
        assert_eq!(for_error(ErrorKind::UpstreamProtocol).unwrap().0, 502);
        assert_eq!(
            for_error(ErrorKind::DownstreamProtocol(HeadError::TooLarge))
                .unwrap()
                .0,
            431
        );
        assert!(for_error(ErrorKind::DownstreamClosed).is_none());
    }

    #[test]
    fn head_serialisation() {
        let mut out = Vec::new();
        push_head(
            &mut out,
            &ReplyHead {
                status: 503,
                body_len: 19,
                location: None,
                server: b"envoy",
                close: true,
                keep_alive_10: false,
                extra: b"x-a: 1\r\n",
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\ndate: "));
        assert!(s.ends_with("server: envoy\r\nx-a: 1\r\nconnection: close\r\n\r\n"));
    }
}
