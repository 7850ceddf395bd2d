//! LEAST_REQUEST: Envoy's power-of-N-choices when weights are equal, and weighted selection by
//! `weight / (active + 1) ^ active_request_bias` when they differ.
use fastrand::Rng;

/// Weighted picks first try this many proposals by static weight, each accepted with
/// probability `1 / (active + 1) ^ bias`; then they fall back to one exact O(n) draw.
const REJECTION_TRIES: u32 = 16;

#[derive(Debug)]
pub(super) struct LeastRequest {
    choice_count: u32,
    /// Present when the weights differ.
    weighted: Option<Weighted>,
    hosts: usize,
}

#[derive(Debug)]
struct Weighted {
    weights: Box<[u32]>,
    /// `active_request_bias` (Envoy default 1.0).
    bias: f64,
    /// Cumulative weights: host i covers `[cumulative[i-1], cumulative[i])`.
    cumulative: Box<[u64]>,
}

impl LeastRequest {
    /// `weights` are those of the hosts picks are made from (each >= 1).
    pub(super) fn new(weights: &[u32], choice_count: u32, bias: f64) -> LeastRequest {
        let differ = weights.windows(2).any(|w| w[0] != w[1]);
        let weighted = differ.then(|| Weighted {
            weights: weights.into(),
            bias: if bias.is_finite() { bias.max(0.0) } else { 1.0 },
            cumulative: weights
                .iter()
                .scan(0u64, |sum, w| {
                    *sum += u64::from(*w);
                    Some(*sum)
                })
                .collect(),
        });
        LeastRequest {
            choice_count: choice_count.max(1),
            weighted,
            hosts: weights.len(),
        }
    }

    /// A position (index into `weights`); `active(p)` is the active request count of the host
    /// at position p. Must not be called with no hosts.
    pub(super) fn pick(&self, rand: u64, active: &dyn Fn(usize) -> u64) -> usize {
        let mut rng = Rng::with_seed(rand);
        match &self.weighted {
            None => self.unweighted(&mut rng, active),
            Some(w) => w.pick(&mut rng, active),
        }
    }

    /// Envoy's `unweightedHostPick`: `choice_count` samples with replacement; the first of
    /// the least loaded wins.
    fn unweighted(&self, rng: &mut Rng, active: &dyn Fn(usize) -> u64) -> usize {
        let mut best = rng.usize(..self.hosts);
        let mut best_active = active(best);
        for _ in 1..self.choice_count {
            let candidate = rng.usize(..self.hosts);
            let candidate_active = active(candidate);
            if candidate_active < best_active {
                best = candidate;
                best_active = candidate_active;
            }
        }
        best
    }
}

impl Weighted {
    /// Picks host i with probability proportional to `w_i / (active_i + 1)`: the rate at which
    /// Envoy's EDF scheduler over those dynamic weights picks it, drawn statelessly instead.
    /// Rejection sampling keeps the common case O(log n); if every proposal is rejected (hosts
    /// are busy), one exact draw over all hosts is made, so the distribution stays exact.
    fn pick(&self, rng: &mut Rng, active: &dyn Fn(usize) -> u64) -> usize {
        let total = *self.cumulative.last().expect("at least one host");
        for _ in 0..REJECTION_TRIES {
            let point = rng.u64(..total);
            let p = self.cumulative.partition_point(|end| *end <= point);
            let a = active(p);
            let accept = if self.bias == 1.0 {
                a == 0 || rng.u64(..a.saturating_add(1)) == 0
            } else {
                a == 0 || rng.f64() < (a as f64 + 1.0).powf(-self.bias)
            };
            if accept {
                return p;
            }
        }
        let effective =
            |p: usize| f64::from(self.weights[p]) / (active(p) as f64 + 1.0).powf(self.bias);
        let sum: f64 = (0..self.weights.len()).map(effective).sum();
        let mut point = rng.f64() * sum;
        for p in 0..self.weights.len() {
            let e = effective(p);
            if point < e {
                return p;
            }
            point -= e;
        }
        // Counts moved between the two passes, or rounding: the last host.
        self.weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(
        lr: &LeastRequest,
        active: &dyn Fn(usize) -> u64,
        hosts: usize,
        picks: u64,
    ) -> Vec<f64> {
        let mut counts = vec![0u64; hosts];
        for r in 0..picks {
            counts[lr.pick(r.wrapping_mul(0x9e37_79b9_7f4a_7c15), active)] += 1;
        }
        counts.iter().map(|c| *c as f64 / picks as f64).collect()
    }

    #[test]
    fn equal_weights_use_power_of_choices() {
        let lr = LeastRequest::new(&[1, 1, 1, 1], 2, 1.0);
        assert!(lr.weighted.is_none());
        // Host 3 is idle, the others busy: it wins unless both samples miss it,
        // so its share is 1 - (3/4)^2 = 7/16.
        let s = share(&lr, &|p| if p == 3 { 0 } else { 5 }, 4, 20_000);
        assert!((s[3] - 7.0 / 16.0).abs() < 0.02, "{s:?}");
        // More choices find the idle host more often.
        let lr = LeastRequest::new(&[1, 1, 1, 1], 5, 1.0);
        let s = share(&lr, &|p| if p == 3 { 0 } else { 5 }, 4, 20_000);
        assert!((s[3] - (1.0 - 0.75f64.powi(5))).abs() < 0.02, "{s:?}");
    }

    #[test]
    fn ties_keep_the_first_sample() {
        let lr = LeastRequest::new(&[1, 1], 2, 1.0);
        // With equal load every host is still reachable.
        let s = share(&lr, &|_| 3, 2, 4_000);
        assert!(s.iter().all(|x| (x - 0.5).abs() < 0.05), "{s:?}");
    }

    #[test]
    fn weighted_picks_follow_weight_over_active_plus_one() {
        let lr = LeastRequest::new(&[1, 3], 2, 1.0);
        assert!(lr.weighted.is_some());
        let s = share(&lr, &|_| 0, 2, 40_000);
        assert!((s[1] - 0.75).abs() < 0.02, "{s:?}");
        // Host 1 has 5 active: 3/6 = 0.5 against 1/1, so it gets a third.
        let s = share(&lr, &|p| if p == 1 { 5 } else { 0 }, 2, 40_000);
        assert!((s[1] - 1.0 / 3.0).abs() < 0.02, "{s:?}");
        // Heavily loaded hosts exercise the exact fallback; the ratio must still hold:
        // 1/101 against 3/201.
        let s = share(&lr, &|p| if p == 1 { 200 } else { 100 }, 2, 40_000);
        let want = (3.0 / 201.0) / (3.0 / 201.0 + 1.0 / 101.0);
        assert!((s[1] - want).abs() < 0.02, "{s:?} want {want}");
    }

    #[test]
    fn single_host_and_zero_choices() {
        let lr = LeastRequest::new(&[7], 0, 1.0);
        assert_eq!(lr.pick(123, &|_| 9), 0);
        let lr = LeastRequest::new(&[1, 1], 0, 1.0);
        assert!(lr.pick(5, &|_| 0) < 2);
    }
}
