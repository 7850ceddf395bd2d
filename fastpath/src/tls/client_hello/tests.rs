//! ClientHello peek tests: a real OpenSSL ClientHello, hand-built variants, every truncation,
//! and a seeded mutation loop (no input may panic).
use super::*;

/// Python `ssl` (OpenSSL) ClientHello for `Api.Example.com`, ALPN `h2`, `http/1.1`.
const OPENSSL_HELLO: &str = concat!(
    "1603010200010001fc03031e7d7f9911b872747424b8f67a0bd585c76aabb599cc0359b880b5b09281c17520",
    "a1ad48827f1a3d3444a7f451e372223e629677bc5f6ddc7882609838fb6f5d990024130213031301c02cc030",
    "c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f00000014001200000f4170692e45",
    "78616d706c652e636f6d000b000403000102000a00160014001d0017001e0019001801000101010201030104",
    "002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306030807",
    "08080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00",
    "020101003300260024001d002066e74ba0606143d74719dbd40464b3aed0a514f918a349df3ede75f884880a",
    "4b001500cc000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000",
);

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn u16be(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

/// A ClientHello handshake message (header included) with the given extensions.
fn hello_message(sni: Option<&str>, alpn: &[&str], padding: usize) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni {
        let mut list = vec![0u8];
        list.extend_from_slice(&u16be(name.len()));
        list.extend_from_slice(name.as_bytes());
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&u16be(list.len() + 2));
        ext.extend_from_slice(&u16be(list.len()));
        ext.extend_from_slice(&list);
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        ext.extend_from_slice(&[0, 16]);
        ext.extend_from_slice(&u16be(list.len() + 2));
        ext.extend_from_slice(&u16be(list.len()));
        ext.extend_from_slice(&list);
    }
    if padding > 0 {
        ext.extend_from_slice(&[0, 21]);
        ext.extend_from_slice(&u16be(padding));
        ext.extend(std::iter::repeat_n(0, padding));
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16be(ext.len()));
    body.extend_from_slice(&ext);
    let mut msg = vec![1, 0];
    msg.extend_from_slice(&u16be(body.len()));
    msg.extend_from_slice(&body);
    msg
}

/// `message` in TLS records of at most `fragment` bytes each.
fn records(message: &[u8], fragment: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(fragment) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16be(chunk.len()));
        out.extend_from_slice(chunk);
    }
    out
}

const MAX: usize = 16 * 1024;

#[test]
fn openssl_hello_gives_lower_case_sni_and_every_alpn() {
    let bytes = hex(OPENSSL_HELLO);
    let Peek::Hello(h) = inspect(&bytes, MAX) else {
        panic!("not parsed: {:?}", inspect(&bytes, MAX));
    };
    assert_eq!(h.sni.as_deref(), Some("api.example.com"));
    assert_eq!(h.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
}

#[test]
fn every_truncation_of_a_hello_needs_more() {
    let bytes = hex(OPENSSL_HELLO);
    for n in 0..bytes.len() {
        assert_eq!(inspect(&bytes[..n], MAX), Peek::NeedMore, "at {n} bytes");
    }
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut bytes = records(&hello_message(Some("a.b"), &[], 0), MAX);
    bytes.extend_from_slice(b"\x17\x03\x03 more records");
    assert!(matches!(inspect(&bytes, MAX), Peek::Hello(h) if h.sni.as_deref() == Some("a.b")));
}

#[test]
fn hello_without_extensions_has_no_sni_and_no_alpn() {
    let bytes = records(&hello_message(None, &[], 0), MAX);
    assert_eq!(inspect(&bytes, MAX), Peek::Hello(ClientHello::default()));
}

#[test]
fn hello_split_over_records_is_reassembled() {
    let msg = hello_message(Some("svc.mesh.local"), &["http/1.1"], 300);
    for fragment in [1, 7, 64, 200] {
        let bytes = records(&msg, fragment);
        match inspect(&bytes, MAX) {
            Peek::Hello(h) => {
                assert_eq!(h.sni.as_deref(), Some("svc.mesh.local"));
                assert_eq!(h.alpn, vec![b"http/1.1".to_vec()]);
            }
            other => panic!("fragment {fragment}: {other:?}"),
        }
        assert_eq!(inspect(&bytes[..bytes.len() - 1], MAX), Peek::NeedMore);
    }
}

#[test]
fn plain_text_is_not_tls() {
    for bytes in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x02",
        b"\x15\x03\x01\x00\x02",
        b"S",
    ] {
        assert_eq!(inspect(bytes, MAX), Peek::NotTls, "{bytes:?}");
    }
}

#[test]
fn other_handshake_messages_and_bad_records_are_not_tls() {
    let mut server_hello = hello_message(None, &[], 0);
    server_hello[0] = 2;
    assert_eq!(inspect(&records(&server_hello, MAX), MAX), Peek::NotTls);
    // An empty record and an oversized one.
    assert_eq!(inspect(&[22, 3, 1, 0, 0, 1], MAX), Peek::NotTls);
    assert_eq!(inspect(&[22, 3, 1, 0x48, 0x01, 1], MAX), Peek::NotTls);
    // A handshake interrupted by an alert record.
    let msg = hello_message(Some("x"), &[], 0);
    let mut bytes = records(&msg[..10], MAX);
    bytes.extend_from_slice(&[21, 3, 1, 0, 2, 2, 40]);
    assert_eq!(inspect(&bytes, MAX), Peek::NotTls);
}

#[test]
fn malformed_extensions_never_give_a_server_name() {
    let mut msg = hello_message(Some("abc"), &[], 0);
    // The host name claims more bytes than its list holds: tls-parser reads the list as
    // empty, so the hello has no SNI (and can only match chains without server_names).
    let at = msg.len() - 5;
    msg[at] = 0x40;
    assert_eq!(
        inspect(&records(&msg, MAX), MAX),
        Peek::Hello(ClientHello::default())
    );
    // An extension longer than the extensions block: malformed.
    let mut msg = hello_message(Some("abc"), &[], 0);
    let at = msg.len() - 10;
    msg[at] = 0x40;
    assert_eq!(inspect(&records(&msg, MAX), MAX), Peek::NotTls);
    let non_ascii = hello_message(Some("\u{e9}.example"), &[], 0);
    assert_eq!(inspect(&records(&non_ascii, MAX), MAX), Peek::NotTls);
}

#[test]
fn a_hello_over_the_limit_is_too_large_before_it_is_complete() {
    let msg = hello_message(Some("big.example"), &[], 5000);
    let bytes = records(&msg, MAX);
    assert_eq!(inspect(&bytes, 4096), Peek::TooLarge);
    assert_eq!(inspect(&bytes[..20], 4096), Peek::TooLarge);
    assert!(matches!(inspect(&bytes, 8192), Peek::Hello(_)));
}

/// Seeded mutations of real and built hellos (flipped, inserted, removed bytes, truncations):
/// every input gets an answer and nothing panics.
#[test]
fn mutated_hellos_never_panic() {
    let seeds = [
        hex(OPENSSL_HELLO),
        records(&hello_message(Some("a.example"), &["h2", "x"], 40), 33),
        records(&hello_message(None, &[], 0), MAX),
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed_c11e);
    let mut seen = [0usize; 4];
    for i in 0..60_000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..rng.usize(1..6) {
            if b.is_empty() {
                break;
            }
            let at = rng.usize(..b.len());
            match rng.u8(..4) {
                0 => b[at] = rng.u8(..),
                1 => b[at] ^= 1 << rng.u8(..8),
                2 => b.insert(at, rng.u8(..)),
                _ => b.truncate(at.max(1)),
            }
        }
        let which = match inspect(&b, rng.usize(64..2 * MAX)) {
            Peek::Hello(_) => 0,
            Peek::NeedMore => 1,
            Peek::NotTls => 2,
            Peek::TooLarge => 3,
        };
        seen[which] += 1;
    }
    // The mutations reach every outcome, so the loop exercises every path.
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}
