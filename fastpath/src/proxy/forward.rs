//! Forwarding one request: pick a host, take a pooled connection or connect, send the head
//! and body, wait for the response head (route timeout, downstream disconnect), have the body
//! streamed back (`response_body`), and return the connection to the pool when it is clean.
use std::pin::pin;
use std::sync::atomic::Ordering;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::io::{write_all_vectored, write_or_early_response};
use super::prepare::{ForwardPlan, ReqInfo};
use super::response::{self, MAX_RESPONSE_HEAD, Parsed, RespCtx, RespInfo};
use super::{Conn, Flow, ReqBody};
use crate::cluster::{ClusterState, HostCounters};
use crate::compiled::{Hcm, ListenerView};
use crate::error::ErrorKind;
use crate::http1::{ChunkedDecoder, Framing, HeadError};
use crate::local_reply::ResponseFlag;
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
    Error(ErrorKind),
    DownstreamGone,
}

/// Why streaming a body stopped before its end.
pub(super) enum BodyStop {
    Downstream,
    /// The client stalled mid-body past the connection idle timeout.
    DownstreamIdle,
    Upstream,
    Timeout,
    Malformed,
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
        let route = Some((plan.sel, plan.choice));
        // Body bytes already buffered behind the head (a malformed one is answered before
        // anything is sent upstream).
        let mut decoder = ChunkedDecoder::new();
        let (prefix_len, body_done) = match info.framing {
            Framing::Length(n) => {
                let avail = self.down.buffered().len() as u64;
                (avail.min(n) as usize, avail >= n)
            }
            Framing::Chunked => match decoder.validate(self.down.buffered()) {
                Ok(v) => v,
                Err(_) => {
                    let e = HeadError::Malformed("invalid chunked body");
                    return self.protocol_error_reply(hcm, e, info.minor, started).await;
                }
            },
            Framing::None | Framing::UntilClose => (0, true),
        };
        let mut remaining = match info.framing {
            Framing::Length(n) => n - prefix_len as u64,
            _ => 0,
        };

        let Some(cluster) = view.clusters.get(plan.cluster) else {
            hcm.stats.inc(w, http::Counter::NoCluster);
            let kind = ErrorKind::NoHealthyUpstream;
            return self
                .error_reply(hcm, info, kind, started, route, ReqBody::Buffered)
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
                .pick_hashed(fastrand::u64(..), plan.hash, &rq_active)
                .and_then(|i| set.hosts.get(i))
                .map(|h| (h.counters.clone(), h.addr))
        };
        let Some((host, addr)) = picked else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            let kind = ErrorKind::NoHealthyUpstream;
            return self
                .error_reply(hcm, info, kind, started, route, ReqBody::Buffered)
                .await;
        };
        let _rq = UpstreamRq::start(cluster, &host, w);

        if info.expect_continue {
            match write_all_vectored(&mut self.down.stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"])
                .await
            {
                Ok(n) => hcm
                    .stats
                    .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64),
                Err(_) => return self.downstream_gone(hcm),
            }
        }

        let mut ubuf = self.worker.buffers.get();
        let mut resp_out = self.worker.buffers.get();
        let mut retried = false;
        let result = loop {
            // A retry (below) always opens a fresh connection.
            let pooled = if retried {
                None
            } else {
                self.worker.pool.take(host.id)
            };
            let mut up = match pooled {
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
            up.in_flight = true;
            let prefix = &self.down.buffered()[..prefix_len];
            match write_all_vectored(&mut up.stream, &[req_out, prefix]).await {
                Ok(n) => up.tx(n),
                Err(fail) => {
                    up.tx(fail.written);
                    up.remote_closed = true;
                    if up.reused && !retried && fail.nothing_accepted() {
                        // The pooled connection was dead before the upstream accepted any
                        // byte of this request, so nothing can have been processed: send it
                        // once more on a fresh connection. Anything else is not retried
                        // (meshcore has no retry policy).
                        up.in_flight = false;
                        retried = true;
                        continue;
                    }
                    cluster.stats.inc(w, cluster::Counter::UpstreamRqTxReset);
                    break Err(ErrorKind::UpstreamReset);
                }
            }

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
                        view.read_cap,
                    )
                    .await
                {
                    Ok(e) => early = e,
                    Err(BodyStop::Downstream) => {
                        self.put_bufs(ubuf, resp_out);
                        return self.downstream_gone(hcm);
                    }
                    Err(BodyStop::DownstreamIdle) => {
                        self.put_bufs(ubuf, resp_out);
                        return self.idle_mid_request(hcm);
                    }
                    Err(BodyStop::Malformed) => {
                        self.put_bufs(ubuf, resp_out);
                        let e = HeadError::Malformed("invalid chunked body");
                        return self.protocol_error_reply(hcm, e, info.minor, started).await;
                    }
                    Err(BodyStop::Upstream | BodyStop::Timeout) => {
                        up.remote_closed = true;
                        cluster.stats.inc(w, cluster::Counter::UpstreamRqTxReset);
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
                Err(HeadWait::Error(kind)) => {
                    match kind {
                        ErrorKind::UpstreamTimeout => {
                            cluster.stats.inc(w, cluster::Counter::UpstreamRqTimeout)
                        }
                        ErrorKind::UpstreamProtocol => cluster
                            .stats
                            .inc(w, cluster::Counter::UpstreamCxProtocolError),
                        _ => cluster.stats.inc(w, cluster::Counter::UpstreamRqRxReset),
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
                if let Some(outcome) = crate::cluster::Outcome::from_error(&kind) {
                    cluster.report_result(&host, outcome);
                }
                let (status, _, _) = crate::local_reply::for_error(kind);
                cluster.stats.inc(w, cluster_class(status));
                cluster.stats.status_code(w, status);
                // A request body that was not fully read leaves the connection unusable.
                let body = if body_done {
                    ReqBody::Consumed
                } else {
                    ReqBody::Unfinished
                };
                return self
                    .error_reply(hcm, info, kind, started, route, body)
                    .await;
            }
        };

        hcm.stats.inc(w, http_class(resp.code));
        self.record.status = resp.code;
        let streamed = self
            .stream_response(
                &mut up,
                &mut ubuf,
                &resp_out,
                &resp,
                hcm,
                plan.timeout.map(|t| sent_at + t),
            )
            .await;
        let s = &cluster.stats;
        s.inc(w, cluster_class(resp.code));
        s.status_code(w, resp.code);
        if resp.code >= 500 {
            host.rq_error.fetch_add(1, Ordering::Relaxed);
        }
        cluster.report_result(&host, crate::cluster::Outcome::Status(resp.code));
        let flow = match streamed {
            Ok(up_clean) => {
                up.in_flight = false;
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
                if early {
                    // The client may still be sending the body the upstream did not wait
                    // for.
                    self.linger = true;
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
                let flag = match stop {
                    BodyStop::Timeout => {
                        s.inc(w, cluster::Counter::UpstreamRqTimeout);
                        ResponseFlag::UpstreamRequestTimeout
                    }
                    BodyStop::Malformed => {
                        s.inc(w, cluster::Counter::UpstreamCxProtocolError);
                        ResponseFlag::UpstreamProtocolError
                    }
                    _ => {
                        up.remote_closed = true;
                        s.inc(w, cluster::Counter::UpstreamRqRxReset);
                        ResponseFlag::UpstreamConnectionTermination
                    }
                };
                self.record.flag(flag);
                hcm.stats.inc(w, http::Counter::DownstreamRqTxReset);
                hcm.stats
                    .inc(w, http::Counter::DownstreamCxDestroyLocalActiveRq);
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

    /// The client went away with a request in flight (DC).
    fn downstream_gone(&mut self, hcm: &Hcm) -> Flow {
        let w = self.worker.index;
        self.cx.remote.set(true);
        self.record
            .flag(ResponseFlag::DownstreamConnectionTermination);
        hcm.stats
            .inc(w, http::Counter::DownstreamCxDestroyRemoteActiveRq);
        hcm.stats.inc(w, http::Counter::DownstreamRqRxReset);
        Flow::Close
    }

    /// The client stalled mid-body past the connection idle timeout: meshcore closes the
    /// connection (an idle timeout, with a request in flight; no reply).
    fn idle_mid_request(&mut self, hcm: &Hcm) -> Flow {
        let w = self.worker.index;
        hcm.stats.inc(w, http::Counter::DownstreamCxIdleTimeout);
        hcm.stats
            .inc(w, http::Counter::DownstreamCxDestroyLocalActiveRq);
        Flow::Close
    }

    /// Streams the rest of the request body, buffering at most `read_cap` bytes of it;
    /// `Ok(true)` when the upstream started answering before the body was complete.
    async fn stream_request_body(
        &mut self,
        up: &mut UpConn,
        framing: Framing,
        remaining: &mut u64,
        decoder: &mut ChunkedDecoder,
        hcm: &Hcm,
        read_cap: usize,
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
                up.tx(n);
                self.down.consume(n);
                if early {
                    return Ok(true);
                }
                if done {
                    return Ok(false);
                }
            }
            let read = self.down.read_more(&self.worker.buffers, read_cap);
            // A client stalling mid-body is cut off after the connection idle timeout.
            let idle = hcm.idle_timeout.unwrap_or(std::time::Duration::MAX);
            let r = tokio::select! {
                r = tokio::time::timeout(idle, read) => r.map_err(|_| BodyStop::DownstreamIdle)?,
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
                    Ok(0) | Err(_) if ubuf.is_empty() => {
                        up.remote_closed = true;
                        return Err(HeadWait::Error(ErrorKind::UpstreamReset));
                    }
                    // EOF inside a head: a truncated message (Envoy: protocol error).
                    Ok(0) => {
                        up.remote_closed = true;
                        return Err(HeadWait::Error(ErrorKind::UpstreamProtocol));
                    }
                    Err(_) => {
                        up.remote_closed = true;
                        return Err(HeadWait::Error(ErrorKind::UpstreamReset));
                    }
                    Ok(n) => up.rx(n),
                },
                r = self.down.stream.readable(), if watch_down => {
                    if r.is_err() {
                        return Err(HeadWait::DownstreamGone);
                    }
                    match self.down.try_read_spare() {
                        Ok(Some(0)) | Err(_) => return Err(HeadWait::DownstreamGone),
                        Ok(Some(n)) => {
                            hcm.stats.add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64);
                            watch_down = self.down.has_spare();
                        }
                        Ok(None) => watch_down = self.down.has_spare(),
                    }
                }
                _ = sleep.as_mut(), if timed => return Err(HeadWait::Error(ErrorKind::UpstreamTimeout)),
            }
        }
    }
}
