//! Forwarding one request: pick a host, take a pooled connection or connect, send the head
//! and body, wait for the response head (route timeout, downstream disconnect), have the body
//! streamed back (`response_body`), and return the connection to the pool when it is clean.
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::connect::{Room, enter_pending, wait_for_room};
use super::io::{write_all_vectored, write_or_early_response};
use super::prepare::{ForwardPlan, ReqInfo, Tunnel};
use super::response::{self, DownMode, MAX_RESPONSE_HEAD, Parsed, RespCtx, RespInfo};
use super::response_body::BodyIdle;
use super::stream_timers::{Expired, StreamTimers};
use super::{Conn, Flow, LocalBody, ReqBody};
use crate::breaker::Resource;
use crate::cluster::{ClusterState, HostCounters};
use crate::compiled::{Hcm, ListenerView};
use crate::error::ErrorKind;
use crate::http1::{ChunkedDecoder, Framing, HeadError};
use crate::local_reply::ResponseFlag;
use crate::pool::{ConnectError, UpConn, connect};
use crate::router::retry::{Outcome, RetryPolicy, on as retry_on};
use crate::stats::sets::{cluster, cluster_class, http, http_class};

/// `upstream_rq_active` and the host's `rq_active` for the lifetime of one upstream request.
pub(super) struct UpstreamRq<'a> {
    cluster: &'a ClusterState,
    host: &'a HostCounters,
    w: usize,
}

impl<'a> UpstreamRq<'a> {
    pub(super) fn start(cluster: &'a ClusterState, host: &'a HostCounters, w: usize) -> Self {
        cluster.stats.inc(w, cluster::Counter::UpstreamRqTotal);
        cluster.stats.gauge_inc(w, cluster::Gauge::UpstreamRqActive);
        host.rq_total.fetch_add(1, Ordering::Relaxed);
        host.rq_active.fetch_add(1, Ordering::Relaxed);
        UpstreamRq { cluster, host, w }
    }
}

impl<'a> UpstreamRq<'a> {
    /// Takes over a request `start`ed by an attempt whose guard was forgotten (so the
    /// request stays active from its attempt to its end without counting twice).
    fn adopt(cluster: &'a ClusterState, host: &'a HostCounters, w: usize) -> Self {
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
    /// The per-try timeout (`false`) or per-try idle timeout (`true`) fired before the route
    /// timeout.
    PerTryTimeout(bool),
    /// The stream idle timeout fired.
    Stream(Expired),
    DownstreamGone,
}

/// Which attempt deadline comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fire {
    Route,
    PerTry,
    /// `per_try_idle_timeout`: no upstream byte since the request was sent (the head is
    /// waited for as one event, as Envoy's codec decodes it).
    PerTryIdle,
    /// A stream timer (the connection manager's).
    Stream(Expired),
}

/// The route timeout (from the end of the first attempt's request, across retries), the
/// per-try timeout and the per-try idle timeout (from each attempt's).
struct Deadlines {
    route: Option<Duration>,
    per_try: Option<Duration>,
    per_try_idle: Option<Duration>,
    global: Option<Instant>,
}

impl Deadlines {
    /// Called when an attempt's request was sent: the first deadline and which it is (the
    /// route's wins a tie).
    fn attempt(&mut self, sent_at: Instant) -> Option<(Instant, Fire)> {
        if self.global.is_none() {
            self.global = self.route.map(|t| sent_at + t);
        }
        let candidates = [
            self.global.map(|g| (g, Fire::Route)),
            self.per_try.map(|t| (sent_at + t, Fire::PerTry)),
            self.per_try_idle.map(|t| (sent_at + t, Fire::PerTryIdle)),
        ];
        candidates.into_iter().flatten().min_by_key(|c| c.0)
    }
}

/// What one attempt sends where.
struct AttemptCtx<'a> {
    cluster: &'a Arc<ClusterState>,
    host: &'a Arc<HostCounters>,
    addr: SocketAddr,
    req_out: &'a [u8],
    prefix_len: usize,
    body_done: bool,
    /// `x-envoy-attempt-count` to add, if configured.
    attempt: Option<u32>,
}

/// How one upstream attempt ended.
enum AttemptEnd {
    /// A final response head: the connection, the head, whether the upstream answered
    /// before the request body was complete, and when the request was sent.
    Response(UpConn, RespInfo, bool, Instant),
    /// No response head: the error, and the retry outcome when a retry policy may retry it.
    Failed(ErrorKind, Option<Outcome>),
    /// The request is over (the client went away, a bad body was answered).
    Finish(Flow),
    /// A stream timer fired; whether the request had been received in full.
    Timeout(Expired, bool),
}

/// Picks a host (with the route `hash_policy`'s request hash for RING_HASH / MAGLEV); with
/// `previous_hosts`, re-picks (up to `host_selection_retry_max_attempts` more times) while
/// the pick was already tried. A re-pick alters the hash as Envoy's Maglev does
/// (`hash ^ -attempt`), so a hashing balancer can choose another host.
pub(super) fn pick_host(
    cluster: &ClusterState,
    w: usize,
    hash: Option<u64>,
    tried: &[u64],
    policy: Option<&RetryPolicy>,
) -> Option<(Arc<HostCounters>, SocketAddr)> {
    let set = cluster.hosts.load();
    if set.balancer.in_panic() {
        cluster.stats.inc(w, cluster::Counter::LbHealthyPanic);
    }
    let rq_active = |i: usize| {
        set.hosts
            .get(i)
            .map_or(0, |h| h.counters.rq_active.load(Ordering::Relaxed))
    };
    let picks = match policy {
        Some(p) if p.previous_hosts && !tried.is_empty() => 1 + p.host_selection_max_attempts,
        _ => 1,
    };
    let mut last = None;
    for attempt in 0..u64::from(picks) {
        let hash = hash.map(|h| h ^ attempt.wrapping_neg());
        let h = set
            .balancer
            .pick_hashed(fastrand::u64(..), hash, &rq_active)
            .and_then(|i| set.hosts.get(i))?;
        last = Some((h.counters.clone(), h.addr));
        if !tried.contains(&h.counters.id) {
            break;
        }
    }
    last
}

/// The response headers of a response attempt (for `retriable-headers`), parsed again
/// from the upstream buffer; empty otherwise. Only called when a retry policy exists.
fn response_headers<'b>(ubuf: &'b [u8], end: &AttemptEnd) -> Vec<httparse::Header<'b>> {
    let AttemptEnd::Response(..) = end else {
        return Vec::new();
    };
    let mut headers = [httparse::EMPTY_HEADER; crate::http1::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(ubuf) {
        Ok(_) => resp
            .headers
            .iter()
            .take_while(|h| !h.name.is_empty())
            .copied()
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Counts a failed attempt that is retried (the final one is counted by the reply path).
fn count_failure(cluster: &ClusterState, w: usize, kind: ErrorKind, host: &HostCounters) {
    let _ = (cluster, w, kind);
    host.rq_error.fetch_add(1, Ordering::Relaxed);
}

/// Why streaming a body stopped before its end.
pub(super) enum BodyStop {
    Downstream,
    /// A stream timer fired while the client was sending the body.
    Stream(Expired),
    /// No response byte for the stream idle timeout (`true`) or the per-try idle timeout.
    Idle(bool),
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
        timers: &mut StreamTimers,
    ) -> Flow {
        let w = self.worker.index;
        let hcm = &view.hcm;
        let route = Some((plan.sel, plan.choice));
        // Body bytes already buffered behind the head (a malformed one is answered before
        // anything is sent upstream).
        let mut decoder = ChunkedDecoder::new();
        let (mut prefix_len, mut body_done) = match info.framing {
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
        let policy = plan.route.retry();
        // Hosts already tried (previous_hosts); no allocation until a retry pushes one.
        let mut tried: Vec<u64> = Vec::new();
        let Some((mut host, mut addr)) = pick_host(cluster, w, plan.hash, &tried, policy) else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            // Envoy counts the attempt that found no host.
            self.record.attempts(1);
            let kind = ErrorKind::NoHealthyUpstream;
            return self
                .error_reply(hcm, info, kind, started, route, ReqBody::Buffered)
                .await;
        };

        if info.expect_continue {
            match write_all_vectored(&mut self.down.stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"])
                .await
            {
                Ok(n) => {
                    self.cx.tx(n);
                    hcm.stats
                        .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64)
                }
                Err(_) => return self.downstream_gone(hcm),
            }
        }
        // A retried request needs its whole body: read a content-length body that fits the
        // buffer limit before sending (Envoy buffers it for retries up to that limit; a
        // larger body is streamed and not retried).
        let retry_limit = policy.map_or(0, |p| match p.buffer_limit.unwrap_or(view.buffer_limit) {
            0 => u64::MAX,
            l => u64::from(l),
        });
        if let (Some(_), false, Framing::Length(n)) = (policy, body_done, info.framing)
            && n <= retry_limit
        {
            while (self.down.buffered().len() as u64) < n {
                let read = self.down.read_more(&self.worker.buffers, n as usize);
                let r = tokio::select! {
                    r = read => r,
                    e = timers.expired() => {
                        return self
                            .stream_timeout_reply(hcm, info, e, false, started, route, timers.grpc())
                            .await;
                    }
                };
                match r {
                    Ok(0) | Err(_) => return self.downstream_gone(hcm),
                    Ok(k) => {
                        timers.touch(Instant::now());
                        self.cx.rx(k);
                        hcm.stats
                            .add(w, http::Counter::DownstreamCxRxBytesTotal, k as u64)
                    }
                }
            }
            prefix_len = n as usize;
            body_done = true;
            remaining = 0;
        }
        if body_done {
            timers.request_done();
        }
        if !plan.route.mirrors().is_empty() {
            super::mirror::shadow(
                &view.clusters,
                plan.route.mirrors(),
                req_out,
                body_done.then(|| &self.down.buffered()[..prefix_len]),
                plan.timeout,
                w,
            );
        }

        let mut ubuf = self.worker.buffers.get();
        let mut resp_out = self.worker.buffers.get();
        let mut deadlines = Deadlines {
            route: plan.timeout,
            per_try: policy.and_then(|p| p.per_try_timeout),
            per_try_idle: policy.and_then(|p| p.per_try_idle_timeout),
            global: None,
        };
        let mut retries = 0u32;
        let mut backoff = None;
        let mut _retry_permit = None;
        // Whether the last attempt's request is still counted active (see `adopt`).
        let mut active;
        let result = loop {
            active = true;
            if self.periodic.is_some() {
                // The periodic line shows the attempt in progress.
                self.record.upstream(addr);
                self.record.attempts(retries + 1);
            }
            let end = {
                let rq = UpstreamRq::start(cluster, &host, w);
                let a = AttemptCtx {
                    cluster,
                    host: &host,
                    addr,
                    req_out,
                    prefix_len,
                    body_done,
                    attempt: plan.route.attempt_count().then_some(retries + 1),
                };
                let end = self
                    .attempt(
                        &a,
                        &mut remaining,
                        &mut decoder,
                        plan,
                        info,
                        view,
                        &mut ubuf,
                        &mut resp_out,
                        &mut deadlines,
                        timers,
                    )
                    .await;
                // Still active: ended below when retried, else adopted after the loop.
                std::mem::forget(rq);
                end
            };
            // Outlier detection counts every attempt's result, as Envoy does.
            match &end {
                AttemptEnd::Response(_, r, ..) => {
                    cluster.report_result(&host, crate::cluster::Outcome::Status(r.code))
                }
                AttemptEnd::Failed(kind, _) => {
                    if let Some(o) = crate::cluster::Outcome::from_error(kind) {
                        cluster.report_result(&host, o);
                    }
                }
                AttemptEnd::Finish(_) | AttemptEnd::Timeout(..) => {}
            }
            let outcome = match &end {
                AttemptEnd::Response(_, r, ..) => Outcome::Response(r.code),
                AttemptEnd::Failed(_, Some(o)) => *o,
                AttemptEnd::Failed(_, None) | AttemptEnd::Finish(_) | AttemptEnd::Timeout(..) => {
                    break end;
                }
            };
            // Only a body held in full, within the buffer limit, can be sent again.
            let body_len = match info.framing {
                Framing::Length(n) => n,
                _ => prefix_len as u64,
            };
            let Some(p) = policy.filter(|_| body_done && body_len <= retry_limit) else {
                break end;
            };
            // Response headers are parsed again only for `retriable-headers` and gRPC codes.
            let headers = if p.on & (retry_on::RETRIABLE_HEADERS | retry_on::GRPC_ANY) != 0 {
                response_headers(&ubuf, &end)
            } else {
                Vec::new()
            };
            if !p.retriable(outcome, &headers) {
                if retries > 0 && matches!(end, AttemptEnd::Response(..)) {
                    cluster
                        .stats
                        .inc(w, cluster::Counter::UpstreamRqRetrySuccess);
                }
                break end;
            }
            if retries >= p.num_retries {
                cluster
                    .stats
                    .inc(w, cluster::Counter::UpstreamRqRetryLimitExceeded);
                break end;
            }
            _retry_permit = None;
            let Some(permit) = cluster.breakers.try_acquire(Resource::Retries) else {
                cluster
                    .stats
                    .inc(w, cluster::Counter::UpstreamRqRetryOverflow);
                break end;
            };
            _retry_permit = Some(permit);
            // Retry: the failed attempt's connection is dropped (reset), its response
            // discarded; the attempt is no longer active.
            drop(UpstreamRq::adopt(cluster, &host, w));
            active = false;
            if let AttemptEnd::Response(up, ..) = end {
                drop(up);
                host.rq_error.fetch_add(1, Ordering::Relaxed);
            } else if let AttemptEnd::Failed(kind, _) = end {
                count_failure(cluster, w, kind, &host);
            }
            ubuf.clear();
            resp_out.clear();
            cluster.stats.inc(w, cluster::Counter::UpstreamRqRetry);
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamRqRetryBackoffExponential);
            let wait = backoff
                .get_or_insert_with(|| p.backoff())
                .next(fastrand::u64(..));
            let until = Instant::now() + wait;
            match deadlines.global {
                Some(g) if g <= until => {
                    tokio::time::sleep_until(g).await;
                    cluster.stats.inc(w, cluster::Counter::UpstreamRqTimeout);
                    break AttemptEnd::Failed(ErrorKind::UpstreamTimeout, None);
                }
                _ => tokio::time::sleep_until(until).await,
            }
            retries += 1;
            tried.push(host.id);
            match pick_host(cluster, w, plan.hash, &tried, policy) {
                Some((h, a)) => (host, addr) = (h, a),
                None => {
                    cluster
                        .stats
                        .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
                    break AttemptEnd::Failed(ErrorKind::NoHealthyUpstream, None);
                }
            }
        };
        let _rq = active.then(|| UpstreamRq::adopt(cluster, &host, w));
        self.record.upstream(addr);
        self.record.attempts(retries + 1);
        if body_done {
            self.down.consume(prefix_len);
        }

        let (mut up, resp, early, sent_at) = match result {
            AttemptEnd::Response(up, resp, early, sent_at) => (up, resp, early, sent_at),
            AttemptEnd::Finish(flow) => {
                self.put_bufs(ubuf, resp_out);
                return flow;
            }
            AttemptEnd::Timeout(e, complete) => {
                self.put_bufs(ubuf, resp_out);
                return self
                    .stream_timeout_reply(hcm, info, e, complete, started, route, timers.grpc())
                    .await;
            }
            AttemptEnd::Failed(kind, _) => {
                self.put_bufs(ubuf, resp_out);
                if kind != ErrorKind::NoHealthyUpstream {
                    host.rq_error.fetch_add(1, Ordering::Relaxed);
                }
                let (status, _, _) = crate::local_reply::for_error(kind);
                cluster.stats.inc(w, cluster_class(status));
                cluster.stats.status_code(w, status);
                // Envoy 1.40 counts the final attempt ended by a malformed head (UPE) or a
                // close before any response (UC) as completed (a retried one is not).
                if matches!(kind, ErrorKind::UpstreamProtocol | ErrorKind::UpstreamReset) {
                    cluster.stats.inc(w, cluster::Counter::UpstreamRqCompleted);
                }
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

        if plan.tunnel == Tunnel::Upgrade
            && resp.mode != DownMode::Tunnel
            && (200..300).contains(&resp.code)
        {
            // A 2xx instead of the 101: Envoy ends the exchange with that status, no body,
            // and closes (the upstream connection is not reused either). Other statuses are
            // passed on as usual, with `connection: close`.
            let s = &cluster.stats;
            s.inc(w, cluster_class(resp.code));
            s.status_code(w, resp.code);
            s.inc(w, cluster::Counter::UpstreamRqCompleted);
            drop(up);
            self.put_bufs(ubuf, resp_out);
            self.record.details("websocket_handshake_unsuccessful");
            let info = ReqInfo {
                keep_alive: false,
                ..*info
            };
            let body = LocalBody {
                status: resp.code,
                body: b"",
                location: None,
            };
            return self
                .local_reply(hcm, &info, body, None, started, ReqBody::Consumed)
                .await;
        }
        hcm.stats.inc(w, http_class(resp.code));
        self.record.status = resp.code;
        if resp.mode == DownMode::Tunnel {
            let s = &cluster.stats;
            s.inc(w, cluster_class(resp.code));
            s.status_code(w, resp.code);
            let flow = self
                .tunnel(hcm, up, &ubuf, &resp_out, &resp, timers.idle())
                .await;
            self.put_bufs(ubuf, resp_out);
            return flow;
        }
        // The response started: the request timer stops (Envoy), and each read of the body
        // is bounded by the stream and per-try idle timeouts.
        timers.request_done();
        let idle = BodyIdle {
            stream: timers.idle(),
            per_try: deadlines.per_try_idle,
        };
        // The body runs under the route deadline and the stream duration limit, whichever
        // comes first (the route's wins a tie).
        let duration_first = match (deadlines.global, timers.duration_at()) {
            (Some(g), Some(d)) => d < g,
            (None, d) => d.is_some(),
            (Some(_), None) => false,
        };
        let deadline = if duration_first {
            timers.duration_at()
        } else {
            deadlines.global
        };
        let streamed = self
            .stream_response(&mut up, &mut ubuf, &resp_out, &resp, hcm, deadline, idle)
            .await;
        let s = &cluster.stats;
        s.inc(w, cluster_class(resp.code));
        s.status_code(w, resp.code);
        if resp.code >= 500 {
            host.rq_error.fetch_add(1, Ordering::Relaxed);
        }
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
                up.requests += 1;
                let max = cluster.cfg.max_requests_per_connection;
                // A bridged HTTP/2 stream is used once; `http2/client.rs` counts streams.
                let mut spent = max > 0 && up.requests >= max && !up.bridged;
                if spent {
                    s.inc(w, cluster::Counter::UpstreamCxMaxRequests);
                }
                // `max_connection_duration`: an older connection is closed after its request.
                spent = spent || up.past_max_duration(Instant::now);
                if up_clean && resp.up_keep_alive && !early && !spent {
                    self.worker.pool.put(up);
                    if cluster.breakers.is_open(Resource::Connections) {
                        cluster.breakers.cx_freed.notify_waiters();
                    }
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
            Err(BodyStop::Idle(stream)) => {
                // Envoy resets the stream; the upstream request counts as completed.
                s.inc(w, cluster::Counter::UpstreamRqCompleted);
                if stream {
                    hcm.stats.inc(w, http::Counter::DownstreamRqIdleTimeout);
                    self.record.flag(ResponseFlag::StreamIdleTimeout);
                } else {
                    s.inc(w, cluster::Counter::UpstreamRqPerTryIdleTimeout);
                    self.record.flag(ResponseFlag::UpstreamRequestTimeout);
                }
                hcm.stats.inc(w, http::Counter::DownstreamRqTxReset);
                hcm.stats.inc(w, http::Counter::DownstreamRqRxReset);
                hcm.stats
                    .inc(w, http::Counter::DownstreamCxDestroyLocalActiveRq);
                Flow::Close
            }
            Err(BodyStop::Timeout) if duration_first => {
                // `max_stream_duration` after the response started: Envoy resets the stream
                // (no flag; details `max_duration_timeout`).
                s.inc(w, cluster::Counter::UpstreamRqCompleted);
                hcm.stats
                    .inc(w, http::Counter::DownstreamRqMaxDurationReached);
                self.record.details("max_duration_timeout");
                hcm.stats.inc(w, http::Counter::DownstreamRqTxReset);
                hcm.stats
                    .inc(w, http::Counter::DownstreamCxDestroyLocalActiveRq);
                Flow::Close
            }
            Err(stop) => {
                let flag = match stop {
                    BodyStop::Timeout => {
                        s.inc(w, cluster::Counter::UpstreamRqTimeout);
                        ResponseFlag::UpstreamRequestTimeout
                    }
                    BodyStop::Malformed => {
                        // An HTTP/2 stream's connection counts its own (`http2/client.rs`).
                        if !up.bridged {
                            s.inc(w, cluster::Counter::UpstreamCxProtocolError);
                        }
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

    /// One upstream attempt: take a pooled connection or connect (within the circuit
    /// breakers), send the head and body, wait for the response head.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        a: &AttemptCtx<'_>,
        remaining: &mut u64,
        decoder: &mut ChunkedDecoder,
        plan: &ForwardPlan<'_>,
        info: &ReqInfo,
        view: &ListenerView,
        ubuf: &mut Vec<u8>,
        resp_out: &mut Vec<u8>,
        deadlines: &mut Deadlines,
        timers: &mut StreamTimers,
    ) -> AttemptEnd {
        let w = self.worker.index;
        let hcm = &view.hcm;
        let cluster = a.cluster;
        let Some(_rq_permit) = cluster.breakers.try_acquire(Resource::Requests) else {
            // Envoy 1.40 counts `max_requests` overflow here (not in `_pending_overflow`).
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamRqActiveOverflow);
            return AttemptEnd::Failed(ErrorKind::Overflow, None);
        };
        let mut attempt_line = [0u8; 40];
        let attempt_line: &[u8] = match a.attempt {
            Some(n) => {
                use std::io::Write;
                let mut cur = std::io::Cursor::new(&mut attempt_line[..]);
                let _ = write!(cur, "x-envoy-attempt-count: {n}\r\n\r\n");
                let len = cur.position() as usize;
                &attempt_line[..len]
            }
            None => b"",
        };
        let head: &[u8] = if a.attempt.is_some() {
            &a.req_out[..a.req_out.len() - 2]
        } else {
            a.req_out
        };
        let mut stale_resend = false;
        loop {
            // A resend after a dead pooled connection always opens a fresh one; an HTTP/2
            // upstream stream is never pooled (the pool holds HTTP/1.1 connections).
            let http2 = a.cluster.upstream_http2(self.downstream_http2()).is_some();
            let pooled = if stale_resend || http2 {
                None
            } else {
                self.worker.pool.take(a.host.id)
            };
            let mut up = match pooled {
                Some(c) => c,
                None => match self.connect_within_breakers(a, plan).await {
                    Ok(c) => c,
                    Err(kind) => {
                        let outcome = match kind {
                            ErrorKind::Overflow => None,
                            _ => Some(Outcome::ConnectFailure),
                        };
                        return AttemptEnd::Failed(kind, outcome);
                    }
                },
            };
            up.in_flight = true;
            let prefix = &self.down.buffered()[..a.prefix_len];
            match write_all_vectored(&mut up.stream, &[head, attempt_line, prefix]).await {
                Ok(n) => {
                    up.tx(n);
                    self.periodic_sent_upstream(&up, a.prefix_len);
                }
                Err(fail) => {
                    up.tx(fail.written);
                    up.remote_closed = true;
                    if up.reused && !stale_resend && fail.nothing_accepted() {
                        // The pooled connection was dead before the upstream accepted any
                        // byte of this request, so nothing can have been processed: send it
                        // once more on a fresh connection.
                        up.in_flight = false;
                        stale_resend = true;
                        continue;
                    }
                    cluster.stats.inc(w, cluster::Counter::UpstreamRqTxReset);
                    return AttemptEnd::Failed(ErrorKind::UpstreamReset, Some(Outcome::Reset));
                }
            }

            let mut early = false;
            if !a.body_done {
                self.down.consume(a.prefix_len);
                match self
                    .stream_request_body(
                        &mut up,
                        info.framing,
                        remaining,
                        decoder,
                        hcm,
                        view.read_cap,
                        timers,
                    )
                    .await
                {
                    Ok(e) => {
                        early = e;
                        timers.request_done();
                    }
                    Err(BodyStop::Downstream) => {
                        return AttemptEnd::Finish(self.downstream_gone(hcm));
                    }
                    Err(BodyStop::Stream(e)) => return AttemptEnd::Timeout(e, false),
                    Err(BodyStop::Malformed) => {
                        let e = HeadError::Malformed("invalid chunked body");
                        let flow = self.protocol_error_reply(hcm, e, info.minor, Instant::now());
                        return AttemptEnd::Finish(flow.await);
                    }
                    Err(BodyStop::Upstream | BodyStop::Timeout | BodyStop::Idle(_)) => {
                        up.remote_closed = true;
                        cluster.stats.inc(w, cluster::Counter::UpstreamRqTxReset);
                        return AttemptEnd::Failed(ErrorKind::UpstreamReset, None);
                    }
                }
            }

            let sent_at = Instant::now();
            let deadline = deadlines.attempt(sent_at);
            // An upgrade request's connection ends with its response unless it becomes a
            // tunnel (as Envoy: `connection: close` on a refusal passed through).
            let client_keep_alive = info.keep_alive
                && !plan.upgrade
                && !early
                && !self.closing()
                && !self.past_limits(hcm);
            return match self
                .read_response_head(
                    &mut up,
                    ubuf,
                    resp_out,
                    plan,
                    info,
                    hcm,
                    sent_at,
                    deadline,
                    client_keep_alive,
                    timers,
                )
                .await
            {
                Ok(r) => AttemptEnd::Response(up, r, early, sent_at),
                Err(HeadWait::PerTryTimeout(idle)) => {
                    cluster.stats.inc(
                        w,
                        if idle {
                            cluster::Counter::UpstreamRqPerTryIdleTimeout
                        } else {
                            cluster::Counter::UpstreamRqPerTryTimeout
                        },
                    );
                    AttemptEnd::Failed(ErrorKind::UpstreamTimeout, Some(Outcome::PerTryTimeout))
                }
                Err(HeadWait::Stream(e)) => AttemptEnd::Timeout(e, true),
                Err(HeadWait::Error(kind)) => {
                    let outcome = match kind {
                        ErrorKind::UpstreamTimeout => {
                            cluster.stats.inc(w, cluster::Counter::UpstreamRqTimeout);
                            None
                        }
                        ErrorKind::UpstreamProtocol => {
                            // An HTTP/2 stream's connection counts its own (`http2/client.rs`).
                            if !up.bridged {
                                cluster
                                    .stats
                                    .inc(w, cluster::Counter::UpstreamCxProtocolError);
                            }
                            Some(Outcome::Reset)
                        }
                        _ => {
                            cluster.stats.inc(w, cluster::Counter::UpstreamRqRxReset);
                            Some(Outcome::Reset)
                        }
                    };
                    AttemptEnd::Failed(kind, outcome)
                }
                Err(HeadWait::DownstreamGone) => AttemptEnd::Finish(self.downstream_gone(hcm)),
            };
        }
    }

    /// Opens a connection for a request with no pooled one: the request is pending
    /// (`max_pending_requests`) until connected. At `max_connections` it counts
    /// `upstream_cx_overflow` and waits for a connection of the cluster to close or come back
    /// to this worker's pool (until the route timeout).
    async fn connect_within_breakers(
        &mut self,
        a: &AttemptCtx<'_>,
        plan: &ForwardPlan<'_>,
    ) -> Result<UpConn, ErrorKind> {
        let w = self.worker.index;
        let cluster = a.cluster;
        let _pending = enter_pending(cluster, w)?;
        if cluster.breakers.is_open(Resource::Connections) {
            let pooled = || self.worker.pool.take(a.host.id);
            match wait_for_room(cluster, w, plan.timeout, pooled).await {
                Room::Ready(c) => return Ok(c),
                Room::TimedOut => return Err(ErrorKind::UpstreamTimeout),
                Room::Free => {}
            }
        }
        connect(w, cluster, a.host, a.addr, self.downstream_http2())
            .await
            .map_err(|e| match e {
                ConnectError::Failure => ErrorKind::ConnectFailure,
                ConnectError::Timeout => ErrorKind::ConnectTimeout,
            })
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

    /// Streams the rest of the request body, buffering at most `read_cap` bytes of it;
    /// `Ok(true)` when the upstream started answering before the body was complete.
    #[allow(clippy::too_many_arguments)]
    async fn stream_request_body(
        &mut self,
        up: &mut UpConn,
        framing: Framing,
        remaining: &mut u64,
        decoder: &mut ChunkedDecoder,
        hcm: &Hcm,
        read_cap: usize,
        timers: &mut StreamTimers,
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
                self.periodic_received(n);
                self.down.consume(n);
                if early {
                    return Ok(true);
                }
                if done {
                    return Ok(false);
                }
            }
            let read = self.down.read_more(&self.worker.buffers, read_cap);
            // A client stalling mid-body is cut off by the stream timers (Envoy's stream idle
            // and request timeouts; the connection idle timeout waits for no request).
            let r = tokio::select! {
                r = read => r,
                e = timers.expired() => return Err(BodyStop::Stream(e)),
                r = up.stream.readable() => {
                    return r.map(|_| true).map_err(|_| BodyStop::Upstream);
                }
            };
            match r {
                Ok(0) | Err(_) => return Err(BodyStop::Downstream),
                Ok(n) => {
                    timers.touch(Instant::now());
                    self.cx.rx(n);
                    hcm.stats
                        .add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64)
                }
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
        deadline: Option<(Instant, Fire)>,
        client_keep_alive: bool,
        timers: &StreamTimers,
    ) -> Result<RespInfo, HeadWait> {
        // One timer for the attempt's deadline and the stream timers, whichever comes first
        // (the route's wins a tie).
        let stream = timers.next().map(|(at, e)| (at, Fire::Stream(e)));
        let deadline = match (deadline, stream) {
            (Some(d), Some(s)) if s.0 < d.0 => Some(s),
            (None, s) => s,
            (d, _) => d,
        };
        let timed = deadline.is_some();
        let fire = deadline.map_or(Fire::Route, |(_, f)| f);
        let mut sleep = pin!(tokio::time::sleep_until(
            deadline.map_or(sent_at, |(d, _)| d)
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
                    filter_lines: &self.reply_extra,
                    upgrade: plan.upgrade,
                    connect: plan.tunnel == Tunnel::ConnectForward,
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
                            self.cx.rx(n);
                            hcm.stats.add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64);
                            watch_down = self.down.has_spare();
                        }
                        Ok(None) => watch_down = self.down.has_spare(),
                    }
                }
                _ = sleep.as_mut(), if timed => return Err(match fire {
                    Fire::PerTry => HeadWait::PerTryTimeout(false),
                    Fire::PerTryIdle => HeadWait::PerTryTimeout(true),
                    Fire::Route => HeadWait::Error(ErrorKind::UpstreamTimeout),
                    Fire::Stream(e) => HeadWait::Stream(e),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_route_deadline_is_set_by_the_first_attempt_only() {
        let mut d = Deadlines {
            route: Some(ms(1000)),
            per_try: None,
            per_try_idle: None,
            global: None,
        };
        let t0 = Instant::now();
        assert_eq!(d.attempt(t0), Some((t0 + ms(1000), Fire::Route)));
        // A retry sent later keeps the first attempt's deadline.
        assert_eq!(d.attempt(t0 + ms(400)), Some((t0 + ms(1000), Fire::Route)));
    }

    #[test]
    fn the_per_try_deadline_applies_while_it_is_earlier() {
        let mut d = Deadlines {
            route: Some(ms(1000)),
            per_try: Some(ms(300)),
            per_try_idle: None,
            global: None,
        };
        let t0 = Instant::now();
        assert_eq!(d.attempt(t0), Some((t0 + ms(300), Fire::PerTry)));
        assert_eq!(d.attempt(t0 + ms(600)), Some((t0 + ms(900), Fire::PerTry)));
        // Past 700 ms the route deadline comes first.
        assert_eq!(d.attempt(t0 + ms(800)), Some((t0 + ms(1000), Fire::Route)));
    }

    #[test]
    fn no_route_timeout_leaves_only_the_per_try_one() {
        let t0 = Instant::now();
        let mut d = Deadlines {
            route: None,
            per_try: Some(ms(50)),
            per_try_idle: None,
            global: None,
        };
        assert_eq!(d.attempt(t0), Some((t0 + ms(50), Fire::PerTry)));
        let mut none = Deadlines {
            route: None,
            per_try: None,
            per_try_idle: None,
            global: None,
        };
        assert_eq!(none.attempt(t0), None);
    }

    #[test]
    fn the_per_try_idle_deadline_runs_from_each_attempt() {
        let mut d = Deadlines {
            route: Some(ms(1000)),
            per_try: Some(ms(300)),
            per_try_idle: Some(ms(200)),
            global: None,
        };
        let t0 = Instant::now();
        assert_eq!(d.attempt(t0), Some((t0 + ms(200), Fire::PerTryIdle)));
        assert_eq!(
            d.attempt(t0 + ms(500)),
            Some((t0 + ms(700), Fire::PerTryIdle))
        );
        assert_eq!(d.attempt(t0 + ms(900)), Some((t0 + ms(1000), Fire::Route)));
    }
}
