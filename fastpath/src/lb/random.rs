//! RANDOM: a uniform pick over the available hosts; like Envoy's `RandomLoadBalancer`, it
//! ignores weights.

/// A position below `hosts` (> 0), from a uniform random u64 (multiply-shift: unbiased enough
/// and cheaper than a division).
pub(super) fn pick(rand: u64, hosts: usize) -> usize {
    ((u128::from(rand) * hosts as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_host_uniformly() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[pick(rng.u64(..), 5)] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_500..10_500).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn stays_in_range_at_the_extremes() {
        assert_eq!(pick(0, 3), 0);
        assert_eq!(pick(u64::MAX, 3), 2);
        assert_eq!(pick(u64::MAX, 1), 0);
    }
}
