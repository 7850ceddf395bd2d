//! Forwarding one request: pick a host, take a pooled connection or connect, send the head
//! and body, wait for the response head (route timeout, downstream disconnect), stream the
//! response body back, and return the connection to the pool when it is clean.
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::AsyncReadExt;
use tokio::time::{Instant, Sleep};

use super::io::{write_all_vectored, write_or_early_response};
use super::prepare::{ForwardPlan, ReqInfo};
use super::response::{self, DownMode, MAX_RESPONSE_HEAD, Parsed, RespCtx, RespInfo};
use super::{Conn, Flow};
use crate::cluster::{ClusterState, HostCounters};
use crate::compiled::{Hcm, ListenerView};
use crate::error::ErrorKind;
use crate::http1::{ChunkedDecoder, Framing, HeadError};
use crate::pool::{ConnectError, UpConn, connect};
use crate::stats::sets::{cluster, cluster_class, http, http_class};

/// `upstream_rq_active` and the host's `rq_active` for the lifetime of one upstream request.
struct UpstreamRq<'a> {
    cluster: &'a ClusterState,
    host: &'a HostCounters,
    w: usize,
}

impl<'a> UpstreamRq<'a> {
    fn start(cluster: &'a ClusterState, host: &'a HostCounters, w: usize) -> Self {
        cluster.stats.inc(w, cluster::Counter::UpstreamRqTotal);
        cluster.stats.gauge_inc(w, cluster::Gauge::UpstreamRqActive);
        host.rq_total.fetch_add(1, Ordering::Relaxed);
        host.rq_active.fetch_add(1, Ordering::Relaxed);
        UpstreamRq { cluster, host, w }
    }
}

impl Drop for UpstreamRq<'_> {
    fn drop(&mut self) {
        self.cluster
            .stats
            .gauge_dec(self.w, cluster::Gauge::UpstreamRqActive);
        self.host.rq_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why waiting for the response head ended without one.
enum HeadWait {
    /// The upstream closed before sending any byte (a stale pooled connection may be retried).
    ClosedEmpty,
    Error(ErrorKind),
    DownstreamGone,
}

/// Why streaming a body stopped before its end.
enum BodyStop {
    Downstream,
    Upstream,
    Timeout,
    Malformed,
}

/// Reads into `buf` with the route deadline.
async fn read_up(
    up: &mut UpConn,
    buf: &mut Vec<u8>,
    sleep: &mut std::pin::Pin<&mut Sleep>,
    timed: bool,
) -> Result<usize, BodyStop> {
    if buf.len() == buf.capacity() {
        buf.reserve(crate::pool::BUF_SIZE);
    }
    tokio::select! {
        r = up.stream.read_buf(buf) => match r {
            Ok(n) => Ok(n),
            Err(_) => Err(BodyStop::Upstream),
        },
        _ = sleep.as_mut(), if timed => Err(BodyStop::Timeout),
    }
}

impl Conn {
    pub(super) async fn forward(
        &mut self,
        view: &ListenerView,
        plan: &ForwardPlan<'_>,
        info: &ReqInfo,
        req_out: &[u8],
        started: Instant,
    ) -> Flow {
        let w = self.worker.index;
        let hcm = &view.hcm;
        let Some(cluster) = view.clusters.get(plan.cluster) else {
            hcm.stats.inc(w, http::Counter::NoCluster);
            return self
                .error_reply(hcm, info, ErrorKind::NoHealthyUpstream, started)
                .await;
        };
        let picked = {
            let set = cluster.hosts.load();
            if set.balancer.in_panic() {
                cluster.stats.inc(w, cluster::Counter::LbHealthyPanic);
            }
            let rq_active = |i: usize| {
                set.hosts
                    .get(i)
                    .map_or(0, |h| h.counters.rq_active.load(Ordering::Relaxed))
            };
            set.balancer
                .pick(fastrand::u64(..), &rq_active)
                .and_then(|i| set.hosts.get(i))
                .map(|h| (h.counters.clone(), h.addr))
        };
        let Some((host, addr)) = picked else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            return self
                .error_reply(hcm, info, ErrorKind::NoHealthyUpstream, started)
                .await;
        };
        let _rq = UpstreamRq::start(cluster, &host, w);

        if info.expect_continue
            && write_all_vectored(&mut self.down.stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"])
                .await
                .is_err()
        {
            return self.downstream_gone(hcm);
        }

        // Body bytes already buffered behind the head.
        let mut decoder = ChunkedDecoder::new();
        let (prefix_len, body_done) = match info.framing {
            Framing::Length(n) => {
                let avail = self.down.buffered().len() as u64;
                (avail.min(n) as usize, avail >= n)
            }
            Framing::Chunked => match decoder.validate(self.down.buffered()) {
                Ok(v) => v,
                Err(_) => {
                    return self
                        .reject(hcm, HeadError::Malformed("invalid chunked body"))
                        .await;
                }
            },
            Framing::None | Framing::UntilClose => (0, true),
        };
        let mut remaining = match info.framing {
            Framing::Length(n) => n - prefix_len as u64,
            _ => 0,
        };

        let mut ubuf = self.worker.buffers.get();
        let mut resp_out = self.worker.buffers.get();
        let mut retried = false;
        let result = loop {
            let mut up = match self.worker.pool.take(host.id) {
                Some(c) => c,
                None => {
                    cluster
                        .stats
                        .inc(w, cluster::Counter::UpstreamRqPendingTotal);
                    match connect(w, cluster, &host, addr).await {
                        Ok(c) => c,
                        Err(e) => {
                            break Err(match e {
                                ConnectError::Failure => ErrorKind::ConnectFailure,
                                ConnectError::Timeout => ErrorKind::ConnectTimeout,
                            });
                        }
                    }
                }
            };
            let prefix = &self.down.buffered()[..prefix_len];
            if write_all_vectored(&mut up.stream, &[req_out, prefix])
                .await
                .is_err()
            {
                up.remote_closed = true;
                if up.reused && !retried && body_done {
                    retried = true;
                    continue;
                }
                cluster.stats.inc(w, cluster::Counter::UpstreamRqTxReset);
                break Err(ErrorKind::UpstreamReset);
            }
            cluster.stats.add(
                w,
                cluster::Counter::UpstreamCxTxBytesTotal,
                (req_out.len() + prefix_len) as u64,
            );

            let mut early = false;
            if !body_done {
                self.down.consume(prefix_len);
                match self
                    .stream_request_body(
                        &mut up,
                        info.framing,
                        &mut remaining,
                        &mut decoder,
                        hcm,
                        cluster,
                    )
                    .await
                {
                    Ok(e) => early = e,
                    Err(BodyStop::Downstream) => {
                        self.put_bufs(ubuf, resp_out);
                        return self.downstream_gone(hcm);
                    }
                    Err(BodyStop::Malformed) => {
                        self.put_bufs(ubuf, resp_out);
                        return self
                            .reject(hcm, HeadError::Malformed("invalid chunked body"))
                            .await;
                    }
                    Err(BodyStop::Upstream | BodyStop::Timeout) => {
                        up.remote_closed = true;
                        break Err(ErrorKind::UpstreamReset);
                    }
                }
            }

            let sent_at = Instant::now();
            let client_keep_alive = info.keep_alive && !early && !self.closing();
            match self
                .read_response_head(
                    &mut up,
                    &mut ubuf,
                    &mut resp_out,
                    plan,
                    info,
                    hcm,
                    sent_at,
                    client_keep_alive,
                )
                .await
            {
                Ok(r) => break Ok((up, r, early, sent_at)),
                Err(HeadWait::ClosedEmpty) if up.reused && !retried && body_done => {
                    up.remote_closed = true;
                    retried = true;
                    ubuf.clear();
                    continue;
                }
                Err(HeadWait::ClosedEmpty) => {
                    up.remote_closed = true;
                    cluster.stats.inc(w, cluster::Counter::UpstreamRqRxReset);
                    break Err(ErrorKind::UpstreamReset);
                }
                Err(HeadWait::Error(kind)) => {
                    match kind {
                        ErrorKind::UpstreamTimeout => {
                            cluster.stats.inc(w, cluster::Counter::UpstreamRqTimeout)
                        }
                        ErrorKind::UpstreamProtocol => cluster
                            .stats
                            .inc(w, cluster::Counter::UpstreamCxProtocolError),
                        _ => {
                            up.remote_closed = true;
                            cluster.stats.inc(w, cluster::Counter::UpstreamRqRxReset);
                        }
                    }
                    break Err(kind);
                }
                Err(HeadWait::DownstreamGone) => {
                    self.put_bufs(ubuf, resp_out);
                    return self.downstream_gone(hcm);
                }
            }
        };
        if body_done {
            self.down.consume(prefix_len);
        }

        let (mut up, resp, early, sent_at) = match result {
            Ok(v) => v,
            Err(kind) => {
                self.put_bufs(ubuf, resp_out);
                host.rq_error.fetch_add(1, Ordering::Relaxed);
                if let Some((status, _, _)) = crate::local_reply::for_error(kind) {
                    cluster.stats.inc(w, cluster_class(status));
                    cluster.stats.status_code(w, status);
                }
                let flow = self.error_reply(hcm, info, kind, started).await;
                // A request body that was not fully read leaves the connection unusable.
                return if self.down_body_unread(info, body_done) {
                    Flow::Close
                } else {
                    flow
                };
            }
        };

        hcm.stats.inc(w, http_class(resp.code));
        let streamed = self
            .stream_response(&mut up, &mut ubuf, &resp_out, &resp, plan, sent_at)
            .await;
        let s = &cluster.stats;
        s.inc(w, cluster_class(resp.code));
        s.status_code(w, resp.code);
        if resp.code >= 500 {
            host.rq_error.fetch_add(1, Ordering::Relaxed);
        }
        let flow = match streamed {
            Ok(up_clean) => {
                s.inc(w, cluster::Counter::UpstreamRqCompleted);
                s.record_us(
                    w,
                    cluster::Histogram::UpstreamRqTime,
                    sent_at.elapsed().as_micros() as u64,
                );
                hcm.stats.inc(w, http::Counter::DownstreamRqCompleted);
                hcm.stats.record_us(
                    w,
                    http::Histogram::DownstreamRqTime,
                    started.elapsed().as_micros() as u64,
                );
                if up_clean && resp.up_keep_alive && !early {
                    self.worker.pool.put(up);
                }
                if resp.close_down {
                    if self.closing() {
                        hcm.stats.inc(w, http::Counter::DownstreamCxDrainClose);
                    }
                    Flow::Close
                } else {
                    Flow::Continue
                }
            }
            Err(BodyStop::Downstream) => {
                drop(up);
                self.put_bufs(ubuf, resp_out);
                return self.downstream_gone(hcm);
            }
            Err(stop) => {
                match stop {
                    BodyStop::Timeout => s.inc(w, cluster::Counter::UpstreamRqTimeout),
                    BodyStop::Malformed => s.inc(w, cluster::Counter::UpstreamCxProtocolError),
                    _ => {
                        up.remote_closed = true;
                        s.inc(w, cluster::Counter::UpstreamRqRxReset);
                    }
                }
                hcm.stats.inc(w, http::Counter::DownstreamRqTxReset);
                Flow::Close
            }
        };
        self.put_bufs(ubuf, resp_out);
        flow
    }

    fn put_bufs(&self, a: Vec<u8>, b: Vec<u8>) {
        self.worker.buffers.put(a);
        self.worker.buffers.put(b);
    }

    fn down_body_unread(&self, info: &ReqInfo, body_done: bool) -> bool {
        info.framing.has_body() && !body_done
    }

    /// The client went away with a request in flight (DC).
    fn downstream_gone(&mut self, hcm: &Hcm) -> Flow {
        let w = self.worker.index;
        self.cx.remote.set(true);
        hcm.stats
            .inc(w, http::Counter::DownstreamCxDestroyRemoteActiveRq);
        hcm.stats.inc(w, http::Counter::DownstreamRqRxReset);
        Flow::Close
    }

    /// Streams the rest of the request body; `Ok(true)` when the upstream started answering
    /// before the body was complete.
    async fn stream_request_body(
        &mut self,
        up: &mut UpConn,
        framing: Framing,
        remaining: &mut u64,
        decoder: &mut ChunkedDecoder,
        hcm: &Hcm,
        cluster: &Arc<ClusterState>,
    ) -> Result<bool, BodyStop> {
        let w = self.worker.index;
        loop {
            if !self.down.is_empty() {
                let buffered = self.down.buffered();
                let (n, done) = match framing {
                    Framing::Length(_) => {
                        let n = (*remaining).min(buffered.len() as u64) as usize;
                        *remaining -= n as u64;
                        (n, *remaining == 0)
                    }
                    Framing::Chunked => decoder
                        .validate(buffered)
                        .map_err(|_| BodyStop::Malformed)?,
                    _ => (0, true),
                };
                let early = write_or_early_response(&up.stream, &buffered[..n])
                    .await
                    .map_err(|_| BodyStop::Upstream)?;
                cluster
                    .stats
                    .add(w, cluster::Counter::UpstreamCxTxBytesTotal, n as u64);
                self.down.consume(n);
                if early {
                    return Ok(true);
                }
                if done {
                    return Ok(false);
                }
            }
            let read = self
                .down
                .read_more(&self.worker.buffers, crate::pool::BUF_SIZE);
            // A client stalling mid-body is cut off after the connection idle timeout.
            let idle = hcm.idle_timeout.unwrap_or(std::time::Duration::MAX);
            let r = tokio::select! {
                r = tokio::time::timeout(idle, read) => r.map_err(|_| BodyStop::Downstream)?,
                r = up.stream.readable() => {
                    return r.map(|_| true).map_err(|_| BodyStop::Upstream);
                }
            };
            match r {
                Ok(0) | Err(_) => return Err(BodyStop::Downstream),
                Ok(n) => hcm
                    .stats
                    .add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64),
            }
        }
    }

    /// Waits for the final response head (dropping 1xx), watching the route deadline and
    /// the client; builds the downstream head into `out`.
    #[allow(clippy::too_many_arguments)]
    async fn read_response_head(
        &mut self,
        up: &mut UpConn,
        ubuf: &mut Vec<u8>,
        out: &mut Vec<u8>,
        plan: &ForwardPlan<'_>,
        info: &ReqInfo,
        hcm: &Hcm,
        sent_at: Instant,
        client_keep_alive: bool,
    ) -> Result<RespInfo, HeadWait> {
        let timed = plan.timeout.is_some();
        let mut sleep = pin!(tokio::time::sleep_until(
            sent_at + plan.timeout.unwrap_or_default()
        ));
        let mut watch_down = self.down.has_spare();
        let w = self.worker.index;
        loop {
            if !ubuf.is_empty() {
                let ctx = RespCtx {
                    server: &hcm.server_name,
                    transformation: hcm.cfg.server_header_transformation,
                    is_head: info.is_head,
                    client_minor: info.minor,
                    client_keep_alive,
                    service_time_ms: sent_at.elapsed().as_millis() as u64,
                    sel: &plan.sel,
                    choice: plan.choice,
                };
                match response::build(ubuf, out, &ctx) {
                    Ok(Some(Parsed::Final(r))) => return Ok(r),
                    Ok(Some(Parsed::Informational(n))) => {
                        ubuf.drain(..n);
                        continue;
                    }
                    Ok(None) => {}
                    Err(_) => return Err(HeadWait::Error(ErrorKind::UpstreamProtocol)),
                }
                if ubuf.len() > MAX_RESPONSE_HEAD {
                    return Err(HeadWait::Error(ErrorKind::UpstreamProtocol));
                }
            }
            if ubuf.len() == ubuf.capacity() {
                ubuf.reserve(ubuf.capacity().max(crate::pool::BUF_SIZE));
            }
            tokio::select! {
                biased;
                r = up.stream.read_buf(ubuf) => match r {
                    Ok(0) | Err(_) if ubuf.is_empty() => return Err(HeadWait::ClosedEmpty),
                    Ok(0) | Err(_) => return Err(HeadWait::Error(ErrorKind::UpstreamReset)),
                    Ok(n) => up.cluster.stats.add(w, cluster::Counter::UpstreamCxRxBytesTotal, n as u64),
                },
                r = self.down.stream.readable(), if watch_down => {
                    if r.is_err() {
                        return Err(HeadWait::DownstreamGone);
                    }
                    match self.down.try_read_spare() {
                        Ok(Some(0)) | Err(_) => return Err(HeadWait::DownstreamGone),
                        Ok(_) => watch_down = self.down.has_spare(),
                    }
                }
                _ = sleep.as_mut(), if timed => return Err(HeadWait::Error(ErrorKind::UpstreamTimeout)),
            }
        }
    }

    /// Writes the response head and streams the body; `Ok(clean)` where `clean` says the
    /// upstream connection ended exactly at the end of the response.
    async fn stream_response(
        &mut self,
        up: &mut UpConn,
        ubuf: &mut Vec<u8>,
        head: &[u8],
        resp: &RespInfo,
        plan: &ForwardPlan<'_>,
        sent_at: Instant,
    ) -> Result<bool, BodyStop> {
        let w = self.worker.index;
        let timed = plan.timeout.is_some();
        let mut sleep = pin!(tokio::time::sleep_until(
            sent_at + plan.timeout.unwrap_or_default()
        ));
        let stats = self.view.hcm.stats.clone();
        let tx = |n: usize| stats.add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        let body_start = resp.head_len;
        match resp.mode {
            DownMode::None => {
                let n = write_all_vectored(&mut self.down.stream, &[head])
                    .await
                    .map_err(|_| BodyStop::Downstream)?;
                tx(n);
                Ok(ubuf.len() == body_start)
            }
            DownMode::Length(total) => {
                let avail = (ubuf.len() - body_start) as u64;
                let take = avail.min(total) as usize;
                let mut clean = avail <= total;
                let n = write_all_vectored(
                    &mut self.down.stream,
                    &[head, &ubuf[body_start..body_start + take]],
                )
                .await
                .map_err(|_| BodyStop::Downstream)?;
                tx(n);
                let mut left = total - take as u64;
                while left > 0 {
                    ubuf.clear();
                    let n = read_up(up, ubuf, &mut sleep, timed).await?;
                    if n == 0 {
                        return Err(BodyStop::Upstream);
                    }
                    let take = (n as u64).min(left) as usize;
                    clean = n as u64 <= left;
                    left -= take as u64;
                    let n = write_all_vectored(&mut self.down.stream, &[&ubuf[..take]])
                        .await
                        .map_err(|_| BodyStop::Downstream)?;
                    tx(n);
                }
                Ok(clean)
            }
            DownMode::ChunkedPass => {
                let mut dec = ChunkedDecoder::new();
                let (c, mut done) = dec
                    .validate(&ubuf[body_start..])
                    .map_err(|_| BodyStop::Malformed)?;
                let mut clean = body_start + c == ubuf.len();
                let n = write_all_vectored(
                    &mut self.down.stream,
                    &[head, &ubuf[body_start..body_start + c]],
                )
                .await
                .map_err(|_| BodyStop::Downstream)?;
                tx(n);
                while !done {
                    ubuf.clear();
                    if read_up(up, ubuf, &mut sleep, timed).await? == 0 {
                        return Err(BodyStop::Upstream);
                    }
                    let (c, d) = dec.validate(ubuf).map_err(|_| BodyStop::Malformed)?;
                    done = d;
                    clean = c == ubuf.len();
                    let n = write_all_vectored(&mut self.down.stream, &[&ubuf[..c]])
                        .await
                        .map_err(|_| BodyStop::Downstream)?;
                    tx(n);
                }
                Ok(clean)
            }
            DownMode::Dechunk => {
                let mut dec = ChunkedDecoder::new();
                let n = write_all_vectored(&mut self.down.stream, &[head])
                    .await
                    .map_err(|_| BodyStop::Downstream)?;
                tx(n);
                let mut pos = body_start;
                loop {
                    while pos < ubuf.len() && !dec.is_done() {
                        let step = dec.decode(&ubuf[pos..]).map_err(|_| BodyStop::Malformed)?;
                        let data = &ubuf[pos + step.data.start..pos + step.data.end];
                        if !data.is_empty() {
                            let n = write_all_vectored(&mut self.down.stream, &[data])
                                .await
                                .map_err(|_| BodyStop::Downstream)?;
                            tx(n);
                        }
                        pos += step.consumed;
                    }
                    if dec.is_done() {
                        return Ok(false);
                    }
                    ubuf.clear();
                    pos = 0;
                    if read_up(up, ubuf, &mut sleep, timed).await? == 0 {
                        return Err(BodyStop::Upstream);
                    }
                }
            }
            DownMode::Rechunk | DownMode::Raw => {
                let chunked = resp.mode == DownMode::Rechunk;
                let mut first = Some(head);
                let mut start = body_start;
                loop {
                    let data = &ubuf[start..];
                    let mut size = itoa_hex(data.len());
                    let size_line: &[u8] = if chunked && !data.is_empty() {
                        size.line()
                    } else {
                        b""
                    };
                    let crlf: &[u8] = if chunked && !data.is_empty() {
                        b"\r\n"
                    } else {
                        b""
                    };
                    let n = write_all_vectored(
                        &mut self.down.stream,
                        &[first.take().unwrap_or(b""), size_line, data, crlf],
                    )
                    .await
                    .map_err(|_| BodyStop::Downstream)?;
                    tx(n);
                    ubuf.clear();
                    start = 0;
                    let n = read_up(up, ubuf, &mut sleep, timed).await?;
                    if n == 0 {
                        if chunked {
                            let n = write_all_vectored(&mut self.down.stream, &[b"0\r\n\r\n"])
                                .await
                                .map_err(|_| BodyStop::Downstream)?;
                            tx(n);
                        }
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// A chunk-size line (`<hex>\r\n`) on the stack.
struct HexLine {
    buf: [u8; 18],
    start: usize,
}

impl HexLine {
    fn line(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_hex(mut n: usize) -> HexLine {
    let mut buf = [0u8; 18];
    buf[16] = b'\r';
    buf[17] = b'\n';
    let mut i = 16;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    HexLine { buf, start: i }
}
