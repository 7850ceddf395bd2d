//! The compiled snapshot: per listener its filter chains (each a `ListenerView`: connection
//! manager settings and route table or `tcp_proxy`, the cluster list they index, the
//! listener's stats scope and buffer cap), the chain matcher and the listener filters.
//!
//! A connection loads its listener's `ArcSwap<CompiledListener>` twice per request: when it
//! starts waiting for a head and again once the head is complete (so a snapshot applied
//! while it waited applies to the request). Each load is a lock-free `ArcSwap::load`; the
//! connection's own reference changes only when the pointer changed. A forwarded request also
//! loads its cluster's host set once (`ClusterState.hosts`).
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::cluster::ClusterState;
use crate::config::snapshot;
use crate::filters::FilterChain;
use crate::pool::BUF_SIZE;
use crate::router::RouteTable;
use crate::stats::{HttpStats, ListenerStats, Registry};

/// A compiled `http_connection_manager`.
pub struct Hcm {
    pub cfg: snapshot::HttpConnectionManager,
    pub routes: RouteTable,
    /// The HTTP filters before the router (empty: none configured).
    pub filters: FilterChain,
    pub stats: HttpStats,
    /// `http1.*` (shared by every connection manager, as Envoy's codec stats).
    pub codec_stats: crate::stats::Http1CodecStats,
    /// `http2.*` (the flood counters, shared likewise).
    pub h2_codec_stats: crate::stats::Http2CodecStats,
    pub idle_timeout: Option<Duration>,
    /// Largest request head accepted (`max_request_headers_kb`).
    pub max_head: usize,
    /// `server` value written on responses (empty for pass-through).
    pub server_name: Vec<u8>,
    /// The node's address (`Snapshot.local_address`), appended to x-forwarded-for instead of
    /// a loopback peer.
    pub local_address: Box<[u8]>,
    /// `access_log` (`None`: none configured, nothing is kept per request).
    pub access_log: Option<Box<crate::access_log::AccessLogs>>,
    /// `tracing` (`None`: no trace headers, no spans).
    pub tracing: Option<Box<crate::tracing::Tracer>>,
    /// The `grpc_stats` filter (`None`: not configured, nothing is looked at).
    pub grpc_stats: Option<Box<crate::filters::grpc_stats::GrpcStats>>,
}

/// What the connections of one filter chain see: its HCM, the clusters its routes index, the
/// listener's stats scope and how much request body one read may buffer.
pub struct ListenerView {
    pub hcm: Hcm,
    pub clusters: Arc<[Arc<ClusterState>]>,
    /// `listener.<stat_prefix or address_port>`.
    pub stats: ListenerStats,
    /// Most bytes of request body buffered per connection while streaming (see
    /// `read_cap`).
    pub read_cap: usize,
    /// `per_connection_buffer_limit_bytes` (issue 4: the largest request body kept for a
    /// retry when the route sets no `per_request_buffer_limit_bytes`).
    pub buffer_limit: u32,
    /// Network filters besides the HCM: connection rate limits, and the `tcp_proxy` that
    /// replaces the HCM on a TCP listener (whose `hcm` is then `inert_hcm`, never used).
    pub network: crate::tcp::NetworkFilters,
    /// The filter chain's `DownstreamTlsContext`: connections are TLS, terminated before
    /// the terminal filter runs (None: plain TCP).
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    /// The listener's `access_log` (shared by its chains; None: none).
    pub listener_log: Option<Arc<crate::access_log::AccessLogs>>,
}

/// The most body bytes one connection buffers while streaming, for a
/// `per_connection_buffer_limit_bytes` of `limit`: meshcore reads at most one buffer
/// (`BUF_SIZE`, 8 KiB) before writing it on, so the limit lowers that cap and never raises
/// it (0, as in Envoy, sets no limit).
pub fn read_cap(limit: u32) -> usize {
    match limit as usize {
        0 => BUF_SIZE,
        l => l.min(BUF_SIZE),
    }
}

/// A listener as compiled: its filter chains, how a connection picks one, and its listener
/// filters.
pub struct CompiledListener {
    /// `filter_chains`, in config order.
    pub chains: Box<[Arc<ListenerView>]>,
    /// `default_filter_chain`.
    pub default_chain: Option<Arc<ListenerView>>,
    pub matcher: crate::listener::ChainMatcher,
    pub filters: crate::listener::ListenerFilters,
    /// `listener.<stat_prefix or address_port>` (each chain's view holds the same scope).
    pub stats: ListenerStats,
    /// The overload manager's global downstream connection limit, when it applies here.
    pub global_connection_limit: Option<u64>,
    /// The listener's `access_log` (None: none): also logs connections no chain matched.
    pub access_log: Option<Arc<crate::access_log::AccessLogs>>,
}

impl CompiledListener {
    /// Whether its chains index `clusters` (this very list: the same positions).
    pub fn compiled_over(&self, clusters: &Arc<[Arc<ClusterState>]>) -> bool {
        self.chains
            .iter()
            .chain(&self.default_chain)
            .all(|v| Arc::ptr_eq(&v.clusters, clusters))
    }

    /// The chain a connection with `inputs` uses: the matching one, else the default chain
    /// (None: the connection is closed, `no_filter_chain_match`).
    pub fn select(&self, inputs: &crate::listener::MatchInputs) -> Option<&Arc<ListenerView>> {
        match self.matcher.find(inputs) {
            Some(i) => self.chains.get(i),
            None => self.default_chain.as_ref(),
        }
    }
}

/// An HTTP connection's place: its listener, the compiled listener its chain was chosen from,
/// the chain, and the inputs that chose it (to choose again after a config update).
#[derive(Clone)]
pub struct Chosen {
    pub handle: Arc<ListenerHandle>,
    pub listener: Arc<CompiledListener>,
    pub view: Arc<ListenerView>,
    pub inputs: Box<crate::listener::MatchInputs>,
}

/// A bound listener, shared by its accept loops and connections on every worker. Applying a
/// snapshot that keeps the listener stores its new compiled form here; connections pick it up
/// on their next request (choosing their chain again with the same inputs).
pub struct ListenerHandle {
    pub id: u64,
    pub name: String,
    /// Configured address and port (the identity used to decide "unchanged").
    pub address: IpAddr,
    pub configured_port: u16,
    /// The port actually bound (differs from `configured_port` when that was 0).
    pub port: u16,
    pub compiled: ArcSwap<CompiledListener>,
    /// Set when the listener is removed or drained: connections close after their current
    /// request.
    pub closing: AtomicBool,
}

impl ListenerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

/// Envoy's listener stat prefix: `listener.<stat_prefix>` when the listener sets one, else
/// `listener.<ip>_<port>` (`[::]` style for IPv6, ':' → '_').
pub fn listener_stat_prefix(addr: SocketAddr, stat_prefix: Option<&str>) -> String {
    match stat_prefix {
        Some(p) if !p.is_empty() => format!("listener.{p}"),
        _ => format!("listener.{addr}").replace(':', "_"),
    }
}

/// Compiles one connection manager; `path` names it in errors. `previous`: the connection
/// manager compiled before in its place with the same `cluster_index`, whose unchanged
/// virtual hosts are reused (`RouteTable::compile_reusing`). On success the route config
/// moves out of `cfg` into the `Hcm` (left empty in `cfg`: no copy of a large one).
pub fn compile_hcm(
    cfg: &mut snapshot::HttpConnectionManager,
    previous: Option<&Hcm>,
    cluster_index: &dyn Fn(&str) -> Option<usize>,
    stat_name: &dyn Fn(usize) -> String,
    registry: &Registry,
    local_address: &str,
    path: &str,
) -> Result<Hcm, String> {
    if cfg.stat_prefix.is_empty() {
        return Err(format!("{path}.stat_prefix: must not be empty"));
    }
    if cfg.max_request_headers_kb == 0 || cfg.max_request_headers_kb > 8192 {
        return Err(format!("{path}.max_request_headers_kb: must be 1..8192"));
    }
    let previous = previous.map(|p| (&p.cfg.route_config, &p.routes));
    let routes = RouteTable::compile_reusing(&cfg.route_config, cluster_index, previous)
        .map_err(|e| format!("{path}.route_config.{e}"))?;
    let server_name = match cfg.server_header_transformation {
        snapshot::ServerHeaderTransformation::PassThrough => Vec::new(),
        _ => cfg.server_name.as_bytes().to_vec(),
    };
    if server_name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(format!("{path}.server_name: invalid header value"));
    }
    let filters = FilterChain::compile(cfg, cluster_index, registry, path)?;
    let stats = HttpStats::new(registry, &format!("http.{}", cfg.stat_prefix));
    let codec_stats = crate::stats::Http1CodecStats::new(registry, "http1");
    let h2_codec_stats = crate::stats::Http2CodecStats::new(registry, "http2");
    let access_log = crate::access_log::AccessLogs::compile(&cfg.access_log, registry, path)?;
    let tracing = match &cfg.tracing {
        Some(t) => Some(Box::new(crate::tracing::Tracer::compile(
            t,
            registry,
            &cfg.stat_prefix,
            path,
        )?)),
        None => None,
    };
    let grpc_stats = cfg.http_filters.iter().find_map(|f| match &f.config {
        snapshot::HttpFilterConfig::GrpcStats(g) => {
            Some(Box::new(crate::filters::grpc_stats::GrpcStats::compile(
                g,
                cfg,
                cluster_index,
                stat_name,
                registry,
            )))
        }
        _ => None,
    });
    let route_config = std::mem::take(&mut cfg.route_config);
    let mut kept = cfg.clone();
    kept.route_config = route_config;
    Ok(Hcm {
        stats,
        codec_stats,
        h2_codec_stats,
        idle_timeout: (kept.idle_timeout_ms > 0)
            .then(|| Duration::from_millis(kept.idle_timeout_ms)),
        max_head: kept.max_request_headers_kb as usize * 1024,
        cfg: kept,
        routes,
        filters,
        server_name,
        local_address: local_address.as_bytes().into(),
        access_log,
        tracing,
        grpc_stats,
    })
}

/// The connection manager of a listener whose terminal filter is `tcp_proxy`: no routes,
/// stats in a registry of its own (never exported). Its connections never reach it.
pub fn inert_hcm(local_address: &str) -> Result<Hcm, String> {
    let mut cfg: snapshot::HttpConnectionManager = serde_json::from_value(serde_json::json!({
        "stat_prefix": "tcp_proxy_listener",
        "route_config": {},
    }))
    .map_err(|e| e.to_string())?;
    let no_cluster = |_| String::new();
    compile_hcm(
        &mut cfg,
        None,
        &|_| None,
        &no_cluster,
        &Registry::new(1),
        local_address,
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_limit_lowers_the_read_cap_only() {
        assert_eq!(read_cap(0), BUF_SIZE);
        assert_eq!(read_cap(1024 * 1024), BUF_SIZE);
        assert_eq!(read_cap(1024), 1024);
        assert_eq!(read_cap(1), 1);
    }

    #[test]
    fn listener_stat_prefix_prefers_the_configured_one() {
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(listener_stat_prefix(addr, None), "listener.[__1]_80");
        assert_eq!(listener_stat_prefix(addr, Some("")), "listener.[__1]_80");
        assert_eq!(listener_stat_prefix(addr, Some("edge")), "listener.edge");
    }
}
