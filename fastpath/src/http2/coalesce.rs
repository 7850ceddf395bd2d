//! Write coalescing under an `h2` connection: frames queued by several streams in one turn of
//! the worker go out in one write.
//!
//! The `h2` crate flushes every time its connection task is polled, and in the HTTP/2 bridge
//! each stage of a response (head, body, trailers; one stream after another) wakes that task
//! separately, so a burst of responses left in two or three small writes per response.
//! Each write is a packet, and a wake-up for the peer. The first flush after new bytes is
//! therefore deferred once, to the end of the worker's turn: the task asks to be woken only
//! after every other ready task ran and the worker polled for I/O (as `yield_now` does), so
//! a request crossing several tasks (h2 server, core, upstream bridge) still joins the write,
//! as Envoy writes what one event-loop iteration produced at once. No tokio or `h2` type
//! offers this, so it is written here (the HTTP/2 benchmark shows the gain).
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held before a write goes straight to the socket instead of waiting for a flush.
const HIGH_WATER: usize = 64 * 1024;

pub struct Coalesce<S> {
    inner: S,
    buf: BytesMut,
    /// The flush of the bytes in `buf` was deferred once already.
    deferred: bool,
}

impl<S> Coalesce<S> {
    pub fn new(inner: S) -> Self {
        Coalesce {
            inner,
            buf: BytesMut::new(),
            deferred: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    /// Writes `buf` to the socket until it is empty (Ready) or the socket is full (Pending).
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.buf.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.deferred = false;
        Poll::Ready(Ok(()))
    }

    /// Makes room before more bytes are taken: past the high-water mark, the socket first.
    fn room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.len() >= HIGH_WATER {
            return self.drain(cx);
        }
        Poll::Ready(Ok(()))
    }
}

/// Has the task woken once the worker has run out of ready tasks and polled its I/O driver
/// (tokio defers `yield_now`'s wake-up so; outside a runtime it wakes at once). Waking itself
/// directly would queue the task behind only the tasks ready so far, ahead of those they wake.
fn wake_after_turn(cx: &mut Context<'_>) {
    let turn = std::pin::pin!(tokio::task::yield_now());
    let _ = turn.poll(cx);
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(Err(e)) = this.room(cx) {
            return Poll::Ready(Err(e));
        }
        if this.buf.len() >= HIGH_WATER {
            return Poll::Pending;
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(Err(e)) = this.room(cx) {
            return Poll::Ready(Err(e));
        }
        if this.buf.len() >= HIGH_WATER {
            return Poll::Pending;
        }
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() && !this.deferred && this.buf.len() < HIGH_WATER {
            // Yield once: streams made ready in this turn add their frames first.
            this.deferred = true;
            wake_after_turn(cx);
            return Poll::Pending;
        }
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;
    use tokio::task::spawn_local;

    #[tokio::test]
    async fn holds_bytes_until_the_second_flush_then_writes_them_in_order() {
        let (a, mut b) = tokio::net::UnixStream::pair().unwrap();
        let mut c = Coalesce::new(a);
        c.write_all(b"hello ").await.unwrap();
        c.write_all(b"world").await.unwrap();
        // The first flush yields (Pending) without writing anything.
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut c).poll_flush(cx))).await;
        assert!(first.is_pending());
        let mut probe = [0u8; 16];
        assert!(
            b.try_read(&mut probe).is_err(),
            "nothing may reach the socket yet"
        );
        c.flush().await.unwrap();
        drop(c);
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");
    }

    /// Records each write it is given (one write: one packet on a socket).
    struct Recorder(Rc<RefCell<Vec<Vec<u8>>>>);

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.borrow_mut().push(data.to_vec());
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_flush_waits_for_the_tasks_woken_later_in_the_same_turn() {
        // A request reaches the upstream connection through a chain of tasks (h2 server,
        // core, upstream bridge), each waking the next: the frames of a stream whose chain
        // was woken in the turn that queued the first frames go out in the same write.
        tokio::task::LocalSet::new()
            .run_until(async {
                let writes = Rc::new(RefCell::new(Vec::new()));
                let c = Rc::new(RefCell::new(Coalesce::new(Recorder(writes.clone()))));
                let (tx1, rx1) = oneshot::channel::<()>();
                let (tx2, rx2) = oneshot::channel::<()>();
                let (tx3, rx3) = oneshot::channel::<()>();
                spawn_local(async move {
                    rx1.await.unwrap();
                    tx2.send(()).unwrap();
                });
                spawn_local(async move {
                    rx2.await.unwrap();
                    tx3.send(()).unwrap();
                });
                let c3 = c.clone();
                let last = spawn_local(async move {
                    rx3.await.unwrap();
                    poll_fn(|cx| Pin::new(&mut *c3.borrow_mut()).poll_write(cx, b"b"))
                        .await
                        .unwrap();
                });
                let conn = spawn_local(async move {
                    poll_fn(|cx| Pin::new(&mut *c.borrow_mut()).poll_write(cx, b"a"))
                        .await
                        .unwrap();
                    tx1.send(()).unwrap();
                    poll_fn(|cx| Pin::new(&mut *c.borrow_mut()).poll_flush(cx))
                        .await
                        .unwrap();
                });
                conn.await.unwrap();
                last.await.unwrap();
                assert_eq!(*writes.borrow(), vec![b"ab".to_vec()], "one write for both");
            })
            .await;
    }

    #[tokio::test]
    async fn writes_past_the_high_water_mark_without_a_flush() {
        let (a, mut b) = tokio::net::UnixStream::pair().unwrap();
        let mut c = Coalesce::new(a);
        let big = vec![7u8; HIGH_WATER];
        c.write_all(&big).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut got = vec![0u8; HIGH_WATER];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, big);
    }

    #[tokio::test]
    async fn shutdown_writes_what_is_held() {
        let (a, mut b) = tokio::net::UnixStream::pair().unwrap();
        let mut c = Coalesce::new(a);
        c.write_all(b"bye").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "bye");
    }
}
