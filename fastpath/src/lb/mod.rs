//! Load balancing over one cluster's host set: round robin, least request, random, ring hash
//! and Maglev, with Envoy's priority levels, health filtering and panic threshold. Lock-free:
//! picks only touch atomics.
//!
//! A `Balancer` is immutable apart from its round-robin cursors; the data path builds a new one
//! whenever the host set, its health or its outlier ejections change, and swaps it in.
mod least_request;
mod maglev;
pub mod priority;
mod random;
mod ring_hash;
mod round_robin;

use crate::config::snapshot::{LbPolicy, LbSettings};
use least_request::LeastRequest;
use maglev::Maglev;
use priority::LevelCounts;
use ring_hash::Ring;
use round_robin::RoundRobin;

/// Envoy's default `common_lb_config.healthy_panic_threshold` (50%).
pub const DEFAULT_PANIC_THRESHOLD_PCT: u32 = 50;

/// One host as the balancer sees it.
#[derive(Debug, Clone)]
pub struct HostInput {
    pub weight: u32,
    /// Healthy and not ejected.
    pub healthy: bool,
    pub priority: u32,
    /// `ip:port`, hashed onto rings (RING_HASH, MAGLEV).
    pub key: String,
}

/// A load balancer over one cluster's hosts (`Send + Sync`; share it behind an `Arc`).
#[derive(Debug)]
pub struct Balancer {
    levels: Box<[Level]>,
    /// Cumulative load per level in percent (the last non-empty one reaches 100).
    cumulative: Box<[u32]>,
    in_panic: bool,
}

/// One priority level with load: the hosts picks are spread over and its policy.
#[derive(Debug)]
struct Level {
    /// Indices (into the host set): the healthy ones, or all of the level in panic.
    hosts: Box<[usize]>,
    policy: Policy,
}

#[derive(Debug)]
enum Policy {
    RoundRobin(RoundRobin),
    LeastRequest(LeastRequest),
    Random,
    RingHash(Ring),
    Maglev(Maglev),
}

impl Balancer {
    /// `weights[i]` = `load_balancing_weight` of host i (>= 1; 0 counts as 1); `healthy[i]`
    /// whether it may be picked. Host i exists for `i < min(weights.len(), healthy.len())`.
    /// `choice_count` is LEAST_REQUEST's `choice_count` (Envoy's default is 2). Uses Envoy's
    /// default panic threshold of 50%, one priority level.
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
        let hosts: Vec<HostInput> = weights
            .iter()
            .zip(healthy)
            .enumerate()
            .map(|(i, (w, h))| HostInput {
                weight: *w,
                healthy: *h,
                priority: 0,
                key: format!("host{i}"),
            })
            .collect();
        let settings = LbSettings {
            healthy_panic_threshold_pct: panic_threshold_pct,
            ..LbSettings::default()
        };
        Balancer::build(policy, choice_count, &settings, &hosts)
    }

    /// The general form: hosts in priority levels, Envoy's priority load (health ×
    /// overprovisioning factor, spilling to lower levels) and per-level panic.
    pub fn build(
        policy: LbPolicy,
        choice_count: u32,
        settings: &LbSettings,
        hosts: &[HostInput],
    ) -> Balancer {
        let n_levels = hosts
            .iter()
            .map(|h| h.priority as usize + 1)
            .max()
            .unwrap_or(0);
        let mut counts = vec![LevelCounts::default(); n_levels];
        for h in hosts {
            let c = &mut counts[h.priority as usize];
            c.total += 1;
            c.healthy += u32::from(h.healthy);
        }
        let load = priority::compute(
            &counts,
            settings.overprovisioning_factor,
            settings.healthy_panic_threshold_pct,
        );
        let mut levels = Vec::with_capacity(n_levels);
        let mut cumulative = Vec::with_capacity(n_levels);
        let mut sum = 0;
        let mut in_panic = false;
        for p in 0..n_levels {
            let panic = load.panic[p];
            let members: Box<[usize]> = (0..hosts.len())
                .filter(|i| hosts[*i].priority as usize == p && (panic || hosts[*i].healthy))
                .collect();
            if load.load[p] > 0 && panic {
                in_panic = true;
            }
            sum += load.load[p];
            cumulative.push(sum);
            let weights: Vec<u32> = members.iter().map(|i| hosts[*i].weight.max(1)).collect();
            let keys =
                || -> Vec<String> { members.iter().map(|i| hosts[*i].key.clone()).collect() };
            let policy = match policy {
                LbPolicy::RoundRobin => Policy::RoundRobin(RoundRobin::new(&weights)),
                LbPolicy::LeastRequest => Policy::LeastRequest(LeastRequest::new(
                    &weights,
                    choice_count,
                    settings.active_request_bias,
                )),
                LbPolicy::Random => Policy::Random,
                LbPolicy::RingHash => Policy::RingHash(Ring::new(
                    &keys(),
                    &weights,
                    settings.minimum_ring_size,
                    settings.maximum_ring_size,
                )),
                LbPolicy::Maglev => {
                    Policy::Maglev(Maglev::new(&keys(), &weights, settings.maglev_table_size))
                }
            };
            levels.push(Level {
                hosts: members,
                policy,
            });
        }
        Balancer {
            levels: levels.into(),
            cumulative: cumulative.into(),
            in_panic,
        }
    }

    /// A host index, or None when no host can be picked (Envoy's UH: an empty set, or no
    /// healthy host with panic mode disabled). `rq_active(i)` gives host i's active requests
    /// (for LEAST_REQUEST); `rand` is a uniform random u64.
    pub fn pick(&self, rand: u64, rq_active: &dyn Fn(usize) -> u64) -> Option<usize> {
        self.pick_hashed(rand, None, rq_active)
    }

    /// Like `pick`, with the request's hash (route `hash_policy`) for RING_HASH and MAGLEV;
    /// without one they pick by `rand`, as Envoy picks a random hash.
    pub fn pick_hashed(
        &self,
        rand: u64,
        hash: Option<u64>,
        rq_active: &dyn Fn(usize) -> u64,
    ) -> Option<usize> {
        let level = match self.levels.len() {
            0 => return None,
            1 => &self.levels[0],
            _ => {
                // Envoy: `hash % 100` (or a random one) against the cumulative loads.
                let point = (hash.unwrap_or(mix(rand)) % 100) as u32;
                let p = self.cumulative.partition_point(|c| *c <= point);
                &self.levels[p.min(self.levels.len() - 1)]
            }
        };
        if level.hosts.is_empty() {
            return None;
        }
        let position = match &level.policy {
            Policy::RoundRobin(rr) => rr.next(),
            Policy::LeastRequest(lr) => lr.pick(rand, &|p| rq_active(level.hosts[p])),
            Policy::Random => random::pick(rand, level.hosts.len()),
            Policy::RingHash(r) => r.pick(hash.unwrap_or(rand)),
            Policy::Maglev(m) => m.pick(hash.unwrap_or(rand)),
        };
        Some(level.hosts[position])
    }

    /// True when a level with load balances over its unhealthy hosts too (for Envoy's
    /// `lb_healthy_panic` counter).
    pub fn in_panic(&self) -> bool {
        self.in_panic
    }

    /// How many hosts picks are spread over (in levels that get traffic).
    pub fn available(&self) -> usize {
        let mut prev = 0;
        let mut n = 0;
        for (l, c) in self.levels.iter().zip(self.cumulative.iter()) {
            if *c > prev {
                n += l.hosts.len();
            }
            prev = *c;
        }
        n
    }
}

/// A second uniform value from `rand` (splitmix64's finaliser), so the priority draw does not
/// correlate with the host draw.
fn mix(rand: u64) -> u64 {
    let mut z = rand.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const POLICIES: [LbPolicy; 5] = [
        LbPolicy::RoundRobin,
        LbPolicy::LeastRequest,
        LbPolicy::Random,
        LbPolicy::RingHash,
        LbPolicy::Maglev,
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
        // A higher threshold panics sooner: 2 of 4 healthy is 50% < 80%.
        let b = Balancer::with_panic_threshold(
            LbPolicy::Random,
            2,
            &[1; 4],
            &[true, true, false, false],
            80,
        );
        assert!(b.in_panic());
        assert_eq!(b.available(), 4);
        // As in Envoy, panic is only considered when the overprovisioned health is below
        // 100: 3 of 4 healthy × 1.4 = 105, so even an 80% threshold does not panic.
        let b = Balancer::with_panic_threshold(
            LbPolicy::Random,
            2,
            &[1; 4],
            &[true, true, true, false],
            80,
        );
        assert!(!b.in_panic());
        assert_eq!(b.available(), 3);
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

    fn level_hosts(levels: &[(u32, bool)]) -> Vec<HostInput> {
        levels
            .iter()
            .enumerate()
            .map(|(i, (priority, healthy))| HostInput {
                weight: 1,
                healthy: *healthy,
                priority: *priority,
                key: format!("10.0.0.{i}:80"),
            })
            .collect()
    }

    #[test]
    fn traffic_fails_over_to_the_next_priority() {
        let s = LbSettings::default();
        for policy in POLICIES {
            // P0 all unhealthy, P1 healthy: everything goes to P1, no panic.
            let hosts = level_hosts(&[(0, false), (0, false), (1, true), (1, true)]);
            let b = Balancer::build(policy, 2, &s, &hosts);
            assert!(!b.in_panic(), "{policy:?}");
            assert_eq!(b.available(), 2);
            for r in rands(5, 500) {
                let h = b.pick(r, &idle).unwrap();
                assert!(h >= 2, "{policy:?} picked P0 host {h}");
            }
        }
        // P0 half healthy: 70% to P0 (its healthy host), 30% to P1.
        let hosts = level_hosts(&[(0, true), (0, false), (1, true), (1, true)]);
        let b = Balancer::build(LbPolicy::Random, 2, &s, &hosts);
        let mut seen = [0u32; 4];
        for r in rands(6, 20_000) {
            seen[b.pick(r, &idle).unwrap()] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!((13_500..14_500).contains(&seen[0]), "{seen:?}");
        // Healthy enough (3 of 4: 105 capped at 100): P1 gets nothing.
        let hosts = level_hosts(&[(0, true), (0, true), (0, true), (0, false), (1, true)]);
        let b = Balancer::build(LbPolicy::RoundRobin, 2, &s, &hosts);
        assert!(rands(7, 100).iter().all(|r| b.pick(*r, &idle).unwrap() < 3));
    }

    #[test]
    fn hash_picks_are_stable_and_choose_the_level_by_hash() {
        let s = LbSettings::default();
        let hosts = level_hosts(&[(0, true), (0, true), (0, true)]);
        for policy in [LbPolicy::RingHash, LbPolicy::Maglev] {
            let b = Balancer::build(policy, 2, &s, &hosts);
            for h in 0..200u64 {
                let hash = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let first = b.pick_hashed(1, Some(hash), &idle);
                assert_eq!(b.pick_hashed(999, Some(hash), &idle), first, "{policy:?}");
            }
        }
    }

    #[test]
    fn least_request_bias_is_configurable() {
        // Weights differ, host 0 is busy: bias 0 ignores load (weights only), bias 1 divides
        // by active + 1.
        let active = |i: usize| if i == 0 { 3 } else { 0 };
        let hosts: Vec<HostInput> = [2u32, 1]
            .iter()
            .enumerate()
            .map(|(i, w)| HostInput {
                weight: *w,
                healthy: true,
                priority: 0,
                key: format!("h{i}"),
            })
            .collect();
        let share = |bias: f64| {
            let s = LbSettings {
                active_request_bias: bias,
                ..LbSettings::default()
            };
            let b = Balancer::build(LbPolicy::LeastRequest, 2, &s, &hosts);
            rands(8, 20_000)
                .into_iter()
                .filter(|r| b.pick(*r, &active) == Some(0))
                .count() as f64
                / 20_000.0
        };
        // bias 0: 2/3; bias 1: (2/4) / (2/4 + 1) = 1/3.
        assert!((share(0.0) - 2.0 / 3.0).abs() < 0.02);
        assert!((share(1.0) - 1.0 / 3.0).abs() < 0.02);
    }
}
