//! Circuit breakers (`circuit_breakers.thresholds`, DEFAULT priority): per-cluster atomic
//! counts of connections, pending requests, requests and retries, shared by all workers as
//! Envoy's resource manager is, with the `circuit_breakers.default.*` gauges.
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

use crate::config::snapshot::CircuitBreakers;
use crate::stats::ClusterStats;
use crate::stats::sets::cluster::Global;

/// One limited resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Connections,
    Pending,
    Requests,
    Retries,
}

impl Resource {
    fn index(self) -> usize {
        self as usize
    }

    fn gauges(self) -> (Global, Global) {
        match self {
            Resource::Connections => (Global::CbCxOpen, Global::CbRemainingCx),
            Resource::Pending => (Global::CbRqPendingOpen, Global::CbRemainingPending),
            Resource::Requests => (Global::CbRqOpen, Global::CbRemainingRq),
            Resource::Retries => (Global::CbRqRetryOpen, Global::CbRemainingRetries),
        }
    }
}

pub struct Breakers {
    limits: [u32; 4],
    counts: [AtomicU32; 4],
    track_remaining: bool,
    stats: ClusterStats,
    /// Woken when a connection of the cluster closes or goes back to a pool (requests
    /// waiting on `max_connections` look again).
    pub cx_freed: Notify,
}

impl Breakers {
    pub fn new(cfg: &CircuitBreakers, stats: ClusterStats) -> Breakers {
        let b = Breakers {
            limits: [
                cfg.max_connections,
                cfg.max_pending_requests,
                cfg.max_requests,
                cfg.max_retries,
            ],
            counts: Default::default(),
            track_remaining: cfg.track_remaining,
            stats,
            cx_freed: Notify::new(),
        };
        if b.track_remaining {
            for r in [
                Resource::Connections,
                Resource::Pending,
                Resource::Requests,
                Resource::Retries,
            ] {
                b.publish(r, 0);
            }
        }
        b
    }

    /// Takes one unit of `r`, or `None` when the breaker is open (at its limit).
    pub fn try_acquire(&self, r: Resource) -> Option<Permit<'_>> {
        self.acquire_counted(r)
            .then(|| Permit { breakers: self, r })
    }

    /// Takes one unit of `r` even over the limit (Envoy creates a connection for a pool that
    /// has none, whatever the limit); `false` when the breaker was already open.
    pub fn force_acquire(&self, r: Resource) -> bool {
        let i = r.index();
        let prev = self.counts[i].fetch_add(1, Ordering::AcqRel);
        self.changed(r, prev + 1);
        prev < self.limits[i]
    }

    fn acquire_counted(&self, r: Resource) -> bool {
        let i = r.index();
        let limit = self.limits[i];
        let mut cur = self.counts[i].load(Ordering::Relaxed);
        loop {
            if cur >= limit {
                return false;
            }
            match self.counts[i].compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.changed(r, cur + 1);
                    return true;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back one unit of `r` taken with `force_acquire` (or a permit's).
    pub fn release(&self, r: Resource) {
        let prev = self.counts[r.index()].fetch_sub(1, Ordering::AcqRel);
        self.changed(r, prev.saturating_sub(1));
        if r == Resource::Connections && prev >= self.limits[r.index()] {
            self.cx_freed.notify_waiters();
        }
    }

    /// True when `r` is at its limit.
    pub fn is_open(&self, r: Resource) -> bool {
        self.count(r) >= self.limits[r.index()]
    }

    pub fn count(&self, r: Resource) -> u32 {
        self.counts[r.index()].load(Ordering::Relaxed)
    }

    /// Updates the gauges when the count crossed the limit (or always, with
    /// `track_remaining`), so an untriggered breaker costs no extra store.
    #[inline]
    fn changed(&self, r: Resource, now: u32) {
        let limit = self.limits[r.index()];
        if self.track_remaining || now == limit || now + 1 == limit {
            self.publish(r, now);
        }
    }

    fn publish(&self, r: Resource, now: u32) {
        let limit = self.limits[r.index()];
        let (open, remaining) = r.gauges();
        // Like Envoy's gauge: 0 until a count reaches the limit (a zero limit that is never
        // taken stays 0).
        self.stats
            .set_global(open, u64::from(now >= limit && now > 0));
        if self.track_remaining {
            self.stats
                .set_global(remaining, u64::from(limit.saturating_sub(now)));
        }
    }
}

/// One unit of a resource, given back on drop.
pub struct Permit<'a> {
    breakers: &'a Breakers,
    r: Resource,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breakers.release(self.r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Registry;

    fn breakers(max: u32, track: bool) -> (Breakers, ClusterStats) {
        let reg = Registry::new(2);
        let stats = ClusterStats::new(&reg, "cluster.c");
        let cfg = CircuitBreakers {
            max_connections: max,
            max_pending_requests: max,
            max_requests: max,
            max_retries: max,
            track_remaining: track,
        };
        (Breakers::new(&cfg, stats.clone()), stats)
    }

    fn gauge(stats: &ClusterStats, name: &str) -> u64 {
        let mut found = None;
        stats.0.export(&mut |_, n, v| {
            if n.ends_with(name) {
                found = Some(v);
            }
        });
        found
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn counts_up_to_the_limit_and_back() {
        let (b, stats) = breakers(2, false);
        let p1 = b.try_acquire(Resource::Requests).unwrap();
        assert_eq!(gauge(&stats, "default.rq_open"), 0);
        let p2 = b.try_acquire(Resource::Requests).unwrap();
        assert!(b.is_open(Resource::Requests));
        assert_eq!(gauge(&stats, "default.rq_open"), 1);
        assert!(b.try_acquire(Resource::Requests).is_none());
        assert_eq!(b.count(Resource::Requests), 2);
        drop(p1);
        assert_eq!(gauge(&stats, "default.rq_open"), 0);
        let _p3 = b.try_acquire(Resource::Requests).unwrap();
        drop(p2);
        assert_eq!(b.count(Resource::Requests), 1);
        // Resources are independent.
        assert!(b.try_acquire(Resource::Retries).is_some());
    }

    #[test]
    fn zero_limit_refuses_everything() {
        let (b, stats) = breakers(0, false);
        assert!(b.try_acquire(Resource::Pending).is_none());
        assert!(b.is_open(Resource::Pending));
        // As in Envoy, the gauge only moves when a count changes.
        assert_eq!(gauge(&stats, "default.rq_pending_open"), 0);
    }

    #[test]
    fn force_acquire_goes_over_and_reports_it() {
        let (b, _) = breakers(1, false);
        assert!(b.force_acquire(Resource::Connections));
        assert!(!b.force_acquire(Resource::Connections));
        assert_eq!(b.count(Resource::Connections), 2);
        b.release(Resource::Connections);
        b.release(Resource::Connections);
        assert_eq!(b.count(Resource::Connections), 0);
    }

    #[test]
    fn remaining_is_tracked_when_asked() {
        let (b, stats) = breakers(3, true);
        assert_eq!(gauge(&stats, "remaining_retries"), 3);
        let _p = b.try_acquire(Resource::Retries).unwrap();
        assert_eq!(gauge(&stats, "remaining_retries"), 2);
    }

    #[test]
    fn counted_across_threads() {
        let (b, _) = breakers(1000, false);
        let b = std::sync::Arc::new(b);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut got = 0;
                    let mut held = Vec::new();
                    while let Some(p) = b.try_acquire(Resource::Requests) {
                        held.push(p);
                        got += 1;
                    }
                    std::mem::forget(held);
                    got
                })
            })
            .collect();
        let total: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }
}
