//! Socket helpers for the proxy loop: the downstream read buffer and vectored full writes.
use std::io::{self, IoSlice};
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pool::BufferPool;

/// The downstream socket and its read buffer (`buf[start..]` is unread). The buffer comes
/// from the worker's pool and goes back whenever the connection is idle with nothing
/// buffered.
pub struct Down {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub start: usize,
    pub peer: SocketAddr,
}

impl Down {
    pub fn new(stream: TcpStream, peer: SocketAddr) -> Down {
        Down {
            stream,
            buf: Vec::new(),
            start: 0,
            peer,
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

    /// Reads more bytes, growing the buffer up to `limit` (compacting first). `Ok(0)` is EOF;
    /// a full buffer at the limit is an `OutOfMemory` error.
    pub async fn read_more(&mut self, pool: &BufferPool, limit: usize) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf = pool.get();
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            } else if self.buf.capacity() < limit {
                self.buf
                    .reserve(self.buf.capacity().min(limit - self.buf.capacity()).max(1));
            } else {
                return Err(io::ErrorKind::OutOfMemory.into());
            }
        }
        self.stream.read_buf(&mut self.buf).await
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

/// Writes all of `parts` with as few `writev` calls as the socket allows.
pub async fn write_all_vectored(stream: &mut TcpStream, parts: &[&[u8]]) -> io::Result<usize> {
    let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
    let mut n = 0;
    let mut total = 0;
    for p in parts.iter().filter(|p| !p.is_empty()) {
        if n == slices.len() {
            // More parts than slots: flush what we have first.
            write_slices(stream, &mut slices[..n]).await?;
            n = 0;
        }
        slices[n] = IoSlice::new(p);
        n += 1;
        total += p.len();
    }
    write_slices(stream, &mut slices[..n]).await?;
    Ok(total)
}

async fn write_slices(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let n = if slices.len() == 1 {
            stream.write(&slices[0]).await?
        } else {
            stream.write_vectored(slices).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// Writes `data` to the upstream, but stops early (returning `Ok(true)`) if the upstream
/// starts answering while the write is blocked (an early response to a request body).
pub async fn write_or_early_response(stream: &TcpStream, mut data: &[u8]) -> io::Result<bool> {
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

/// Writes a local reply (head + body) and ignores failures (the client may be gone).
pub async fn write_reply(stream: &mut TcpStream, head: &[u8], body: &[u8]) -> bool {
    let ok = write_all_vectored(stream, &[head, body]).await.is_ok();
    if !ok {
        let _ = stream.shutdown().await;
    }
    ok
}
