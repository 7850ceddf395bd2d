//! The data path's error kinds: every way a request can fail after its head was read, each
//! mapped to a status, a body and an Envoy response flag by `local_reply::for_error`.
use crate::http1::HeadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent a head or body meshcore will not proxy (400, 426, 431, 501).
    DownstreamProtocol(HeadError),
    /// No route matched (404, NR).
    NoRoute,
    /// The route's cluster has no healthy host (503, UH).
    NoHealthyUpstream,
    /// Connecting failed (503, UF).
    ConnectFailure,
    /// Connecting timed out (503, UF).
    ConnectTimeout,
    /// The upstream closed or reset before sending any byte of a response head (503, UC).
    UpstreamReset,
    /// The upstream sent a malformed or truncated response head (502, UPE).
    UpstreamProtocol,
    /// The route timeout fired (504, UT).
    UpstreamTimeout,
    /// A circuit breaker refused the request (503, UO).
    Overflow,
}
