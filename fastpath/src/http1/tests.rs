//! Codec tests with scripted input: fragmentation, pipelining, chunked edge cases, hostile heads.
use std::mem::MaybeUninit;

use super::*;

const LIMIT: usize = 60 * 1024;

fn storage<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Framing, keep-alive, head length, path, authority.
type Summary = (Framing, bool, usize, String, String);

fn req(buf: &[u8]) -> Result<Option<Summary>, HeadError> {
    let mut st = storage();
    Ok(parse_request(buf, &mut st, LIMIT)?.map(|h| {
        (
            h.framing,
            h.keep_alive,
            h.head_len,
            h.path.to_string(),
            h.authority.to_string(),
        )
    }))
}

fn bad(buf: &[u8]) -> HeadError {
    match req(buf) {
        Err(e) => e,
        Ok(v) => panic!(
            "accepted {:?}: {:?}",
            String::from_utf8_lossy(buf),
            v.map(|x| x.0)
        ),
    }
}

#[test]
fn simple_get_and_keep_alive_rules() {
    let (f, ka, n, path, auth) = req(b"GET /a?b=1 HTTP/1.1\r\nHost: x.com\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (f, ka, path.as_str(), auth.as_str()),
        (Framing::None, true, "/a?b=1", "x.com")
    );
    assert_eq!(n, 36);
    let r = req(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!r.1);
    let r = req(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!r.1, "HTTP/1.0 closes by default");
    let r = req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(r.1);
}

#[test]
fn byte_by_byte_head_is_partial_until_complete() {
    let full = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    let head_len = full.len() - 5;
    for i in 0..head_len {
        assert_eq!(req(&full[..i]).unwrap().map(|x| x.0), None, "prefix {i}");
    }
    let (f, _, n, _, _) = req(&full[..head_len]).unwrap().unwrap();
    assert_eq!((f, n), (Framing::Length(5), head_len));
}

#[test]
fn pipelined_requests_parse_one_at_a_time() {
    let buf = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    let (_, _, n, p1, _) = req(buf).unwrap().unwrap();
    assert_eq!(p1, "/1");
    let (_, _, _, p2, _) = req(&buf[n..]).unwrap().unwrap();
    assert_eq!(p2, "/2");
}

#[test]
fn absolute_form_target_gives_authority() {
    let (_, _, _, path, auth) = req(b"GET http://Svc:8080/x?q HTTP/1.1\r\nHost: other\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!((path.as_str(), auth.as_str()), ("/x?q", "Svc:8080"));
    let (_, _, _, path, _) = req(b"GET http://svc HTTP/1.1\r\n\r\n").unwrap().unwrap();
    assert_eq!(path, "/");
}

#[test]
fn hostile_framing_is_rejected() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: h\n\n",
        b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
        b"GET\0/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        // Targets that are neither origin-form, http(s) absolute-form nor `OPTIONS *`.
        b"GET h HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET ftp://a/x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET http:/x HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    for c in cases {
        assert!(
            matches!(bad(c), HeadError::Malformed(_)),
            "{:?}: {:?}",
            String::from_utf8_lossy(c),
            bad(c)
        );
    }
}

#[test]
fn transfer_codings_other_than_chunked_are_not_implemented() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for c in cases {
        assert_eq!(
            bad(c),
            HeadError::UnsupportedTransferEncoding,
            "{:?}",
            String::from_utf8_lossy(c)
        );
    }
}

#[test]
fn unknown_versions_and_missing_host() {
    for c in [
        &b"GET / HTTP/9.9\r\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        b"GET /h\r\n\r\n",
    ] {
        assert_eq!(
            bad(c),
            HeadError::UnsupportedVersion,
            "{:?}",
            String::from_utf8_lossy(c)
        );
    }
    assert_eq!(bad(b"GET / HTTP/1.1\r\n\r\n"), HeadError::MissingHost);
    // HTTP/1.0 parses (the connection manager decides whether it is accepted), without a
    // host too.
    let mut st = storage();
    let h = parse_request(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        &mut st,
        LIMIT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (h.minor, h.has_host, h.framing),
        (0, false, Framing::Chunked)
    );
    let mut st = storage();
    let h = parse_request(
        b"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n",
        &mut st,
        LIMIT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (h.connect, h.authority, h.keep_alive),
        (true, "a.com:443", false)
    );
    let mut st = storage();
    let h = parse_request(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &mut st, LIMIT)
        .unwrap()
        .unwrap();
    assert!(h.non_relative_path);
}

#[test]
fn unknown_versions_are_rewritten_to_http10() {
    let mut buf = b"xxGET /a HTTP/9.9\r\nHost: h\r\n\r\n".to_vec();
    assert!(request::rewrite_version_to_10(&mut buf, 2));
    assert_eq!(&buf[2..], b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n");
    let mut buf = b"GET /a\r\n\r\n".to_vec();
    assert!(request::rewrite_version_to_10(&mut buf, 0));
    assert_eq!(buf, b"GET /a HTTP/1.0\r\n\r\n");
    let mut buf = b"GARBAGE\r\n\r\n".to_vec();
    assert!(!request::rewrite_version_to_10(&mut buf, 0));
}

#[test]
fn valid_te_and_length_framing() {
    let r = req(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked \r\n\r\n").unwrap();
    assert_eq!(r.unwrap().0, Framing::Chunked);
    let r = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(r.unwrap().0, Framing::None);
    let r = req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_eq!(r.unwrap().unwrap().0, Framing::Length(u64::MAX));
}

#[test]
fn oversized_and_too_many_headers() {
    let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', LIMIT));
    assert_eq!(
        bad(&big),
        HeadError::TooLarge,
        "partial head over the limit"
    );
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        bad(&big),
        HeadError::TooLarge,
        "complete head over the limit"
    );
    let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(bad(&many), HeadError::TooManyHeaders);
}

#[test]
fn connection_nominated_headers_become_hop_by_hop() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-foo, close\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n";
    let mut st = storage();
    let h = parse_request(buf, &mut st, LIMIT).unwrap().unwrap();
    let kinds: Vec<(&str, Kind)> = h.headers.iter().map(|x| x.name).zip(h.kinds).collect();
    assert_eq!(
        kinds,
        vec![
            ("Host", Kind::Host),
            ("Connection", Kind::Connection),
            ("X-Foo", Kind::HopByHop),
            ("X-Bar", Kind::Other),
            ("Keep-Alive", Kind::HopByHop),
            ("TE", Kind::Te),
            ("Upgrade", Kind::HopByHop),
            ("Content-Length", Kind::ContentLength),
        ]
    );
    assert!(!h.keep_alive);
    let mut out = Vec::new();
    write::push_kept_lines(&mut out, buf, h.headers, &h.kinds, |k| {
        matches!(k, Kind::Other | Kind::Host | Kind::Te | Kind::ContentLength)
    });
    assert_eq!(
        out,
        b"Host: h\r\nX-Bar: 2\r\nTE: trailers\r\nContent-Length: 0\r\n"
    );
}

#[test]
fn empty_header_value_is_copied() {
    let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-B: 1\r\n\r\n";
    let mut st = storage();
    let h = parse_request(buf, &mut st, LIMIT).unwrap().unwrap();
    let mut out = Vec::new();
    write::push_kept_lines(&mut out, buf, h.headers, &h.kinds, |_| true);
    assert_eq!(out, b"Host: h\r\nX-Empty:\r\nX-B: 1\r\n");
}

fn resp(buf: &[u8], head: bool) -> Result<Option<(u16, Framing, bool)>, HeadError> {
    let mut st = storage();
    Ok(parse_response(buf, &mut st, LIMIT, head)?.map(|h| (h.code, h.framing, h.keep_alive)))
}

#[test]
fn response_framing() {
    let r = |b: &[u8]| resp(b, false).unwrap().unwrap();
    assert_eq!(
        r(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"),
        (200, Framing::Length(3), true)
    );
    assert_eq!(
        r(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        (200, Framing::Chunked, true)
    );
    assert_eq!(
        r(b"HTTP/1.1 200 OK\r\n\r\n"),
        (200, Framing::UntilClose, false)
    );
    assert_eq!(
        r(b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"),
        (204, Framing::None, true)
    );
    assert_eq!(
        r(b"HTTP/1.1 304 Not Modified\r\n\r\n"),
        (304, Framing::None, true)
    );
    assert_eq!(
        r(b"HTTP/1.1 100 Continue\r\n\r\n"),
        (100, Framing::None, true)
    );
    assert!(!r(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").2);
    assert!(!r(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").2);
    assert_eq!(
        resp(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .unwrap()
            .1,
        Framing::None
    );
    for b in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 999 Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
        b"garbage\r\n\r\n",
    ] {
        assert!(resp(b, false).is_err(), "{:?}", String::from_utf8_lossy(b));
    }
}

fn dechunk(input: &[u8], split: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut consumed = 0;
    for piece in input.chunks(split.max(1)) {
        let mut pos = 0;
        while pos < piece.len() && !d.is_done() {
            let s = d.decode(&piece[pos..])?;
            data.extend_from_slice(&piece[pos..][s.data]);
            pos += s.consumed;
            if s.consumed == 0 {
                break;
            }
        }
        consumed += pos;
        if d.is_done() {
            break;
        }
    }
    Ok((data, consumed, d.is_done()))
}

#[test]
fn chunked_decoding_any_split() {
    let body = b"5;name=value;q=\"a \\\"b\\\"\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET /next";
    let end = body.len() - 9;
    for split in 1..=body.len() {
        let (data, consumed, done) = dechunk(body, split).unwrap();
        assert_eq!(data, b"hello0123456789", "split {split}");
        assert!(done);
        assert!(consumed >= end && consumed <= body.len());
    }
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.validate(body).unwrap(), (end, true));
}

#[test]
fn chunked_incomplete_is_not_done() {
    let (data, _, done) = dechunk(b"3\r\nabc\r\n0\r\n", 2).unwrap();
    assert_eq!(data, b"abc");
    assert!(!done);
}

#[test]
fn chunked_errors() {
    let cases: &[(&[u8], ChunkError)] = &[
        (b"x\r\n", ChunkError::BadSize),
        (b"\r\n", ChunkError::BadSize),
        (b"-1\r\n", ChunkError::BadSize),
        (b"5\nhello", ChunkError::BadSize),
        (b"5\r\rhello", ChunkError::BadLineEnd),
        (b"10000000000000000\r\n", ChunkError::SizeOverflow),
        (b"3\r\nabcX\r\n", ChunkError::BadLineEnd),
        (b"3\r\nabc\n", ChunkError::BadLineEnd),
        (b"3;a\0b\r\n", ChunkError::BadExtension),
        (b"0\r\nX: a\nb\r\n", ChunkError::BadTrailer),
        (b"0\r\n: bad\r\n\r\n", ChunkError::BadTrailer),
        (b"0\r\n\r\r", ChunkError::BadLineEnd),
    ];
    for (input, want) in cases {
        assert_eq!(
            dechunk(input, 1).unwrap_err(),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(dechunk(input, 64).unwrap_err(), *want);
    }
    let mut long_ext = b"1;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(
        dechunk(&long_ext, 100).unwrap_err(),
        ChunkError::BadExtension
    );
    // The largest 16-digit size is accepted as framing.
    let mut d = ChunkedDecoder::new();
    assert!(d.decode(b"ffffffffffffffff\r\nab").is_ok());
}

#[test]
fn date_and_request_id_formats() {
    assert_eq!(&date::format(784111777), b"Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(&date::format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(&date::format(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    let id = write::request_id();
    let s = std::str::from_utf8(&id).unwrap();
    assert_eq!(s.len(), 36);
    assert_eq!(&s[14..15], "4");
    assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
    assert_ne!(write::request_id(), id);
}

#[test]
fn connect_needs_an_authority_form_target_and_no_body() {
    for c in [
        &b"CONNECT a.com HTTP/1.1\r\nHost: a.com\r\n\r\n"[..],
        b"CONNECT /a HTTP/1.1\r\nHost: a.com\r\n\r\n",
        b"CONNECT :443 HTTP/1.1\r\nHost: a.com\r\n\r\n",
        b"CONNECT a.com:x HTTP/1.1\r\nHost: a.com\r\n\r\n",
        b"CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\nContent-Length: 2\r\n\r\nhi",
    ] {
        assert!(
            matches!(bad(c), HeadError::Malformed(_)),
            "{:?}",
            String::from_utf8_lossy(c)
        );
    }
}
