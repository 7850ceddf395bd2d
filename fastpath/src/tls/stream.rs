//! A TLS connection (client or server side) over a tokio `TcpStream` with the proxy's
//! readiness API (`readable`, `try_read_buf`, `try_write`, ...), built on
//! `rustls::Connection` directly.
//!
//! Why not tokio-rustls: the proxy loop is readiness-driven (it waits for `readable()` and then
//! reads without blocking, and an idle keep-alive connection holds no buffer), and it borrows
//! the stream shared (`&self`) for readiness while a write is pending. tokio-rustls offers only
//! `AsyncRead`/`AsyncWrite` on `&mut self` and has no honest `readable()`: its plaintext may
//! already be buffered inside rustls while the socket has nothing to read, which would leave a
//! pipelined request waiting forever. Driving `rustls::Connection` ourselves is a few hundred
//! lines: the socket is read only through `TcpStream::try_read` (which clears tokio's cached
//! readiness on `WouldBlock`, so waits are honest) and written through `try_write`.
//!
//! Interior mutability (`RefCell`): workers are single-threaded (`spawn_local`), the borrow is
//! never held across an `.await`.
//!
//! Semantics:
//! - `readable()` is ready at once when decrypted plaintext (or EOF, or an error) is already
//!   buffered; otherwise it waits on the socket, reads and decrypts records, and returns only
//!   when a read will make progress (records that carry no application data, such as TLS 1.3
//!   session tickets, are consumed without waking the caller).
//! - `try_write` encrypts into rustls (bounded: rustls' send buffer limit, 64 KiB of
//!   ciphertext) and pushes to the socket what it takes; the rest is a backlog flushed by the
//!   next write, `writable()`, `readable()`, `poll_flush` or `shutdown`. A full backlog is
//!   `WouldBlock`.
//! - Shutdown sends `close_notify` and then FIN. A peer's `close_notify` reads as EOF; a TCP
//!   EOF without `close_notify` also reads as EOF (as Envoy treats it: many HTTP peers close
//!   without it; HTTP/1.1 framing, not TLS, detects truncated messages) and is remembered in
//!   `closed_cleanly()`.
//! - A peer that sends bytes that are not TLS gets an alert and the read fails with
//!   `InvalidData`; nothing panics.
use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustls::Connection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The socket seen as `std::io` Read/Write for rustls, never blocking (`WouldBlock` clears
/// tokio's readiness so the next wait is real).
struct Sock<'a>(&'a TcpStream);

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// `Sock` that keeps the first bytes the peer sent (a failed handshake's reason names what
/// they were, as BoringSSL's does: an HTTP request, a proxy CONNECT).
struct Recording<'a, 'b> {
    sock: Sock<'a>,
    first: &'b mut FirstBytes,
}

/// Up to the first 8 bytes a peer sent during a handshake.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstBytes {
    buf: [u8; 8],
    len: u8,
}

impl FirstBytes {
    pub fn get(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl Read for Recording<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        let have = self.first.len as usize;
        let take = n.min(self.first.buf.len() - have);
        self.first.buf[have..have + take].copy_from_slice(&buf[..take]);
        self.first.len += take as u8;
        Ok(n)
    }
}

/// A failed handshake: the error, the protocol version negotiated before it (if any) and the
/// first bytes the peer sent.
pub struct Failed {
    pub error: HandshakeError,
    pub version: Option<rustls::ProtocolVersion>,
    pub first: FirstBytes,
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct TlsStream {
    tcp: TcpStream,
    conn: RefCell<Connection>,
    /// The socket reached EOF.
    eof: Cell<bool>,
    /// A fatal TLS error was seen (the alert was queued); reads and writes fail from now on.
    broken: Cell<bool>,
    close_sent: Cell<bool>,
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl TlsStream {
    /// Wraps a connection whose handshake is complete (`handshake` below does it).
    fn new(tcp: TcpStream, conn: Connection) -> TlsStream {
        TlsStream {
            tcp,
            conn: RefCell::new(conn),
            eof: Cell::new(false),
            broken: Cell::new(false),
            close_sent: Cell::new(false),
        }
    }

    /// Runs the handshake of `conn` on `tcp` (no timeout: the caller bounds it). The error
    /// keeps rustls' reason (certificate verification, protocol) for the `ssl.*` stats.
    pub async fn handshake(tcp: TcpStream, conn: Connection) -> Result<TlsStream, HandshakeError> {
        TlsStream::handshake_versioned(tcp, conn)
            .await
            .map_err(|f| f.error)
    }

    /// `handshake`, whose error also carries the protocol version negotiated before it failed
    /// and the peer's first bytes (a downstream connection's access log).
    pub async fn handshake_versioned(
        tcp: TcpStream,
        conn: Connection,
    ) -> Result<TlsStream, Failed> {
        let s = TlsStream::new(tcp, conn);
        let mut first = FirstBytes::default();
        let fail = |s: &TlsStream, error: HandshakeError, first: FirstBytes| Failed {
            error,
            version: s.conn.borrow().protocol_version(),
            first,
        };
        loop {
            if let Err(e) = s.flush() {
                return Err(fail(&s, HandshakeError::Io(e), first));
            }
            let (handshaking, wants_write) = {
                let c = s.conn.borrow();
                (c.is_handshaking(), c.wants_write())
            };
            if wants_write {
                if let Err(e) = s.tcp.writable().await {
                    return Err(fail(&s, HandshakeError::Io(e), first));
                }
                continue;
            }
            if !handshaking {
                return Ok(s);
            }
            if let Err(e) = s.tcp.readable().await {
                return Err(fail(&s, HandshakeError::Io(e), first));
            }
            let read = {
                let mut c = s.conn.borrow_mut();
                let mut sock = Recording {
                    sock: Sock(&s.tcp),
                    first: &mut first,
                };
                match c.read_tls(&mut sock) {
                    Ok(0) => Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into())),
                    Ok(_) => c
                        .process_new_packets()
                        .map(drop)
                        .map_err(HandshakeError::Tls),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                    Err(e) => Err(HandshakeError::Io(e)),
                }
            };
            if let Err(e) = read {
                if let HandshakeError::Tls(_) = e {
                    // Best effort: send the alert rustls queued.
                    let _ = s.flush();
                }
                return Err(fail(&s, e, first));
            }
        }
    }

    /// The TLS session (ALPN, version, peer certificates, SNI).
    pub fn session(&self) -> std::cell::Ref<'_, Connection> {
        self.conn.borrow()
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The peer ended with `close_notify` (false: a bare TCP EOF, or not ended yet).
    pub fn closed_cleanly(&self) -> bool {
        let mut c = self.conn.borrow_mut();
        c.process_new_packets()
            .is_ok_and(|s| s.peer_has_closed() && !self.broken.get())
    }

    /// Pushes queued ciphertext to the socket until it is empty or the socket is full.
    fn flush(&self) -> io::Result<()> {
        let mut c = self.conn.borrow_mut();
        while c.wants_write() {
            match c.write_tls(&mut Sock(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn backlog(&self) -> bool {
        self.conn.borrow().wants_write()
    }

    /// True when a read returns something now: plaintext, EOF or an error.
    fn ready_now(&self) -> bool {
        if self.broken.get() || self.eof.get() {
            return true;
        }
        let mut c = self.conn.borrow_mut();
        match c.process_new_packets() {
            Ok(s) => s.plaintext_bytes_to_read() > 0 || s.peer_has_closed(),
            Err(_) => true,
        }
    }

    /// Reads and decrypts what the socket has; `WouldBlock` when it has nothing. Returns once
    /// plaintext, EOF or an error is there (or the plaintext buffer is full).
    fn fill(&self) -> io::Result<()> {
        let mut c = self.conn.borrow_mut();
        loop {
            match c.read_tls(&mut Sock(&self.tcp)) {
                Ok(0) => {
                    self.eof.set(true);
                    break;
                }
                Ok(_) => match c.process_new_packets() {
                    Ok(s) if s.plaintext_bytes_to_read() > 0 || s.peer_has_closed() => break,
                    Ok(_) => {}
                    Err(e) => {
                        self.broken.set(true);
                        drop(c);
                        let _ = self.flush();
                        return Err(invalid(e));
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(c);
                    // Records read so far may have asked for an answer (key update).
                    self.flush()?;
                    return Err(e);
                }
                // rustls' plaintext buffer is full: the reader must drain it first.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(e),
            }
        }
        drop(c);
        self.flush()
    }

    /// Hands out buffered plaintext through `take` (given the first chunk, returns how much
    /// it used); reads the socket when none is buffered. `Ok(0)`: EOF.
    fn read_with(&self, mut take: impl FnMut(&[u8]) -> usize) -> io::Result<usize> {
        loop {
            if self.broken.get() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS connection failed",
                ));
            }
            {
                let mut c = self.conn.borrow_mut();
                let mut r = c.reader();
                match r.fill_buf() {
                    Ok([]) => return Ok(0),
                    Ok(chunk) => {
                        let n = take(chunk);
                        r.consume(n);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // A TCP EOF without close_notify: EOF all the same (see the module doc).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            self.fill()?;
        }
    }

    /// Reads what is there now into `buf`'s spare capacity; `WouldBlock` when nothing is.
    pub fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        if room == 0 {
            return Ok(0);
        }
        self.read_with(|chunk| {
            let n = chunk.len().min(room);
            buf.extend_from_slice(&chunk[..n]);
            n
        })
    }

    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_with(|chunk| {
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            n
        })
    }

    /// Encrypts as much of `bufs` as rustls' send buffer takes and pushes it; `WouldBlock`
    /// when the backlog is full.
    fn try_write_slices(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.broken.get() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.flush()?;
        let n = self.conn.borrow_mut().writer().write_vectored(bufs)?;
        self.flush()?;
        if n == 0 {
            // rustls' buffer is full and the last flush hit `WouldBlock` (so `writable()`
            // waits for real).
            return Err(would_block());
        }
        Ok(n)
    }

    /// Writes what the connection takes now; `WouldBlock` when it takes nothing.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_write_slices(&[IoSlice::new(buf)])
    }

    /// Waits until a read may make progress (plaintext, EOF or an error), flushing any
    /// write backlog meanwhile. A `poll_fn` over `poll_read_ready`: the future holds no
    /// socket-wait state, so an idle connection's future stays small.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Waits until the write backlog is flushed (a write then makes progress).
    pub async fn writable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush_backlog(cx)).await
    }

    /// Sends `close_notify` and flushes everything queued; returns the socket for the FIN.
    pub async fn close_notify(&self) -> io::Result<&TcpStream> {
        if !self.close_sent.replace(true) {
            self.conn.borrow_mut().send_close_notify();
        }
        self.writable().await?;
        Ok(&self.tcp)
    }

    /// Polls read readiness (see `readable`); while a write backlog remains, write
    /// readiness wakes it too, to flush.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.ready_now() {
                return Poll::Ready(Ok(()));
            }
            self.flush()?;
            if self.backlog() && self.tcp.poll_write_ready(cx)?.is_ready() {
                continue;
            }
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn poll_flush_backlog(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            self.flush()?;
            if !self.backlog() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.tcp.poll_write_ready(cx))?;
        }
    }

    fn poll_write_slices(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.try_write_slices(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.tcp.poll_write_ready(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The socket failed or closed (or the handshake timed out).
    Io(io::Error),
    /// rustls refused: protocol error, no common version/cipher/ALPN, certificate
    /// verification.
    Tls(rustls::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "{e}"),
            HandshakeError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let r = this.read_with(|chunk| {
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk[..n]);
                n
            });
            match r {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if this.backlog() {
                        // Keep flushing while waiting for the peer.
                        let _ = this.poll_flush_backlog(cx)?;
                    }
                    ready!(this.tcp.poll_read_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_slices(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_slices(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_backlog(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent.replace(true) {
            this.conn.borrow_mut().send_close_notify();
        }
        ready!(this.poll_flush_backlog(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
