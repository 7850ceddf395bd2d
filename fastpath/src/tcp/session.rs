//! One `tcp_proxy` connection: pick a cluster (by weight) and a host (its balancer, health
//! and ejections, source-IP hash when asked), connect within the circuit breaker and
//! `max_connect_attempts`, then relay until both sides close or the idle timeout passes.
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;
use xxhash_rust::xxh64::xxh64;

use super::TcpProxy;
use super::relay::{self, Counts, End, Seen};
use super::stats::tcp_proxy::Counter;
use crate::breaker::Resource;
use crate::cluster::{ClusterState, HostCounters, Outcome};
use crate::compiled::ListenerView;
use crate::pool::{UpConn, connect_tcp};
use crate::stats::sets::{cluster, http, listener};
use crate::stream::Stream;
use crate::worker::{ConnGuard, Worker};

/// Counts a connection a network filter refused at accept (it is closed by dropping it):
/// as in Envoy, the listener and the terminal filter (created with the chain) still count
/// it.
pub fn refuse(view: &ListenerView, w: usize) {
    view.stats.inc(w, listener::Counter::DownstreamCxTotal);
    view.stats.inc(w, listener::Counter::DownstreamCxDestroy);
    match &view.network.tcp_proxy {
        Some(tcp) => tcp.count(w, Counter::DownstreamCxTotal, 1),
        None => {
            let h = &view.hcm.stats;
            h.inc(w, http::Counter::DownstreamCxTotal);
            h.inc(w, http::Counter::DownstreamCxDestroy);
            h.inc(w, http::Counter::DownstreamCxDestroyLocal);
        }
    }
}

/// Serves one downstream connection of a `tcp_proxy` listener.
pub async fn serve(
    worker: Rc<Worker>,
    view: Arc<ListenerView>,
    down: Stream,
    info: crate::conn_info::ConnInfo,
    _guard: ConnGuard,
) {
    let peer = info.peer;
    let w = worker.index;
    let start = Instant::now();
    let ls = &view.stats;
    ls.inc(w, listener::Counter::DownstreamCxTotal);
    ls.gauge_inc(w, listener::Gauge::DownstreamCxActive);
    if let Some(tcp) = &view.network.tcp_proxy {
        tcp.count(w, Counter::DownstreamCxTotal, 1);
        // A network RBAC filter that denies the connection closes it before any upstream
        // connect.
        if view.network.authorize(&info, w) {
            proxy(w, &view, tcp, down, peer).await;
        }
    }
    ls.gauge_dec(w, listener::Gauge::DownstreamCxActive);
    ls.inc(w, listener::Counter::DownstreamCxDestroy);
    ls.record_us(
        w,
        listener::Histogram::DownstreamCxLengthMs,
        start.elapsed().as_micros() as u64,
    );
}

async fn proxy(w: usize, view: &ListenerView, tcp: &TcpProxy, down: Stream, peer: SocketAddr) {
    let Some(cluster) = tcp
        .pick_cluster(fastrand::u64(..))
        .and_then(|i| view.clusters.get(i))
    else {
        tcp.count(w, Counter::DownstreamCxNoRoute, 1);
        return;
    };
    let hash = tcp
        .hash_source_ip
        .then(|| xxh64(peer.ip().to_string().as_bytes(), 0));
    let Some(mut up) = connect(w, cluster, tcp, hash).await else {
        return;
    };
    let bytes = Bytes { w, tcp, up: &up };
    let seen = Seen::default();
    // Plain sockets both ways: zero-copy splice; TLS on either side: a copy loop.
    let end = match (down.as_tcp(), up.stream.as_tcp()) {
        (Some(d), Some(u)) => relay::relay(d, u, tcp.idle_timeout, &bytes, &seen).await,
        _ => super::copy::relay(&down, &up.stream, tcp.idle_timeout, &bytes, &seen).await,
    };
    if let End::IdleTimeout = end {
        tcp.count(w, Counter::IdleTimeout, 1);
    }
    up.remote_closed = seen.upstream_closed.get();
}

/// Connects to a host of `cluster`, trying newly picked hosts up to
/// `max_connect_attempts` times; None (the downstream is then closed) on overflow, no
/// healthy host or the last failure.
async fn connect(
    w: usize,
    cluster: &Arc<ClusterState>,
    tcp: &TcpProxy,
    hash: Option<u64>,
) -> Option<UpConn> {
    for attempt in 1..=tcp.max_connect_attempts {
        // As Envoy's tcp_proxy: checked before each connection, never waited on.
        if cluster.breakers.is_open(Resource::Connections) {
            cluster.stats.inc(w, cluster::Counter::UpstreamCxOverflow);
            return None;
        }
        let Some((host, addr)) = pick_host(cluster, w, hash) else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            return None;
        };
        match connect_tcp(w, cluster, &host, addr).await {
            Ok(up) => {
                cluster.report_result(&host, Outcome::Status(200));
                return Some(up);
            }
            Err(_) => {
                cluster.report_result(&host, Outcome::LocalFailure);
                if attempt == tcp.max_connect_attempts {
                    cluster
                        .stats
                        .inc(w, cluster::Counter::UpstreamCxConnectAttemptsExceeded);
                }
            }
        }
    }
    None
}

/// A host of `cluster` from its balancer (LEAST_REQUEST weighs open connections).
fn pick_host(
    cluster: &ClusterState,
    w: usize,
    hash: Option<u64>,
) -> Option<(Arc<HostCounters>, SocketAddr)> {
    let set = cluster.hosts.load();
    if set.balancer.in_panic() {
        cluster.stats.inc(w, cluster::Counter::LbHealthyPanic);
    }
    let active = |i: usize| {
        set.hosts
            .get(i)
            .map_or(0, |h| h.counters.cx_active.load(Ordering::Relaxed))
    };
    let h = set
        .balancer
        .pick_hashed(fastrand::u64(..), hash, &active)
        .and_then(|i| set.hosts.get(i))?;
    Some((h.counters.clone(), h.addr))
}

/// Routes the relay's byte counts to `tcp.<prefix>.downstream_cx_*` and the cluster's
/// `upstream_cx_*_bytes_total`.
struct Bytes<'a> {
    w: usize,
    tcp: &'a TcpProxy,
    up: &'a UpConn,
}

impl Counts for Bytes<'_> {
    fn read(&self, downstream: bool, n: usize) {
        if downstream {
            self.tcp
                .count(self.w, Counter::DownstreamCxRxBytesTotal, n as u64);
        } else {
            self.up.rx(n);
        }
    }

    fn written(&self, downstream: bool, n: usize) {
        if downstream {
            self.tcp
                .count(self.w, Counter::DownstreamCxTxBytesTotal, n as u64);
        } else {
            self.up.tx(n);
        }
    }
}
