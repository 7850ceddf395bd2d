//! Local replies to gRPC requests in gRPC form, as Envoy sends them: HTTP 200,
//! `content-type: application/grpc`, `grpc-status` mapped from the reply's HTTP status (or the
//! one a filter set) and `grpc-message` from its body, as a trailers-only response.
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

/// The header the core adds to its local replies on bridged streams (removed here).
pub const LOCAL_REPLY_HEADER: &str = "x-meshcore-local-reply";
/// The same as a header line, for the core's reply writer.
pub const LOCAL_REPLY_LINE: &[u8] = b"x-meshcore-local-reply: 1\r\n";

/// gRPC status for an HTTP status (Envoy's `Grpc::Utility::httpToGrpcStatus`).
pub fn status_for_http(code: u16) -> u8 {
    match code {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        429 | 502..=504 => 14, // UNAVAILABLE
        _ => 2,                // UNKNOWN
    }
}

/// Percent-encodes a `grpc-message` (gRPC over HTTP/2: bytes outside 0x20..=0x7e and `%`).
fn percent_encode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Turns the core's local reply (`resp` and its `body`) into its gRPC form.
pub fn to_grpc(resp: Response<()>, body: &[u8]) -> Response<()> {
    let (mut parts, ()) = resp.into_parts();
    let code = parts.status.as_u16();
    let h: &mut HeaderMap = &mut parts.headers;
    h.remove(header::CONTENT_LENGTH);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    if !h.contains_key("grpc-status") {
        h.insert(
            "grpc-status",
            HeaderValue::from(u16::from(status_for_http(code))),
        );
    }
    if !h.contains_key("grpc-message")
        && !body.is_empty()
        && let Ok(v) = HeaderValue::from_bytes(&percent_encode(body))
    {
        h.insert("grpc-message", v);
    }
    parts.status = StatusCode::OK;
    Response::from_parts(parts, ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_replies_become_trailers_only_grpc_responses() {
        let resp = Response::builder()
            .status(503)
            .header("content-length", "19")
            .header("content-type", "text/plain")
            .header("server", "envoy")
            .body(())
            .unwrap();
        let g = to_grpc(resp, b"no healthy upstream");
        assert_eq!(g.status(), 200);
        assert_eq!(g.headers()["content-type"], "application/grpc");
        assert_eq!(g.headers()["grpc-status"], "14");
        assert_eq!(g.headers()["grpc-message"], "no healthy upstream");
        assert_eq!(g.headers()["server"], "envoy");
        assert!(g.headers().get("content-length").is_none());

        let nr = to_grpc(Response::builder().status(404).body(()).unwrap(), b"");
        assert_eq!(nr.headers()["grpc-status"], "12");
        assert!(nr.headers().get("grpc-message").is_none());

        // A status set by a filter (fault abort with grpc_status) wins.
        let fault = Response::builder()
            .status(503)
            .header("grpc-status", "8")
            .body(())
            .unwrap();
        assert_eq!(to_grpc(fault, b"x").headers()["grpc-status"], "8");
        assert_eq!(percent_encode("50% ü\n".as_bytes()), b"50%25 %C3%BC%0A");
        assert_eq!(status_for_http(429), 14);
        assert_eq!(status_for_http(500), 2);
    }
}
