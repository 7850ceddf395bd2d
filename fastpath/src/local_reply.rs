//! Local replies: the status, body and Envoy response flag for every error, in one place,
//! and their serialisation.
use std::fmt;

use crate::error::ErrorKind;
use crate::http1::write::{push_header, push_status_line, push_u64};
use crate::http1::{HeadError, date};

/// Envoy response flags (as in access logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
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
    /// UO: upstream overflow (circuit breaker).
    UpstreamOverflow,
    /// FI: the fault filter aborted the request.
    FaultInjected,
    /// DI: the fault filter delayed the request.
    DelayInjected,
    /// RL: the local rate limit filter limited the request.
    RateLimited,
    /// SI: the stream idle timeout fired.
    StreamIdleTimeout,
    /// URX: the upstream retry (tcp_proxy: connect attempt) limit was reached.
    UpstreamRetryLimitExceeded,
    /// NC: the upstream cluster does not exist.
    NoClusterFound,
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
            ResponseFlag::UpstreamOverflow => "UO",
            ResponseFlag::FaultInjected => "FI",
            ResponseFlag::DelayInjected => "DI",
            ResponseFlag::RateLimited => "RL",
            ResponseFlag::StreamIdleTimeout => "SI",
            ResponseFlag::UpstreamRetryLimitExceeded => "URX",
            ResponseFlag::NoClusterFound => "NC",
        }
    }

    /// Every flag, in the order Envoy prints them (its `CoreResponseFlag` order).
    pub const ALL: [ResponseFlag; 15] = [
        ResponseFlag::NoHealthyUpstream,
        ResponseFlag::UpstreamRequestTimeout,
        ResponseFlag::UpstreamConnectionFailure,
        ResponseFlag::UpstreamConnectionTermination,
        ResponseFlag::UpstreamOverflow,
        ResponseFlag::NoRoute,
        ResponseFlag::DelayInjected,
        ResponseFlag::FaultInjected,
        ResponseFlag::RateLimited,
        ResponseFlag::DownstreamConnectionTermination,
        ResponseFlag::UpstreamRetryLimitExceeded,
        ResponseFlag::StreamIdleTimeout,
        ResponseFlag::DownstreamProtocolError,
        ResponseFlag::UpstreamProtocolError,
        ResponseFlag::NoClusterFound,
    ];
}

/// The set of response flags of one request (Envoy's `%RESPONSE_FLAGS%`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseFlags(u32);

impl ResponseFlags {
    pub fn insert(&mut self, f: ResponseFlag) {
        self.0 |= 1 << f as u8;
    }

    /// Adds every flag of `other`.
    pub fn extend(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }

    pub fn contains(self, f: ResponseFlag) -> bool {
        self.0 & (1 << f as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Some flag is in both sets.
    pub fn intersects(self, other: ResponseFlags) -> bool {
        self.0 & other.0 != 0
    }
}

/// Envoy's access log rendering: short names joined by `,`, or `-` when there is none.
impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        let mut first = true;
        for flag in ResponseFlag::ALL.iter().filter(|fl| self.contains(**fl)) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(flag.short())?;
            first = false;
        }
        Ok(())
    }
}

/// What Envoy answers for an error: status, body, flag.
pub fn for_error(kind: ErrorKind) -> (u16, &'static str, ResponseFlag) {
    use ResponseFlag::*;
    match kind {
        ErrorKind::DownstreamProtocol(e) => {
            let (status, body) = match e {
                HeadError::TooLarge | HeadError::TooManyHeaders => {
                    (431, "Request Header Fields Too Large")
                }
                HeadError::Malformed(_) | HeadError::UnderscoreInHeader => (400, "Bad Request"),
                HeadError::UnsupportedTransferEncoding => (501, "Not Implemented"),
                HeadError::UnsupportedVersion => (426, "Upgrade Required"),
                HeadError::MissingHost | HeadError::InvalidPath => (400, ""),
            };
            (status, body, DownstreamProtocolError)
        }
        ErrorKind::NoRoute => (404, "", NoRoute),
        ErrorKind::NoHealthyUpstream => (503, "no healthy upstream", NoHealthyUpstream),
        ErrorKind::ConnectFailure => (503, reset::FAILURE, UpstreamConnectionFailure),
        ErrorKind::ConnectTimeout => (503, reset::TIMEOUT, UpstreamConnectionFailure),
        ErrorKind::UpstreamReset => (503, reset::TERMINATION, UpstreamConnectionTermination),
        ErrorKind::UpstreamProtocol => (502, reset::PROTOCOL, UpstreamProtocolError),
        ErrorKind::UpstreamTimeout => (504, "upstream request timeout", UpstreamRequestTimeout),
        ErrorKind::Overflow => (503, reset::OVERFLOW, UpstreamOverflow),
    }
}

/// Envoy's "upstream connect error or disconnect/reset before headers" bodies (the reset
/// reasons of Envoy 1.40's HTTP/1 upstream).
mod reset {
    pub const FAILURE: &str = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";
    pub const TIMEOUT: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection timeout";
    pub const TERMINATION: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
    pub const OVERFLOW: &str =
        "upstream connect error or disconnect/reset before headers. reset reason: overflow";
    pub const PROTOCOL: &str =
        "upstream connect error or disconnect/reset before headers. reset reason: protocol error";
}

/// A local reply's head fields besides status and body.
pub struct ReplyHead<'a> {
    pub status: u16,
    /// `content-type: text/plain` is added when the body is not empty.
    pub body_len: usize,
    /// The `location` of a redirect.
    pub location: Option<&'a str>,
    pub server: &'a [u8],
    /// HTTP minor version of the status line: 0 answers an accepted HTTP/1.0 request.
    pub minor: u8,
    pub close: bool,
    /// HTTP/1.0 client that asked for keep-alive.
    pub keep_alive_10: bool,
    /// Extra header lines, already serialised (`name: value\r\n` each).
    pub extra: &'a [u8],
}

/// Serialises a local reply head (Envoy's local reply headers: content-length, content-type,
/// date, server).
pub fn push_head(out: &mut Vec<u8>, h: &ReplyHead<'_>) {
    push_status_line(out, h.minor, h.status);
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
    #[test]
    fn flags_print_in_envoys_order() {
        let mut f = ResponseFlags::default();
        assert_eq!(f.to_string(), "-");
        f.insert(ResponseFlag::UpstreamRetryLimitExceeded);
        f.insert(ResponseFlag::UpstreamConnectionFailure);
        assert_eq!(f.to_string(), "UF,URX");
        let mut g = ResponseFlags::default();
        g.insert(ResponseFlag::NoClusterFound);
        g.insert(ResponseFlag::NoHealthyUpstream);
        assert_eq!(g.to_string(), "UH,NC");
    }

    use super::*;

    #[test]
    fn error_mapping_matches_envoy() {
        assert_eq!(for_error(ErrorKind::NoRoute).0, 404);
        let (s, b, f) = for_error(ErrorKind::ConnectFailure);
        assert_eq!((s, f.short()), (503, "UF"));
        assert!(b.ends_with("reset reason: remote connection failure"));
        assert!(
            for_error(ErrorKind::ConnectTimeout)
                .1
                .ends_with("reset reason: connection timeout")
        );
        assert_eq!(
            for_error(ErrorKind::UpstreamTimeout).1,
            "upstream request timeout"
        );
        assert_eq!(for_error(ErrorKind::UpstreamProtocol).0, 502);
        let down = |e| {
            let (s, b, f) = for_error(ErrorKind::DownstreamProtocol(e));
            assert_eq!(f, ResponseFlag::DownstreamProtocolError);
            (s, b)
        };
        assert_eq!(
            down(HeadError::TooLarge),
            (431, "Request Header Fields Too Large")
        );
        assert_eq!(down(HeadError::Malformed("x")), (400, "Bad Request"));
        assert_eq!(down(HeadError::MissingHost), (400, ""));
        assert_eq!(
            down(HeadError::UnsupportedVersion),
            (426, "Upgrade Required")
        );
        assert_eq!(
            down(HeadError::UnsupportedTransferEncoding),
            (501, "Not Implemented")
        );
    }

    #[test]
    fn flags_render_like_envoy_access_logs() {
        let mut flags = ResponseFlags::default();
        assert_eq!(flags.to_string(), "-");
        flags.insert(ResponseFlag::UpstreamRequestTimeout);
        flags.insert(ResponseFlag::NoHealthyUpstream);
        assert!(flags.contains(ResponseFlag::NoHealthyUpstream));
        assert!(!flags.contains(ResponseFlag::NoRoute));
        assert_eq!(flags.to_string(), "UH,UT");
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
                minor: 1,
                close: true,
                keep_alive_10: false,
                extra: b"x-a: 1\r\n",
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\ndate: "));
        assert!(s.ends_with("server: envoy\r\nx-a: 1\r\nconnection: close\r\n\r\n"));
        let mut out = Vec::new();
        push_head(
            &mut out,
            &ReplyHead {
                status: 400,
                body_len: 0,
                location: None,
                server: b"",
                minor: 0,
                close: true,
                keep_alive_10: false,
                extra: b"",
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\ndate: "));
        assert!(!s.contains("content-type") && !s.contains("server"));
    }
}
