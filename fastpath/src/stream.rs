//! The byte stream under an HTTP connection, either side: plain TCP, or one end of an
//! in-memory pipe pair (`mem_pipe`: an HTTP/2 stream bridged to the HTTP/1.1 core), or TLS
//! over TCP (`tls::TlsStream`, rustls with the same readiness API).
//!
//! The proxy loop is readiness-driven (`readable`, `try_read_buf`, `try_write`) so that an
//! idle connection holds no buffer; every variant offers the same readiness API. An enum, not
//! a trait object: plain TCP stays a direct call (one predictable branch).
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub enum Stream {
    Tcp(TcpStream),
    /// TLS terminated or originated by meshcore (`tls/`); boxed: the rustls state is large.
    Tls(Box<crate::tls::TlsStream>),
    /// One end of an in-memory pipe pair (`mem_pipe`): the HTTP/2 bridge.
    Mem(crate::mem_pipe::MemEnd),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            Stream::Tls($s) => $e,
            Stream::Mem($s) => $e,
        }
    };
}

impl Stream {
    /// Waits until a read may make progress (bytes, EOF or an error).
    #[inline]
    pub async fn readable(&self) -> io::Result<()> {
        each!(self, s => s.readable().await)
    }

    /// Waits until a write may make progress.
    #[inline]
    pub async fn writable(&self) -> io::Result<()> {
        each!(self, s => s.writable().await)
    }

    /// Polls read readiness without registering interest beyond `cx`.
    #[inline]
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_read_ready(cx))
    }

    /// Reads what is there now into `buf`'s spare capacity; `WouldBlock` when nothing is.
    #[inline]
    pub fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        each!(self, s => s.try_read_buf(buf))
    }

    #[inline]
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.try_read(buf))
    }

    /// Writes what the socket takes now; `WouldBlock` when it takes nothing.
    #[inline]
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.try_write(buf))
    }

    /// Ends the write direction: FIN (after `close_notify` on TLS), flushing what TLS
    /// still holds; the read direction stays open.
    pub async fn close_write(&self) -> io::Result<()> {
        let tcp = match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.close_notify().await?,
            Stream::Mem(s) => {
                s.close_write();
                return Ok(());
            }
        };
        socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write)
    }

    /// The TCP socket under a TCP or TLS stream, for addresses and socket options (never for
    /// moving bytes: under TLS they are ciphertext).
    pub fn socket(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(s.tcp()),
            Stream::Mem(_) => None,
        }
    }

    /// The plain TCP socket, when this is one (`splice(2)`, socket options).
    #[inline]
    pub fn as_tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            _ => None,
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(s: TcpStream) -> Stream {
        Stream::Tcp(s)
    }
}

impl AsyncRead for Stream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_mem_pipe_end_carries_bytes_both_ways_with_readiness() {
        let (a, b) = crate::mem_pipe::pair();
        let (mut a, b) = (Stream::Mem(a), Stream::Mem(b));
        a.write_all(b"ping").await.unwrap();
        b.readable().await.unwrap();
        let mut buf = Vec::with_capacity(16);
        assert_eq!(b.try_read_buf(&mut buf).unwrap(), 4);
        assert_eq!(buf, b"ping");
        assert_eq!(
            b.try_read(&mut [0u8; 4]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        b.try_write(b"pong").unwrap();
        let mut got = [0u8; 4];
        a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
        assert!(a.as_tcp().is_none() && a.socket().is_none());
        b.close_write().await.unwrap();
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
