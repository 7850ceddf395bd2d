//! One `tcp_proxy` connection: pick a cluster (by weight) and a host (its balancer, health
//! and ejections, source-IP hash when asked), connect within the circuit breaker and
//! `max_connect_attempts`, then relay until both sides close or the idle timeout passes;
//! then its access log lines (the `tcp_proxy`'s and the listener's), when configured.
use std::cell::{Cell, OnceCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;
use xxhash_rust::xxh64::xxh64;

use super::TcpProxy;
use super::relay::{self, Counts, End, Seen};
use super::stats::tcp_proxy::Counter;
use crate::access_log::{ClusterNames, Entry, Fields, LogType};
use crate::breaker::Resource;
use crate::cluster::{ClusterState, HostCounters, Outcome};
use crate::compiled::ListenerView;
use crate::conn_info::ConnInfo;
use crate::local_reply::{ResponseFlag, ResponseFlags};
use crate::pool::{ConnectError, UpConn, connect_tcp};
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

/// Why a connection closed before its terminal filter served it, for its access log lines
/// (`log_refused`).
#[derive(Default)]
pub struct Refusal<'a> {
    pub flags: ResponseFlags,
    /// `%CONNECTION_TERMINATION_DETAILS%` (empty: none).
    pub termination: &'a str,
    /// `%DOWNSTREAM_TRANSPORT_FAILURE_REASON%` (empty: none).
    pub transport_failure: &'a str,
    /// The `tcp_proxy` had picked its cluster (it runs once the connection exists: after a
    /// failed TLS handshake, not after a `connection_limit` or `local_ratelimit` refusal).
    pub picked: bool,
}

/// The start of a connection's lines when a refusal of it would be logged (the listener or
/// its `tcp_proxy` has an access log), taken when it is accepted.
pub fn refusal_start(view: &ListenerView) -> Option<Fields> {
    let tcp_log = view
        .network
        .tcp_proxy
        .as_ref()
        .is_some_and(|t| t.access_log.is_some());
    (tcp_log || view.listener_log.is_some()).then(|| match &view.network.tcp_proxy {
        Some(tcp) => tcp_fields(view, tcp),
        None => Fields::new(),
    })
}

/// A `tcp_proxy` connection's fields, with its random `%STREAM_ID%` (as Envoy's tcp_proxy
/// sets one on its connection) drawn only when a format of its lines (the `tcp_proxy`'s or
/// the listener's) reads it.
fn tcp_fields(view: &ListenerView, tcp: &TcpProxy) -> Fields {
    let reads =
        |logs: Option<&crate::access_log::AccessLogs>| logs.is_some_and(|l| l.needs().stream_id);
    let mut f = Fields::new();
    if reads(tcp.access_log.as_deref()) || reads(view.listener_log.as_deref()) {
        f.stream_id = Some(crate::http1::write::request_id());
    }
    f
}

/// The access log lines of a connection closed before its terminal filter served it (a
/// network `local_ratelimit` or `connection_limit` refusal, a failed TLS handshake), as
/// Envoy 1.40 writes them: the listener's (`NotSet`) and, on a `tcp_proxy` chain, the
/// `tcp_proxy`'s (`TcpConnectionEnd`: Envoy created the filter with the chain). `started`:
/// when the connection was accepted. `inspected`: the listener has a TLS inspector (only the
/// inspector's SNI is `%REQUESTED_SERVER_NAME%`).
pub fn log_refused(
    view: &ListenerView,
    info: &ConnInfo,
    inspected: bool,
    started: &Fields,
    why: &Refusal<'_>,
    w: usize,
) {
    let tcp = view.network.tcp_proxy.as_ref();
    let tcp_log = tcp.and_then(|t| t.access_log.as_deref());
    if view.listener_log.is_none() && tcp_log.is_none() {
        return;
    }
    let mut fields = started.clone();
    if why.picked
        && let Some(tcp) = tcp
    {
        pick_refused_cluster(&mut fields, tcp);
    }
    let cluster = fields.cluster.and_then(|i| view.clusters.get(i));
    let mut info = std::borrow::Cow::Borrowed(info);
    let sni = info.tls.as_deref().is_some_and(|t| t.sni.is_some());
    if !inspected
        && sni
        && let Some(t) = info.to_mut().tls.as_deref_mut()
    {
        t.sni = None;
    }
    let mut e = entry(
        &fields,
        why.flags,
        cluster.map(|c| ClusterNames::of(&c.cfg)),
        &info,
    );
    e.termination = why.termination;
    e.transport_failure = why.transport_failure;
    write_lines(&mut e, tcp_log, view.listener_log.as_deref(), w);
}

/// Sets the cluster a refused connection's lines name: Envoy's `tcp_proxy` picked it (by
/// weight) when the connection was created, before a filter refused it.
fn pick_refused_cluster(fields: &mut Fields, tcp: &TcpProxy) {
    fields.cluster = tcp.pick_cluster(fastrand::u64(..));
}

/// Renders `e` into the `tcp_proxy`'s log (`TcpConnectionEnd`) and the listener's (`NotSet`).
fn write_lines(
    e: &mut Entry<'_>,
    tcp: Option<&crate::access_log::AccessLogs>,
    listener: Option<&crate::access_log::AccessLogs>,
    w: usize,
) {
    if let Some(logs) = tcp {
        e.kind = LogType::TcpConnectionEnd;
        logs.log(e, w);
    }
    if let Some(logs) = listener {
        e.kind = LogType::NotSet;
        logs.log(e, w);
    }
}

/// Serves one downstream connection of a `tcp_proxy` listener.
pub async fn serve(
    worker: Rc<Worker>,
    view: Arc<ListenerView>,
    down: Stream,
    info: ConnInfo,
    _guard: ConnGuard,
) {
    let w = worker.index;
    let start = Instant::now();
    let ls = &view.stats;
    ls.inc(w, listener::Counter::DownstreamCxTotal);
    ls.gauge_inc(w, listener::Gauge::DownstreamCxActive);
    if let Some(tcp) = &view.network.tcp_proxy {
        tcp.count(w, Counter::DownstreamCxTotal, 1);
        let logged = tcp.access_log.is_some() || view.listener_log.is_some();
        let mut log = Log {
            fields: logged.then(|| Box::new(tcp_fields(&view, tcp))),
            flags: ResponseFlags::default(),
            termination: "",
        };
        // A network RBAC filter that denies the connection closes it before any upstream
        // connect.
        match view.network.authorize(&info, w) {
            Ok(()) => proxy(w, &view, tcp, &down, &info, &mut log).await,
            Err(details) => {
                log.termination = details;
                if let Some(f) = log.fields() {
                    pick_refused_cluster(f, tcp);
                }
            }
        }
        log.write(w, &view, tcp, &info);
    }
    ls.gauge_dec(w, listener::Gauge::DownstreamCxActive);
    ls.inc(w, listener::Counter::DownstreamCxDestroy);
    ls.record_us(
        w,
        listener::Histogram::DownstreamCxLengthMs,
        start.elapsed().as_micros() as u64,
    );
}

/// The listener access log's line for a connection no filter chain matched (closed at
/// once): Envoy's `NR` flag and `filter_chain_not_found` details.
pub fn log_no_chain(logs: &crate::access_log::AccessLogs, info: &ConnInfo, w: usize) {
    let mut fields = Fields::new();
    fields.details = "filter_chain_not_found";
    let mut flags = ResponseFlags::default();
    flags.insert(ResponseFlag::NoRoute);
    logs.log(&entry(&fields, flags, None, info), w);
}

/// A connection's line: no HTTP status, protocol or request head.
fn entry<'a>(
    fields: &'a Fields,
    flags: ResponseFlags,
    cluster: Option<ClusterNames<'a>>,
    info: &'a ConnInfo,
) -> Entry<'a> {
    Entry {
        fields,
        kind: LogType::NotSet,
        termination: "",
        transport_failure: "",
        status: 0,
        flags,
        minor: None,
        req_head: &[],
        route_name: "",
        cluster,
        downstream_remote: info.peer,
        downstream_local: info.local,
        connection_id: info.id,
        tls: info.tls.as_deref(),
        end: std::time::Instant::now(),
        generate_request_id: false,
        generated_id: OnceCell::new(),
        req_index: OnceCell::new(),
    }
}

/// What a connection's access log lines show (`fields` None: no log configured).
struct Log<'v> {
    fields: Option<Box<Fields>>,
    flags: ResponseFlags,
    /// `%CONNECTION_TERMINATION_DETAILS%` (a network RBAC denial's).
    termination: &'v str,
}

impl Log<'_> {
    fn fields(&mut self) -> Option<&mut Fields> {
        self.fields.as_deref_mut()
    }

    /// Renders the lines of the `tcp_proxy`'s and the listener's access logs.
    fn write(&self, w: usize, view: &ListenerView, tcp: &TcpProxy, info: &ConnInfo) {
        let Some(f) = self.fields.as_deref() else {
            return;
        };
        let cluster = f.cluster.and_then(|i| view.clusters.get(i));
        let mut e = entry(
            f,
            self.flags,
            cluster.map(|c| ClusterNames::of(&c.cfg)),
            info,
        );
        e.termination = self.termination;
        write_lines(
            &mut e,
            tcp.access_log.as_deref(),
            view.listener_log.as_deref(),
            w,
        );
    }

    /// An intermediate line of the `tcp_proxy`'s log (`TcpUpstreamConnected`,
    /// `TcpPeriodic`) with the byte counts so far.
    fn flush(
        &self,
        w: usize,
        view: &ListenerView,
        tcp: &TcpProxy,
        info: &ConnInfo,
        kind: LogType,
        bytes: Option<(u64, u64)>,
    ) {
        let (Some(f), Some(logs)) = (self.fields.as_deref(), tcp.access_log.as_deref()) else {
            return;
        };
        let mut now = f.clone();
        if let Some((rx, tx)) = bytes {
            now.bytes_received = rx;
            now.bytes_sent = tx;
        }
        let cluster = f.cluster.and_then(|i| view.clusters.get(i));
        let mut e = entry(
            &now,
            self.flags,
            cluster.map(|c| ClusterNames::of(&c.cfg)),
            info,
        );
        e.kind = kind;
        logs.log(&e, w);
    }
}

async fn proxy(
    w: usize,
    view: &ListenerView,
    tcp: &TcpProxy,
    down: &Stream,
    info: &ConnInfo,
    log: &mut Log<'_>,
) {
    let peer = info.peer;
    let Some(cluster) = tcp
        .pick_cluster(fastrand::u64(..))
        .and_then(|i| view.clusters.get(i).map(|c| (i, c)))
    else {
        tcp.count(w, Counter::DownstreamCxNoRoute, 1);
        log.flags.insert(ResponseFlag::NoClusterFound);
        return;
    };
    let (index, cluster) = cluster;
    if let Some(f) = log.fields() {
        f.cluster = Some(index);
    }
    let hash = tcp
        .hash_source_ip
        .then(|| xxh64(peer.ip().to_string().as_bytes(), 0));
    let mut tried = 0;
    let connected = connect(w, cluster, tcp, hash, &mut tried).await;
    if let Some(f) = log.fields() {
        f.attempts = tried;
    }
    let mut up = match connected {
        Ok(up) => up,
        Err(fail) => {
            log.flags.extend(fail.flags);
            if let Some(f) = log.fields() {
                f.upstream_host = fail.host;
                f.failure_reason = fail.reason;
            }
            return;
        }
    };
    if let Some(f) = log.fields() {
        f.upstream_host = up.stream.as_tcp().and_then(|t| t.peer_addr().ok());
        f.upstream_local = up.stream.as_tcp().and_then(|t| t.local_addr().ok());
    }
    let bytes = Bytes {
        w,
        tcp,
        up: &up,
        received: Cell::new(0),
        sent: Cell::new(0),
    };
    let seen = Seen::default();
    let shown = &*log;
    if tcp.flush_on_connected {
        shown.flush(w, view, tcp, info, LogType::TcpUpstreamConnected, None);
    }
    // Plain sockets both ways: zero-copy splice; TLS on either side: a copy loop.
    let relay = async {
        match (down.as_tcp(), up.stream.as_tcp()) {
            (Some(d), Some(u)) => relay::relay(d, u, tcp.idle_timeout, &bytes, &seen).await,
            _ => super::copy::relay(down, &up.stream, tcp.idle_timeout, &bytes, &seen).await,
        }
    };
    let periodic = tcp
        .flush_interval
        .zip(shown.fields.as_deref())
        .filter(|_| tcp.access_log.is_some());
    let end = match periodic {
        None => relay.await,
        Some((every, f)) => {
            // `TcpPeriodic` lines on the worker's timer, from the connection's start (as
            // Envoy's), until the relay ends.
            let ticks = async {
                let first = Instant::from_std(f.begun) + every;
                let mut t = tokio::time::interval_at(first, every);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    t.tick().await;
                    let counts = (bytes.received.get(), bytes.sent.get());
                    shown.flush(w, view, tcp, info, LogType::TcpPeriodic, Some(counts));
                }
            };
            tokio::select! {
                end = relay => end,
                never = ticks => never,
            }
        }
    };
    if let End::IdleTimeout = end {
        tcp.count(w, Counter::IdleTimeout, 1);
    }
    if let Some(f) = log.fields() {
        f.bytes_received = bytes.received.get();
        f.bytes_sent = bytes.sent.get();
    }
    up.remote_closed = seen.upstream_closed.get();
}

/// Why no upstream connection was made: the response flags, the last host tried and
/// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`, as Envoy's tcp_proxy logs them.
struct ConnectFail {
    flags: ResponseFlags,
    host: Option<SocketAddr>,
    reason: &'static str,
}

impl ConnectFail {
    fn of(flag: ResponseFlag) -> ConnectFail {
        let mut flags = ResponseFlags::default();
        flags.insert(flag);
        ConnectFail {
            flags,
            host: None,
            reason: "",
        }
    }
}

/// Connects to a host of `cluster`, trying newly picked hosts up to
/// `max_connect_attempts` times; the failure (the downstream is then closed) on overflow,
/// no healthy host or the last failed attempt. `tried`: the connects started
/// (`%UPSTREAM_REQUEST_ATTEMPT_COUNT%`).
async fn connect(
    w: usize,
    cluster: &Arc<ClusterState>,
    tcp: &TcpProxy,
    hash: Option<u64>,
    tried: &mut u32,
) -> Result<UpConn, ConnectFail> {
    let mut last = ConnectFail::of(ResponseFlag::UpstreamConnectionFailure);
    for attempt in 1..=tcp.max_connect_attempts {
        // As Envoy's tcp_proxy: checked before each connection, never waited on.
        if cluster.breakers.is_open(Resource::Connections) {
            cluster.stats.inc(w, cluster::Counter::UpstreamCxOverflow);
            return Err(ConnectFail::of(ResponseFlag::UpstreamOverflow));
        }
        let Some((host, addr)) = pick_host(cluster, w, hash) else {
            cluster
                .stats
                .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
            return Err(ConnectFail::of(ResponseFlag::NoHealthyUpstream));
        };
        *tried = attempt;
        match connect_tcp(w, cluster, &host, addr).await {
            Ok(up) => {
                cluster.report_result(&host, Outcome::Status(200));
                return Ok(up);
            }
            Err(e) => {
                cluster.report_result(&host, Outcome::LocalFailure);
                last.host = Some(addr);
                last.reason = match e {
                    ConnectError::Failure => "delayed_connect_error:_Connection_refused",
                    ConnectError::Timeout => "",
                };
                if attempt == tcp.max_connect_attempts {
                    cluster
                        .stats
                        .inc(w, cluster::Counter::UpstreamCxConnectAttemptsExceeded);
                    last.flags.insert(ResponseFlag::UpstreamRetryLimitExceeded);
                }
            }
        }
    }
    Err(last)
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
/// `upstream_cx_*_bytes_total`, and totals the downstream's for the access log.
struct Bytes<'a> {
    w: usize,
    tcp: &'a TcpProxy,
    up: &'a UpConn,
    /// Bytes read from the downstream (`%BYTES_RECEIVED%`).
    received: Cell<u64>,
    /// Bytes written to the downstream (`%BYTES_SENT%`).
    sent: Cell<u64>,
}

impl Counts for Bytes<'_> {
    fn read(&self, downstream: bool, n: usize) {
        if downstream {
            self.tcp
                .count(self.w, Counter::DownstreamCxRxBytesTotal, n as u64);
            self.received.set(self.received.get() + n as u64);
        } else {
            self.up.rx(n);
        }
    }

    fn written(&self, downstream: bool, n: usize) {
        if downstream {
            self.tcp
                .count(self.w, Counter::DownstreamCxTxBytesTotal, n as u64);
            self.sent.set(self.sent.get() + n as u64);
        } else {
            self.up.tx(n);
        }
    }
}
