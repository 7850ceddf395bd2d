//! The upstream HTTP/2 client: per worker, shared `h2` connections per host (multiplexed, at
//! most `max_concurrent_streams` streams each, `max_requests_per_connection` streams in
//! all). The core asks `pool::connect` for a connection as for HTTP/1.1 and gets one end of a
//! pipe pair; a bridge task on the other end reads the core's HTTP/1.1 request, sends it as
//! one stream and writes the response back as HTTP/1.1 (chunked, with trailers). A pair
//! carries one request. Each connection runs through the flood guard (`flood.rs`, client
//! side): a flooding upstream's connection closes and its streams fail as protocol errors
//! (502 `UPE`), counted under `cluster.<name>.http2.*`.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::body::{self, BodyError};
use super::flood::{self, FloodGuard, Side};
use super::handoff;
use super::headers::{self, Framing};
use crate::cluster::{ClusterState, HostCounters};
use crate::config::snapshot::Http2Options;
use crate::mem_pipe::{self, MemEnd};
use crate::pool::{ConnectError, open_counted, uncount};
use crate::stats::sets::cluster::Counter;
use crate::stream::Stream;

/// Most bytes of request head read from the core.
const MAX_REQUEST_HEAD: usize = 256 * 1024;

/// What the connection task and the streams share.
struct Shared {
    /// Streams in flight.
    active: Cell<u32>,
    /// When the last stream ended (idle timeout).
    last_used: Cell<Instant>,
    /// The connection task ended: no new streams.
    closed: Cell<bool>,
}

/// One HTTP/2 connection to a host, as the registry and its streams hold it. When the
/// registry lets go of it and its streams end, the `SendRequest` handles are gone and the
/// connection closes.
struct H2Conn {
    send: SendRequest<Bytes>,
    shared: Rc<Shared>,
    /// Streams finished (the flood allowances) and whether the connection flooded.
    flood: Rc<flood::Shared>,
    /// Where a stream failed by a flood counts its reset (`upstream_rq_tx_reset`), and the
    /// worker.
    cluster: Arc<ClusterState>,
    worker: usize,
    /// Streams started on it (`max_requests_per_connection`).
    started: Cell<u32>,
    created: Instant,
}

thread_local! {
    /// This worker's HTTP/2 connections, by host id.
    static CONNS: RefCell<HashMap<u64, Vec<Rc<H2Conn>>>> = RefCell::new(HashMap::new());
    /// This worker's HTTP/2 connections being opened, by host id.
    static CONNECTING: RefCell<HashMap<u64, Rc<Connecting>>> = RefCell::new(HashMap::new());
}

/// A connection to a host being opened: the streams that arrive meanwhile wait for it instead
/// of opening their own, as Envoy's pool attaches pending streams to a connecting client
/// (a burst of N first requests opens one connection, not N).
#[derive(Default)]
struct Connecting {
    /// Streams waiting for it.
    waiting: Cell<u32>,
    /// How opening it failed (the waiters fail the same way, as Envoy's pending streams).
    failed: Cell<Option<ConnectError>>,
    done: tokio::sync::Notify,
}

/// Registered while this worker opens a connection to a host; wakes the waiters when the
/// connection is up, failed or abandoned.
struct OpeningGuard(u64, Rc<Connecting>);

impl Drop for OpeningGuard {
    fn drop(&mut self) {
        CONNECTING.with(|m| {
            let mut m = m.borrow_mut();
            if m.get(&self.0).is_some_and(|c| Rc::ptr_eq(c, &self.1)) {
                m.remove(&self.0);
            }
        });
        self.1.done.notify_waiters();
    }
}

/// Drops every connection from this worker's registry (drain): each closes once its streams
/// are done.
pub fn clear() {
    CONNS.with(|c| c.borrow_mut().clear());
}

/// A stream to `host` over HTTP/2: the core's end of a pipe pair whose other end is bridged
/// to a stream on a shared connection (opened now if none has room and none being opened
/// has room left for this stream).
pub async fn stream(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: SocketAddr,
    opts: &Http2Options,
) -> Result<Stream, ConnectError> {
    loop {
        if let Some(s) = reuse(w, cluster, host, opts) {
            return Ok(s);
        }
        let Some(pending) = CONNECTING.with(|m| m.borrow().get(&host.id).cloned()) else {
            break;
        };
        // The opener's stream and the waiters share its first `max_concurrent_streams`.
        if pending.waiting.get().saturating_add(1) >= opts.max_concurrent_streams.max(1) {
            break;
        }
        pending.waiting.set(pending.waiting.get() + 1);
        pending.done.notified().await;
        pending.waiting.set(pending.waiting.get() - 1);
        if let Some(e) = pending.failed.get() {
            return Err(e);
        }
        // Up (or abandoned): take a stream on it, or open one if it has no room.
    }
    let opening = Rc::new(Connecting::default());
    let _guard = CONNECTING.with(|m| {
        let mut m = m.borrow_mut();
        // Beyond a connecting one's room this stream opens another, which waiters don't see.
        if m.contains_key(&host.id) {
            return None;
        }
        m.insert(host.id, opening.clone());
        Some(OpeningGuard(host.id, opening.clone()))
    });
    cluster.stats.inc(w, Counter::UpstreamCxHttp2Total);
    let opened = async {
        let tcp = open_counted(w, cluster, host, addr).await?;
        adopt(w, cluster, host, tcp, opts).await
    }
    .await;
    if let Err(e) = &opened {
        opening.failed.set(Some(*e));
    }
    opened
}

/// A stream on an existing connection to `host` with room for it, if there is one.
pub fn reuse(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    opts: &Http2Options,
) -> Option<Stream> {
    let conn = pick(w, cluster, host, opts)?;
    Some(start(w, cluster, host, conn))
}

/// A stream on a new HTTP/2 connection over `tcp`, a connection `open_counted` opened (and
/// the caller counted in `upstream_cx_http2_total`); it joins the host's connections.
pub async fn adopt(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    tcp: Stream,
    opts: &Http2Options,
) -> Result<Stream, ConnectError> {
    let conn = handshake(w, cluster, host, tcp, opts).await?;
    CONNS.with(|m| {
        m.borrow_mut()
            .entry(host.id)
            .or_default()
            .push(conn.clone())
    });
    Ok(start(w, cluster, host, conn))
}

/// Starts one stream on `conn`: the core's end of a pipe pair bridged to it.
fn start(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    conn: Rc<H2Conn>,
) -> Stream {
    conn.started.set(conn.started.get() + 1);
    let max_requests = cluster.cfg.max_requests_per_connection;
    if max_requests > 0 && conn.started.get() >= max_requests {
        // Spent: no further streams; it closes after its last one.
        cluster.stats.inc(w, Counter::UpstreamCxMaxRequests);
        forget(host.id, &conn);
    }
    let (ours, core) = mem_pipe::pair();
    conn.shared.active.set(conn.shared.active.get() + 1);
    // Boxed: the bridge's future is ~2 KB, and a task copies its future's whole slot when
    // it finishes (and when its output is taken).
    tokio::task::spawn_local(Box::pin(bridge(ours, conn)));
    Stream::Mem(core)
}

fn forget(host_id: u64, conn: &Rc<H2Conn>) {
    CONNS.with(|m| {
        if let Some(list) = m.borrow_mut().get_mut(&host_id) {
            list.retain(|c| !Rc::ptr_eq(c, conn));
        }
    });
}

/// A live connection to `host` with room for one more stream; spent, aged and closed ones
/// are dropped from the registry on the way.
fn pick(
    w: usize,
    cluster: &ClusterState,
    host: &HostCounters,
    opts: &Http2Options,
) -> Option<Rc<H2Conn>> {
    let max_age = cluster.cfg.max_connection_duration_ms;
    let now = Instant::now();
    let gone = cluster.removed.load(Ordering::Relaxed) || host.removed.load(Ordering::Relaxed);
    CONNS.with(|m| {
        let mut m = m.borrow_mut();
        let list = m.get_mut(&host.id)?;
        list.retain(|c| {
            if c.shared.closed.get() || gone {
                return false;
            }
            if max_age > 0 && (now - c.created).as_millis() as u64 >= max_age {
                cluster.stats.inc(w, Counter::UpstreamCxMaxDurationReached);
                return false;
            }
            true
        });
        list.iter()
            .find(|c| {
                let cap = (opts.max_concurrent_streams as usize)
                    .min(c.send.current_max_send_streams())
                    .max(1);
                (c.shared.active.get() as usize) < cap
            })
            .cloned()
    })
}

/// Handshakes HTTP/2 on a connection `open_counted` opened; its task counts it until it
/// closes.
async fn handshake(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    tcp: Stream,
    opts: &Http2Options,
) -> Result<Rc<H2Conn>, ConnectError> {
    let mut builder = h2::client::Builder::new();
    builder
        .enable_push(false)
        .initial_window_size(opts.initial_stream_window_size)
        .initial_connection_window_size(opts.initial_connection_window_size)
        .max_send_buffer_size(body::READ_CHUNK);
    // Envoy's flood limits on the upstream connection (frames counted between the socket
    // and `h2`), below the write coalescing as downstream.
    let flood = Rc::new(flood::Shared::default());
    let limits = flood::Limits::from_options(opts);
    let stats = cluster.h2_codec_stats.clone();
    let io = FloodGuard::new(tcp, limits, Side::Client, flood.clone(), stats, w);
    let (send, conn) = match builder
        .handshake::<_, Bytes>(super::coalesce::Coalesce::new(io))
        .await
    {
        Ok(pair) => pair,
        Err(_) => {
            cluster.stats.inc(w, Counter::UpstreamCxConnectFail);
            uncount(w, cluster, host, true);
            return Err(ConnectError::Failure);
        }
    };
    let shared = Rc::new(Shared {
        active: Cell::new(0),
        last_used: Cell::new(Instant::now()),
        closed: Cell::new(false),
    });
    let h2conn = Rc::new(H2Conn {
        send,
        shared: shared.clone(),
        flood: flood.clone(),
        cluster: cluster.clone(),
        worker: w,
        started: Cell::new(0),
        created: Instant::now(),
    });
    let (cluster, host) = (cluster.clone(), host.clone());
    let idle = cluster.idle_timeout;
    let weak = Rc::downgrade(&h2conn);
    tokio::task::spawn_local(async move {
        let mut conn = conn;
        let remote = loop {
            let wait = idle.map_or(Duration::from_secs(3600), |t| {
                (shared.last_used.get() + t).saturating_duration_since(Instant::now())
            });
            tokio::select! {
                r = &mut conn => {
                    if r.is_err() {
                        cluster.stats.inc(w, Counter::UpstreamCxProtocolError);
                    }
                    // A flood: meshcore closed it (Envoy counts a local close).
                    break !flood.flooded.get();
                }
                _ = tokio::time::sleep(wait) => {
                    let idle_for = Instant::now() - shared.last_used.get();
                    if shared.active.get() == 0 && idle.is_some_and(|t| idle_for >= t) {
                        cluster.stats.inc(w, Counter::UpstreamCxIdleTimeout);
                        break false;
                    }
                }
            }
        };
        shared.closed.set(true);
        if let Some(c) = weak.upgrade() {
            forget(host.id, &c);
        }
        uncount(w, &cluster, &host, remote);
    });
    Ok(h2conn)
}

/// Counts a stream out of its connection when the bridge ends (`sent`: its HEADERS went out,
/// so it counted as opened for the flood allowances and now counts as closed).
struct Active(Rc<H2Conn>, bool);

impl Drop for Active {
    fn drop(&mut self) {
        let s = &self.0.shared;
        s.active.set(s.active.get() - 1);
        s.last_used.set(Instant::now());
        if self.1 {
            let closed = &self.0.flood.closed;
            closed.set(closed.get() + 1);
        }
    }
}

/// What the bridge writes to the core when the connection flooded before the response head:
/// a head cut short, which the core answers as Envoy does a codec protocol error (502 `UPE`,
/// `upstream_reset_before_response_started{protocol_error}`).
const FLOOD_BEFORE_HEAD: &[u8] = b"HTTP/1.1 ";
/// After a chunked response head: a malformed chunk size (the core resets the downstream with
/// `UPE`, as Envoy does).
const FLOOD_IN_BODY: &[u8] = b"x\r\n";

/// Carries one request from the core (HTTP/1.1 on the pair) as a stream on `conn`, and the
/// response back. Closing the pair without a response (the stream was refused or reset
/// first) makes the core answer 503 (UC), as a dead HTTP/1.1 connection would.
async fn bridge(ours: MemEnd, conn: Rc<H2Conn>) {
    let mut conn = Active(conn, false);
    let (mut rd, mut wr) = ours.split();
    let mut buf = BytesMut::with_capacity(4096);
    let (req, framing) = loop {
        match headers::parse_request(&buf) {
            Ok(Some((req, framing, len))) => {
                let _ = buf.split_to(len);
                break (req, framing);
            }
            Ok(None) if buf.len() < MAX_REQUEST_HEAD => {}
            _ => return,
        }
        buf.reserve(4096);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    };
    let mut req = req;
    // A gRPC body parked by the downstream bridge (`handoff.rs`): piped straight through.
    let parked = match req.headers_mut().remove(handoff::BODY_HEADER) {
        Some(token) => {
            let token = token
                .to_str()
                .ok()
                .and_then(|t| u128::from_str_radix(t, 16).ok());
            match token.and_then(|t| handoff::take(t).map(|p| (t, p))) {
                Some(parked) => Some(parked),
                // Too large to keep for a retry, or forged: no body to send.
                None => return,
            }
        }
        None => None,
    };
    let head_request = req.method() == http::Method::HEAD;
    let end = framing == Framing::None && parked.is_none();
    let Ok(mut send) = conn.0.send.clone().ready().await else {
        return;
    };
    let Ok((response, mut body_out)) = send.send_request(req, end) else {
        return;
    };
    conn.1 = true;
    drop(send);
    // The framing of the response head written to the core, once it is.
    let written = Cell::new(None);
    let upload = async {
        if let Some((token, parked)) = parked {
            match parked {
                handoff::Parked::Live(recv, grpc) => {
                    body::h2_to_h2(recv, &mut body_out, token, &grpc).await?
                }
                handoff::Parked::Replay(chunks, trailers) => {
                    body::replay(chunks, trailers, &mut body_out, token).await?
                }
            }
        } else if !end {
            body::h1_to_h2(&mut rd, buf, framing, &mut body_out).await?;
        }
        Ok::<(), BodyError>(())
    };
    let download = async {
        let resp = response.await?;
        let (parts, body) = resp.into_parts();
        let mut head = Vec::with_capacity(512);
        let framing = headers::response_head(&parts, body.is_end_stream(), head_request, &mut head)
            .map_err(|_| BodyError::Framing)?;
        wr.write_all(&head).await?;
        written.set(Some(framing));
        if framing != Framing::None {
            body::h2_to_h1(body, framing, &mut wr).await?;
        }
        Ok::<(), BodyError>(())
    };
    let failed = {
        tokio::pin!(upload, download);
        let mut uploaded = false;
        loop {
            tokio::select! {
                r = &mut upload, if !uploaded => {
                    uploaded = true;
                    if r.is_err() {
                        break true;
                    }
                }
                r = &mut download => break r.is_err(),
            }
        }
    };
    if failed && conn.0.flood.flooded.get() {
        // Envoy's codec resets the streams of the connection it closes.
        let c = &conn.0;
        c.cluster.stats.inc(c.worker, Counter::UpstreamRqTxReset);
        let signal = match written.get() {
            None => FLOOD_BEFORE_HEAD,
            Some(Framing::Chunked) => FLOOD_IN_BODY,
            // A sized body cut short: the core sees the stream end early.
            Some(_) => return,
        };
        let _ = wr.write_all(signal).await;
    }
}
