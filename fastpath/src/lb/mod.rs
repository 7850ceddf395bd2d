//! Load balancing over one cluster's host set: round robin, least request and random, with
//! Envoy's health filtering and panic threshold. Lock-free: picks only touch atomics.
//!
//! A `Balancer` is immutable apart from its round-robin cursor; the data path builds a new one
//! whenever the host set or its health changes and swaps it in.
mod least_request;
mod random;
mod round_robin;

use crate::config::snapshot::LbPolicy;
use least_request::LeastRequest;
use round_robin::RoundRobin;

/// Envoy's default `common_lb_config.healthy_panic_threshold` (50%).
pub const DEFAULT_PANIC_THRESHOLD_PCT: u32 = 50;

/// A load balancer over one cluster's hosts (`Send + Sync`; share it behind an `Arc`).
#[derive(Debug)]
pub struct Balancer {
    /// Indices (into the host set) of the hosts picks are spread over: the healthy ones, or
    /// all of them in panic mode.
    hosts: Box<[usize]>,
    in_panic: bool,
    policy: Policy,
}

#[derive(Debug)]
enum Policy {
    RoundRobin(RoundRobin),
    LeastRequest(LeastRequest),
    Random,
}

impl Balancer {
    /// `weights[i]` = `load_balancing_weight` of host i (>= 1; 0 counts as 1); `healthy[i]`
    /// whether it may be picked. Host i exists for `i < min(weights.len(), healthy.len())`.
    /// `choice_count` is LEAST_REQUEST's `choice_count` (Envoy's default is 2). Uses Envoy's
    /// default panic threshold of 50%.
    pub fn new(policy: LbPolicy, choice_count: u32, weights: &[u32], healthy: &[bool]) -> Balancer {
        Balancer::with_panic_threshold(
            policy,
            choice_count,
            weights,
            healthy,
            DEFAULT_PANIC_THRESHOLD_PCT,
        )
    }

    /// Like `new`, with `healthy_panic_threshold` in percent (values above 100 count as 100).
    /// When fewer than that share of the hosts is healthy, Envoy stops trusting health
    /// checking and balances over all hosts, healthy or not ("panic mode"); 0 disables panic
    /// mode, so a set with no healthy host then picks nothing.
    pub fn with_panic_threshold(
        policy: LbPolicy,
        choice_count: u32,
        weights: &[u32],
        healthy: &[bool],
        panic_threshold_pct: u32,
    ) -> Balancer {
        let total = weights.len().min(healthy.len());
        let healthy_count = healthy[..total].iter().filter(|h| **h).count();
        let threshold = u64::from(panic_threshold_pct.min(100));
        // Envoy: panic when 100 * healthy / total < threshold.
        let in_panic = total > 0 && (healthy_count as u64) * 100 < threshold * total as u64;
        let hosts: Box<[usize]> = (0..total).filter(|i| in_panic || healthy[*i]).collect();
        let host_weights: Vec<u32> = hosts.iter().map(|i| weights[*i].max(1)).collect();
        let policy = match policy {
            LbPolicy::RoundRobin => Policy::RoundRobin(RoundRobin::new(&host_weights)),
            LbPolicy::LeastRequest => {
                Policy::LeastRequest(LeastRequest::new(&host_weights, choice_count))
            }
            LbPolicy::Random => Policy::Random,
        };
        Balancer {
            hosts,
            in_panic,
            policy,
        }
    }

    /// A host index, or None when no host can be picked (Envoy's UH: an empty set, or no
    /// healthy host with panic mode disabled). `rq_active(i)` gives host i's active requests
    /// (for LEAST_REQUEST); `rand` is a uniform random u64.
    pub fn pick(&self, rand: u64, rq_active: &dyn Fn(usize) -> u64) -> Option<usize> {
        if self.hosts.is_empty() {
            return None;
        }
        let position = match &self.policy {
            Policy::RoundRobin(rr) => rr.next(),
            Policy::LeastRequest(lr) => lr.pick(rand, &|p| rq_active(self.hosts[p])),
            Policy::Random => random::pick(rand, self.hosts.len()),
        };
        Some(self.hosts[position])
    }

    /// True when fewer hosts than the panic threshold are healthy, so picks include
    /// unhealthy hosts (for Envoy's `lb_healthy_panic` counter).
    pub fn in_panic(&self) -> bool {
        self.in_panic
    }

    /// How many hosts picks are spread over.
    pub fn available(&self) -> usize {
        self.hosts.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const POLICIES: [LbPolicy; 3] = [
        LbPolicy::RoundRobin,
        LbPolicy::LeastRequest,
        LbPolicy::Random,
    ];

    fn idle(_: usize) -> u64 {
        0
    }

    fn rands(seed: u64, n: usize) -> Vec<u64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.u64(..)).collect()
    }

    #[test]
    fn balancer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Balancer>();
    }

    #[test]
    fn empty_set_picks_nothing() {
        for policy in POLICIES {
            let b = Balancer::new(policy, 2, &[], &[]);
            assert_eq!(b.pick(7, &idle), None, "{policy:?}");
            assert_eq!(b.available(), 0);
            assert!(!b.in_panic());
        }
    }

    #[test]
    fn unhealthy_hosts_are_skipped() {
        let weights = [1, 3, 1, 2];
        let healthy = [true, false, true, true];
        for policy in POLICIES {
            let b = Balancer::new(policy, 2, &weights, &healthy);
            assert!(!b.in_panic());
            assert_eq!(b.available(), 3);
            let mut seen = [0u32; 4];
            for r in rands(1, 2000) {
                seen[b.pick(r, &idle).unwrap()] += 1;
            }
            assert_eq!(seen[1], 0, "{policy:?} picked the unhealthy host");
            assert!(
                seen[0] > 0 && seen[2] > 0 && seen[3] > 0,
                "{policy:?}: {seen:?}"
            );
        }
    }

    #[test]
    fn panic_mode_balances_over_all_hosts() {
        // 1 of 3 healthy: 33% < 50%.
        let healthy = [false, true, false];
        for policy in POLICIES {
            let b = Balancer::new(policy, 2, &[1, 1, 1], &healthy);
            assert!(b.in_panic(), "{policy:?}");
            assert_eq!(b.available(), 3);
            let mut seen = [0u32; 3];
            for r in rands(2, 3000) {
                seen[b.pick(r, &idle).unwrap()] += 1;
            }
            assert!(seen.iter().all(|c| *c > 0), "{policy:?}: {seen:?}");
        }
        // Exactly at the threshold is not panic.
        let b = Balancer::new(LbPolicy::Random, 2, &[1; 4], &[true, true, false, false]);
        assert!(!b.in_panic());
        assert_eq!(b.available(), 2);
        // No healthy host at all: Envoy still sends to every host...
        let b = Balancer::new(LbPolicy::RoundRobin, 2, &[1, 1], &[false, false]);
        assert!(b.in_panic());
        assert!(b.pick(0, &idle).is_some());
        // ...unless panic mode is disabled.
        let b =
            Balancer::with_panic_threshold(LbPolicy::RoundRobin, 2, &[1, 1], &[false, false], 0);
        assert!(!b.in_panic());
        assert_eq!(b.pick(0, &idle), None);
        // A higher threshold panics sooner.
        let b = Balancer::with_panic_threshold(
            LbPolicy::Random,
            2,
            &[1; 4],
            &[true, true, true, false],
            80,
        );
        assert!(b.in_panic());
        assert_eq!(b.available(), 4);
    }

    #[test]
    fn weighted_round_robin_is_exact_over_a_cycle() {
        let b = Balancer::new(LbPolicy::RoundRobin, 2, &[5, 1, 1, 0], &[true; 4]);
        // Weight 0 counts as 1: a cycle is 5 + 1 + 1 + 1 = 8 picks, from any starting point.
        for _ in 0..3 {
            let mut counts = [0u32; 4];
            for _ in 0..8 {
                counts[b.pick(0, &idle).unwrap()] += 1;
            }
            assert_eq!(counts, [5, 1, 1, 1]);
        }
    }

    #[test]
    fn equal_weights_rotate() {
        let b = Balancer::new(LbPolicy::RoundRobin, 2, &[3, 3, 3], &[true, true, true]);
        let first = b.pick(0, &idle).unwrap();
        for k in 1..10 {
            assert_eq!(b.pick(0, &idle), Some((first + k) % 3));
        }
    }

    #[test]
    fn least_request_prefers_the_idle_host() {
        let active = |i: usize| if i == 0 { 10 } else { 0 };
        let b = Balancer::new(LbPolicy::LeastRequest, 2, &[1, 1], &[true, true]);
        let idle_picks = rands(3, 4000)
            .into_iter()
            .filter(|r| b.pick(*r, &active) == Some(1))
            .count();
        // Two samples with replacement miss the idle host only when both land on the busy
        // one: 1/4 of the time.
        assert!((2800..3200).contains(&idle_picks), "{idle_picks}");
    }

    #[test]
    fn random_ignores_weights() {
        let b = Balancer::new(LbPolicy::Random, 2, &[1, 100], &[true, true]);
        let heavy = rands(4, 10_000)
            .into_iter()
            .filter(|r| b.pick(*r, &idle) == Some(1))
            .count();
        assert!((4_700..5_300).contains(&heavy), "{heavy}");
    }

    #[test]
    fn concurrent_picks_are_safe_and_exact() {
        let b = Arc::new(Balancer::new(LbPolicy::RoundRobin, 2, &[1; 4], &[true; 4]));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let mut counts = [0u64; 4];
                    for r in rands(t, 10_000) {
                        counts[b.pick(r, &idle).unwrap()] += 1;
                    }
                    counts
                })
            })
            .collect();
        let mut total = [0u64; 4];
        for t in threads {
            for (sum, c) in total.iter_mut().zip(t.join().unwrap()) {
                *sum += c;
            }
        }
        // Every cursor value is handed out once, so 40 000 picks split exactly.
        assert_eq!(total, [10_000; 4]);

        for policy in [LbPolicy::LeastRequest, LbPolicy::Random] {
            let b = Arc::new(Balancer::new(policy, 2, &[1, 2, 3], &[true; 3]));
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let b = Arc::clone(&b);
                    std::thread::spawn(move || {
                        rands(t + 10, 5_000)
                            .into_iter()
                            .all(|r| b.pick(r, &|i| i as u64).is_some_and(|h| h < 3))
                    })
                })
                .collect();
            for t in threads {
                assert!(t.join().unwrap(), "{policy:?}");
            }
        }
    }
}
