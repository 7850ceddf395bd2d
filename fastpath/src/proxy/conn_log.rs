//! The listener access log of an HTTP connection (a listener `access_log` on an
//! `http_connection_manager` chain): one line when the connection closes, as Envoy 1.40
//! writes it — the connection's start, duration and downstream bytes (after TLS), its
//! protocol once a request head was parsed, `DPE` after a codec error, no status (0), no
//! request, route or upstream.
use std::cell::{Cell, OnceCell};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::access_log::{AccessLogs, Entry, Fields, LogType};
use crate::conn_info::ConnInfo;
use crate::local_reply::{ResponseFlag, ResponseFlags};

/// What a logged connection keeps until it closes (boxed in the connection's stats; None
/// when the listener has no access log).
pub(super) struct ConnLog {
    logs: Arc<AccessLogs>,
    /// The connection's start (`%START_TIME%`, `%DURATION%`).
    fields: Fields,
    info: ConnInfo,
    /// HTTP minor version of the first parsed request (`MINOR_HTTP2` for HTTP/2).
    minor: Cell<Option<u8>>,
    flags: Cell<ResponseFlags>,
    /// `%CONNECTION_TERMINATION_DETAILS%` (a network RBAC denial's; empty: none).
    termination: Box<str>,
}

impl ConnLog {
    /// `inspected`: the listener has a TLS inspector. As in Envoy, only the inspector's SNI
    /// is the connection's `%REQUESTED_SERVER_NAME%` (a TLS-terminating chain alone leaves it
    /// unset).
    pub(super) fn new(logs: Arc<AccessLogs>, info: &ConnInfo, inspected: bool) -> ConnLog {
        let mut info = info.clone();
        if !inspected && let Some(t) = info.tls.as_deref_mut() {
            t.sni = None;
        }
        ConnLog {
            logs,
            fields: Fields::new(),
            info,
            minor: Cell::new(None),
            flags: Cell::new(ResponseFlags::default()),
            termination: Box::default(),
        }
    }

    /// A network filter closed the connection: its `%CONNECTION_TERMINATION_DETAILS%`.
    pub(super) fn terminated(&mut self, details: &str) {
        self.termination = details.into();
    }

    /// A request head was parsed: the connection's `%PROTOCOL%` (its first request's).
    pub(super) fn protocol(&self, minor: u8) {
        if self.minor.get().is_none() {
            self.minor.set(Some(minor));
        }
    }

    /// A codec error: `DPE`.
    pub(super) fn protocol_error(&self) {
        let mut f = self.flags.get();
        f.insert(ResponseFlag::DownstreamProtocolError);
        self.flags.set(f);
    }

    /// Renders the connection's line (on worker `w`) with its downstream byte counts.
    pub(super) fn write(mut self, w: usize, received: u64, sent: u64) {
        self.fields.bytes_received = received;
        self.fields.bytes_sent = sent;
        let entry = Entry {
            fields: &self.fields,
            kind: LogType::NotSet,
            termination: &self.termination,
            transport_failure: "",
            status: 0,
            flags: self.flags.get(),
            minor: self.minor.get(),
            req_head: &[],
            route_name: "",
            cluster: None,
            downstream_remote: self.info.peer,
            downstream_local: self.info.local,
            connection_id: self.info.id,
            tls: self.info.tls.as_deref(),
            end: std::time::Instant::now(),
            generate_request_id: false,
            generated_id: OnceCell::new(),
            req_index: OnceCell::new(),
        };
        self.logs.log(&entry, w);
    }
}

/// An HTTP/2 connection's socket, counting the bytes read and written (frames, after TLS)
/// into the connection's totals.
pub(super) struct Counted<'a, S> {
    pub inner: S,
    pub received: &'a Cell<u64>,
    pub sent: &'a Cell<u64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.received.set(self.received.get() + n);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.sent.set(self.sent.get() + n as u64);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.sent.set(self.sent.get() + n as u64);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counted_totals_what_went_through_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let (received, sent) = (Cell::new(0), Cell::new(0));
        let mut c = Counted {
            inner: a,
            received: &received,
            sent: &sent,
        };
        c.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!((received.get(), sent.get()), (3, 5));
    }
}
