//! TlsStream tests: handshake and ALPN, honest readiness with partial records and buffered
//! plaintext, large writes under backpressure, close_notify vs abrupt close, garbage peers.
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rustls::Connection;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::stream::Stream;
use crate::tls::test_certs::Ca;

fn server_config(ca: &Ca, alpn: &[&str]) -> Arc<rustls::ServerConfig> {
    let leaf = ca.leaf("server", &["server.test"], &[]);
    let t = crate::config::snapshot::DownstreamTls {
        common: crate::config::snapshot::CommonTls {
            tls_certificates: vec![crate::config::snapshot::TlsCertificate {
                certificate_chain: leaf.cert_pem,
                private_key: leaf.key_pem,
            }],
            alpn_protocols: alpn.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        require_client_certificate: false,
        handshake_timeout_ms: 0,
    };
    crate::tls::ServerTlsConfig::compile(&t, "ts")
        .unwrap()
        .config
}

fn client_config(ca: &Ca, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|s| s.as_bytes().to_vec()).collect();
    Arc::new(c)
}

use rustls::pki_types::pem::PemObject;

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

fn client_conn(cfg: Arc<rustls::ClientConfig>) -> Connection {
    let name = ServerName::try_from("server.test").unwrap();
    Connection::Client(rustls::ClientConnection::new(cfg, name).unwrap())
}

fn server_conn(cfg: Arc<rustls::ServerConfig>) -> Connection {
    Connection::Server(rustls::ServerConnection::new(cfg).unwrap())
}

/// A handshaken (client, server) pair over `c` and `s`.
async fn handshake(
    c: TcpStream,
    s: TcpStream,
    alpn_c: &[&str],
    alpn_s: &[&str],
) -> (TlsStream, TlsStream) {
    let ca = Ca::generate();
    let (client, server) = tokio::join!(
        TlsStream::handshake(c, client_conn(client_config(&ca, alpn_c))),
        TlsStream::handshake(s, server_conn(server_config(&ca, alpn_s))),
    );
    (client.unwrap(), server.unwrap())
}

async fn pair() -> (TlsStream, TlsStream) {
    let (c, s) = tcp_pair().await;
    handshake(c, s, &[], &[]).await
}

/// Polls `f` once with a no-op waker.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = std::pin::pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn handshake_negotiates_alpn_and_carries_bytes_both_ways() {
    let (c, s) = tcp_pair().await;
    let (mut client, server) = handshake(c, s, &["http/1.1"], &["h2", "http/1.1"]).await;
    assert_eq!(server.session().alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(client.session().alpn_protocol(), Some(&b"http/1.1"[..]));
    client.write_all(b"ping").await.unwrap();
    server.readable().await.unwrap();
    let mut buf = Vec::with_capacity(64);
    assert_eq!(server.try_read_buf(&mut buf).unwrap(), 4);
    assert_eq!(buf, b"ping");
    assert_eq!(
        server.try_read_buf(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(server.try_write(b"pong").unwrap(), 4);
    let mut got = [0u8; 4];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"pong");
}

/// Forwards `a` → `b` one byte per write (records arrive in pieces), until EOF.
async fn trickle(mut a: TcpStream, mut b: TcpStream) {
    let mut byte = [0u8; 1];
    while let Ok(1) = a.read(&mut byte).await {
        if b.write_all(&byte).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
    let _ = b.shutdown().await;
}

#[tokio::test]
async fn partial_records_never_make_readable_lie() {
    let (c, mid_in) = tcp_pair().await;
    let (mid_out, s) = tcp_pair().await;
    let mid_in_r = mid_in.into_std().unwrap();
    let mid_in_w = mid_in_r.try_clone().unwrap();
    let (mid_out_r, mid_out_w) = {
        let std = mid_out.into_std().unwrap();
        (std.try_clone().unwrap(), std)
    };
    let to_server = tokio::spawn(trickle(
        TcpStream::from_std(mid_in_r).unwrap(),
        TcpStream::from_std(mid_out_w).unwrap(),
    ));
    let to_client = tokio::spawn(trickle(
        TcpStream::from_std(mid_out_r).unwrap(),
        TcpStream::from_std(mid_in_w).unwrap(),
    ));
    let (mut client, server) = handshake(c, s, &[], &[]).await;
    let msg: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&msg).await.unwrap();
    let mut got = Vec::with_capacity(4096);
    while got.len() < msg.len() {
        server.readable().await.unwrap();
        // Honest readiness: a read after `readable` always makes progress.
        let n = server.try_read_buf(&mut got).unwrap();
        assert!(n > 0);
    }
    assert_eq!(got, msg);
    drop((client, server));
    let _ = tokio::join!(to_server, to_client);
}

#[tokio::test]
async fn buffered_plaintext_is_readable_at_once() {
    let (mut client, server) = pair().await;
    client.write_all(b"abcdef").await.unwrap();
    server.readable().await.unwrap();
    let mut two = [0u8; 2];
    assert_eq!(server.try_read(&mut two).unwrap(), 2);
    assert_eq!(&two, b"ab");
    // The socket has nothing more, but rustls holds "cdef": ready without waiting.
    assert!(matches!(poll_once(server.readable()), Poll::Ready(Ok(()))));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        server.poll_read_ready(&mut cx),
        Poll::Ready(Ok(()))
    ));
    let mut rest = Vec::with_capacity(16);
    assert_eq!(server.try_read_buf(&mut rest).unwrap(), 4);
    assert_eq!(rest, b"cdef");
    assert!(server.poll_read_ready(&mut cx).is_pending());
    assert!(poll_once(server.readable()).is_pending());
}

#[tokio::test]
async fn large_writes_meet_backpressure_and_arrive_whole() {
    let (c, s) = tcp_pair().await;
    // Small kernel buffers (no autotuning), so that the backlog, not the kernel, fills up.
    for t in [&c, &s] {
        let sock = socket2::SockRef::from(t);
        sock.set_send_buffer_size(32 * 1024).unwrap();
        sock.set_recv_buffer_size(32 * 1024).unwrap();
    }
    let (client, server) = handshake(c, s, &[], &[]).await;
    let total = 4 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let mut off = 0;
    let mut blocked = 0;
    // Write without anyone reading until the backlog is full.
    while blocked == 0 {
        match server.try_write(&data[off..(off + 65536).min(total)]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => blocked += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(off < total, "4 MiB taken without backpressure");
    }
    let writer = async {
        while off < total {
            match server.try_write(&data[off..(off + 65536).min(total)]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked += 1;
                    server.writable().await.unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        }
        server.writable().await.unwrap();
    };
    let reader = async {
        let mut got = Vec::with_capacity(total);
        let mut buf = vec![0u8; 32 * 1024];
        while got.len() < total {
            client.readable().await.unwrap();
            match client.try_read(&mut buf) {
                Ok(0) => panic!("early EOF"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert!(blocked >= 1);
    assert!(got == data, "bytes differ");
}

#[tokio::test]
async fn close_notify_and_abrupt_close_both_read_as_eof() {
    let (mut client, server) = pair().await;
    client.write_all(b"bye").await.unwrap();
    client.shutdown().await.unwrap();
    let mut buf = Vec::with_capacity(16);
    let mut s = Stream::Tls(Box::new(server));
    assert_eq!(s.read_to_end(&mut buf).await.unwrap(), 3);
    let Stream::Tls(server) = &s else {
        unreachable!()
    };
    assert!(server.closed_cleanly());

    let (client, server) = pair().await;
    drop(client); // FIN without close_notify
    server.readable().await.unwrap();
    assert_eq!(server.try_read(&mut [0u8; 8]).unwrap(), 0);
    assert!(!server.closed_cleanly());
}

#[tokio::test]
async fn a_plaintext_client_fails_the_handshake() {
    let ca = Ca::generate();
    let (mut c, s) = tcp_pair().await;
    c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let r = TlsStream::handshake(s, server_conn(server_config(&ca, &[]))).await;
    assert!(matches!(r, Err(HandshakeError::Tls(_))), "{:?}", r.err());
    // The server answered with an alert (or closed); the client sees no HTTP.
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP"));
}

/// The reason the access log shows for a peer's first bytes, as Envoy (BoringSSL) writes it.
async fn reason_for(first: &[u8]) -> (String, Option<rustls::ProtocolVersion>) {
    let ca = Ca::generate();
    let (mut c, s) = tcp_pair().await;
    c.write_all(first).await.unwrap();
    let conn = server_conn(server_config(&ca, &[]));
    let Err(f) = TlsStream::handshake_versioned(s, conn).await else {
        panic!("{first:?}: the handshake succeeded");
    };
    (crate::tls::failure_reason(&f), f.version)
}

#[tokio::test]
async fn a_failed_handshake_names_what_the_peer_sent_like_boringssl() {
    let boring = |code: &str, what: &str| {
        format!("TLS_error:|{code}:SSL_routines:OPENSSL_internal:{what}:TLS_error_end")
    };
    let cases: [(&[u8], String); 4] = [
        (
            b"GET / HTTP/1.1\r\n\r\n",
            boring("268435612", "HTTP_REQUEST"),
        ),
        (
            b"POST / HTTP/1.1\r\n\r\n",
            boring("268435612", "HTTP_REQUEST"),
        ),
        (
            b"CONNECT x:1 HTTP/1.1\r\n\r\n",
            boring("268435611", "HTTPS_PROXY_REQUEST"),
        ),
        (
            b"hello world\r\n\r\n",
            boring("268435703", "WRONG_VERSION_NUMBER"),
        ),
    ];
    for (first, want) in cases {
        assert_eq!(reason_for(first).await, (want, None), "{first:?}");
    }
}

#[tokio::test]
async fn a_peer_that_closes_mid_handshake_has_no_reason() {
    let ca = Ca::generate();
    let (c, s) = tcp_pair().await;
    drop(c);
    let conn = server_conn(server_config(&ca, &[]));
    let Err(f) = TlsStream::handshake_versioned(s, conn).await else {
        panic!("the handshake succeeded");
    };
    assert!(matches!(f.error, HandshakeError::Io(_)));
    assert_eq!(crate::tls::failure_reason(&f), "");
}

#[tokio::test]
async fn garbage_after_the_handshake_is_an_error_not_a_panic() {
    let (client, server) = pair().await;
    // An application-data record with bytes that do not decrypt.
    client
        .tcp()
        .try_write(b"\x17\x03\x03\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .unwrap();
    server.readable().await.unwrap();
    let e = server.try_read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    // It stays failed.
    assert!(matches!(poll_once(server.readable()), Poll::Ready(Ok(()))));
    assert!(server.try_read(&mut [0u8; 16]).is_err());
    assert!(server.try_write(b"x").is_err());
}

#[tokio::test]
async fn stream_variant_forwards_readiness_and_close_write() {
    let (client, server) = pair().await;
    let (c, s) = (Stream::Tls(Box::new(client)), Stream::Tls(Box::new(server)));
    assert!(c.as_tcp().is_none());
    c.try_write(b"hello").unwrap();
    c.close_write().await.unwrap();
    s.readable().await.unwrap();
    let mut buf = Vec::with_capacity(16);
    assert_eq!(s.try_read_buf(&mut buf).unwrap(), 5);
    s.readable().await.unwrap();
    assert_eq!(s.try_read_buf(&mut buf).unwrap(), 0);
    // The other direction still works after the half-close.
    s.try_write(b"back").unwrap();
    s.writable().await.unwrap();
    c.readable().await.unwrap();
    let mut back = [0u8; 4];
    assert_eq!(c.try_read(&mut back).unwrap(), 4);
    assert_eq!(&back, b"back");
}
