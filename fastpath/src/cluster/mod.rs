//! Cluster state: the host set (swapped whole by `update_endpoints`), its balancer, per-host
//! counters that survive host-set swaps, and the cluster's stats scope.
mod host;
pub mod outlier;
mod ticker;

pub use host::{Host, HostCounters};
pub use outlier::Outcome;
pub use ticker::Ticker;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::snapshot;
use crate::lb::{Balancer, HostInput};
use crate::stats::sets::cluster::{Control, Global};
use crate::stats::{ClusterStats, OutlierStats};
use outlier::Detector;

/// The hosts of a cluster at one moment, with the balancer built over them.
pub struct HostSet {
    pub hosts: Vec<Host>,
    pub balancer: Balancer,
}

pub struct ClusterState {
    pub name: String,
    /// The config it was built from (endpoints as last applied through `apply`).
    pub cfg: snapshot::Cluster,
    pub connect_timeout: Duration,
    /// Upstream keep-alive idle timeout; `None` disables it.
    pub idle_timeout: Option<Duration>,
    pub max_idle_per_host: usize,
    /// Most response body bytes one upstream connection buffers while streaming
    /// (`per_connection_buffer_limit_bytes`, see `compiled::read_cap`).
    pub read_cap: usize,
    pub hosts: ArcSwap<HostSet>,
    pub stats: ClusterStats,
    /// Set when a later snapshot dropped or replaced this cluster: pools stop keeping its
    /// connections.
    pub removed: AtomicBool,
    /// Circuit breakers (issue 4, resilience): shared by all workers.
    pub breakers: crate::breaker::Breakers,
    /// Outlier detection, when configured.
    pub outlier: Option<Detector>,
    /// Serialises host-set swaps (endpoint updates, ejections) so none is lost.
    swap_lock: Mutex<()>,
    /// `transport_socket` TLS: connections to the hosts are TLS (None: plain TCP).
    pub tls: Option<crate::tls::ClientTls>,
    /// `cluster.<name>.http2.*`: the HTTP/2 codec's flood counters and queue gauges, for a
    /// cluster that may speak HTTP/2 upstream.
    pub h2_codec_stats: Option<crate::stats::Http2CodecStats>,
}

impl ClusterState {
    /// Builds a cluster; `path` names it in errors (`clusters[2]`).
    pub fn new(
        cfg: &snapshot::Cluster,
        stats: ClusterStats,
        path: &str,
    ) -> Result<ClusterState, String> {
        if cfg.name.is_empty() {
            return Err(format!("{path}.name: must not be empty"));
        }
        let set = build_set(
            cfg,
            &cfg.endpoints,
            &mut HashMap::new(),
            &format!("{path}.endpoints"),
        )?;
        let st = ClusterState {
            name: cfg.name.clone(),
            cfg: cfg.clone(),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms.max(1)),
            idle_timeout: (cfg.idle_timeout_ms > 0)
                .then(|| Duration::from_millis(cfg.idle_timeout_ms)),
            max_idle_per_host: cfg.max_idle_per_host as usize,
            read_cap: crate::compiled::read_cap(cfg.per_connection_buffer_limit_bytes),
            hosts: ArcSwap::from_pointee(set),
            breakers: crate::breaker::Breakers::new(&cfg.circuit_breakers, stats.clone()),
            stats,
            removed: AtomicBool::new(false),
            outlier: None,
            swap_lock: Mutex::new(()),
            tls: None,
            h2_codec_stats: None,
        };
        st.publish_membership();
        Ok(st)
    }

    /// Enables outlier detection (when configured) with its `outlier_detection.*` stats.
    pub fn with_outlier_stats(mut self, stats: Option<OutlierStats>) -> ClusterState {
        if let (Some(cfg), Some(stats)) = (&self.cfg.outlier_detection, stats) {
            self.outlier = Some(Detector::new(cfg.clone(), stats));
        }
        self
    }

    /// The HTTP/2 options a request uses upstream (None: HTTP/1.1, or chosen by ALPN on
    /// connecting for `auto_config`). `downstream_http2`: the request came over HTTP/2 (what
    /// `use_downstream_protocol_config` follows).
    #[inline]
    pub fn upstream_http2(
        &self,
        downstream_http2: bool,
    ) -> Option<&crate::config::snapshot::Http2Options> {
        self.cfg.http2.as_ref().filter(|_| {
            !self.cfg.http_auto && (downstream_http2 || !self.cfg.http2_follows_downstream)
        })
    }

    /// Makes connections to the hosts TLS (`transport_socket`).
    pub fn with_tls(mut self, tls: Option<crate::tls::ClientTls>) -> ClusterState {
        self.tls = tls;
        self
    }

    /// Adds `cluster.<stat_name>.http2.*` when the cluster may speak HTTP/2 upstream (Envoy's
    /// upstream codec stats scope).
    pub fn with_h2_codec_stats(mut self, registry: &crate::stats::Registry) -> ClusterState {
        if self.cfg.http2.is_some() {
            let prefix = format!("cluster.{}.http2", self.cfg.stat_name());
            self.h2_codec_stats = Some(crate::stats::Http2CodecStats::new(registry, &prefix));
        }
        self
    }

    /// The data path's report of one upstream result: a branch when outlier detection is
    /// off, a few relaxed atomics when on; an ejection (rare) rebuilds the balancer.
    #[inline]
    pub fn report_result(&self, host: &HostCounters, outcome: Outcome) {
        if let Some(d) = &self.outlier
            && let Some(kind) = d.record(host, outcome)
        {
            let count = self.hosts.load().hosts.len();
            if d.eject(host, kind, count, Instant::now()) {
                self.rebalance();
            }
        }
    }

    /// The outlier interval timer (called often by the engine's control thread; acts once
    /// per `interval`).
    pub fn outlier_tick(&self, now: Instant) {
        if let Some(d) = &self.outlier
            && d.tick(&self.hosts.load().hosts, now)
        {
            self.rebalance();
        }
    }

    /// Rebuilds the balancer over the current hosts (after ejections changed).
    fn rebalance(&self) {
        let _g = self.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let hosts = self.hosts.load().hosts.clone();
        let balancer = balancer_for(&self.cfg, &hosts);
        self.hosts.store(Arc::new(HostSet { hosts, balancer }));
        self.publish_membership();
    }

    /// True when `other` differs from this cluster's config at most in its endpoints.
    pub fn same_settings(&self, other: &snapshot::Cluster) -> bool {
        let a = snapshot::Cluster {
            endpoints: Vec::new(),
            ..self.cfg.clone()
        };
        let b = snapshot::Cluster {
            endpoints: Vec::new(),
            ..other.clone()
        };
        a == b
    }

    /// Builds the host set for `endpoints` without installing it (so a failing apply changes
    /// nothing); hosts whose address stays keep their counters. `path` names the list in
    /// errors.
    pub fn prepare_endpoints(
        &self,
        endpoints: &[snapshot::Endpoint],
        path: &str,
    ) -> Result<HostSet, String> {
        let (hosts, _) = self.prepare_hosts(endpoints, path)?;
        let balancer = balancer_for(&self.cfg, &hosts);
        Ok(HostSet { hosts, balancer })
    }

    /// The hosts for `endpoints`, those whose address stays keeping their counters, and the
    /// counters of the current hosts that leave.
    fn prepare_hosts(
        &self,
        endpoints: &[snapshot::Endpoint],
        path: &str,
    ) -> Result<(Vec<Host>, Vec<Arc<HostCounters>>), String> {
        let old = self.hosts.load();
        let mut slots: Slots = old
            .hosts
            .iter()
            .map(|h| (h.addr, Some(h.counters.clone())))
            .collect();
        let hosts = build_hosts(endpoints, &mut slots, path)?;
        let leaving = slots.into_values().flatten().collect();
        Ok((hosts, leaving))
    }

    /// Swaps in a prepared host set; hosts that left are marked so pools drop them.
    pub fn install(&self, set: HostSet) {
        self.install_hosts(set.hosts, None);
    }

    /// Swaps in prepared hosts with a balancer built over them now (ejections may have
    /// changed since they were prepared); hosts that left (`leaving`, when known: those
    /// of the host set they were prepared from) are marked so pools drop them.
    fn install_hosts(&self, hosts: Vec<Host>, leaving: Option<Vec<Arc<HostCounters>>>) {
        let _g = self.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let new = Arc::new(HostSet {
            balancer: balancer_for(&self.cfg, &hosts),
            hosts,
        });
        let old = self.hosts.swap(new.clone());
        let removed = |c: &HostCounters| c.removed.store(true, Ordering::Relaxed);
        match leaving {
            Some(leaving) => leaving.iter().for_each(|c| removed(c)),
            None => {
                let kept: HashSet<SocketAddr> = new.hosts.iter().map(|h| h.addr).collect();
                old.hosts
                    .iter()
                    .filter(|h| !kept.contains(&h.addr))
                    .for_each(|h| removed(&h.counters));
            }
        }
        // From the control thread: a control counter (atomic add), never a worker's shard.
        self.stats.control_inc(Control::MembershipChange);
        self.publish_membership();
    }

    /// `prepare_endpoints` then `install`, with the balancer built once (by the install)
    /// and the hosts that leave known from the prepare (the engine's control lock, held by
    /// every caller that changes hosts, keeps the host set's addresses as they were).
    pub fn set_endpoints(
        &self,
        endpoints: &[snapshot::Endpoint],
        path: &str,
    ) -> Result<(), String> {
        let (hosts, leaving) = self.prepare_hosts(endpoints, path)?;
        self.install_hosts(hosts, Some(leaving));
        Ok(())
    }

    fn publish_membership(&self) {
        let set = self.hosts.load();
        self.stats
            .set_global(Global::MembershipTotal, set.hosts.len() as u64);
        let healthy = set.hosts.iter().filter(|h| h.healthy).count();
        // Envoy's membership_healthy counts health-checked health; ejection is separate.
        self.stats
            .set_global(Global::MembershipHealthy, healthy as u64);
    }

    /// Marks the cluster and all its hosts as gone (pools drop their connections).
    pub fn retire(&self) {
        self.removed.store(true, Ordering::Relaxed);
        for h in &self.hosts.load().hosts {
            h.counters.removed.store(true, Ordering::Relaxed);
        }
    }
}

/// By address: the counters of a current host not yet taken by a new one (`Some`), or an
/// address already taken (`None`: another endpoint with it is a duplicate).
type Slots = HashMap<SocketAddr, Option<Arc<HostCounters>>>;

fn build_set(
    cfg: &snapshot::Cluster,
    endpoints: &[snapshot::Endpoint],
    slots: &mut Slots,
    path: &str,
) -> Result<HostSet, String> {
    let hosts = build_hosts(endpoints, slots, path)?;
    let balancer = balancer_for(cfg, &hosts);
    Ok(HostSet { hosts, balancer })
}

/// The hosts for `endpoints` (errors name the first bad one under `path`); an address with
/// counters in `slots` takes them (what stays in `slots` are the hosts that leave).
/// Duplicates are found in the same map: one hash lookup per endpoint, O(n) not O(n²).
fn build_hosts(
    endpoints: &[snapshot::Endpoint],
    slots: &mut Slots,
    path: &str,
) -> Result<Vec<Host>, String> {
    use std::collections::hash_map::Entry;
    let mut hosts: Vec<Host> = Vec::with_capacity(endpoints.len());
    slots.reserve(endpoints.len().saturating_sub(slots.len()));
    for (j, ep) in endpoints.iter().enumerate() {
        let ip: IpAddr = ep
            .address
            .parse()
            .map_err(|_| format!("{path}[{j}].address: {:?} is not an IP address", ep.address))?;
        if ep.port == 0 {
            return Err(format!("{path}[{j}].port: must be 1..65535"));
        }
        let addr = SocketAddr::new(ip, ep.port);
        let counters = match slots.entry(addr) {
            Entry::Occupied(mut taken) => taken
                .get_mut()
                .take()
                .ok_or_else(|| format!("{path}[{j}]: duplicate endpoint {addr}"))?,
            Entry::Vacant(free) => {
                free.insert(None);
                Arc::new(HostCounters::new())
            }
        };
        hosts.push(Host {
            addr,
            weight: ep.weight.max(1),
            healthy: ep.healthy,
            priority: ep.priority,
            counters,
        });
    }
    Ok(hosts)
}

/// The balancer over `hosts`: healthy means health-checked healthy and not ejected.
fn balancer_for(cfg: &snapshot::Cluster, hosts: &[Host]) -> Balancer {
    // Only the hashing policies read the keys: no string per host for the others.
    let keyed = matches!(
        cfg.lb_policy,
        snapshot::LbPolicy::RingHash | snapshot::LbPolicy::Maglev
    );
    let inputs: Vec<HostInput> = hosts
        .iter()
        .map(|h| HostInput {
            weight: h.weight,
            healthy: h.healthy && !h.counters.ejected.load(Ordering::Relaxed),
            priority: h.priority,
            key: if keyed {
                h.addr.to_string()
            } else {
                String::new()
            },
        })
        .collect();
    Balancer::build(
        cfg.lb_policy,
        cfg.least_request_choice_count,
        &cfg.lb,
        &inputs,
    )
}

#[cfg(test)]
mod tests;
