//! Smooth weighted round robin: a precomputed, interleaved schedule walked by an atomic cursor.
//!
//! Envoy runs an EDF scheduler under a per-worker structure; meshcore shares one balancer
//! between workers, so the schedule is computed once per host-set change and picks are a
//! single `fetch_add`.
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest schedule built before weights are scaled down (each entry is 4 bytes). Larger
/// host sets get `SCHEDULE_PER_HOST` entries per host instead.
const MAX_SCHEDULE: u64 = 1 << 16;
const SCHEDULE_PER_HOST: u64 = 8;

/// Building the nested schedule costs O(classes × cycle); past this many distinct weights the
/// cheaper phased schedule is used.
const MAX_CLASSES: usize = 64;

/// Phase step between hosts of the phased schedule: the golden ratio keeps hosts from landing
/// on the same slots.
const GOLDEN: f64 = 0.618_033_988_749_894_9;

#[derive(Debug)]
pub(super) struct RoundRobin {
    /// Positions in one cycle; `None` when all weights are equal (plain rotation).
    schedule: Option<Box<[u32]>>,
    hosts: usize,
    cursor: AtomicUsize,
}

impl RoundRobin {
    /// `weights` are those of the hosts picks are made from (each >= 1). Starts at a random
    /// point of the cycle, as Envoy does, so that proxies do not march in step.
    pub(super) fn new(weights: &[u32]) -> RoundRobin {
        let schedule = schedule(weights);
        let cycle = schedule.as_ref().map_or(weights.len(), |s| s.len());
        RoundRobin {
            schedule,
            hosts: weights.len(),
            cursor: AtomicUsize::new(if cycle == 0 {
                0
            } else {
                fastrand::usize(..cycle)
            }),
        }
    }

    /// The next position (index into `weights`). Must not be called with no hosts.
    pub(super) fn next(&self) -> usize {
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        match &self.schedule {
            Some(s) => s[n % s.len()] as usize,
            None => n % self.hosts,
        }
    }
}

/// One cycle in which host i appears `w_i` times (weights divided by their gcd), spread out.
/// When the cycle would be longer than the cap, weights are scaled down proportionally (each
/// stays >= 1).
fn schedule(weights: &[u32]) -> Option<Box<[u32]>> {
    let first = *weights.first()?;
    if weights.iter().all(|w| *w == first) {
        return None;
    }
    let divisor = weights.iter().fold(0u64, |g, w| gcd(g, u64::from(*w)));
    let mut reduced: Vec<u64> = weights.iter().map(|w| u64::from(*w) / divisor).collect();
    let total: u64 = reduced.iter().sum();
    let cap = MAX_SCHEDULE.max(SCHEDULE_PER_HOST * weights.len() as u64);
    if total > cap {
        for w in &mut reduced {
            *w = ((u128::from(*w) * u128::from(cap) / u128::from(total)) as u64).max(1);
        }
    }
    // Hosts of equal weight form a class.
    let mut classes: Vec<(u64, Vec<u32>)> = Vec::new();
    for (i, w) in reduced.iter().enumerate() {
        match classes.iter().position(|(cw, _)| cw == w) {
            Some(c) => classes[c].1.push(i as u32),
            None if classes.len() < MAX_CLASSES => classes.push((*w, vec![i as u32])),
            None => return Some(phased(&reduced)),
        }
    }
    Some(nested(classes))
}

/// Two-letter balanced words, nested: the class with the largest total weight is spread as
/// evenly as possible (a Bresenham line) among the slots of all lighter classes, whose own
/// order is built the same way; hosts of one class take its slots in turn. A host alone in the
/// heaviest class then never runs longer than `ceil(w / (W - w))`, the least any schedule can
/// do, and other hosts at most one longer than their share forces (checked by the tests).
fn nested(mut classes: Vec<(u64, Vec<u32>)>) -> Box<[u32]> {
    let total = |c: &(u64, Vec<u32>)| c.0 * c.1.len() as u64;
    classes.sort_by(|a, b| total(b).cmp(&total(a)).then(b.0.cmp(&a.0)));
    let mut order: Vec<usize> = Vec::new();
    for (class, c) in classes.iter().enumerate().rev() {
        let heavy = total(c);
        let slots = heavy + order.len() as u64;
        let mut lighter = order.iter();
        order = (0..slots)
            .map(|t| {
                if (t + 1) * heavy / slots > t * heavy / slots {
                    class
                } else {
                    *lighter.next().expect("slot count matches")
                }
            })
            .collect();
    }
    let mut turn = vec![0usize; classes.len()];
    order
        .into_iter()
        .map(|class| {
            let members = &classes[class].1;
            let host = members[turn[class] % members.len()];
            turn[class] += 1;
            host
        })
        .collect()
}

/// For many distinct weights: host i's k-th slot sits at `(k + phase_i) / w_i` of the cycle.
/// Exact counts and evenly spaced per host, though not run-optimal like `nested`.
fn phased(weights: &[u64]) -> Box<[u32]> {
    let mut slots: Vec<(f64, u32)> = Vec::with_capacity(weights.iter().sum::<u64>() as usize);
    for (i, w) in weights.iter().enumerate() {
        let phase = ((i + 1) as f64 * GOLDEN).fract();
        for k in 0..*w {
            slots.push(((k as f64 + phase) / *w as f64, i as u32));
        }
    }
    slots.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    slots.into_iter().map(|(_, i)| i).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(schedule: &[u32], hosts: usize) -> Vec<u64> {
        let mut c = vec![0u64; hosts];
        for i in schedule {
            c[*i as usize] += 1;
        }
        c
    }

    /// Longest run of the same host in the schedule taken as a cycle.
    fn longest_cyclic_run(schedule: &[u32], host: u32) -> usize {
        let n = schedule.len();
        let mut best = 0;
        let mut run = 0;
        for k in 0..2 * n {
            if schedule[k % n] == host {
                run += 1;
                best = best.max(run);
            } else {
                run = 0;
            }
        }
        best.min(n)
    }

    #[test]
    fn equal_weights_need_no_schedule() {
        assert!(schedule(&[4, 4, 4]).is_none());
        assert!(schedule(&[]).is_none());
        let rr = RoundRobin::new(&[1, 1, 1]);
        let start = rr.next();
        assert_eq!(
            (rr.next(), rr.next(), rr.next()),
            ((start + 1) % 3, (start + 2) % 3, start)
        );
    }

    #[test]
    fn schedule_counts_are_the_reduced_weights() {
        let s = schedule(&[2, 4, 6]).unwrap();
        assert_eq!(counts(&s, 3), [1, 2, 3]);
        let s = schedule(&[5, 1, 1]).unwrap();
        assert_eq!(counts(&s, 3), [5, 1, 1]);
    }

    #[test]
    fn heavy_host_is_interleaved_not_bursty() {
        // A burst schedule would run host 0 five times in a row; 5 picks among 7 slots cannot
        // do better than runs of 3.
        let s = schedule(&[5, 1, 1]).unwrap();
        assert!(longest_cyclic_run(&s, 0) <= 3, "{s:?}");
        let s = schedule(&[1, 1, 4]).unwrap();
        assert!(longest_cyclic_run(&s, 2) <= 2, "{s:?}");
        let s = schedule(&[1, 2]).unwrap();
        assert_eq!(longest_cyclic_run(&s, 0), 1, "{s:?}");
    }

    #[test]
    fn every_host_is_spread_over_the_cycle() {
        // For random weight sets, counts are exact and no host runs longer than its share
        // forces (ceil(w / (W - w))) plus one.
        let mut rng = fastrand::Rng::with_seed(42);
        for _ in 0..1000 {
            let n = rng.usize(2..12);
            let weights: Vec<u32> = (0..n).map(|_| rng.u32(1..20)).collect();
            let Some(s) = schedule(&weights) else {
                continue;
            };
            let divisor = weights.iter().fold(0u64, |g, w| gcd(g, u64::from(*w)));
            let reduced: Vec<u64> = weights.iter().map(|w| u64::from(*w) / divisor).collect();
            let total: u64 = reduced.iter().sum();
            assert_eq!(counts(&s, n), reduced, "{weights:?}");
            for (i, w) in reduced.iter().enumerate() {
                let bound = w.div_ceil(total - w) as usize + 1;
                let run = longest_cyclic_run(&s, i as u32);
                assert!(
                    run <= bound,
                    "{weights:?}: host {i} runs {run} > {bound} in {s:?}"
                );
            }
        }
    }

    #[test]
    fn many_distinct_weights_use_the_phased_schedule() {
        let weights: Vec<u32> = (1..=100).collect();
        let s = schedule(&weights).unwrap();
        let c = counts(&s, 100);
        assert_eq!(c, (1..=100).collect::<Vec<u64>>());
        // Host 99 (weight 100 of 5050) must not bunch up.
        assert!(longest_cyclic_run(&s, 99) <= 2, "{s:?}");
    }

    #[test]
    fn huge_weights_are_scaled_to_a_bounded_schedule() {
        let s = schedule(&[u32::MAX, u32::MAX / 2, 1]).unwrap();
        assert!(s.len() as u64 <= MAX_SCHEDULE + 3);
        let c = counts(&s, 3);
        assert!(c[2] >= 1);
        let ratio = c[0] as f64 / c[1] as f64;
        assert!((ratio - 2.0).abs() < 0.01, "{c:?}");
    }

    #[test]
    fn cursor_walks_the_schedule() {
        let rr = RoundRobin::new(&[3, 1]);
        let picks: Vec<usize> = (0..8).map(|_| rr.next()).collect();
        assert_eq!(picks[..4], picks[4..]);
        assert_eq!(picks[..4].iter().filter(|p| **p == 0).count(), 3);
    }
}
