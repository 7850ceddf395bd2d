//! Stats: per-worker shards of plain counters, a registry of scopes by name, the flat export
//! (`flat.rs`, what `Engine.stats()` returns) and a JSON one for tests.
//!
//! Each scope (`listener.<addr>_<port>`, `http.<stat_prefix>`, `cluster.<name>`) owns one
//! shard per worker. A shard is written only by its worker (load + store, no lock, no
//! read-modify-write instruction) and read by `stats()` from any thread; shards are separate
//! cache-line aligned allocations so workers never share a line.
mod flat;
mod histogram;
mod order;
pub mod samples;
mod scope;
pub mod sets;

pub use flat::Flat;
pub use histogram::{BUCKET_BOUNDS_MS, HISTOGRAM_SLOTS};
pub use scope::{Layout, Scope};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

/// All scopes ever created, by prefix; a re-applied config finds its old counters here.
pub struct Registry {
    workers: usize,
    shared: Arc<Scopes>,
    /// The flat export's walk, rebuilt when `version` moved.
    plan: Mutex<Option<flat::Plan>>,
}

/// The scopes of a registry, shared with its `ScopeMakers`.
struct Scopes {
    scopes: Mutex<BTreeMap<String, Arc<Scope>>>,
    /// Bumped (under `scopes`' lock) whenever a scope is added or replaced.
    version: AtomicU64,
}

/// Adds scopes to a registry after its config was compiled: for stat names that only
/// requests tell (`grpc_stats`' `stats_for_all_methods`). Callers cache what they get.
#[derive(Clone)]
pub struct ScopeMaker {
    workers: usize,
    shared: Arc<Scopes>,
}

impl ScopeMaker {
    /// The scope named `prefix` (created on first use; takes the registry's lock).
    pub fn scope(&self, prefix: &str, layout: &'static Layout) -> Arc<Scope> {
        self.shared.scope(prefix, layout, self.workers)
    }
}

impl Scopes {
    fn scope(&self, prefix: &str, layout: &'static Layout, workers: usize) -> Arc<Scope> {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = scopes.get(prefix)
            && std::ptr::eq(s.layout(), layout)
        {
            return s.clone();
        }
        let s = Arc::new(Scope::new(prefix.to_string(), layout, workers));
        scopes.insert(prefix.to_string(), s.clone());
        self.version.fetch_add(1, Ordering::Relaxed);
        s
    }
}

impl Registry {
    pub fn new(workers: usize) -> Registry {
        Registry {
            workers,
            shared: Arc::new(Scopes {
                scopes: Mutex::new(BTreeMap::new()),
                version: AtomicU64::new(0),
            }),
            plan: Mutex::new(None),
        }
    }

    /// The number of worker shards (for per-worker state kept outside the stats).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The scope named `prefix` (created on first use). Control path only.
    pub fn scope(&self, prefix: &str, layout: &'static Layout) -> Arc<Scope> {
        self.shared.scope(prefix, layout, self.workers)
    }

    /// A handle that adds scopes to this registry later (from a worker).
    pub fn maker(&self) -> ScopeMaker {
        ScopeMaker {
            workers: self.workers,
            shared: self.shared.clone(),
        }
    }

    /// The export plan, rebuilt first if scopes were added since it was made.
    fn plan(&self) -> MutexGuard<'_, Option<flat::Plan>> {
        let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if plan
            .as_ref()
            .is_none_or(|p| p.version != self.shared.version.load(Ordering::Relaxed))
        {
            let (version, scopes) = {
                let g = self.shared.scopes.lock().unwrap_or_else(|e| e.into_inner());
                (
                    self.shared.version.load(Ordering::Relaxed),
                    g.values().cloned().collect(),
                )
            };
            *plan = Some(flat::Plan::build(version, scopes));
        }
        plan
    }

    /// Every stat, merged over the shards, as sorted `name\0value` lines (see `Flat`).
    pub fn export_flat(&self) -> Flat {
        self.plan().as_mut().map(|p| p.write()).unwrap_or_default()
    }

    /// Ends a stats flush interval (Envoy's `stats_flush_interval`): the samples each
    /// histogram got since the previous call become its interval reading in the export.
    pub fn flush_histograms(&self) {
        if let Some(p) = self.plan().as_ref() {
            p.scopes().for_each(|s| s.flush_histograms());
        }
    }

    /// `{"counters": {..}, "gauges": {..}, "histograms": {..}}` merged over the shards: a
    /// slow view for tests (`Engine.stats()` uses `export_flat`).
    pub fn export(&self) -> Vec<u8> {
        let scopes: Vec<Arc<Scope>> = {
            let g = self.shared.scopes.lock().unwrap_or_else(|e| e.into_inner());
            g.values().cloned().collect()
        };
        let mut counters = Map::new();
        let mut gauges = Map::new();
        let mut histograms = Map::new();
        for s in &scopes {
            s.export(&mut |kind, name, value| {
                let dst = match kind {
                    scope::Kind::Counter => &mut counters,
                    scope::Kind::Gauge => &mut gauges,
                    scope::Kind::Histogram => &mut histograms,
                };
                dst.insert(name, value);
            });
        }
        let v: Value = json!({"counters": counters, "gauges": gauges, "histograms": histograms});
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Defines a stat set: enums naming the counters, gauges, histograms, global gauges and
/// control counters (both not sharded: written only from the control path) and the `Layout`
/// carrying their Envoy names.
macro_rules! stat_set {
    ($modname:ident, prefix_codes: $codes:expr,
        counters { $($c:ident => $cn:literal,)* }
        gauges { $($g:ident => $gn:literal,)* }
        histograms { $($h:ident => $hn:literal,)* }
        globals { $($gl:ident => $gln:literal,)* }
        control_counters { $($cc:ident => $ccn:literal,)* }
    ) => {
        pub mod $modname {
            #[derive(Clone, Copy, Debug)]
            pub enum Counter { $($c,)* }
            #[derive(Clone, Copy, Debug)]
            pub enum Gauge { $($g,)* }
            #[derive(Clone, Copy, Debug)]
            pub enum Histogram { $($h,)* }
            #[derive(Clone, Copy, Debug)]
            pub enum Global { $($gl,)* }
            #[derive(Clone, Copy, Debug)]
            pub enum Control { $($cc,)* }
            pub static LAYOUT: $crate::stats::Layout = $crate::stats::Layout {
                counters: &[$($cn,)*],
                gauges: &[$($gn,)*],
                histograms: &[$($hn,)*],
                globals: &[$($gln,)*],
                control_counters: &[$($ccn,)*],
                status_codes: $codes,
                order: std::sync::OnceLock::new(),
            };
        }
    };
}
pub(crate) use stat_set;

/// Typed access to a scope of one stat set (a module of `sets`, named by `$set`) and its
/// `TypedScope` impl.
macro_rules! typed_scope {
    ($name:ident, $set:ident) => {
        #[derive(Clone)]
        pub struct $name(pub std::sync::Arc<$crate::stats::Scope>);
        impl $crate::stats::TypedScope for $name {
            type C = $crate::stats::sets::$set::Counter;
            type G = $crate::stats::sets::$set::Gauge;
            type H = $crate::stats::sets::$set::Histogram;
            type GL = $crate::stats::sets::$set::Global;
            type CC = $crate::stats::sets::$set::Control;
        }
        impl $name {
            pub fn new(reg: &$crate::stats::Registry, prefix: &str) -> $name {
                $name(reg.scope(prefix, &$crate::stats::sets::$set::LAYOUT))
            }
            #[inline]
            pub fn inc(&self, w: usize, c: <$name as $crate::stats::TypedScope>::C) {
                self.0.add(w, c as usize, 1)
            }
            #[inline]
            pub fn add(&self, w: usize, c: <$name as $crate::stats::TypedScope>::C, n: u64) {
                self.0.add(w, c as usize, n)
            }
            #[inline]
            pub fn gauge_inc(&self, w: usize, g: <$name as $crate::stats::TypedScope>::G) {
                self.0.gauge_add(w, g as usize, 1)
            }
            #[inline]
            pub fn gauge_dec(&self, w: usize, g: <$name as $crate::stats::TypedScope>::G) {
                self.0.gauge_add(w, g as usize, -1)
            }
            #[inline]
            pub fn record_us(&self, w: usize, h: <$name as $crate::stats::TypedScope>::H, us: u64) {
                self.0.record_us(w, h as usize, us)
            }
            pub fn set_global(&self, g: <$name as $crate::stats::TypedScope>::GL, v: u64) {
                self.0.set_global(g as usize, v)
            }
            /// A control counter: an atomic add, so any thread may call it (the control
            /// path does; workers count in their shards).
            pub fn control_inc(&self, c: <$name as $crate::stats::TypedScope>::CC) {
                self.0.control_add(c as usize, 1)
            }
        }
    };
}

/// Associates a typed scope with its stat enums.
pub trait TypedScope {
    type C;
    type G;
    type H;
    type GL;
    type CC;
}

typed_scope!(ListenerStats, listener);
typed_scope!(HttpStats, http);
typed_scope!(Http1CodecStats, http1_codec);
typed_scope!(Http2CodecStats, http2_codec);
typed_scope!(ClusterStats, cluster);
typed_scope!(OutlierStats, outlier);
impl ClusterStats {
    /// `upstream_rq_<code>`.
    #[inline]
    pub fn status_code(&self, w: usize, code: u16) {
        self.0.status_code(w, code)
    }
}

#[cfg(test)]
mod tests;
