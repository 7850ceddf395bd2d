//! The data path's one error type: what went wrong, on which side, and whether a retry on a
//! fresh connection is safe.
use std::fmt;

use crate::http1::HeadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent a malformed request (400) or an oversized head (431).
    DownstreamProtocol(HeadError),
    /// The client closed or reset the connection.
    DownstreamClosed,
    /// No route matched (404, NR).
    NoRoute,
    /// The route's cluster has no healthy host (503, UH).
    NoHealthyUpstream,
    /// Connecting failed (503, UF).
    ConnectFailure,
    /// Connecting timed out (503, UF).
    ConnectTimeout,
    /// The upstream closed or reset before a complete response head (503, UC).
    UpstreamReset,
    /// The upstream sent a malformed response (502, UPE).
    UpstreamProtocol,
    /// The route timeout fired (504, UT).
    UpstreamTimeout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub side: Side,
    /// Safe to retry on a new upstream connection (nothing could have been processed).
    pub retryable: bool,
}

impl ProxyError {
    pub fn new(kind: ErrorKind) -> ProxyError {
        let side = match kind {
            ErrorKind::DownstreamProtocol(_) | ErrorKind::DownstreamClosed => Side::Downstream,
            _ => Side::Upstream,
        };
        ProxyError {
            kind,
            side,
            retryable: false,
        }
    }

    pub fn retryable(mut self, yes: bool) -> ProxyError {
        self.retryable = yes;
        self
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.kind, self.side)
    }
}

impl std::error::Error for ProxyError {}
