//! Compiling one snapshot listener: each filter chain (and the default chain) into its
//! connection manager or `tcp_proxy` plus network filters, the chain matcher, and the
//! listener filters. Done in two steps because the stats scope needs the bound port.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{ChainMatcher, ListenerFilters, TlsInspector};
use crate::cluster::ClusterState;
use crate::compiled::{
    CompiledListener, Hcm, ListenerView, compile_hcm, inert_hcm, listener_stat_prefix, read_cap,
};
use crate::config::snapshot;
use crate::stats::{ListenerStats, Registry};
use crate::tcp::NetworkFilters;

/// One chain's compiled filters, before the listener is bound.
struct ChainParts {
    hcm: Hcm,
    network: NetworkFilters,
    tls: Option<crate::tls::ServerTlsConfig>,
}

/// A listener compiled up to its stats scope (which names the bound port).
pub struct ListenerParts {
    chains: Vec<ChainParts>,
    default_chain: Option<ChainParts>,
    matcher: ChainMatcher,
    filters: ListenerFilters,
    per_connection_buffer_limit_bytes: u32,
    stat_prefix: Option<String>,
    global_connection_limit: Option<u64>,
    access_log: Option<Arc<crate::access_log::AccessLogs>>,
}

/// `previous`: the chain compiled before in its place (see `compile_listener`).
fn compile_chain(
    c: &mut snapshot::FilterChain,
    previous: Option<&ListenerView>,
    lookup: &dyn Fn(&str) -> Option<usize>,
    stat_name: &dyn Fn(usize) -> String,
    registry: &Registry,
    local_address: &str,
    path: &str,
) -> Result<ChainParts, String> {
    let hcm = match &mut c.filter {
        snapshot::NetworkFilter::HttpConnectionManager(h) => compile_hcm(
            h,
            previous.map(|v| &v.hcm),
            lookup,
            stat_name,
            registry,
            local_address,
            &format!("{path}.filter.http_connection_manager"),
        )?,
        snapshot::NetworkFilter::TcpProxy(_) => inert_hcm(local_address)?,
    };
    let network = NetworkFilters::compile(c, lookup, registry, path)?;
    let tls = crate::tls::ServerTlsConfig::compile_chain(c, path)?;
    Ok(ChainParts { hcm, network, tls })
}

/// Compiles `l` (at `path`, e.g. `listeners[0]`); errors name the field. `lookup`: a
/// cluster's position in the cluster list; `stat_name`: the stats name of the cluster at a
/// position (`alt_stat_name` or its name). `previous`: the listener compiled before under
/// the same name with the same `lookup`, whose chains (by position, and the default chain)
/// lend their unchanged virtual hosts. Route configs move out of `l` into the result.
#[allow(clippy::too_many_arguments)]
pub fn compile_listener(
    l: &mut snapshot::Listener,
    previous: Option<&CompiledListener>,
    lookup: &dyn Fn(&str) -> Option<usize>,
    stat_name: &dyn Fn(usize) -> String,
    registry: &Registry,
    local_address: &str,
    global_limit: Option<u64>,
    path: &str,
) -> Result<ListenerParts, String> {
    if l.filter_chains.is_empty() && l.default_filter_chain.is_none() {
        return Err(format!(
            "{path}.filter_chains: a listener needs a filter chain or a default_filter_chain"
        ));
    }
    let mut chains = Vec::with_capacity(l.filter_chains.len());
    let mut at = Vec::with_capacity(l.filter_chains.len());
    for (i, c) in l.filter_chains.iter_mut().enumerate() {
        let here = format!("{path}.filter_chains[{i}]");
        chains.push(compile_chain(
            c,
            previous.and_then(|p| p.chains.get(i)).map(|v| &**v),
            lookup,
            stat_name,
            registry,
            local_address,
            &here,
        )?);
        at.push(here);
    }
    let matches: Vec<_> = l
        .filter_chains
        .iter()
        .zip(at)
        .map(|(c, at)| (&c.filter_chain_match, at))
        .collect();
    let matcher = ChainMatcher::compile(&matches)?;
    let default_chain = match &mut l.default_filter_chain {
        Some(c) => Some(compile_chain(
            c,
            previous.and_then(|p| p.default_chain.as_deref()),
            lookup,
            stat_name,
            registry,
            local_address,
            &format!("{path}.default_filter_chain"),
        )?),
        None => None,
    };
    let access_log =
        crate::access_log::AccessLogs::compile(&l.access_log, registry, path)?.map(Arc::from);
    let inspector = match &l.tls_inspector {
        Some(t) => Some(TlsInspector::compile(t, registry, path)?),
        None => None,
    };
    Ok(ListenerParts {
        chains,
        default_chain,
        matcher,
        filters: ListenerFilters {
            tls_inspector: inspector,
            timeout: (l.listener_filters_timeout_ms > 0)
                .then(|| Duration::from_millis(l.listener_filters_timeout_ms)),
            continue_on_timeout: l.continue_on_listener_filters_timeout,
        },
        per_connection_buffer_limit_bytes: l.per_connection_buffer_limit_bytes,
        stat_prefix: l.stat_prefix.clone(),
        global_connection_limit: global_limit.filter(|_| !l.ignore_global_conn_limit),
        access_log,
    })
}

impl ListenerParts {
    /// The listener bound at `addr` (the port it got), its chains indexing `clusters`.
    pub fn finish(
        self,
        addr: SocketAddr,
        clusters: &Arc<[Arc<ClusterState>]>,
        registry: &Registry,
    ) -> CompiledListener {
        let prefix = listener_stat_prefix(addr, self.stat_prefix.as_deref());
        let stats = ListenerStats::new(registry, &prefix);
        let limit = self.per_connection_buffer_limit_bytes;
        let view = |p: ChainParts| {
            Arc::new(ListenerView {
                hcm: p.hcm,
                clusters: clusters.clone(),
                stats: stats.clone(),
                read_cap: read_cap(limit),
                buffer_limit: limit,
                tls: p.tls.map(|cfg| {
                    let stats = crate::tls::SslStats::new(registry, &prefix);
                    Arc::new(crate::tls::ServerTls { cfg, stats })
                }),
                network: p.network,
                listener_log: self.access_log.clone(),
            })
        };
        CompiledListener {
            chains: self.chains.into_iter().map(view).collect(),
            default_chain: self.default_chain.map(view),
            matcher: self.matcher,
            filters: self.filters,
            stats,
            global_connection_limit: self.global_connection_limit,
            access_log: self.access_log,
        }
    }
}
