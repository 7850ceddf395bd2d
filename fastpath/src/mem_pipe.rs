//! An in-memory, single-thread byte pipe pair: the HTTP/2 bridges' link to the HTTP/1.1
//! core (both ends live in tasks of the same worker). It replaces a `socketpair(2)`: no
//! syscalls and no epoll round trip per read or write, only a buffer copy and a waker.
//! Each direction holds at most `CAPACITY` bytes (back-pressure, like a socket buffer);
//! dropping an end is EOF for the peer's reads and `BrokenPipe` for its writes.
//!
//! Hand-written because nothing in tokio offers both the readiness API the proxy loop uses
//! (`readable` / `try_read_buf` / `try_write`) and `AsyncRead`/`AsyncWrite` on a local
//! (`!Send`) pipe; `tokio::io::duplex` has only the latter, behind a mutex.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes one direction holds before writes would block.
pub const CAPACITY: usize = 256 * 1024;

/// One direction: bytes written and not yet read.
#[derive(Default)]
struct Chan {
    buf: VecDeque<u8>,
    /// The writer ended this direction (close_write or drop): EOF once `buf` is empty.
    write_closed: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Chan {
    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// Stores `cx`'s waker in `slot`, unless the one there already wakes the same task: a task
/// polled again while it waits keeps its waker (no reference count traffic per poll).
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Bytes a direction reserves on its first write: a typical head and a small body (a unary
/// gRPC response with its trailers) fit without the buffer growing write by write, and the
/// allocation stays under 1 KiB, which glibc serves from its per-thread cache.
const FIRST_RESERVE: usize = 1000;

/// One end of a pipe pair: reads what the other end writes, and the reverse.
pub struct MemEnd {
    rx: Rc<RefCell<Chan>>,
    tx: Rc<RefCell<Chan>>,
}

/// Two connected ends.
pub fn pair() -> (MemEnd, MemEnd) {
    let a = Rc::new(RefCell::new(Chan::default()));
    let b = Rc::new(RefCell::new(Chan::default()));
    (
        MemEnd {
            rx: a.clone(),
            tx: b.clone(),
        },
        MemEnd { rx: b, tx: a },
    )
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl MemEnd {
    /// Ready when a read may make progress (bytes or EOF); registers `cx` otherwise.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = self.rx.borrow_mut();
        if !c.buf.is_empty() || c.write_closed {
            return Poll::Ready(Ok(()));
        }
        register(&mut c.read_waker, cx);
        Poll::Pending
    }

    /// Ready when a write may make progress (room, or the reader is gone: the write fails).
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut c = self.tx.borrow_mut();
        if c.buf.len() < CAPACITY || c.reader_gone {
            return Poll::Ready(Ok(()));
        }
        register(&mut c.write_waker, cx);
        Poll::Pending
    }

    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// Copies what is buffered into `out` (at most `out.len()` bytes); `Ok(0)` is EOF,
    /// `WouldBlock` means nothing is there yet.
    pub fn try_read(&self, out: &mut [u8]) -> io::Result<usize> {
        let mut c = self.rx.borrow_mut();
        if c.buf.is_empty() {
            return if c.write_closed || out.is_empty() {
                Ok(0)
            } else {
                Err(would_block())
            };
        }
        let n = out.len().min(c.buf.len());
        let (front, back) = c.buf.as_slices();
        let first = n.min(front.len());
        out[..first].copy_from_slice(&front[..first]);
        out[first..n].copy_from_slice(&back[..n - first]);
        c.buf.drain(..n);
        c.wake_writer();
        Ok(n)
    }

    /// Appends what is buffered to `buf`, within its spare capacity (as `TcpStream`'s).
    pub fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let spare = buf.capacity() - buf.len();
        let mut c = self.rx.borrow_mut();
        if c.buf.is_empty() {
            return if c.write_closed || spare == 0 {
                Ok(0)
            } else {
                Err(would_block())
            };
        }
        let n = spare.min(c.buf.len());
        let (front, back) = c.buf.as_slices();
        let first = n.min(front.len());
        buf.extend_from_slice(&front[..first]);
        buf.extend_from_slice(&back[..n - first]);
        c.buf.drain(..n);
        c.wake_writer();
        Ok(n)
    }

    /// Buffers as much of `data` as there is room for; `WouldBlock` when full,
    /// `BrokenPipe` when the reader is gone.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut c = self.tx.borrow_mut();
        if c.reader_gone || c.write_closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = CAPACITY.saturating_sub(c.buf.len());
        if room == 0 && !data.is_empty() {
            return Err(would_block());
        }
        let n = room.min(data.len());
        if c.buf.capacity() == 0 {
            c.buf.reserve(n.max(FIRST_RESERVE));
        }
        c.buf.extend(&data[..n]);
        c.wake_reader();
        Ok(n)
    }

    /// Ends this end's writing: the peer reads EOF after what is buffered.
    pub fn close_write(&self) {
        let mut c = self.tx.borrow_mut();
        c.write_closed = true;
        c.wake_reader();
    }

    fn poll_read_into(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.try_read_into(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.poll_read_ready(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    /// `try_read` into the unfilled part of `buf`, which it copies into without zeroing it
    /// first (a read buffer's spare capacity is not initialized; `initialize_unfilled` would
    /// memset all of it on every read).
    fn try_read_into(&self, buf: &mut ReadBuf<'_>) -> io::Result<()> {
        let mut c = self.rx.borrow_mut();
        if c.buf.is_empty() {
            return if c.write_closed || buf.remaining() == 0 {
                Ok(())
            } else {
                Err(would_block())
            };
        }
        let n = buf.remaining().min(c.buf.len());
        let (front, back) = c.buf.as_slices();
        let first = n.min(front.len());
        buf.put_slice(&front[..first]);
        buf.put_slice(&back[..n - first]);
        c.buf.drain(..n);
        c.wake_writer();
        Ok(())
    }

    fn poll_write_from(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.try_write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.poll_write_ready(cx))?;
                }
                r => return Poll::Ready(r),
            }
        }
    }

    /// Borrowed read and write halves (both usable at once, as `UnixStream::split`).
    pub fn split(&self) -> (MemRead<'_>, MemWrite<'_>) {
        (MemRead(self), MemWrite(self))
    }
}

impl Drop for MemEnd {
    fn drop(&mut self) {
        let mut tx = self.tx.borrow_mut();
        tx.write_closed = true;
        tx.wake_reader();
        drop(tx);
        let mut rx = self.rx.borrow_mut();
        rx.reader_gone = true;
        rx.buf.clear();
        rx.wake_writer();
    }
}

/// The read half of `MemEnd::split`.
pub struct MemRead<'a>(&'a MemEnd);

/// The write half of `MemEnd::split`.
pub struct MemWrite<'a>(&'a MemEnd);

impl AsyncRead for MemEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_into(cx, buf)
    }
}

impl AsyncRead for MemRead<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.poll_read_into(cx, buf)
    }
}

impl AsyncWrite for MemEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_from(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.close_write();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemWrite<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_from(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close_write();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn carries_bytes_both_ways_with_readiness() {
        let (mut a, b) = pair();
        a.write_all(b"ping").await.unwrap();
        b.readable().await.unwrap();
        let mut buf = Vec::with_capacity(16);
        assert_eq!(b.try_read_buf(&mut buf).unwrap(), 4);
        assert_eq!(buf, b"ping");
        let e = b.try_read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(b.try_write(b"pong").unwrap(), 4);
        let mut got = [0u8; 4];
        a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong");
    }

    #[tokio::test]
    async fn a_full_direction_blocks_until_read() {
        let (a, b) = pair();
        let big = vec![7u8; CAPACITY + 10];
        assert_eq!(a.try_write(&big).unwrap(), CAPACITY);
        assert_eq!(
            a.try_write(b"x").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let mut out = vec![0u8; 100];
        assert_eq!(b.try_read(&mut out).unwrap(), 100);
        a.writable().await.unwrap();
        assert_eq!(a.try_write(b"more").unwrap(), 4);
    }

    #[tokio::test]
    async fn close_and_drop_end_each_direction() {
        let (mut a, mut b) = pair();
        a.write_all(b"last").await.unwrap();
        a.close_write();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last");
        // The other direction still works after a's close_write.
        b.write_all(b"reply").await.unwrap();
        let mut r = [0u8; 5];
        a.read_exact(&mut r).await.unwrap();
        assert_eq!(&r, b"reply");
        drop(a);
        let e = b.write_all(b"to nobody").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn split_halves_work_at_once() {
        let (a, b) = pair();
        let (mut rd, mut wr) = a.split();
        let echo = async {
            let mut buf = vec![0u8; 3];
            b.readable().await.unwrap();
            let n = b.try_read(&mut buf).unwrap();
            b.try_write(&buf[..n]).unwrap();
        };
        let client = async {
            wr.write_all(b"abc").await.unwrap();
            let mut r = [0u8; 3];
            rd.read_exact(&mut r).await.unwrap();
            r
        };
        let ((), r) = tokio::join!(echo, client);
        assert_eq!(&r, b"abc");
    }

    /// A read into a buffer's spare capacity (`read_buf`, as the bridges read) takes what is
    /// buffered, in order, also when the ring buffer wraps around, and no more than the
    /// spare room.
    #[tokio::test]
    async fn read_buf_takes_wrapped_bytes_in_order() {
        let (a, mut b) = pair();
        let first: Vec<u8> = (0..FIRST_RESERVE).map(|i| i as u8).collect();
        assert_eq!(a.try_write(&first).unwrap(), first.len());
        let mut head = [0u8; 600];
        assert_eq!(b.try_read(&mut head).unwrap(), 600);
        // 600 bytes free at the front: these wrap around the end of the ring.
        let second: Vec<u8> = (0..500).map(|i| (i * 7) as u8).collect();
        assert_eq!(a.try_write(&second).unwrap(), second.len());
        let mut got = bytes::BytesMut::with_capacity(64);
        let n = b.read_buf(&mut got).await.unwrap();
        assert_eq!(n, got.len());
        assert!(n <= 64 && n > 0, "read {n} bytes into 64 spare");
        got.reserve(4096);
        while got.len() < FIRST_RESERVE - 600 + second.len() {
            assert!(b.read_buf(&mut got).await.unwrap() > 0);
        }
        let want: Vec<u8> = first[600..].iter().chain(&second).copied().collect();
        assert_eq!(&got[..], &want[..]);
    }
}
