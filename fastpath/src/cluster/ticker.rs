//! The outlier detection timer: one control thread per engine that calls every cluster's
//! `outlier_tick` (each acts once per its own `interval`), like Envoy's main-thread timer.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::ClusterState;

/// How often the thread looks at the clusters; ejection times and intervals are honoured to
/// this granularity.
const TICK: Duration = Duration::from_millis(50);

pub struct Ticker {
    clusters: Arc<ArcSwap<Vec<Arc<ClusterState>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start() -> std::io::Result<Ticker> {
        let clusters: Arc<ArcSwap<Vec<Arc<ClusterState>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (clusters.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("meshcore-outlier".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::park_timeout(TICK);
                    let now = Instant::now();
                    for cluster in c.load().iter() {
                        cluster.outlier_tick(now);
                    }
                }
            })?;
        Ok(Ticker {
            clusters,
            stop,
            thread: Some(thread),
        })
    }

    /// The clusters to tick (those with outlier detection; others are skipped cheaply).
    pub fn set(&self, clusters: &[Arc<ClusterState>]) {
        let with: Vec<Arc<ClusterState>> = clusters
            .iter()
            .filter(|c| c.outlier.is_some())
            .cloned()
            .collect();
        self.clusters.store(Arc::new(with));
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.clusters.store(Arc::default());
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}
