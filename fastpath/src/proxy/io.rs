//! Socket helpers for the proxy loop: the downstream read buffer and vectored full writes.
use std::io::{self, IoSlice};

use crate::conn_info::ConnInfo;
use crate::pool::BufferPool;
use crate::stream::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The downstream socket and its read buffer (`buf[start..]` is unread). The buffer comes
/// from the worker's pool and goes back whenever the connection is idle with nothing
/// buffered.
pub struct Down {
    pub stream: Stream,
    pub buf: Vec<u8>,
    pub start: usize,
    /// Addresses and TLS facts of the connection (boxed: the idle connection future stays
    /// small).
    pub info: Box<ConnInfo>,
}

impl Down {
    pub fn new(stream: Stream, info: ConnInfo) -> Down {
        Down {
            stream,
            buf: Vec::new(),
            start: 0,
            info: Box::new(info),
        }
    }

    #[inline]
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Returns the buffer to the pool when nothing is buffered.
    pub fn release(&mut self, pool: &BufferPool) {
        if self.is_empty() && self.buf.capacity() > 0 {
            pool.put(std::mem::take(&mut self.buf));
            self.start = 0;
        }
    }

    /// Reads more bytes so that at most `limit` unread bytes are buffered, growing the
    /// buffer up to `limit` (compacting first). `Ok(0)` is EOF; a buffer already holding
    /// `limit` unread bytes is an `OutOfMemory` error.
    pub async fn read_more(&mut self, pool: &BufferPool, limit: usize) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf = pool.get();
            self.start = 0;
        }
        let room = limit.saturating_sub(self.buf.len() - self.start);
        if room == 0 {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        if self.buf.len() == self.buf.capacity() {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            } else {
                self.buf.reserve(self.buf.capacity().min(room).max(1));
            }
        }
        (&mut self.stream)
            .take(room as u64)
            .read_buf(&mut self.buf)
            .await
    }

    /// Reads whatever is already readable into spare capacity without growing or moving the
    /// buffer (so byte ranges held by the caller stay valid). `Ok(None)`: would block or no
    /// room; `Ok(Some(0))`: EOF.
    pub fn try_read_spare(&mut self) -> io::Result<Option<usize>> {
        if self.buf.len() == self.buf.capacity() {
            return Ok(None);
        }
        match self.stream.try_read_buf(&mut self.buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn has_spare(&self) -> bool {
        self.buf.len() < self.buf.capacity()
    }
}

/// A write that failed after `written` bytes were accepted by the socket.
#[derive(Debug)]
pub struct WriteFail {
    pub error: io::Error,
    pub written: usize,
}

impl WriteFail {
    /// The peer had closed or reset the connection before it accepted any byte (EPIPE,
    /// ECONNRESET on the first write): nothing of this write can have been processed.
    pub fn nothing_accepted(&self) -> bool {
        self.written == 0
            && matches!(
                self.error.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            )
    }
}

/// Writes all of `parts` with as few `writev` calls as the socket allows; returns the bytes
/// written.
pub async fn write_all_vectored(stream: &mut Stream, parts: &[&[u8]]) -> Result<usize, WriteFail> {
    let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
    let mut n = 0;
    let mut written = 0;
    for p in parts.iter().filter(|p| !p.is_empty()) {
        if n == slices.len() {
            // More parts than slots: flush what we have first.
            write_slices(stream, &mut slices[..n], &mut written).await?;
            n = 0;
        }
        slices[n] = IoSlice::new(p);
        n += 1;
    }
    write_slices(stream, &mut slices[..n], &mut written).await?;
    Ok(written)
}

async fn write_slices(
    stream: &mut Stream,
    mut slices: &mut [IoSlice<'_>],
    written: &mut usize,
) -> Result<(), WriteFail> {
    while !slices.is_empty() {
        let r = if slices.len() == 1 {
            stream.write(&slices[0]).await
        } else {
            stream.write_vectored(slices).await
        };
        let n = match r {
            Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => Ok(n),
            Err(e) => Err(e),
        }
        .map_err(|error| WriteFail {
            error,
            written: *written,
        })?;
        *written += n;
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Writes `data` to the upstream, but stops early (returning `Ok(true)`) if the upstream
/// starts answering while the write is blocked (an early response to a request body).
pub async fn write_or_early_response(stream: &Stream, mut data: &[u8]) -> io::Result<bool> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    r = stream.writable() => r?,
                    r = stream.readable() => { r?; return Ok(true); }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Writes a local reply (head + body); returns the bytes written and whether all were (the
/// client may be gone).
pub async fn write_reply(stream: &mut Stream, head: &[u8], body: &[u8]) -> (usize, bool) {
    match write_all_vectored(stream, &[head, body]).await {
        Ok(n) => (n, true),
        Err(f) => {
            let _ = stream.shutdown().await;
            (f.written, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (Stream::Tcp(c), s)
    }

    #[tokio::test]
    async fn a_write_to_a_reset_connection_accepted_nothing() {
        let (mut c, s) = pair().await;
        socket2::SockRef::from(&s)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(s); // RST
        c.readable().await.unwrap();
        let fail = write_all_vectored(&mut c, &[b"GET / HTTP/1.1\r\n\r\n"])
            .await
            .unwrap_err();
        assert!(fail.nothing_accepted(), "{fail:?}");
    }

    #[test]
    fn only_an_untouched_dead_connection_is_safe_to_retry() {
        let fail = |kind: io::ErrorKind, written| WriteFail {
            error: kind.into(),
            written,
        };
        assert!(fail(io::ErrorKind::BrokenPipe, 0).nothing_accepted());
        assert!(fail(io::ErrorKind::ConnectionReset, 0).nothing_accepted());
        assert!(!fail(io::ErrorKind::BrokenPipe, 10).nothing_accepted());
        assert!(!fail(io::ErrorKind::TimedOut, 0).nothing_accepted());
    }

    #[tokio::test]
    async fn read_more_buffers_at_most_the_limit() {
        let (c, mut s) = pair().await;
        s.write_all(&[b'a'; 1000]).await.unwrap();
        let pool = BufferPool::default();
        let tcp = c.as_tcp().unwrap();
        let info = ConnInfo::plain(tcp.peer_addr().unwrap(), tcp.local_addr().unwrap());
        let mut down = Down::new(c, info);
        let mut got = 0;
        while got < 16 {
            got += down.read_more(&pool, 16).await.unwrap();
        }
        assert_eq!(down.buffered().len(), 16);
        let full = down.read_more(&pool, 16).await.unwrap_err();
        assert_eq!(full.kind(), io::ErrorKind::OutOfMemory);
        down.consume(10);
        assert!(down.read_more(&pool, 16).await.unwrap() <= 10);
        assert!(down.buffered().len() <= 16);
    }
}
