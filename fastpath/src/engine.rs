//! The engine: worker threads, and the control operations Python calls (apply, endpoint
//! updates, stats, drain, stop). No pyo3 here; `py/` wraps it.
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use serde_json::json;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::cluster::{ClusterState, HostCounters, HostSet, Ticker};
use crate::compiled::ListenerHandle;
use crate::config::{self, snapshot};
use crate::stats::{ClusterStats, Flat, OutlierStats, Registry};
use crate::worker::{self, Command};

mod cluster_apply;

/// The snapshot's clusters' positions by name; a name given twice is an error.
fn cluster_positions(clusters: &[snapshot::Cluster]) -> Result<HashMap<&str, usize>, EngineError> {
    let mut index = HashMap::with_capacity(clusters.len());
    for (i, c) in clusters.iter().enumerate() {
        if index.insert(c.name.as_str(), i).is_some() {
            return Err(EngineError::Value(format!(
                "clusters[{i}].name: duplicate cluster {:?}",
                c.name
            )));
        }
    }
    Ok(index)
}

/// Errors of the control operations (mapped to ValueError / OSError / KeyError in Python).
#[derive(Debug)]
pub enum EngineError {
    /// Bad snapshot or argument; the message names the JSON path.
    Value(String),
    /// A listener could not bind (errno when known, message naming the listener).
    Os(Option<i32>, String),
    /// Unknown cluster.
    Key(String),
    /// The engine was stopped.
    Stopped,
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Value(m) | EngineError::Key(m) => f.write_str(m),
            EngineError::Os(_, m) => f.write_str(m),
            EngineError::Stopped => f.write_str("engine is stopped"),
        }
    }
}

impl std::error::Error for EngineError {}

struct WorkerHandle {
    tx: UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
    active: Arc<AtomicI64>,
}

struct Control {
    generation: u64,
    listeners: Vec<Arc<ListenerHandle>>,
    /// The applied clusters (shared with every compiled listener view).
    clusters: Arc<[Arc<ClusterState>]>,
    /// Positions in `clusters` by name, for `update_endpoints` (O(1) per health flap) and
    /// `apply_listeners` (routes name clusters by position).
    by_name: HashMap<String, usize>,
    /// Endpoints each cluster had in the last applied snapshot (endpoint updates in between
    /// survive a re-apply that does not change them).
    applied_endpoints: HashMap<String, Vec<snapshot::Endpoint>>,
    workers: Vec<WorkerHandle>,
    next_listener_id: u64,
    stopped: bool,
    /// Runs outlier detection's interval timer.
    ticker: Ticker,
}

/// The parts of a snapshot `Engine::prepare_listeners` compiles (its listeners lend their
/// route configs to the compiled form), borrowed apart from its clusters (which `apply`
/// and `apply_clusters` index meanwhile).
struct Listeners<'s> {
    listeners: &'s mut [snapshot::Listener],
    local_address: &'s str,
    global_downstream_max_connections: Option<u64>,
}

impl<'s> Listeners<'s> {
    fn of(snap: &'s mut snapshot::Snapshot) -> Listeners<'s> {
        Listeners {
            listeners: &mut snap.listeners,
            local_address: &snap.local_address,
            global_downstream_max_connections: snap.global_downstream_max_connections,
        }
    }
}

/// A compiled listener not swapped in yet: its socket kept from the running listener of the
/// same name and address (Ok), or bound anew (Err: port and one socket per worker).
struct PreparedListener {
    ip: IpAddr,
    parts: crate::listener::ListenerParts,
    socket: Result<Arc<ListenerHandle>, (u16, Vec<std::net::TcpListener>)>,
}

pub struct Engine {
    registry: Arc<Registry>,
    control: Mutex<Control>,
}

impl Engine {
    /// Starts `concurrency` worker threads.
    pub fn new(concurrency: usize) -> Result<Engine, EngineError> {
        if concurrency == 0 || concurrency > 1024 {
            return Err(EngineError::Value("concurrency: must be 1..1024".into()));
        }
        let mut workers = Vec::with_capacity(concurrency);
        for i in 0..concurrency {
            let (tx, rx) = unbounded_channel();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let active = Arc::new(AtomicI64::new(0));
            let a = active.clone();
            let thread = std::thread::Builder::new()
                .name(format!("meshcore-worker-{i}"))
                .spawn(move || worker::run(i, a, rx, ready_tx))
                .map_err(|e| EngineError::Os(e.raw_os_error(), e.to_string()))?;
            workers.push(WorkerHandle {
                tx,
                thread: Some(thread),
                active,
            });
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(EngineError::Os(e.raw_os_error(), e.to_string())),
                Err(_) => return Err(EngineError::Value("worker failed to start".into())),
            }
        }
        Ok(Engine {
            registry: Arc::new(Registry::new(concurrency)),
            control: Mutex::new(Control {
                generation: 0,
                listeners: Vec::new(),
                clusters: Arc::new([]),
                by_name: HashMap::new(),
                applied_endpoints: HashMap::new(),
                workers,
                next_listener_id: 1,
                stopped: false,
                ticker: Ticker::start()
                    .map_err(|e| EngineError::Os(e.raw_os_error(), e.to_string()))?,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Compiles a JSON snapshot and swaps it in; returns its generation. On error nothing
    /// changes.
    pub fn apply(&self, bytes: &[u8]) -> Result<u64, EngineError> {
        let mut snap = config::parse(bytes).map_err(EngineError::Value)?;
        let mut ctl = self.lock();
        if ctl.stopped {
            return Err(EngineError::Stopped);
        }
        // Clusters: unchanged settings keep their state (hosts, counters, pools).
        let index = cluster_positions(&snap.clusters)?;
        let mut clusters: Vec<Arc<ClusterState>> = Vec::with_capacity(snap.clusters.len());
        let mut endpoint_sets = Vec::new();
        // By name, so a reload of N clusters is O(N), not O(N²).
        for (i, c) in snap.clusters.iter().enumerate() {
            let path = format!("clusters[{i}]");
            clusters.push(self.cluster_state(&ctl, c, &path, &mut endpoint_sets)?);
        }
        let cluster_list: Arc<[Arc<ClusterState>]> = clusters.into();
        let lookup = |name: &str| index.get(name).copied();
        let stat_name = |i: usize| cluster_list[i].cfg.stat_name().to_owned();
        let listeners = Listeners {
            listeners: &mut snap.listeners,
            local_address: &snap.local_address,
            global_downstream_max_connections: snap.global_downstream_max_connections,
        };
        let prepared =
            self.prepare_listeners(&ctl, listeners, &cluster_list, &lookup, &stat_name)?;

        // Commit.
        for (c, set) in endpoint_sets {
            c.install(set);
        }
        self.commit_listeners(&mut ctl, &snap, prepared, &cluster_list);
        let kept: HashSet<*const ClusterState> = cluster_list.iter().map(Arc::as_ptr).collect();
        for old in ctl.clusters.iter() {
            if !kept.contains(&Arc::as_ptr(old)) {
                old.retire();
            }
        }
        ctl.applied_endpoints = snap
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.endpoints.clone()))
            .collect();
        ctl.ticker.set(&cluster_list);
        ctl.by_name = index.into_iter().map(|(n, i)| (n.to_string(), i)).collect();
        ctl.clusters = cluster_list;
        ctl.generation += 1;
        Ok(ctl.generation)
    }

    /// One snapshot cluster as it will serve (`path`: its JSON path): the applied cluster of
    /// the same name when its settings are unchanged (hosts, counters, pools; its new
    /// endpoints, if they differ from the last applied ones, prepared into `endpoint_sets`
    /// for the commit), else a new state.
    fn cluster_state(
        &self,
        ctl: &Control,
        c: &snapshot::Cluster,
        path: &str,
        endpoint_sets: &mut Vec<(Arc<ClusterState>, HostSet)>,
    ) -> Result<Arc<ClusterState>, EngineError> {
        let old = ctl
            .by_name
            .get(&c.name)
            .map(|&at| &ctl.clusters[at])
            .filter(|o| o.same_settings(c));
        if let Some(old) = old {
            if ctl.applied_endpoints.get(&c.name) != Some(&c.endpoints) {
                let set = old
                    .prepare_endpoints(&c.endpoints, &format!("{path}.endpoints"))
                    .map_err(EngineError::Value)?;
                endpoint_sets.push((old.clone(), set));
            }
            return Ok(old.clone());
        }
        let scope = format!("cluster.{}", c.stat_name());
        let stats = ClusterStats::new(&self.registry, &scope);
        let od = c.outlier_detection.as_ref().map(|_| {
            let prefix = format!("{scope}.outlier_detection");
            OutlierStats::new(&self.registry, &prefix)
        });
        let tls =
            crate::tls::ClientTls::compile(c, &self.registry, path).map_err(EngineError::Value)?;
        let st = ClusterState::new(c, stats, path)
            .map_err(EngineError::Value)?
            .with_outlier_stats(od)
            .with_tls(tls)
            .with_h2_codec_stats(&self.registry);
        Ok(Arc::new(st))
    }

    /// Compiles the listeners of a JSON snapshot whose `clusters` is empty against the
    /// applied clusters, which stay as they are (settings, hosts, health, pools), and swaps
    /// them in: a listener or route change costs O(listeners), not O(clusters). Returns the
    /// generation; on error nothing changes.
    pub fn apply_listeners(&self, bytes: &[u8]) -> Result<u64, EngineError> {
        let mut snap = config::parse(bytes).map_err(EngineError::Value)?;
        if !snap.clusters.is_empty() {
            return Err(EngineError::Value(
                "clusters: must be empty (apply_listeners keeps the applied clusters)".into(),
            ));
        }
        let mut ctl = self.lock();
        if ctl.stopped {
            return Err(EngineError::Stopped);
        }
        let cluster_list = ctl.clusters.clone();
        let prepared = {
            let lookup = |name: &str| ctl.by_name.get(name).copied();
            let stat_name = |i: usize| cluster_list[i].cfg.stat_name().to_owned();
            self.prepare_listeners(
                &ctl,
                Listeners::of(&mut snap),
                &cluster_list,
                &lookup,
                &stat_name,
            )?
        };
        self.commit_listeners(&mut ctl, &snap, prepared, &cluster_list);
        ctl.generation += 1;
        Ok(ctl.generation)
    }

    /// Compiles the snapshot's listeners (`clusters`: the cluster list they will use;
    /// `lookup`: a cluster's position in it; `stat_name`: the stats name of the cluster at a
    /// position) and binds the new ones: all or nothing, nothing swapped yet. The route
    /// configs move out of `snap` into the compiled listeners.
    ///
    /// When the running listener of the same name was compiled over the same `clusters`
    /// (the same list, so the same positions: `apply_listeners`), its unchanged virtual hosts
    /// are reused rather than compiled again (`RouteTable::compile_reusing`).
    fn prepare_listeners(
        &self,
        ctl: &Control,
        snap: Listeners<'_>,
        clusters: &Arc<[Arc<ClusterState>]>,
        lookup: &dyn Fn(&str) -> Option<usize>,
        stat_name: &dyn Fn(usize) -> String,
    ) -> Result<Vec<PreparedListener>, EngineError> {
        if snap.local_address.parse::<IpAddr>().is_err() {
            return Err(EngineError::Value(format!(
                "local_address: {:?} is not an IP address",
                snap.local_address
            )));
        }
        let workers = ctl.workers.len();
        let mut names: HashSet<String> = HashSet::new();
        let mut prepared = Vec::with_capacity(snap.listeners.len());
        for (i, l) in snap.listeners.iter_mut().enumerate() {
            let path = format!("listeners[{i}]");
            if !names.insert(l.name.clone()) {
                return Err(EngineError::Value(format!(
                    "{path}.name: duplicate listener {:?}",
                    l.name
                )));
            }
            let ip: IpAddr = l.address.parse().map_err(|_| {
                EngineError::Value(format!(
                    "{path}.address: {:?} is not an IP address",
                    l.address
                ))
            })?;
            // The running listener of this name (names are unique there too).
            let running = ctl.listeners.iter().find(|h| h.name == l.name);
            let previous = running
                .map(|h| h.compiled.load_full())
                .filter(|p| p.compiled_over(clusters));
            let parts = crate::listener::compile_listener(
                l,
                previous.as_deref(),
                lookup,
                stat_name,
                &self.registry,
                snap.local_address,
                snap.global_downstream_max_connections,
                &path,
            )
            .map_err(EngineError::Value)?;
            prepared.push((ip, running, parts));
        }
        let mut out = Vec::with_capacity(prepared.len());
        for (l, (ip, running, parts)) in snap.listeners.iter().zip(prepared) {
            // Its socket kept when the address and port are the same.
            let kept = running
                .filter(|h| h.address == ip && h.configured_port == l.port)
                .cloned();
            let socket = match kept {
                Some(h) => Ok(h),
                None => {
                    let (port, socks) =
                        crate::listener::bind_all(SocketAddr::new(ip, l.port), workers).map_err(
                            |e| {
                                let msg = format!(
                                    "listener {:?} cannot bind {}:{}: {e}",
                                    l.name, l.address, l.port
                                );
                                EngineError::Os(e.raw_os_error(), msg)
                            },
                        )?;
                    Err((port, socks))
                }
            };
            out.push(PreparedListener { ip, parts, socket });
        }
        Ok(out)
    }

    /// Swaps in listeners from `prepare_listeners` (of the same `snap`) over `clusters`:
    /// kept sockets take the new views, new ones start on every worker, the rest stop.
    fn commit_listeners(
        &self,
        ctl: &mut Control,
        snap: &snapshot::Snapshot,
        prepared: Vec<PreparedListener>,
        clusters: &Arc<[Arc<ClusterState>]>,
    ) {
        let mut handles = Vec::with_capacity(prepared.len());
        for (l, p) in snap.listeners.iter().zip(prepared) {
            let port = match &p.socket {
                Ok(h) => h.port,
                Err((port, _)) => *port,
            };
            let view = p
                .parts
                .finish(SocketAddr::new(p.ip, port), clusters, &self.registry);
            match p.socket {
                Ok(h) => {
                    h.compiled.store(Arc::new(view));
                    handles.push(h);
                }
                Err((port, socks)) => {
                    let id = ctl.next_listener_id;
                    ctl.next_listener_id += 1;
                    let h = Arc::new(ListenerHandle {
                        id,
                        name: l.name.clone(),
                        address: p.ip,
                        configured_port: l.port,
                        port,
                        compiled: ArcSwap::from_pointee(view),
                        closing: Default::default(),
                    });
                    for (wk, socket) in ctl.workers.iter().zip(socks) {
                        let _ = wk.tx.send(Command::StartListener {
                            handle: h.clone(),
                            socket,
                        });
                    }
                    handles.push(h);
                }
            }
        }
        for old in &ctl.listeners {
            if !handles.iter().any(|h| Arc::ptr_eq(h, old)) {
                old.closing.store(true, Ordering::Relaxed);
                for wk in &ctl.workers {
                    let _ = wk.tx.send(Command::StopListener { id: old.id });
                }
            }
        }
        ctl.listeners = handles;
    }

    /// Swaps one cluster's hosts (JSON list of `Endpoint`).
    pub fn update_endpoints(&self, cluster: &str, endpoints: &[u8]) -> Result<(), EngineError> {
        let eps: Vec<snapshot::Endpoint> = serde_json::from_slice(endpoints)
            .map_err(|e| EngineError::Value(format!("invalid endpoints: {e}")))?;
        let ctl = self.lock();
        if ctl.stopped {
            return Err(EngineError::Stopped);
        }
        let c = ctl
            .by_name
            .get(cluster)
            .map(|&at| &ctl.clusters[at])
            .ok_or_else(|| EngineError::Key(cluster.to_string()))?;
        c.set_endpoints(&eps, "endpoints")
            .map_err(EngineError::Value)
    }

    /// Stores the key set fetched for a `remote_jwks` source (`provider_key` is the snapshot's
    /// `remote_jwks.key`); requests see it at once. Key: no applied provider uses the source;
    /// Value: the text is not a JWKS with a usable key (the previous keys stay).
    pub fn set_jwks(&self, provider_key: &str, jwks_json: &[u8]) -> Result<(), EngineError> {
        if self.lock().stopped {
            return Err(EngineError::Stopped);
        }
        use crate::filters::jwt_authn::jwks;
        jwks::set(provider_key, jwks_json).map_err(|e| match e {
            jwks::SetError::UnknownKey => EngineError::Key(provider_key.to_string()),
            jwks::SetError::Invalid(m) => {
                EngineError::Value(format!("jwks for {provider_key:?}: {m}"))
            }
        })
    }

    pub fn listener_ports(&self) -> Vec<(String, u16)> {
        self.lock()
            .listeners
            .iter()
            .map(|h| (h.name.clone(), h.port))
            .collect()
    }

    /// Every stat as JSON (a slow view for tests; Python reads `stats_flat`).
    pub fn stats(&self) -> Vec<u8> {
        self.registry.export()
    }

    /// Every stat as sorted `name\0value` lines (`stats::Flat`).
    pub fn stats_flat(&self) -> Flat {
        self.registry.export_flat()
    }

    /// Ends a stats flush interval (histograms' interval readings).
    pub fn flush_histograms(&self) {
        self.registry.flush_histograms()
    }

    /// The histogram samples captured since the last call (`stats::samples`) as
    /// `name:ms|ms\n` lines, and how many were dropped meanwhile; drops are also counted in
    /// `statsd.histogram_samples_dropped`.
    pub fn take_histogram_samples(&self) -> (Vec<u8>, u64) {
        let (lines, dropped) = crate::stats::samples::take();
        if dropped > 0 {
            let s = self
                .registry
                .scope("statsd", &crate::stats::sets::statsd::LAYOUT);
            s.control_add(0, dropped);
        }
        (lines, dropped)
    }

    pub fn clusters(&self) -> Vec<u8> {
        let ctl = self.lock();
        let out: Vec<serde_json::Value> = ctl
            .clusters
            .iter()
            .map(|c| {
                let set = c.hosts.load();
                let hosts: Vec<serde_json::Value> = set
                    .hosts
                    .iter()
                    .map(|h| {
                        let k = &h.counters;
                        json!({
                            "address": h.addr.ip().to_string(),
                            "port": h.addr.port(),
                            "weight": h.weight,
                            "healthy": h.healthy,
                            "priority": h.priority,
                            "ejected": k.ejected.load(Ordering::Relaxed),
                            "cx_active": HostCounters::get(&k.cx_active),
                            "cx_total": HostCounters::get(&k.cx_total),
                            "rq_active": HostCounters::get(&k.rq_active),
                            "rq_total": HostCounters::get(&k.rq_total),
                            "rq_error": HostCounters::get(&k.rq_error),
                        })
                    })
                    .collect();
                json!({
                    "name": c.name,
                    "observability_name": c.cfg.stat_name(),
                    "hosts": hosts,
                })
            })
            .collect();
        serde_json::to_vec(&out).unwrap_or_default()
    }

    /// Stops accepting, closes idle connections, answers the rest with `connection: close`.
    pub fn drain(&self) {
        let ctl = self.lock();
        for h in &ctl.listeners {
            h.closing.store(true, Ordering::Relaxed);
        }
        for wk in &ctl.workers {
            let _ = wk.tx.send(Command::Drain);
        }
    }

    pub fn active_connections(&self) -> i64 {
        self.lock()
            .workers
            .iter()
            .map(|w| w.active.load(Ordering::Relaxed))
            .sum()
    }

    /// Closes everything and joins the workers. Idempotent.
    pub fn stop(&self) {
        let threads: Vec<JoinHandle<()>> = {
            let mut ctl = self.lock();
            ctl.stopped = true;
            ctl.ticker.stop();
            for wk in &ctl.workers {
                let _ = wk.tx.send(Command::Stop);
            }
            ctl.workers
                .iter_mut()
                .filter_map(|w| w.thread.take())
                .collect()
        };
        for t in threads {
            let _ = t.join();
        }
        let mut ctl = self.lock();
        for w in &ctl.workers {
            w.active.store(0, Ordering::Relaxed);
        }
        ctl.listeners.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}
