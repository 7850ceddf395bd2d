//! Full-duplex gRPC bodies between the two bridges. The HTTP/1.1 core is half-duplex: once
//! the upstream starts answering it stops forwarding the request body, which would stall a
//! gRPC bidi stream. So a gRPC request from an HTTP/2 client goes through the core as a
//! body-less request carrying a 128-bit random token (`BODY_HEADER`); its request body stays
//! with the HTTP/2 stream, parked here, and the upstream bridge on the same worker takes it by
//! the token and pipes it straight into the upstream stream (with both sides' flow control).
//! The response still flows through the core (routing, filters, timeouts, stats, logs).
//! A body of at most `REPLAY_LIMIT` bytes is kept after its first attempt, so that a retry
//! (e.g. `retry_on: unavailable`) sends it again.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use h2::RecvStream;
use http::HeaderMap;

use crate::proxy::GrpcSlot;

/// Largest request body kept for a retry.
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// A parked request body.
pub enum Parked {
    /// Not read yet: the HTTP/2 stream's body, and the slot of its `grpc_stats` call (its
    /// request messages count as they go upstream).
    Live(RecvStream, Rc<GrpcSlot>),
    /// Read once already (by an attempt that may be retried): the bytes and trailers.
    Replay(Vec<Bytes>, Option<HeaderMap>),
}

/// The request header that names a parked body (never forwarded to an upstream).
pub const BODY_HEADER: &str = "x-meshcore-h2-body";

thread_local! {
    static PARKED: RefCell<HashMap<u128, Parked>> = RefCell::new(HashMap::new());
}

/// Parks `body` and returns its token.
pub fn park(body: RecvStream, grpc: Rc<GrpcSlot>) -> u128 {
    let token = fastrand::u128(..);
    PARKED.with(|p| p.borrow_mut().insert(token, Parked::Live(body, grpc)));
    token
}

/// Keeps a body that was sent whole, for a retry under the same token.
pub fn park_replay(token: u128, data: Vec<Bytes>, trailers: Option<HeaderMap>) {
    PARKED.with(|p| p.borrow_mut().insert(token, Parked::Replay(data, trailers)));
}

/// Takes the body parked under `token` (once).
pub fn take(token: u128) -> Option<Parked> {
    PARKED.with(|p| p.borrow_mut().remove(&token))
}

/// Drops a body nobody took (the request was answered locally or by an HTTP/1.1 upstream).
pub fn discard(token: u128) {
    drop(take(token));
}

/// Whether a request is gRPC (`content-type: application/grpc`, `+proto`, `+json`...).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
