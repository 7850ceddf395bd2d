//! Envoy's network filters besides the HTTP connection manager: `tcp_proxy` (relay a
//! connection's bytes to a cluster's host) and `local_ratelimit` (close connections that
//! find no token), `connection_limit` and `rbac`, compiled per filter chain.
pub mod connection_limit;
pub mod copy;
mod pipe;
pub mod relay;
mod session;
pub mod stats;

pub use session::{Refusal, log_no_chain, log_refused, refusal_start, refuse, serve};

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::snapshot;
use crate::filters::local_ratelimit::TokenBucket;
use crate::stats::{Registry, Scope};
use stats::{network_rate_limit, tcp_proxy};

/// A filter chain's network filters other than the connection manager.
#[derive(Default)]
pub struct NetworkFilters {
    /// `local_ratelimit` filters, in order; the first without a token closes the connection.
    pub rate_limits: Box<[ConnectionRateLimit]>,
    /// `connection_limit` filters: each admitted connection holds a place in every one.
    pub connection_limits: Box<[connection_limit::ConnectionLimit]>,
    /// `rbac` filters, in order; the first that denies closes the connection.
    pub rbac: Box<[crate::filters::rbac::NetworkRbac]>,
    /// The terminal `tcp_proxy` (None: the listener's terminal filter is the HCM).
    pub tcp_proxy: Option<TcpProxy>,
}

impl NetworkFilters {
    /// Compiles `chain`'s network filters; `path` names the chain in errors.
    pub fn compile(
        chain: &snapshot::FilterChain,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        registry: &Registry,
        path: &str,
    ) -> Result<NetworkFilters, String> {
        let rate_limits = chain
            .connection_rate_limits
            .iter()
            .enumerate()
            .map(|(i, c)| {
                ConnectionRateLimit::compile(
                    c,
                    registry,
                    &format!("{path}.connection_rate_limits[{i}]"),
                )
            })
            .collect::<Result<Box<[_]>, String>>()?;
        let connection_limits = chain
            .connection_limits
            .iter()
            .enumerate()
            .map(|(i, c)| {
                connection_limit::ConnectionLimit::compile(
                    c,
                    registry,
                    &format!("{path}.connection_limits[{i}]"),
                )
            })
            .collect::<Result<Box<[_]>, String>>()?;
        let rbac = chain
            .rbac
            .iter()
            .enumerate()
            .map(|(i, c)| {
                crate::filters::rbac::NetworkRbac::compile(
                    c,
                    registry,
                    &format!("{path}.rbac[{i}]"),
                )
            })
            .collect::<Result<Box<[_]>, String>>()?;
        let tcp_proxy = match &chain.filter {
            snapshot::NetworkFilter::TcpProxy(t) => Some(TcpProxy::compile(
                t,
                cluster_index,
                registry,
                &format!("{path}.filter.tcp_proxy"),
            )?),
            snapshot::NetworkFilter::HttpConnectionManager(_) => None,
        };
        Ok(NetworkFilters {
            rate_limits,
            connection_limits,
            rbac,
            tcp_proxy,
        })
    }

    /// A place in every `connection_limit`, or the refusing limit's delay (`Err`): the
    /// places already taken are given back.
    pub fn acquire_places(
        &self,
        w: usize,
    ) -> Result<Vec<connection_limit::LimitSlot>, Option<Duration>> {
        let mut slots = Vec::with_capacity(self.connection_limits.len());
        for l in self.connection_limits.iter() {
            match l.acquire(w) {
                Some(s) => slots.push(s),
                None => return Err(l.delay()),
            }
        }
        Ok(slots)
    }

    /// Takes a token from every rate limit in order: false (counted as `rate_limited` by
    /// the one that had none) means the connection is to be closed now.
    pub fn admit(&self, w: usize) -> bool {
        self.rate_limits.iter().all(|r| r.admit(w))
    }

    /// The network RBAC filters' decision on a connection whose `ConnInfo` is complete
    /// (accepted, TLS handshake done): `Err` (counted as `denied` by the filter that denied
    /// it) means the connection is to be closed now, before a byte is read; it carries the
    /// connection's `%CONNECTION_TERMINATION_DETAILS%`
    /// (`rbac_access_denied_matched_policy[...]`).
    pub fn authorize(&self, info: &crate::conn_info::ConnInfo, w: usize) -> Result<(), &str> {
        self.rbac.iter().try_for_each(|r| r.decide(info, w))
    }
}

/// A compiled network `local_ratelimit`: one token bucket shared by every worker.
pub struct ConnectionRateLimit {
    bucket: TokenBucket,
    stats: Arc<Scope>,
}

impl ConnectionRateLimit {
    fn compile(
        c: &snapshot::ConnectionRateLimit,
        registry: &Registry,
        path: &str,
    ) -> Result<ConnectionRateLimit, String> {
        if c.stat_prefix.is_empty() {
            return Err(format!("{path}.stat_prefix: must not be empty"));
        }
        let b = &c.token_bucket;
        if b.fill_interval_ms < 50 {
            return Err(format!(
                "{path}.token_bucket.fill_interval: must be at least 50ms"
            ));
        }
        Ok(ConnectionRateLimit {
            bucket: TokenBucket::new(
                b.max_tokens,
                b.tokens_per_fill,
                Duration::from_millis(b.fill_interval_ms),
                Instant::now(),
            ),
            stats: registry.scope(
                &format!("local_rate_limit.{}", c.stat_prefix),
                &network_rate_limit::LAYOUT,
            ),
        })
    }

    fn admit(&self, w: usize) -> bool {
        let ok = self.bucket.try_take(Instant::now()).is_some();
        if !ok {
            self.stats
                .add(w, network_rate_limit::Counter::RateLimited as usize, 1);
        }
        ok
    }
}

/// A compiled `tcp_proxy`.
pub struct TcpProxy {
    stats: Arc<Scope>,
    /// Index of each cluster (None: no such cluster, counted as `downstream_cx_no_route`)
    /// with its cumulative weight.
    clusters: Box<[(Option<usize>, u64)]>,
    total_weight: u64,
    idle_timeout: Option<Duration>,
    max_connect_attempts: u32,
    hash_source_ip: bool,
    /// `access_log` (None: none configured; nothing is kept per connection).
    access_log: Option<Box<crate::access_log::AccessLogs>>,
    /// `access_log_flush_interval`: a `TcpPeriodic` line this often (None: none).
    flush_interval: Option<Duration>,
    /// `flush_access_log_on_connected`: a `TcpUpstreamConnected` line.
    flush_on_connected: bool,
}

impl TcpProxy {
    fn compile(
        c: &snapshot::TcpProxy,
        cluster_index: &dyn Fn(&str) -> Option<usize>,
        registry: &Registry,
        path: &str,
    ) -> Result<TcpProxy, String> {
        if c.stat_prefix.is_empty() {
            return Err(format!("{path}.stat_prefix: must not be empty"));
        }
        if c.clusters.is_empty() {
            return Err(format!("{path}.clusters: must name at least one cluster"));
        }
        if c.max_connect_attempts == 0 {
            return Err(format!("{path}.max_connect_attempts: must be at least 1"));
        }
        let mut total = 0u64;
        let mut clusters = Vec::with_capacity(c.clusters.len());
        for (i, wc) in c.clusters.iter().enumerate() {
            if wc.weight == 0 {
                return Err(format!("{path}.clusters[{i}].weight: must be at least 1"));
            }
            total += u64::from(wc.weight);
            clusters.push((cluster_index(&wc.name), total));
        }
        Ok(TcpProxy {
            stats: registry.scope(&format!("tcp.{}", c.stat_prefix), &tcp_proxy::LAYOUT),
            clusters: clusters.into(),
            total_weight: total,
            idle_timeout: (c.idle_timeout_ms > 0).then(|| Duration::from_millis(c.idle_timeout_ms)),
            max_connect_attempts: c.max_connect_attempts,
            hash_source_ip: c.hash_source_ip,
            access_log: crate::access_log::AccessLogs::compile(&c.access_log, registry, path)?,
            flush_interval: (c.access_log_flush_interval_ms > 0)
                .then(|| Duration::from_millis(c.access_log_flush_interval_ms)),
            flush_on_connected: c.flush_access_log_on_connected,
        })
    }

    /// The cluster for a connection, by weight (`rand` uniform); None when the chosen
    /// cluster does not exist.
    fn pick_cluster(&self, rand: u64) -> Option<usize> {
        let point = rand % self.total_weight;
        let i = self.clusters.partition_point(|(_, cum)| *cum <= point);
        self.clusters.get(i).and_then(|(c, _)| *c)
    }

    fn count(&self, w: usize, c: tcp_proxy::Counter, n: u64) {
        self.stats.add(w, c as usize, n);
    }
}

#[cfg(test)]
mod tests;
