//! Compiles a snapshot the way `Engine::apply` does (clusters, then each listener with the
//! data path's own `compile_listener`), without binding sockets or touching a running engine.
//! Access logs are left out: they open files and start writer threads, and never change
//! which route or cluster a request gets.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::cluster::ClusterState;
use crate::compiled::CompiledListener;
use crate::config::snapshot::{self, NetworkFilter};
use crate::stats::{ClusterStats, Registry};

/// Every listener of the snapshot, compiled (same order).
pub struct Compiled {
    pub listeners: Vec<CompiledListener>,
}

/// Errors are the messages `Engine.apply` gives for the same snapshot (paths into it).
pub fn compile(snap: &mut snapshot::Snapshot) -> Result<Compiled, String> {
    for l in &mut snap.listeners {
        for c in l
            .filter_chains
            .iter_mut()
            .chain(&mut l.default_filter_chain)
        {
            if let NetworkFilter::HttpConnectionManager(h) = &mut c.filter {
                h.access_log.clear();
            }
        }
    }
    let registry = Registry::new(1);
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut clusters = Vec::with_capacity(snap.clusters.len());
    for (i, c) in snap.clusters.iter().enumerate() {
        let path = format!("clusters[{i}]");
        if index.insert(c.name.as_str(), i).is_some() {
            return Err(format!("{path}.name: duplicate cluster {:?}", c.name));
        }
        let stats = ClusterStats::new(&registry, &format!("cluster.{}", c.stat_name()));
        let tls = crate::tls::ClientTls::compile(c, &registry, &path)?;
        clusters.push(Arc::new(ClusterState::new(c, stats, &path)?.with_tls(tls)));
    }
    let clusters: Arc<[Arc<ClusterState>]> = clusters.into();
    if snap.local_address.parse::<IpAddr>().is_err() {
        return Err(format!(
            "local_address: {:?} is not an IP address",
            snap.local_address
        ));
    }
    let lookup = |name: &str| index.get(name).copied();
    let stat_name = |i: usize| clusters[i].cfg.stat_name().to_owned();
    let mut names = HashMap::new();
    let mut listeners = Vec::with_capacity(snap.listeners.len());
    for (i, l) in snap.listeners.iter().enumerate() {
        let path = format!("listeners[{i}]");
        if names.insert(l.name.as_str(), i).is_some() {
            return Err(format!("{path}.name: duplicate listener {:?}", l.name));
        }
        let ip: IpAddr = l
            .address
            .parse()
            .map_err(|_| format!("{path}.address: {:?} is not an IP address", l.address))?;
        // The compile takes the route configs out of the listener: the report reads the
        // snapshot's own.
        let parts = crate::listener::compile_listener(
            &mut l.clone(),
            None,
            &lookup,
            &stat_name,
            &registry,
            &snap.local_address,
            snap.global_downstream_max_connections,
            &path,
        )?;
        listeners.push(parts.finish(SocketAddr::new(ip, l.port), &clusters, &registry));
    }
    Ok(Compiled { listeners })
}
