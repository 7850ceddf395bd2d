//! Header translation tests: pseudo-headers, connection headers, cookies, trailers,
//! content-length checks.
use super::*;
use http::Request;

fn h1_of(req: Request<()>, end_stream: bool) -> (String, Result<Framing, TranslateError>) {
    let (parts, _) = req.into_parts();
    let mut out = Vec::new();
    let r = request_head(&parts, end_stream, &mut out);
    (String::from_utf8(out).unwrap(), r)
}

#[test]
fn request_pseudo_headers_become_request_line_and_host() {
    let req = Request::builder()
        .method("POST")
        .uri("http://svc.local:8080/pkg.Svc/Call?x=1")
        .header("host", "ignored")
        .header("te", "trailers")
        .header("content-type", "application/grpc")
        .header("connection", "keep-alive")
        .header("keep-alive", "5")
        .header("upgrade", "websocket")
        .header("transfer-encoding", "chunked")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(())
        .unwrap();
    let (head, framing) = h1_of(req, false);
    assert_eq!(framing, Ok(Framing::Chunked));
    assert!(head.starts_with("POST /pkg.Svc/Call?x=1 HTTP/1.1\r\nhost: svc.local:8080\r\n"));
    assert!(head.contains("te: trailers\r\n"));
    assert!(head.contains("content-type: application/grpc\r\n"));
    assert!(head.contains("cookie: a=1; b=2\r\n"));
    assert!(!head.contains("ignored"));
    assert!(!head.contains("keep-alive"));
    assert!(!head.contains("websocket"));
    assert_eq!(head.matches("transfer-encoding: chunked").count(), 1);
    assert!(head.ends_with("\r\n\r\n"));
}

#[test]
fn request_framing_follows_content_length_and_end_stream() {
    let req = Request::builder()
        .method("PUT")
        .uri("http://a/x")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let (head, framing) = h1_of(req, false);
    assert_eq!(framing, Ok(Framing::Length(5)));
    assert!(head.contains("content-length: 5\r\n"));
    assert!(!head.contains("transfer-encoding"));

    let get = Request::builder().uri("http://a/").body(()).unwrap();
    let (head, framing) = h1_of(get, true);
    assert_eq!(framing, Ok(Framing::None));
    assert!(!head.contains("content-length") && !head.contains("transfer-encoding"));

    // A body promised by content-length but the stream already ended: refused.
    let bad = Request::builder()
        .method("POST")
        .uri("http://a/")
        .header("content-length", "3")
        .body(())
        .unwrap();
    assert_eq!(h1_of(bad, true).1, Err(TranslateError::BadContentLength));
    let two = Request::builder()
        .method("POST")
        .uri("http://a/")
        .header("content-length", "3")
        .header("content-length", "4")
        .body(())
        .unwrap();
    assert_eq!(h1_of(two, false).1, Err(TranslateError::BadContentLength));
    let te = Request::builder()
        .uri("http://a/")
        .header("te", "gzip")
        .body(())
        .unwrap();
    assert!(!h1_of(te, true).0.contains("te:"));
}

#[test]
fn response_from_the_core_drops_connection_headers() {
    let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\nconnection: close\r\n\
transfer-encoding: chunked\r\nx-a: 1\r\n\r\n5\r\nhello";
    let (resp, framing, len) = parse_response(raw, false).unwrap().unwrap();
    assert_eq!(framing, Framing::Chunked);
    assert_eq!(&raw[len..], b"5\r\nhello");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("connection").is_none());
    assert!(resp.headers().get("transfer-encoding").is_none());
    assert_eq!(resp.headers()["x-a"], "1");

    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n";
    assert_eq!(
        parse_response(head, true).unwrap().unwrap().1,
        Framing::None
    );
    assert_eq!(
        parse_response(head, false).unwrap().unwrap().1,
        Framing::Length(10)
    );
    assert!(
        parse_response(b"HTTP/1.1 200 OK\r\n", false)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        parse_response(b"HTTP/1.1 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap()
            .1,
        Framing::UntilClose
    );
    assert_eq!(
        parse_response(b"HTTX 200\r\n\r\n", false).unwrap_err(),
        TranslateError::BadHead
    );
}

#[test]
fn request_from_the_core_gets_authority_and_scheme() {
    let raw = b"POST /pkg.Svc/M HTTP/1.1\r\nhost: backend:9000\r\nconnection: keep-alive\r\n\
te: trailers\r\ncontent-length: 7\r\n\r\n";
    let (req, framing, len) = parse_request(raw).unwrap().unwrap();
    assert_eq!(len, raw.len());
    assert_eq!(framing, Framing::Length(7));
    assert_eq!(req.uri().to_string(), "http://backend:9000/pkg.Svc/M");
    assert_eq!(req.method(), "POST");
    assert!(req.headers().get("host").is_none());
    assert!(req.headers().get("connection").is_none());
    assert_eq!(req.headers()["te"], "trailers");
    assert!(parse_request(b"GET / HTTP/1.1\r\n\r\n").is_err(), "no host");
}

#[test]
fn response_to_the_core_is_chunked_unless_sized_or_ended() {
    let mut out = Vec::new();
    let (p, _) = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("connection", "x")
        .body(())
        .unwrap()
        .into_parts();
    assert_eq!(
        response_head(&p, false, false, &mut out),
        Ok(Framing::Chunked)
    );
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(s.contains("transfer-encoding: chunked\r\n"));
    assert!(!s.contains("connection"));

    let mut out = Vec::new();
    assert_eq!(response_head(&p, true, false, &mut out), Ok(Framing::None));
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("content-length: 0\r\n")
    );

    let (sized, _) = http::Response::builder()
        .status(404)
        .header("content-length", "3")
        .body(())
        .unwrap()
        .into_parts();
    let mut out = Vec::new();
    assert_eq!(
        response_head(&sized, false, false, &mut out),
        Ok(Framing::Length(3))
    );
    let mut out = Vec::new();
    assert_eq!(
        response_head(&sized, true, false, &mut out),
        Err(TranslateError::BadContentLength)
    );
    let mut out = Vec::new();
    assert_eq!(
        response_head(&sized, true, true, &mut out),
        Ok(Framing::None)
    );
}

#[test]
fn trailers_both_ways() {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from_static("0"));
    map.insert("grpc-message", HeaderValue::from_static("ok"));
    let mut out = Vec::new();
    chunked_trailers(Some(&map), &mut out);
    assert_eq!(out, b"0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n");
    let back = parse_trailers(&[b"\r\n".as_slice(), &out].concat())
        .unwrap()
        .unwrap();
    assert_eq!(back["grpc-status"], "0");
    assert_eq!(back["grpc-message"], "ok");
    assert_eq!(parse_trailers(b"\r\n0\r\n\r\n").unwrap(), None);
    assert_eq!(parse_trailers(b"0;ext=1\r\n\r\n").unwrap(), None);
    let mut out = Vec::new();
    chunked_trailers(None, &mut out);
    assert_eq!(out, b"0\r\n\r\n");
}

#[test]
fn connect_streams_become_connect_or_an_upgrade() {
    let req = Request::builder()
        .method("CONNECT")
        .uri("db.internal:5432")
        .header("x-a", "1")
        .header("content-length", "0")
        .body(())
        .unwrap();
    let (parts, _) = req.into_parts();
    let mut out = Vec::new();
    tunnel_request_head(&parts, None, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "CONNECT db.internal:5432 HTTP/1.1\r\nhost: db.internal:5432\r\nx-a: 1\r\n\r\n"
    );
    let req = Request::builder()
        .method("CONNECT")
        .uri("http://chat.example/ws?room=1")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    let (parts, _) = req.into_parts();
    let mut out = Vec::new();
    tunnel_request_head(&parts, Some("websocket"), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /ws?room=1 HTTP/1.1\r\nhost: chat.example\r\nsec-websocket-version: 13\r\n\
         connection: upgrade\r\nupgrade: websocket\r\n\r\n"
    );
    let mut out = Vec::new();
    assert_eq!(
        tunnel_request_head(&parts, Some("web socket"), &mut out),
        Err(TranslateError::BadHeader)
    );
}
