//! One upstream host and its counters (shared by all workers; they outlive host-set swaps).
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Counters of one host, reported by `Engine.clusters()`; `id` keys the upstream pools.
#[repr(align(64))]
pub struct HostCounters {
    pub id: u64,
    pub cx_active: AtomicU64,
    pub cx_total: AtomicU64,
    pub rq_active: AtomicU64,
    pub rq_total: AtomicU64,
    pub rq_error: AtomicU64,
    /// The host left its cluster: pooled connections to it are closed.
    pub removed: AtomicBool,
    /// Outlier detection: ejected hosts are left out of load balancing.
    pub ejected: AtomicBool,
    /// Outlier detection's per-host tallies, bumped by every worker (relaxed atomics).
    pub outlier: OutlierTally,
}

/// Consecutive failures and the success-rate window of one host.
#[derive(Default)]
pub struct OutlierTally {
    pub consecutive_5xx: AtomicU32,
    pub consecutive_gateway: AtomicU32,
    pub consecutive_local: AtomicU32,
    /// External-origin requests and successes in the current interval.
    pub total: AtomicU64,
    pub success: AtomicU64,
    /// Local-origin (connect/reset/timeout) results, when split from external ones.
    pub local_total: AtomicU64,
    pub local_success: AtomicU64,
}

impl Default for HostCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl HostCounters {
    pub fn new() -> HostCounters {
        HostCounters {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cx_active: AtomicU64::new(0),
            cx_total: AtomicU64::new(0),
            rq_active: AtomicU64::new(0),
            rq_total: AtomicU64::new(0),
            rq_error: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            ejected: AtomicBool::new(false),
            outlier: OutlierTally::default(),
        }
    }

    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct Host {
    pub addr: SocketAddr,
    pub weight: u32,
    pub healthy: bool,
    pub priority: u32,
    pub counters: Arc<HostCounters>,
}
