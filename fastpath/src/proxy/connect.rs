//! CONNECT terminated here (a route `upgrade_configs` CONNECT entry with `connect_config`):
//! pick a host of the route's cluster, open a TCP connection to it, answer `200 OK` and relay
//! bytes both ways with the same tunnel as WebSocket (`proxy/upgrade.rs`: half-close, stream
//! idle timeout, byte counts).
//!
//! As Envoy 1.40: a connect failure is the usual 503 (`UF`) with `connection: close`; the
//! 200 carries only `date` and `server`; bytes the client sent behind its head go up once
//! the connection is open. A CONNECT the route does not terminate is forwarded upstream as a
//! request and its 2xx starts the tunnel (`proxy/forward.rs`).
use std::time::Duration;

use tokio::time::Instant;

use super::forward::{UpstreamRq, pick_host};
use super::prepare::{ForwardPlan, ReqInfo};
use super::response::{DownMode, RespInfo};
use super::stream_timers::StreamTimers;
use super::{Conn, Flow, ReqBody};
use crate::breaker::{Permit, Resource};
use crate::cluster::ClusterState;
use crate::compiled::ListenerView;
use crate::error::ErrorKind;
use crate::http1::date;
use crate::http1::write::{push_header, push_status_line};
use crate::pool::{ConnectError, connect_tcp};
use crate::stats::sets::{cluster, http, http_class};

impl Conn {
    /// Serves a terminated CONNECT: the upstream is a plain TCP connection (never pooled),
    /// whatever protocol the cluster speaks for HTTP.
    pub(super) async fn connect_tunnel(
        &mut self,
        view: &ListenerView,
        plan: &ForwardPlan<'_>,
        info: &ReqInfo,
        started: Instant,
        timers: &mut StreamTimers,
    ) -> Flow {
        let w = self.worker.index;
        let hcm = &view.hcm;
        let route = Some((plan.sel, plan.choice));
        let fail = ReqBody::Consumed;
        let Some(cluster) = view.clusters.get(plan.cluster) else {
            hcm.stats.inc(w, http::Counter::NoCluster);
            let kind = ErrorKind::NoHealthyUpstream;
            return self
                .error_reply(hcm, info, kind, started, route, fail)
                .await;
        };
        let Some((host, addr)) = pick_host(cluster, w, plan.hash, &[], None) else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            let kind = ErrorKind::NoHealthyUpstream;
            return self
                .error_reply(hcm, info, kind, started, route, fail)
                .await;
        };
        let Some(_permit) = cluster.breakers.try_acquire(Resource::Requests) else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamRqActiveOverflow);
            let kind = ErrorKind::Overflow;
            return self
                .error_reply(hcm, info, kind, started, route, fail)
                .await;
        };
        let _rq = UpstreamRq::start(cluster, &host, w);
        if let Err(kind) = wait_for_connection_room(cluster, w, plan.timeout).await {
            return self
                .error_reply(hcm, info, kind, started, route, fail)
                .await;
        }
        self.record.upstream(addr);
        // Envoy counts the tunnel's connect as the request's upstream attempt.
        self.record.attempts(1);
        let mut up = match connect_tcp(w, cluster, &host, addr).await {
            Ok(c) => c,
            Err(e) => {
                let kind = match e {
                    ConnectError::Failure => ErrorKind::ConnectFailure,
                    ConnectError::Timeout => ErrorKind::ConnectTimeout,
                };
                if let Some(o) = crate::cluster::Outcome::from_error(&kind) {
                    cluster.report_result(&host, o);
                }
                host.rq_error
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return self
                    .error_reply(hcm, info, kind, started, route, fail)
                    .await;
            }
        };
        cluster.report_result(&host, crate::cluster::Outcome::Status(200));
        up.in_flight = true;
        timers.request_done();
        let mut head = self.worker.buffers.get();
        push_status_line(&mut head, 1, 200);
        push_header(&mut head, b"date", &date::now());
        if !hcm.server_name.is_empty() {
            push_header(&mut head, b"server", &hcm.server_name);
        }
        head.extend_from_slice(b"\r\n");
        hcm.stats.inc(w, http_class(200));
        self.record.status = 200;
        self.record.details("via_upstream");
        let resp = RespInfo {
            code: 200,
            head_len: 0,
            up_keep_alive: false,
            mode: DownMode::Tunnel,
            close_down: true,
        };
        let flow = self.tunnel(hcm, up, &[], &head, &resp, timers.idle()).await;
        self.worker.buffers.put(head);
        flow
    }
}

/// As Envoy queues a tunnel over `max_connections` as pending: waits (within
/// `max_pending_requests`, until the route timeout) for a connection of the cluster to close.
async fn wait_for_connection_room(
    cluster: &ClusterState,
    w: usize,
    timeout: Option<Duration>,
) -> Result<(), ErrorKind> {
    if !cluster.breakers.is_open(Resource::Connections) {
        return Ok(());
    }
    let _pending = enter_pending(cluster, w)?;
    match wait_for_room(cluster, w, timeout, || None::<()>).await {
        Room::TimedOut => {
            cluster.stats.inc(w, cluster::Counter::UpstreamRqTimeout);
            Err(ErrorKind::UpstreamTimeout)
        }
        Room::Free | Room::Ready(()) => Ok(()),
    }
}

/// Enters the cluster's pending requests (`max_pending_requests`): counts
/// `upstream_rq_pending_total`, or `upstream_rq_pending_overflow` when they are full.
pub(super) fn enter_pending(cluster: &ClusterState, w: usize) -> Result<Permit<'_>, ErrorKind> {
    let Some(pending) = cluster.breakers.try_acquire(Resource::Pending) else {
        cluster
            .stats
            .inc(w, cluster::Counter::UpstreamRqPendingOverflow);
        return Err(ErrorKind::Overflow);
    };
    cluster
        .stats
        .inc(w, cluster::Counter::UpstreamRqPendingTotal);
    Ok(pending)
}

/// How a wait at `max_connections` ended.
pub(super) enum Room<T> {
    /// A connection of the cluster closed: there is room to open one.
    Free,
    /// `ready` gave what the waiter wanted (a pooled connection came back).
    Ready(T),
    /// The timeout passed first.
    TimedOut,
}

/// At `max_connections` (the caller checked the breaker is open): counts
/// `upstream_cx_overflow` and waits, until `timeout`, for a connection of the cluster to
/// close or for `ready` (asked at the start and after each close) to give one.
pub(super) async fn wait_for_room<T>(
    cluster: &ClusterState,
    w: usize,
    timeout: Option<Duration>,
    mut ready: impl FnMut() -> Option<T>,
) -> Room<T> {
    let b = &cluster.breakers;
    cluster.stats.inc(w, cluster::Counter::UpstreamCxOverflow);
    let until = timeout.map(|t| Instant::now() + t);
    loop {
        let freed = b.cx_freed.notified();
        if let Some(got) = ready() {
            return Room::Ready(got);
        }
        if !b.is_open(Resource::Connections) {
            return Room::Free;
        }
        let wait = tokio::time::sleep_until(
            until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        );
        tokio::select! {
            _ = freed => {}
            _ = wait => return Room::TimedOut,
        }
    }
}
