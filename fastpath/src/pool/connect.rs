//! Opening upstream connections, with the cluster's connect timeout and connection stats.
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cluster::{ClusterState, HostCounters};
use crate::stats::sets::cluster::{Counter, Gauge, Histogram};
use crate::stream::Stream;

/// An upstream connection; dropping it closes the socket and updates the gauges.
pub struct UpConn {
    pub stream: Stream,
    pub host: Arc<HostCounters>,
    pub cluster: Arc<ClusterState>,
    w: usize,
    /// Came from the pool (if it turns out dead before accepting any byte of the request,
    /// the request may be sent again on a fresh connection).
    pub reused: bool,
    /// The upstream closed it (for `upstream_cx_destroy_remote` vs `_local`).
    pub remote_closed: bool,
    /// A request is in flight on it: dropping it now counts
    /// `upstream_cx_destroy_with_active_rq`.
    pub in_flight: bool,
    /// Requests sent on it (for the cluster's `max_requests_per_connection`).
    pub requests: u32,
    /// When it was connected (for the cluster's `max_connection_duration`).
    pub created: Instant,
    /// One end of a pipe pair whose other end is an HTTP/2 stream (`http2/client.rs`): not
    /// an upstream connection of its own (the HTTP/2 connection is counted), used once.
    pub bridged: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    Failure,
    Timeout,
}

impl UpConn {
    /// A connection just opened on worker `w` (`bridged`: the core's end of an HTTP/2 stream).
    fn fresh(
        stream: Stream,
        w: usize,
        cluster: &Arc<ClusterState>,
        host: &Arc<HostCounters>,
        bridged: bool,
    ) -> UpConn {
        UpConn {
            stream,
            host: host.clone(),
            cluster: cluster.clone(),
            w,
            reused: false,
            remote_closed: false,
            in_flight: false,
            requests: 0,
            created: Instant::now(),
            bridged,
        }
    }

    /// Counts bytes read from the upstream (`upstream_cx_rx_bytes_total`).
    pub fn rx(&self, n: usize) {
        self.cluster
            .stats
            .add(self.w, Counter::UpstreamCxRxBytesTotal, n as u64);
    }

    /// Counts bytes written to the upstream (`upstream_cx_tx_bytes_total`).
    pub fn tx(&self, n: usize) {
        self.cluster
            .stats
            .add(self.w, Counter::UpstreamCxTxBytesTotal, n as u64);
    }

    pub fn note_idle_timeout(&self) {
        self.cluster
            .stats
            .inc(self.w, Counter::UpstreamCxIdleTimeout);
    }

    /// True (counting `upstream_cx_max_duration_reached`) when the connection is older than
    /// the cluster's `max_connection_duration` at `now()` (only read when the cluster has
    /// one): it must not be used again.
    pub fn past_max_duration(&self, now: impl FnOnce() -> Instant) -> bool {
        let max = self.cluster.cfg.max_connection_duration_ms;
        let past =
            max > 0 && now().saturating_duration_since(self.created).as_millis() as u64 >= max;
        if past {
            self.cluster
                .stats
                .inc(self.w, Counter::UpstreamCxMaxDurationReached);
        }
        past
    }

    /// When the connection reaches the cluster's `max_connection_duration`, if it has one.
    pub fn max_duration_at(&self) -> Option<Instant> {
        let max = self.cluster.cfg.max_connection_duration_ms;
        (max > 0).then(|| self.created + std::time::Duration::from_millis(max))
    }
}

impl Drop for UpConn {
    fn drop(&mut self) {
        if self.bridged {
            return;
        }
        let s = &self.cluster.stats;
        s.gauge_dec(self.w, Gauge::UpstreamCxActive);
        s.inc(self.w, Counter::UpstreamCxDestroy);
        s.inc(
            self.w,
            if self.remote_closed {
                Counter::UpstreamCxDestroyRemote
            } else {
                Counter::UpstreamCxDestroyLocal
            },
        );
        if self.in_flight {
            s.inc(self.w, Counter::UpstreamCxDestroyWithActiveRq);
            s.inc(
                self.w,
                if self.remote_closed {
                    Counter::UpstreamCxDestroyRemoteWithActiveRq
                } else {
                    Counter::UpstreamCxDestroyLocalWithActiveRq
                },
            );
        }
        self.host.cx_active.fetch_sub(1, Ordering::Relaxed);
        self.cluster
            .breakers
            .release(crate::breaker::Resource::Connections);
    }
}

/// Connects to `addr` for `cluster` on worker `w`, counting Envoy's connection stats. An
/// HTTP/2 cluster gets a bridged stream on a shared HTTP/2 connection instead
/// (`downstream_http2`: the request came over HTTP/2, for `use_downstream_protocol_config`);
/// an `auto_config` cluster gets what the host chose in ALPN (`auto.rs`).
pub async fn connect(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: std::net::SocketAddr,
    downstream_http2: bool,
) -> Result<UpConn, ConnectError> {
    if cluster.cfg.http_auto {
        return super::auto::connect(w, cluster, host, addr).await;
    }
    if let Some(opts) = cluster.upstream_http2(downstream_http2) {
        let stream = crate::http2::client::stream(w, cluster, host, addr, opts).await?;
        return Ok(UpConn::fresh(stream, w, cluster, host, true));
    }
    cluster.stats.inc(w, Counter::UpstreamCxHttp1Total);
    // An HTTP/1.1 request of a `use_downstream_protocol_config` cluster offers `http/1.1`.
    let stream = open_offering(w, cluster, host, addr, true).await?;
    Ok(UpConn::fresh(stream, w, cluster, host, false))
}

/// An HTTP/1.1 connection `open_counted` opened, as the pool keeps it.
pub(super) fn http1(
    stream: Stream,
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
) -> UpConn {
    UpConn::fresh(stream, w, cluster, host, false)
}

/// The core's end of an HTTP/2 stream (`http2/client.rs`), as the core uses it.
pub(super) fn bridged(
    stream: Stream,
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
) -> UpConn {
    UpConn::fresh(stream, w, cluster, host, true)
}

/// Opens a TCP connection counted as an upstream connection (`upstream_cx_total`,
/// `_connect_ms`, `_active`, the host's counts and the connections breaker); the caller
/// settles it with `uncount` when it closes.
pub async fn open_counted(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: std::net::SocketAddr,
) -> Result<Stream, ConnectError> {
    open_offering(w, cluster, host, addr, false).await
}

/// `open_counted`; `http1`: a TLS connection of a `use_downstream_protocol_config` cluster
/// offers `http/1.1` in ALPN (else `h2`).
async fn open_offering(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: std::net::SocketAddr,
    http1: bool,
) -> Result<Stream, ConnectError> {
    let s = &cluster.stats;
    s.inc(w, Counter::UpstreamCxTotal);
    host.cx_total.fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    // The connect timeout covers the TLS handshake of a TLS cluster too (as Envoy's: the
    // connection is "connected" once the handshake is done); a failed handshake is a connect
    // failure (UF).
    let connecting = async {
        let st = TcpStream::connect(addr).await.map_err(drop)?;
        let _ = st.set_nodelay(true);
        match &cluster.tls {
            None => Ok(Stream::Tcp(st)),
            Some(tls) => crate::tls::connect(tls, st, addr, w, http1)
                .await
                .map_err(drop),
        }
    };
    let stream = match tokio::time::timeout(cluster.connect_timeout, connecting).await {
        Ok(Ok(st)) => st,
        Ok(Err(_)) => {
            s.inc(w, Counter::UpstreamCxConnectFail);
            return Err(ConnectError::Failure);
        }
        Err(_) => {
            s.inc(w, Counter::UpstreamCxConnectFail);
            s.inc(w, Counter::UpstreamCxConnectTimeout);
            return Err(ConnectError::Timeout);
        }
    };
    s.record_us(
        w,
        Histogram::UpstreamCxConnectMs,
        start.elapsed().as_micros() as u64,
    );
    s.gauge_inc(w, Gauge::UpstreamCxActive);
    host.cx_active.fetch_add(1, Ordering::Relaxed);
    cluster
        .breakers
        .force_acquire(crate::breaker::Resource::Connections);
    Ok(stream)
}

/// Settles a connection opened by `open_counted` (`upstream_cx_destroy_*`, gauges, breaker).
pub fn uncount(w: usize, cluster: &ClusterState, host: &HostCounters, remote: bool) {
    let s = &cluster.stats;
    s.gauge_dec(w, Gauge::UpstreamCxActive);
    s.inc(w, Counter::UpstreamCxDestroy);
    s.inc(
        w,
        if remote {
            Counter::UpstreamCxDestroyRemote
        } else {
            Counter::UpstreamCxDestroyLocal
        },
    );
    host.cx_active.fetch_sub(1, Ordering::Relaxed);
    cluster
        .breakers
        .release(crate::breaker::Resource::Connections);
    if cluster
        .breakers
        .is_open(crate::breaker::Resource::Connections)
    {
        cluster.breakers.cx_freed.notify_waiters();
    }
}

/// `connect` for a plain TCP relay (`tcp_proxy`): not counted as an HTTP/1 connection.
pub async fn connect_tcp(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: std::net::SocketAddr,
) -> Result<UpConn, ConnectError> {
    let stream = open_counted(w, cluster, host, addr).await?;
    Ok(UpConn::fresh(stream, w, cluster, host, false))
}
