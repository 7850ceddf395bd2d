//! Request-smuggling cases for the codec pieces: each ambiguous head, chunk line or response
//! is refused, and the legitimate neighbours of each case are still accepted.
use std::mem::MaybeUninit;

use super::*;

const LIMIT: usize = 60 * 1024;

fn storage<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

fn parse(buf: &[u8]) -> Result<Framing, HeadError> {
    let mut st = storage();
    parse_request(buf, &mut st, LIMIT).map(|h| h.expect("complete head").framing)
}

fn head(line: &str, headers: &[&str]) -> Vec<u8> {
    let mut out = format!("{line}\r\nHost: h\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[test]
fn ambiguous_request_heads_are_400() {
    let cases: &[(&str, &[&str])] = &[
        (
            "GET /v HTTP/1.1",
            &["Content-Length: 1", "Content-Length: 1"],
        ),
        ("GET /v HTTP/1.1", &["Content-Length: 1,1"]),
        ("GET /v HTTP/1.1", &["Content-Length: 1 1"]),
        ("GET /v HTTP/1.1", &["Content-Length: 0x1"]),
        ("GET /v HTTP/1.1", &["Content-Length: 1a"]),
        (
            "POST /v HTTP/1.1",
            &["Transfer-Encoding: chunked", "Content-Length: 3"],
        ),
        ("GET /v HTTP/1.1", &["Transfer-Encoding : chunked"]),
        ("GET /v HTTP/1.1", &["X-A\t: b"]),
        ("GET /v HTTP/1.1", &["X A: b"]),
        ("GET /v HTTP/1.1", &[": b"]),
        ("GET /v HTTP/1.1", &["NoColon"]),
        ("GET /v HTTP/1.1", &["X(a): b"]),
        ("GET /v HTTP/1.1", &["X@a: b"]),
        ("GET /v HTTP/1.1", &["X\"a: b"]),
        ("GET /v HTTP/1.1", &["X/a: b"]),
        ("GET /v HTTP/1.1", &["X-A: a", "\tfolded"]),
        ("GET /v HTTP/1.1", &["X-A: a\x01b"]),
        ("GET /v HTTP/1.1", &["X-A: a\x0bb"]),
        ("GET /v HTTP/1.1", &["X-A: a\x1bb"]),
        ("GET /v HTTP/1.1", &["X-A: a\x7fb"]),
        ("GET /v HTTP/1.1", &["X-A: a\rb"]),
        // Request lines.
        ("get /v HTTP/1.1", &[]),
        ("FOO /v HTTP/1.1", &[]),
        ("M-SEARCH /v HTTP/1.1", &[]),
        ("G(T /v HTTP/1.1", &[]),
        ("GET  /v HTTP/1.1", &[]),
        ("GET\t/v\tHTTP/1.1", &[]),
        ("GET /v HTTP/1.1 ", &[]),
        (" GET /v HTTP/1.1", &[]),
        ("GET /v http/1.1", &[]),
        ("GET /v HTTP/1.10", &[]),
        ("GET /v HTTP/11", &[]),
        ("GET http:///v HTTP/1.1", &[]),
        ("GET ftp://h/v HTTP/1.1", &[]),
        ("GET * HTTP/1.1", &[]),
    ];
    for (line, headers) in cases {
        let buf = head(line, headers);
        let got = parse(&buf);
        assert!(
            matches!(got, Err(HeadError::Malformed(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(&buf)
        );
    }
}

#[test]
fn invalid_authorities_are_400() {
    for host in [
        "a b", "a/b", "a?b", "a#b", "a\"b", "a\\b", "a{b}", "h\u{e9}",
    ] {
        let buf = format!("GET /v HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            parse(buf.as_bytes()),
            Err(HeadError::Malformed("invalid authority")),
            "{host:?}"
        );
    }
    let mut st = storage();
    let r = parse_request(b"GET http://a b/v HTTP/1.1\r\n\r\n", &mut st, LIMIT);
    assert!(r.is_err());
    for host in [
        "h",
        "h:80",
        "a.b-c_d~e",
        "[::1]:8080",
        "u@h",
        "%41",
        "a!$&'()*+,;=b",
    ] {
        let buf = format!("GET /v HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(parse(buf.as_bytes()), Ok(Framing::None), "{host:?}");
    }
}

#[test]
fn a_fragment_in_the_target_is_refused_after_the_codec() {
    let e = parse(b"GET /v#f HTTP/1.1\r\nHost: h\r\n\r\n").unwrap_err();
    assert_eq!(e, HeadError::InvalidPath);
    assert!(!e.is_codec_error());
    assert!(HeadError::Malformed("x").is_codec_error());
    assert!(!HeadError::MissingHost.is_codec_error());
}

#[test]
fn envoys_methods_are_accepted_and_no_others() {
    for m in [
        "GET",
        "POST",
        "MSEARCH",
        "PURGE",
        "UNSUBSCRIBE",
        "MKCALENDAR",
        "ACL",
    ] {
        let buf = format!("{m} /v HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(parse(buf.as_bytes()), Ok(Framing::None), "{m}");
    }
    for m in ["QUERY", "PRI", "Get", "M-SEARCH", "X"] {
        assert!(!headers::is_known_method(m), "{m}");
    }
}

#[test]
fn legitimate_neighbours_are_accepted() {
    let ok: &[(&str, &[&str], Framing)] = &[
        (
            "POST /v HTTP/1.1",
            &["Content-Length: 007"],
            Framing::Length(7),
        ),
        (
            "POST /v HTTP/1.1",
            &["Transfer-Encoding: CHUNKED"],
            Framing::Chunked,
        ),
        (
            "POST /v HTTP/1.1",
            &["Transfer-Encoding:\tchunked"],
            Framing::Chunked,
        ),
        ("GET /v HTTP/1.1", &["X_a: b"], Framing::None),
        ("GET /v HTTP/1.1", &["X-A: a\tb \u{e9}"], Framing::None),
        ("GET /v HTTP/1.1", &["X-Empty:"], Framing::None),
        ("GET http://u@h/v HTTP/1.1", &[], Framing::None),
    ];
    for (line, headers, want) in ok {
        let buf = head(line, headers);
        assert_eq!(
            parse(&buf),
            Ok(*want),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
    }
}

fn chunk_err(input: &[u8]) -> Option<ChunkError> {
    // Fed whole and byte by byte: the answer must not depend on how the bytes arrive.
    let whole = ChunkedDecoder::new().validate(input).err();
    let mut d = ChunkedDecoder::new();
    let mut split = None;
    for b in input.chunks(1) {
        if let Err(e) = d.validate(b) {
            split = Some(e);
            break;
        }
        if d.is_done() {
            break;
        }
    }
    assert_eq!(whole, split, "{:?}", String::from_utf8_lossy(input));
    whole
}

#[test]
fn ambiguous_chunk_lines_are_errors() {
    use ChunkError::*;
    let cases: &[(&[u8], ChunkError)] = &[
        (b"10000000000000000\r\n", SizeOverflow),
        (b"0x1\r\na\r\n", BadSize),
        (b"+1\r\na\r\n", BadSize),
        (b"-1\r\na\r\n", BadSize),
        (b"1 1\r\na\r\n", BadSize),
        (b" 1\r\na\r\n", BadSize),
        (b"1 \r\na\r\n", BadSize),
        (b"1\t\r\na\r\n", BadSize),
        (b"1 ;a=b\r\na\r\n", BadSize),
        (b"\r\na\r\n", BadSize),
        (b"1\na\r\n", BadSize),
        (b"1;\r\na\r\n", BadExtension),
        (b"1; a\r\na\r\n", BadExtension),
        (b"1;a b\r\na\r\n", BadExtension),
        (b"1;a =b\r\na\r\n", BadExtension),
        (b"1;a= b\r\na\r\n", BadExtension),
        (b"1;a@=b\r\na\r\n", BadExtension),
        (b"1;a=b@c\r\na\r\n", BadExtension),
        (b"1;a=\r\na\r\n", BadExtension),
        (b"1;a=\"b\r\na\r\n", BadExtension),
        (b"1;a=\"b\"c\r\na\r\n", BadExtension),
        (b"1;a=\"b\0\"\r\na\r\n", BadExtension),
        (b"1;a\0\r\na\r\n", BadExtension),
        (b"1;a\x01\r\na\r\n", BadExtension),
        (b"1;a\na\r\n", BadExtension),
        (b"1;a\rb\r\na\r\n", BadLineEnd),
        (b"1\r\naXX\r\n", BadLineEnd),
        (b"1\r\na\n0\r\n\r\n", BadLineEnd),
        (b"1\r\na\r0\r\n\r\n", BadLineEnd),
        (b"0\n\n", BadSize),
        (b"0\r\nX A: b\r\n\r\n", BadTrailer),
        (b"0\r\nX: a\r\n b\r\n\r\n", BadTrailer),
        (b"0\r\nX\r\n\r\n", BadTrailer),
        (b"0\r\nX: a\0\r\n\r\n", BadTrailer),
        (b"0\r\nX: a\nY: b\r\n\r\n", BadTrailer),
    ];
    for (input, want) in cases {
        assert_eq!(
            chunk_err(input),
            Some(*want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let mut long_name = b"1;".to_vec();
    long_name.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(chunk_err(&long_name), Some(BadExtension));
}

#[test]
fn valid_chunk_lines_are_accepted() {
    for input in [
        &b"1\r\na\r\n0\r\n\r\n"[..],
        b"000001\r\na\r\n000\r\n\r\n",
        b"1;a\r\na\r\n0\r\n\r\n",
        b"1;a=b;c;d=\"\"\r\na\r\n0\r\n\r\n",
        b"1;a=\"b c;\\\"d\"\r\na\r\n0;z=1\r\n\r\n",
        b"0\r\nX: a\r\nY:\r\nZ: \t\xe9\r\n\r\n",
    ] {
        assert_eq!(
            ChunkedDecoder::new().validate(input),
            Ok((input.len(), true)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(chunk_err(input), None);
    }
}

fn resp_err(buf: &[u8]) -> bool {
    let mut st = storage();
    parse_response(buf, &mut st, LIMIT, false).is_err()
}

#[test]
fn ambiguous_responses_are_refused() {
    let cases: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2,2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 099 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 600 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    ];
    for c in cases {
        assert!(resp_err(c), "{:?}", String::from_utf8_lossy(c));
    }
    // A chunked body that only arrives later is checked while it streams, not here.
    let mut st = storage();
    let h = parse_response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok",
        &mut st,
        LIMIT,
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    // No body after HEAD/204/304: the framing headers are not read, as in Envoy.
    assert!(!resp_err(
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n"
    ));
}
