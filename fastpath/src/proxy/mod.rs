//! The HTTP connection manager loop of one downstream connection: read a request head, route
//! it, answer locally or forward it, stream bodies, keep the connection alive or close it.
//! Requests on one connection are handled in order; early bytes of the next one stay
//! buffered.
mod access_log;
pub(crate) mod authority;
mod conn_log;
mod connect;
mod forward;
pub(crate) mod forwarded;
mod io;
mod mirror;
pub(crate) mod path_normalize;
mod periodic;
mod prepare;
mod record;
mod response;
mod response_body;
mod stream_duration;
mod stream_timers;
mod trace;
mod upgrade;
mod upstream_head;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::compiled::{Chosen, CompiledListener, Hcm, ListenerHandle, ListenerView};
use crate::config::snapshot::CodecType;
use crate::conn_info::ConnInfo;
use crate::error::ErrorKind;
use crate::filters::Verdict;
use crate::filters::local_ratelimit::ConnBuckets;
use crate::http1::{ChunkedDecoder, Framing, HeadError};
use crate::local_reply::{self, ReplyHead};
use crate::router::{HeaderList, Selection};
use crate::stats::sets::{http, listener};
use crate::stats::{HttpStats, ListenerStats};
use crate::stream::Stream;
use crate::worker::{ConnGuard, Worker};

use io::Down;
use prepare::{LocalOrigin, Prepared, ReqInfo};
use record::RequestRecord;
use stream_timers::{Expired, StreamTimers};

/// How long a connection closed by meshcore while the client may still be sending keeps
/// reading (and discarding) before the socket is closed: Envoy's `delayed_close_timeout`
/// default.
const DELAYED_CLOSE: Duration = Duration::from_secs(1);

/// What happens to the connection after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
    /// The connection started with the HTTP/2 preface: hand it to `http2::serve`.
    Http2,
}

/// What a connection's stats count it as (`downstream_cx_http1_*`, `_http2_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    /// `codec_type` AUTO before the first bytes.
    Pending,
    Http1,
    Http2,
    /// One HTTP/2 stream bridged to the core (`http2/server.rs`): its connection counts.
    Bridged,
}

/// The state of a request body when meshcore answers locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReqBody {
    /// Still in the read buffer (or on the socket): skipped if complete, else the connection
    /// closes.
    Buffered,
    /// Already consumed (forwarded).
    Consumed,
    /// Partly read or forwarded: the connection must close.
    Unfinished,
}

/// Connection-level stats, settled when the connection ends (whatever ends it).
struct CxStats {
    w: usize,
    listener: ListenerStats,
    http: HttpStats,
    start: Instant,
    remote: Cell<bool>,
    proto: Cell<Proto>,
    /// Bytes read from / written to the downstream (after TLS; HTTP/2 frames on an HTTP/2
    /// connection) for the listener access log.
    received: Cell<u64>,
    sent: Cell<u64>,
    /// The listener's access log line, written when the connection closes (None: none).
    log: Option<Box<conn_log::ConnLog>>,
}

impl CxStats {
    /// Counts the protocol once it is known.
    fn set_proto(&self, p: Proto) {
        let (w, h) = (self.w, &self.http);
        match p {
            Proto::Http1 => {
                h.inc(w, http::Counter::DownstreamCxHttp1Total);
                h.gauge_inc(w, http::Gauge::DownstreamCxHttp1Active);
            }
            Proto::Http2 => {
                h.inc(w, http::Counter::DownstreamCxHttp2Total);
                h.gauge_inc(w, http::Gauge::DownstreamCxHttp2Active);
            }
            Proto::Pending | Proto::Bridged => {}
        }
        self.proto.set(p);
    }

    /// Counts bytes read from the downstream (`%BYTES_RECEIVED%` of the listener log).
    fn rx(&self, n: usize) {
        self.received.set(self.received.get() + n as u64);
    }

    /// Counts bytes written to the downstream (`%BYTES_SENT%` of the listener log).
    fn tx(&self, n: usize) {
        self.sent.set(self.sent.get() + n as u64);
    }
}

impl Drop for CxStats {
    fn drop(&mut self) {
        let (w, l, h) = (self.w, &self.listener, &self.http);
        match self.proto.get() {
            Proto::Bridged => return,
            Proto::Http1 => h.gauge_dec(w, http::Gauge::DownstreamCxHttp1Active),
            Proto::Http2 => h.gauge_dec(w, http::Gauge::DownstreamCxHttp2Active),
            Proto::Pending => {}
        }
        if let Some(log) = self.log.take() {
            log.write(w, self.received.get(), self.sent.get());
        }
        let ms = self.start.elapsed().as_micros() as u64;
        l.gauge_dec(w, listener::Gauge::DownstreamCxActive);
        l.inc(w, listener::Counter::DownstreamCxDestroy);
        l.record_us(w, listener::Histogram::DownstreamCxLengthMs, ms);
        h.gauge_dec(w, http::Gauge::DownstreamCxActive);
        h.inc(w, http::Counter::DownstreamCxDestroy);
        h.inc(
            w,
            if self.remote.get() {
                http::Counter::DownstreamCxDestroyRemote
            } else {
                http::Counter::DownstreamCxDestroyLocal
            },
        );
        h.record_us(w, http::Histogram::DownstreamCxLengthMs, ms);
    }
}

/// `downstream_rq_active` for the lifetime of one request.
struct RqActive<'a>(&'a HttpStats, usize);

impl<'a> RqActive<'a> {
    /// Counts a request whose head was read (`downstream_rq_total`, `_http1_total` unless
    /// bridged from HTTP/2, active).
    fn start(stats: &'a HttpStats, w: usize, http1: bool) -> Self {
        stats.inc(w, http::Counter::DownstreamRqTotal);
        if http1 {
            stats.inc(w, http::Counter::DownstreamRqHttp1Total);
        }
        stats.gauge_inc(w, http::Gauge::DownstreamRqActive);
        RqActive(stats, w)
    }
}

impl Drop for RqActive<'_> {
    fn drop(&mut self) {
        self.0.gauge_dec(self.1, http::Gauge::DownstreamRqActive);
    }
}

struct Conn {
    worker: Rc<Worker>,
    handle: Arc<ListenerHandle>,
    /// `Rc` around the `Arc` on purpose: per-request clones stay non-atomic (no cache-line
    /// traffic between workers on the shared `Arc` count).
    #[allow(clippy::redundant_allocation)]
    view: Rc<Arc<ListenerView>>,
    /// The compiled listener `view` was chosen from, and the inputs that chose it: a config
    /// update (a new compiled listener) chooses the chain again.
    listener: Arc<CompiledListener>,
    inputs: Box<crate::listener::MatchInputs>,
    down: Down,
    idle: Rc<Cell<bool>>,
    cx: CxStats,
    /// The current request's record (status, response flags): what an access log line is
    /// written from once `one_request` returns.
    record: RequestRecord,
    /// meshcore closes the connection while the client may still be sending: close with a
    /// delay (`Conn::delayed_close`).
    linger: bool,
    /// Requests read on this connection (`max_requests_per_connection`).
    served: Cell<u32>,
    /// Header lines HTTP filters add to the response, local (taken by `local_reply`) or
    /// proxied (`x-ratelimit-*`); cleared for each request.
    reply_extra: Vec<u8>,
    /// Local rate limit buckets of this connection
    /// (`local_rate_limit_per_downstream_connection`).
    buckets: ConnBuckets,
    /// After a config update the connection's chain relays TCP (`tcp_proxy`) or no chain
    /// matches it any more: this HTTP connection keeps its last HTTP view and closes after
    /// the request in progress, as Envoy drains the connections of a replaced filter chain.
    superseded: bool,
    /// A bridged HTTP/2 stream's slot for the `grpc_stats` scope of its call.
    grpc_slot: Option<Rc<GrpcSlot>>,
    /// `access_log_flush_interval`: the state of the request's `DownstreamPeriodic` lines
    /// (`None` without the option: every hook is one branch).
    periodic: Option<Rc<periodic::Periodic>>,
}

/// Shared by an HTTP/2 stream's bridges and its core connection (same worker): the
/// `grpc_stats` call the core counts a gRPC request in (its scope, from when it went upstream).
pub type GrpcSlot = std::cell::RefCell<Option<crate::filters::grpc_stats::GrpcCall>>;

/// Serves one accepted connection until it closes. The connection's state is built here,
/// before the task is spawned, so the task's future holds it once (not also the arguments).
pub fn serve(
    worker: Rc<Worker>,
    chosen: Chosen,
    stream: Stream,
    info: ConnInfo,
    idle: Rc<Cell<bool>>,
    _guard: ConnGuard,
) -> impl std::future::Future<Output = ()> {
    let w = worker.index;
    let (ls, hs) = (chosen.view.stats.clone(), chosen.view.hcm.stats.clone());
    ls.inc(w, listener::Counter::DownstreamCxTotal);
    ls.gauge_inc(w, listener::Gauge::DownstreamCxActive);
    hs.inc(w, http::Counter::DownstreamCxTotal);
    hs.gauge_inc(w, http::Gauge::DownstreamCxActive);
    let alpn_h2 = info
        .tls
        .as_deref()
        .and_then(|t| t.alpn.as_deref())
        .is_some_and(|a| a == b"h2");
    let proto = match chosen.view.hcm.cfg.codec_type {
        _ if alpn_h2 => Proto::Http2,
        CodecType::Http2 => Proto::Http2,
        CodecType::Http1 => Proto::Http1,
        CodecType::Auto => Proto::Pending,
    };
    let inspected = chosen.listener.filters.tls_inspector.is_some();
    let mut conn = Conn::new(worker, chosen, stream, info, idle);
    conn.cx.set_proto(proto);
    if let Some(logs) = &conn.view.listener_log {
        let log = conn_log::ConnLog::new(logs.clone(), &conn.down.info, inspected);
        conn.cx.log = Some(Box::new(log));
    }
    async move {
        let _guard = _guard;
        if let Err(details) = conn.view.network.authorize(&conn.down.info, w) {
            // A network RBAC filter denied the connection: close it unread.
            if let Some(log) = conn.cx.log.as_deref_mut() {
                log.terminated(details);
            }
            conn.down.release(&conn.worker.buffers);
            return;
        }
        let mut flow = if proto == Proto::Http2 {
            Flow::Http2
        } else {
            Flow::Continue
        };
        while flow == Flow::Continue {
            flow = conn.one_request().await;
        }
        if flow == Flow::Http2 {
            // Boxed: the HTTP/1.1 connection future stays small.
            return Box::pin(conn.into_http2()).await;
        }
        if conn.linger {
            conn.delayed_close().await;
        }
        conn.down.release(&conn.worker.buffers);
    }
}

/// Serves one HTTP/2 stream bridged to the core as an HTTP/1.1 connection on one end of a
/// socket pair (`http2/server.rs`): the same loop as `serve`, on its HTTP/2 connection's
/// chain, but not counted as a downstream connection (its HTTP/2 connection is) and its
/// requests count as HTTP/2.
/// `grpc`: where the core leaves the `grpc_stats` scope of a gRPC call, for the bridge to
/// count its `grpc-status` in.
pub fn serve_bridged(
    worker: Rc<Worker>,
    chosen: Chosen,
    stream: Stream,
    info: ConnInfo,
    grpc: Rc<GrpcSlot>,
) -> impl std::future::Future<Output = ()> {
    let idle = Rc::new(Cell::new(false));
    let mut conn = Conn::new(worker, chosen, stream, info, idle);
    conn.cx.proto.set(Proto::Bridged);
    conn.grpc_slot = Some(grpc);
    async move {
        while conn.one_request().await == Flow::Continue {}
        if conn.linger {
            conn.delayed_close().await;
        }
        conn.down.release(&conn.worker.buffers);
    }
}

impl Conn {
    /// The request came over HTTP/2 (a bridged stream).
    fn downstream_http2(&self) -> bool {
        self.cx.proto.get() == Proto::Bridged
    }

    #[allow(clippy::redundant_allocation)]
    fn new(
        worker: Rc<Worker>,
        chosen: Chosen,
        stream: Stream,
        info: ConnInfo,
        idle: Rc<Cell<bool>>,
    ) -> Conn {
        let w = worker.index;
        let Chosen {
            handle,
            listener,
            view,
            inputs,
        } = chosen;
        let (ls, hs) = (view.stats.clone(), view.hcm.stats.clone());
        Conn {
            cx: CxStats {
                w,
                listener: ls,
                http: hs,
                start: Instant::now(),
                remote: Cell::new(false),
                proto: Cell::new(Proto::Pending),
                received: Cell::new(0),
                sent: Cell::new(0),
                log: None,
            },
            worker,
            handle,
            view: Rc::new(view),
            listener,
            inputs,
            down: Down::new(stream, info),
            idle,
            record: RequestRecord::default(),
            linger: false,
            served: Cell::new(0),
            reply_extra: Vec::new(),
            buckets: ConnBuckets::default(),
            superseded: false,
            grpc_slot: None,
            periodic: None,
        }
    }

    /// Hands the connection to the HTTP/2 server: the bytes already read (the preface) are
    /// replayed to it; the connection's stats (`cx`) stay counted until it ends.
    async fn into_http2(mut self) {
        if self.cx.proto.get() != Proto::Http2 {
            self.cx.set_proto(Proto::Http2);
        }
        let pre = bytes::Bytes::copy_from_slice(self.down.buffered());
        let unread = pre.len();
        self.down.consume(unread);
        self.down.release(&self.worker.buffers);
        let cx = self.cx;
        if let Some(log) = &cx.log {
            log.protocol(crate::access_log::MINOR_HTTP2);
        }
        // The preface was read (and counted) by the HTTP/1.1 loop; the rest of the
        // connection's bytes are counted as the HTTP/2 server reads and writes them.
        let io = conn_log::Counted {
            inner: crate::http2::Rewind::new(pre, self.down.stream),
            received: &cx.received,
            sent: &cx.sent,
        };
        cx.received
            .set(cx.received.get().saturating_sub(unread as u64));
        let chosen = Chosen {
            handle: self.handle,
            listener: self.listener,
            view: (*self.view).clone(),
            inputs: self.inputs,
        };
        crate::http2::serve(self.worker, chosen, io, *self.down.info).await;
        drop(cx);
    }
}

/// True once `buf` holds a blank line ending a head (`\n\r\n` or `\n\n`); scanning restarts
/// near `from`, so a head trickling in byte by byte is scanned once, not re-parsed per byte.
fn head_complete(buf: &[u8], from: usize) -> bool {
    let from = from.saturating_sub(2);
    memchr::memchr_iter(b'\n', &buf[from..]).any(|i| {
        let p = from + i;
        match buf.get(p + 1) {
            Some(b'\n') => true,
            Some(b'\r') => buf.get(p + 2) == Some(&b'\n'),
            _ => false,
        }
    })
}

impl Conn {
    /// The connection's chain in the listener's current config (one `ArcSwap` load; after an
    /// apply the chain is chosen again with the connection's inputs, and the `Rc` replaced).
    #[allow(clippy::redundant_allocation)]
    fn view(&mut self) -> Rc<Arc<ListenerView>> {
        let cur = self.handle.compiled.load();
        if !Arc::ptr_eq(&cur, &self.listener) {
            let cur = arc_swap::Guard::into_inner(cur);
            match cur.select(&self.inputs) {
                Some(v) if v.network.tcp_proxy.is_none() => {
                    if !Arc::ptr_eq(v, &self.view) {
                        self.view = Rc::new(v.clone());
                    }
                }
                // No chain, or a TCP relay: serve on the last HTTP view, then close.
                _ => self.superseded = true,
            }
            self.listener = cur;
        }
        self.view.clone()
    }

    fn closing(&self) -> bool {
        self.superseded || self.worker.draining.get() || self.handle.closing.load(Ordering::Relaxed)
    }

    /// The downstream connection reached `max_requests_per_connection` or
    /// `max_connection_duration` (counted once, when first seen): it closes after this
    /// request.
    fn past_limits(&self, hcm: &Hcm) -> bool {
        let limits = &hcm.cfg.connection_limits;
        let w = self.worker.index;
        if limits.max_requests_per_connection > 0
            && self.served.get() >= limits.max_requests_per_connection
        {
            hcm.stats
                .inc(w, http::Counter::DownstreamCxMaxRequestsReached);
            return true;
        }
        if limits.max_connection_duration_ms > 0
            && self.cx.start.elapsed().as_millis() as u64 >= limits.max_connection_duration_ms
        {
            hcm.stats
                .inc(w, http::Counter::DownstreamCxMaxDurationReached);
            return true;
        }
        false
    }

    /// How long an idle connection may still wait: the idle timeout, cut short by
    /// `max_connection_duration` (`true`: the duration is what ends it). As in Envoy, an
    /// idle connection past the duration is drained: closed `drain_timeout` later.
    fn idle_wait(&self, hcm: &Hcm) -> Option<(std::time::Duration, bool)> {
        let max_ms = hcm.cfg.connection_limits.max_connection_duration_ms;
        let left = (max_ms > 0).then(|| {
            std::time::Duration::from_millis(max_ms + hcm.cfg.drain_timeout_ms)
                .saturating_sub(self.cx.start.elapsed())
        });
        match (hcm.idle_timeout, left) {
            (Some(i), Some(l)) if l < i => Some((l, true)),
            (None, Some(l)) => Some((l, true)),
            (i, _) => i.map(|i| (i, false)),
        }
    }

    async fn one_request(&mut self) -> Flow {
        self.record.clear();
        self.reply_extra.clear();
        let view = self.view();
        let hcm = &view.hcm;
        let w = self.worker.index;
        if self.down.is_empty() {
            // Idle: hold no buffer while waiting for the next request.
            self.down.release(&self.worker.buffers);
            if self.closing() {
                return Flow::Close;
            }
            self.idle.set(true);
            let ready = match self.idle_wait(hcm) {
                Some((t, by_duration)) => {
                    match tokio::time::timeout(t, self.down.stream.readable()).await {
                        Ok(r) => r,
                        Err(_) => {
                            hcm.stats.inc(
                                w,
                                if by_duration {
                                    http::Counter::DownstreamCxMaxDurationReached
                                } else {
                                    http::Counter::DownstreamCxIdleTimeout
                                },
                            );
                            self.idle.set(false);
                            return Flow::Close;
                        }
                    }
                }
                None => self.down.stream.readable().await,
            };
            self.idle.set(false);
            if ready.is_err() {
                self.cx.remote.set(true);
                return Flow::Close;
            }
        }
        // The request's state lives in its own allocation while it is in flight, so an idle
        // keep-alive connection holds only this small future (issue 3: <1 KB per idle
        // connection; the request future is ~2.5 KB).
        if view.hcm.cfg.access_log_flush_interval_ms != 0 || self.periodic.is_some() {
            self.periodic_for(&view);
        }
        let flow = if self.periodic.is_none() {
            Box::pin(self.serve_request()).await
        } else {
            Box::pin(self.serve_periodic()).await
        };
        self.write_access_log();
        flow
    }

    /// Reads one request head (the first bytes are readable or buffered) and serves it.
    async fn serve_request(&mut self) -> Flow {
        let view = self.view();
        let hcm = &view.hcm;
        let w = self.worker.index;
        self.record
            .begin(hcm.access_log.as_deref(), hcm.tracing.is_some());
        self.served.set(self.served.get() + 1);
        let limit = hcm.max_head + 1;
        let mut scanned = 0;
        let headers_ms = hcm.cfg.connection_limits.request_headers_timeout_ms;
        let head_deadline =
            (headers_ms > 0).then(|| Instant::now() + std::time::Duration::from_millis(headers_ms));
        // The stream's timers run from its first byte (Envoy creates the stream then).
        let mut timers = StreamTimers::start(&hcm.cfg.stream_timeouts, Instant::now());
        loop {
            let b = self.down.buffered();
            if head_complete(b, scanned) {
                break;
            }
            scanned = b.len();
            if b.len() > hcm.max_head {
                return self.reject(hcm, HeadError::TooLarge, 1).await;
            }
            let read = self.down.read_more(&self.worker.buffers, limit);
            let conn_idle = hcm.idle_timeout.map(|t| Instant::now() + t);
            let stream = timers.next();
            let wait = [conn_idle, head_deadline, stream.map(|s| s.0)]
                .into_iter()
                .flatten()
                .min();
            let r = match wait {
                Some(at) => match tokio::time::timeout_at(at, read).await {
                    Ok(r) => r,
                    Err(_) if head_deadline == Some(at) => {
                        return self.header_timeout_reply(hcm).await;
                    }
                    Err(_) if stream.is_some_and(|s| s.0 == at) => {
                        let e = stream.map_or(Expired::Idle, |s| s.1);
                        return self.head_timeout_reply(hcm, e).await;
                    }
                    Err(_) => {
                        hcm.stats.inc(w, http::Counter::DownstreamCxIdleTimeout);
                        return Flow::Close;
                    }
                },
                None => read.await,
            };
            match r {
                Ok(0) => {
                    self.cx.remote.set(true);
                    return Flow::Close;
                }
                Ok(n) => {
                    self.cx.rx(n);
                    hcm.stats
                        .add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64)
                }
                Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                    return self.reject(hcm, HeadError::TooLarge, 1).await;
                }
                Err(_) => {
                    self.cx.remote.set(true);
                    return Flow::Close;
                }
            }
        }

        if self.cx.proto.get() == Proto::Pending {
            // `codec_type` AUTO: the first head tells HTTP/2 (its preface parses as a head)
            // from HTTP/1.1.
            if self.down.buffered().starts_with(crate::http2::PREFACE_HEAD) {
                self.record.clear();
                return Flow::Http2;
            }
            self.cx.set_proto(Proto::Http1);
        }
        // A snapshot applied while this connection waited applies to this request.
        let view = self.view();
        let hcm = &view.hcm;
        let started = Instant::now();
        let mut req_out = self.worker.buffers.get();
        let port = self.handle.port;
        let mut verdict = Verdict::default();
        let mut prepared = prepare::prepare(
            self.down.buffered(),
            hcm,
            &self.down.info,
            port,
            &mut req_out,
            w,
            &mut verdict,
            &self.buckets,
        );
        if let Prepared::Reject(HeadError::UnsupportedVersion, _) = prepared
            && hcm.cfg.accept_http_10
        {
            // Envoy with accept_http_10 takes any version but HTTP/1.1 (and none) as
            // HTTP/1.0: rewrite the request line and parse again (rare path).
            let start = self.down.start;
            if crate::http1::request::rewrite_version_to_10(&mut self.down.buf, start) {
                prepared = prepare::prepare(
                    self.down.buffered(),
                    hcm,
                    &self.down.info,
                    port,
                    &mut req_out,
                    w,
                    &mut verdict,
                    &self.buckets,
                );
            }
        }
        let info = match &prepared {
            Prepared::Reject(e, minor) => {
                let (e, minor) = (*e, *minor);
                self.worker.buffers.put(req_out);
                return self.reject(hcm, e, minor).await;
            }
            Prepared::NoRoute(i) | Prepared::Local(_, i) | Prepared::Forward(_, i) => *i,
        };
        if let Some(log) = &self.cx.log {
            log.protocol(info.minor);
        }
        if let Some(t) = hcm.tracing.as_deref()
            && let Some(l) = self.record.log.as_deref_mut()
        {
            let received = &self.down.buffered()[..info.head_len];
            trace::begin(t, l, &prepared, &mut req_out, received, hcm, w);
        }
        if let Some(l) = self.record.log.as_deref_mut() {
            let received = &self.down.buffered()[..info.head_len];
            access_log::stash(l, &prepared, &info, &req_out, received);
            if l.needs.remote {
                let (remote, hops) = (hcm.cfg.use_remote_address, hcm.cfg.xff_num_trusted_hops);
                access_log::stash_remote(l, received, remote, hops);
            }
            if self.cx.proto.get() == Proto::Bridged {
                l.minor = Some(crate::access_log::MINOR_HTTP2);
            }
            if hcm.cfg.flush_access_log_on_new_request {
                self.flush_access_log(crate::access_log::LogType::DownstreamStart);
            }
            self.publish();
        }
        self.down.consume(info.head_len);
        let _active = RqActive::start(&hcm.stats, w, self.cx.proto.get() != Proto::Bridged);
        if !verdict.is_continue()
            && let Some(flow) = self
                .run_filters(hcm, &prepared, &info, &mut verdict, started)
                .await
        {
            self.worker.buffers.put(req_out);
            return flow;
        }
        let flow = match prepared {
            Prepared::Reject(..) => Flow::Close,
            Prepared::NoRoute(info) => {
                hcm.stats.inc(w, http::Counter::NoRoute);
                self.error_reply(
                    hcm,
                    &info,
                    ErrorKind::NoRoute,
                    started,
                    None,
                    ReqBody::Buffered,
                )
                .await
            }
            Prepared::Local(spec, info) => {
                if spec.origin == LocalOrigin::NonRelative {
                    hcm.stats.inc(w, http::Counter::DownstreamRqNonRelativePath);
                } else if spec.origin == LocalOrigin::PathRedirect {
                    self.record.details("path_normalization_failed");
                } else if spec.origin == LocalOrigin::UpgradeFailed {
                    self.record.details("upgrade_failed");
                } else if spec.location.is_some() {
                    hcm.stats.inc(w, http::Counter::RqRedirect);
                } else if spec.mutations.is_some() {
                    hcm.stats.inc(w, http::Counter::RqDirectResponse);
                }
                self.local_reply(
                    hcm,
                    &info,
                    LocalBody {
                        status: spec.status,
                        body: &spec.body,
                        location: spec.location.as_deref(),
                    },
                    spec.mutations,
                    started,
                    ReqBody::Buffered,
                )
                .await
            }
            Prepared::Forward(plan, info) => {
                hcm.stats.inc(w, http::Counter::RqTotal);
                timers.route(plan.route.idle_timeout(), started);
                timers.duration(plan.duration, plan.grpc);
                if let (Some(scope), Some(slot)) = (&plan.grpc_stats, &self.grpc_slot) {
                    *slot.borrow_mut() = Some(crate::filters::grpc_stats::GrpcCall {
                        scope: scope.clone(),
                        w,
                        started: std::time::Instant::now(),
                    });
                }
                if plan.tunnel == prepare::Tunnel::ConnectTerminate {
                    self.connect_tunnel(&view, &plan, &info, started, &mut timers)
                        .await
                } else {
                    self.forward(&view, &plan, &info, &req_out, started, &mut timers)
                        .await
                }
            }
        };
        self.worker.buffers.put(req_out);
        flow
    }

    /// Carries out the HTTP filters' decision: records their flags, waits out a delay (a
    /// timer: the worker runs on), and answers with a filter's reply. `None`: go on with the
    /// request.
    async fn run_filters(
        &mut self,
        hcm: &Hcm,
        prepared: &Prepared<'_>,
        info: &ReqInfo,
        verdict: &mut Verdict<'_>,
        started: Instant,
    ) -> Option<Flow> {
        self.record.flags.extend(verdict.flags);
        if let Some(d) = verdict.delay {
            tokio::time::sleep(d).await;
        }
        self.reply_extra.append(&mut verdict.response_lines);
        let reply = verdict.reply.take()?;
        let mutations = match prepared {
            Prepared::Forward(plan, _) => Some((plan.sel, plan.choice)),
            Prepared::Local(spec, _) => spec.mutations,
            _ => None,
        };
        self.reply_extra.extend_from_slice(&reply.headers);
        if let Some(l) = self.record.log.as_deref_mut() {
            l.filter_details.clear();
            l.filter_details.push_str(verdict.details);
        }
        let body = LocalBody {
            status: reply.status,
            body: reply.body,
            location: None,
        };
        Some(
            self.local_reply(hcm, info, body, mutations, started, ReqBody::Buffered)
                .await,
        )
    }

    /// A head meshcore will not proxy (400/426/431/501): counted as a request, as Envoy does
    /// (`downstream_rq_total` and the status class), answered, then the connection closes.
    async fn reject(&mut self, hcm: &Hcm, e: HeadError, minor: u8) -> Flow {
        let started = Instant::now();
        if let Some(l) = self.record.log.as_deref_mut() {
            l.ready = true;
        }
        let _active = RqActive::start(
            &hcm.stats,
            self.worker.index,
            self.cx.proto.get() != Proto::Bridged,
        );
        self.protocol_error_reply(hcm, e, minor, started).await
    }

    /// The reply to a request meshcore cannot read on (a bad head, or a bad chunked body
    /// mid-request): counts the codec error (except a missing host, which Envoy rejects after
    /// the codec), answers, and closes with a delay.
    async fn protocol_error_reply(
        &mut self,
        hcm: &Hcm,
        e: HeadError,
        minor: u8,
        started: Instant,
    ) -> Flow {
        let w = self.worker.index;
        if e.is_codec_error() {
            if let Some(log) = &self.cx.log {
                log.protocol_error();
            }
            hcm.stats.inc(w, http::Counter::DownstreamCxProtocolError);
            hcm.stats.inc(w, http::Counter::DownstreamRqRxReset);
        }
        let (status, body) = self.record.error(ErrorKind::DownstreamProtocol(e));
        let n = self
            .closing_reply(hcm, status, body.as_bytes(), minor)
            .await;
        self.end_local_reply(hcm, status, n, started);
        Flow::Close
    }

    /// Writes a local reply with `Connection: close` and a delayed close to follow (the
    /// client may still be sending); returns the bytes written.
    pub(super) async fn closing_reply(
        &mut self,
        hcm: &Hcm,
        status: u16,
        body: &[u8],
        minor: u8,
    ) -> usize {
        let mut head = self.worker.buffers.get();
        local_reply::push_head(
            &mut head,
            &ReplyHead {
                status,
                body_len: body.len(),
                location: None,
                server: &hcm.server_name,
                minor,
                close: true,
                keep_alive_10: false,
                // Marked on bridged HTTP/2 streams: a gRPC request gets it in gRPC form.
                extra: if self.cx.proto.get() == Proto::Bridged {
                    crate::http2::LOCAL_REPLY_LINE
                } else {
                    b""
                },
            },
        );
        self.record.local_sent(&head, body.len());
        let (n, _) = io::write_reply(&mut self.down.stream, &head, body).await;
        self.worker.buffers.put(head);
        self.linger = true;
        n
    }

    /// `request_headers_timeout` fired before the head was complete: 408
    /// `request header timeout` (as Envoy 1.40), then close.
    async fn header_timeout_reply(&mut self, hcm: &Hcm) -> Flow {
        let w = self.worker.index;
        hcm.stats.inc(w, http::Counter::DownstreamRqHeaderTimeout);
        self.record.status = 408;
        let n = self
            .closing_reply(hcm, 408, b"request header timeout", 1)
            .await;
        self.cx.tx(n);
        hcm.stats
            .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        Flow::Close
    }

    /// Counts a local reply that was written (`n` bytes).
    fn end_local_reply(&self, hcm: &Hcm, status: u16, n: usize, started: Instant) {
        let w = self.worker.index;
        self.cx.tx(n);
        hcm.stats
            .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        hcm.stats.inc(w, crate::stats::sets::http_class(status));
        hcm.stats.inc(w, http::Counter::DownstreamRqCompleted);
        hcm.stats.record_us(
            w,
            http::Histogram::DownstreamRqTime,
            started.elapsed().as_micros() as u64,
        );
    }

    /// The local reply for a data path error (NR, UH, UF, UT, UC, UPE). `mutations` are the
    /// selected route's (Envoy adds its response headers to replies made after routing).
    async fn error_reply(
        &mut self,
        hcm: &Hcm,
        info: &ReqInfo,
        kind: ErrorKind,
        started: Instant,
        mutations: Option<(Selection<'_>, usize)>,
        body: ReqBody,
    ) -> Flow {
        let (status, text) = self.record.error(kind);
        let reply = LocalBody {
            status,
            body: text.as_bytes(),
            location: None,
        };
        self.local_reply(hcm, info, reply, mutations, started, body)
            .await
    }

    /// Writes a local reply; keeps the connection only if the request body is done with (or
    /// fully buffered, then skipped) and the client and drain state allow it.
    async fn local_reply(
        &mut self,
        hcm: &Hcm,
        info: &ReqInfo,
        reply: LocalBody<'_>,
        mutations: Option<(Selection<'_>, usize)>,
        started: Instant,
        req_body: ReqBody,
    ) -> Flow {
        let w = self.worker.index;
        self.record.status = reply.status;
        let body_pending = match req_body {
            ReqBody::Buffered => !self.skip_buffered_body(info.framing),
            ReqBody::Consumed => false,
            ReqBody::Unfinished => true,
        };
        let close = body_pending || !info.keep_alive || self.closing() || self.past_limits(hcm);
        if close && self.closing() {
            hcm.stats.inc(w, http::Counter::DownstreamCxDrainClose);
        }
        let mut extra = std::mem::take(&mut self.reply_extra);
        if let Some((sel, choice)) = mutations
            && sel.has_response_mutations(choice)
        {
            let mut list: HeaderList<'_> = Vec::new();
            sel.mutate_response_headers(choice, &mut list);
            for (k, v) in &list {
                crate::http1::write::push_header(&mut extra, k.as_bytes(), v);
            }
        }
        if self.cx.proto.get() == Proto::Bridged {
            // A gRPC request over HTTP/2 gets the reply in gRPC form (`http2/grpc_reply.rs`).
            extra.extend_from_slice(crate::http2::LOCAL_REPLY_LINE);
        }
        let mut head = self.worker.buffers.get();
        local_reply::push_head(
            &mut head,
            &ReplyHead {
                status: reply.status,
                body_len: reply.body.len(),
                location: reply.location,
                server: &hcm.server_name,
                minor: info.minor,
                close,
                keep_alive_10: info.minor == 0 && !close,
                extra: &extra,
            },
        );
        let body = if info.is_head { &b""[..] } else { reply.body };
        self.record.local_sent(&head, body.len());
        let (n, ok) = io::write_reply(&mut self.down.stream, &head, body).await;
        self.worker.buffers.put(head);
        self.end_local_reply(hcm, reply.status, n, started);
        if body_pending {
            // The client may still be sending the body: do not reset it under the reply.
            self.linger = true;
        }
        if ok && !close {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    /// Drops a request body that is already fully buffered; false if it is not.
    fn skip_buffered_body(&mut self, framing: Framing) -> bool {
        match framing {
            Framing::None | Framing::UntilClose => true,
            Framing::Length(n) => {
                let avail = self.down.buffered().len() as u64;
                if avail >= n {
                    self.down.consume(n as usize);
                    true
                } else {
                    false
                }
            }
            Framing::Chunked => {
                let mut d = ChunkedDecoder::new();
                match d.validate(self.down.buffered()) {
                    Ok((n, true)) => {
                        self.down.consume(n);
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// Envoy's delayed close: after a reply sent while the client may still be writing, shut
    /// down the write side (the client sees the reply, then EOF) and read and discard what
    /// arrives until the client closes or `DELAYED_CLOSE` passes, so the close does not send
    /// a TCP reset that could destroy the reply in the client's receive buffer. Only this
    /// connection's task waits; the worker runs on.
    async fn delayed_close(&mut self) {
        let stats = self.cx.http.clone();
        let w = self.worker.index;
        let _ = self.down.stream.shutdown().await;
        let unread = self.down.buffered().len();
        self.down.consume(unread);
        let deadline = Instant::now() + DELAYED_CLOSE;
        let mut scratch = self.worker.buffers.get();
        loop {
            scratch.clear();
            let read = self.down.stream.read_buf(&mut scratch);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    self.cx.rx(n);
                    stats.add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64)
                }
                Err(_) => {
                    stats.inc(w, http::Counter::DownstreamCxDelayedCloseTimeout);
                    break;
                }
            }
        }
        self.worker.buffers.put(scratch);
    }
}

/// A local reply's status, body and redirect location.
struct LocalBody<'a> {
    status: u16,
    body: &'a [u8],
    location: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::head_complete;

    #[test]
    fn head_end_detection() {
        assert!(head_complete(b"GET / HTTP/1.1\r\n\r\n", 0));
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", 0));
        assert!(head_complete(b"GET / HTTP/1.1\n\n", 0));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0));
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut seen = 0;
        for i in 1..full.len() {
            assert!(!head_complete(&full[..i], seen), "prefix {i}");
            seen = i;
        }
        assert!(head_complete(full, seen));
    }
}
#[cfg(test)]
mod idle_size_tests {
    fn future_size<A, B, C, D, E, G, Fut>(_: fn(A, B, C, D, E, G) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// An idle keep-alive connection holds the `serve` future; the request's own state is
    /// boxed only while a request is in flight. Issue 3's goal is under 1 KB of proxy memory
    /// per idle connection, so the future must stay well below that (552 bytes
    /// when this test was written; 2,784 before the request state was boxed).
    #[test]
    fn idle_connection_future_is_small() {
        let size = future_size(super::serve as fn(_, _, _, _, _, _) -> _);
        // 552 bytes when this test was written; filter chains (the compiled listener and the
        // match inputs, kept to re-choose the chain after an update) and the connection's
        // `ConnInfo` took it to ~610, the periodic access log's state (`Conn::periodic`) and
        // this session's other changes to 648. The idle benchmark (`python -m benchmarks`,
        // idle_5k) measures what a connection really costs.
        assert!(size <= 656, "serve future is {size} bytes");
    }
}
