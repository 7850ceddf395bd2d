//! Seeded mutation fuzzing of the codec (no extra dependency: `fastrand` with fixed seeds, so
//! every run checks the same inputs): no panic, every accepted request head obeys the
//! strictness invariants and round-trips, and chunk validation does not depend on how the
//! bytes are split.
use std::mem::MaybeUninit;

use super::*;

const LIMIT: usize = 8 * 1024;
const ROUNDS: usize = 20_000;

const SEEDS: &[&[u8]] = &[
    b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h:80\r\nContent-Length: 5\r\nX-A: b\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: x, close\r\n\r\n",
    b"GET http://h/x HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\nTE: trailers\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
];

/// Bytes that matter to a parser: delimiters, whitespace, controls, digits, signs.
const INTERESTING: &[u8] = b"\r\n \t:;,=\"\\\0\x01\x7f\x80\xff0179afx+-/?#@chunkedCT";

fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let pick = |rng: &mut fastrand::Rng| INTERESTING[rng.usize(..INTERESTING.len())];
        let at = rng.usize(..=v.len());
        match rng.u8(..4) {
            0 if at < v.len() => v[at] = pick(rng),
            1 => v.insert(at, pick(rng)),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ => {
                // Duplicate a run of the head (repeats headers, framing values, spaces).
                let end = (at + rng.usize(1..16)).min(v.len());
                let run = v[at..end].to_vec();
                let to = rng.usize(..=v.len());
                v.splice(to..to, run);
            }
        }
    }
    v
}

fn storage<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// What must hold of any head the proxy accepts.
fn check_invariants(buf: &[u8], h: &RequestHead<'_, '_>) {
    let what = || String::from_utf8_lossy(buf).into_owned();
    assert!(headers::is_known_method(h.method), "{}", what());
    assert!(headers::crlf_only(&buf[..h.head_len]), "{}", what());
    let mut cl = 0;
    let mut te = 0;
    for (x, k) in h.headers.iter().zip(h.kinds.iter()) {
        assert!(
            !x.name.is_empty() && x.name.bytes().all(headers::is_token),
            "{}",
            what()
        );
        assert!(
            x.value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80),
            "{}",
            what()
        );
        cl += usize::from(*k == Kind::ContentLength);
        te += usize::from(*k == Kind::TransferEncoding);
    }
    assert!(cl <= 1 && te <= 1 && cl + te <= 1, "{}", what());
    assert!(!h.path.contains('#'), "{}", what());
    assert!(
        headers::valid_authority(h.authority.as_bytes()),
        "{}",
        what()
    );
}

/// Serialises the parsed head again (request line and header lines).
fn reserialise(buf: &[u8]) -> Vec<u8> {
    let mut st = storage();
    let h = parse_request(buf, &mut st, LIMIT).unwrap().unwrap();
    let mut req = httparse::Request::new(&mut []);
    let mut st2 = storage();
    httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut st2)
        .unwrap();
    let mut out = format!("{} {} HTTP/1.{}\r\n", h.method, req.path.unwrap(), h.minor).into_bytes();
    for x in h.headers {
        write::push_header(&mut out, x.name.as_bytes(), x.value);
    }
    out.extend_from_slice(b"\r\n");
    out
}

type Summary = (
    String,
    String,
    String,
    u8,
    Framing,
    bool,
    Vec<(String, Vec<u8>)>,
);

fn summary(buf: &[u8]) -> Summary {
    let mut st = storage();
    let h = parse_request(buf, &mut st, LIMIT).unwrap().unwrap();
    (
        h.method.to_string(),
        h.path.to_string(),
        h.authority.to_string(),
        h.minor,
        h.framing,
        h.keep_alive,
        h.headers
            .iter()
            .map(|x| (x.name.to_string(), x.value.to_vec()))
            .collect(),
    )
}

#[test]
fn mutated_request_heads_never_panic_and_accepted_ones_round_trip() {
    let mut rng = fastrand::Rng::with_seed(0x6d65_7368);
    let mut accepted = 0;
    let mut rejected = 0;
    for i in 0..ROUNDS {
        let buf = mutate(&mut rng, SEEDS[i % SEEDS.len()]);
        let mut st = storage();
        match parse_request(&buf, &mut st, LIMIT) {
            Ok(Some(h)) => {
                check_invariants(&buf, &h);
                accepted += 1;
                let again = reserialise(&buf);
                assert_eq!(
                    summary(&buf),
                    summary(&again),
                    "{:?} -> {:?}",
                    String::from_utf8_lossy(&buf),
                    String::from_utf8_lossy(&again)
                );
            }
            Ok(None) => {}
            Err(_) => rejected += 1,
        }
    }
    // The mutations reach both sides of the parser.
    assert!(accepted > ROUNDS / 20, "accepted {accepted}");
    assert!(rejected > ROUNDS / 4, "rejected {rejected}");
}

#[test]
fn mutated_responses_never_panic() {
    let seeds: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..ROUNDS {
        let buf = mutate(&mut rng, seeds[i % seeds.len()]);
        let mut st = storage();
        if let Ok(Some(h)) = parse_response(&buf, &mut st, LIMIT, false) {
            assert!((100..=599).contains(&h.code));
            assert!(headers::crlf_only(&buf[..h.head_len]));
        }
    }
}

#[test]
fn chunk_validation_does_not_depend_on_splits() {
    let seeds: &[&[u8]] = &[
        b"5;name=value\r\nhello\r\n0\r\nX-T: t\r\n\r\n",
        b"1;a=\"b c\"\r\na\r\n00\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
    ];
    let mut rng = fastrand::Rng::with_seed(11);
    for i in 0..ROUNDS {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        let whole = ChunkedDecoder::new().validate(&input);
        let mut d = ChunkedDecoder::new();
        let mut pos = 0;
        let split = loop {
            let end = (pos + rng.usize(1..8)).min(input.len());
            match d.validate(&input[pos..end]) {
                Err(e) => break Err(e),
                Ok((n, true)) => break Ok((pos + n, true)),
                Ok((n, false)) => {
                    pos += n;
                    if pos == input.len() {
                        break Ok((pos, false));
                    }
                }
            }
        };
        assert_eq!(whole, split, "{:?}", String::from_utf8_lossy(&input));
    }
}
