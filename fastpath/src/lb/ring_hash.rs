//! RING_HASH: Envoy's ketama ring. Each host gets `scale × normalized weight` points hashed
//! with xxHash64 (seed 0) of `"<ip:port>_<i>"`, as Envoy's `RingHashLoadBalancer::Ring`
//! builds them, so a request hash picks the same host as Envoy's ring over the same hosts.
use xxhash_rust::xxh64::xxh64;

#[derive(Debug)]
pub(super) struct Ring {
    /// (point hash, position), sorted by hash.
    points: Box<[(u64, u32)]>,
}

impl Ring {
    /// `keys[p]` is host p's address (`ip:port`), `weights[p]` its weight (>= 1).
    pub(super) fn new(keys: &[String], weights: &[u32], min_size: u64, max_size: u64) -> Ring {
        let sum: f64 = weights.iter().map(|w| f64::from(*w)).sum();
        if keys.is_empty() || sum == 0.0 {
            return Ring {
                points: Box::new([]),
            };
        }
        let normalized: Vec<f64> = weights.iter().map(|w| f64::from(*w) / sum).collect();
        let min_w = normalized.iter().copied().fold(f64::INFINITY, f64::min);
        let scale = ((min_w * min_size as f64).ceil() / min_w).min(max_size as f64);
        let mut points = Vec::with_capacity(scale.ceil() as usize);
        let mut current = 0.0f64;
        let mut target = 0.0f64;
        let mut key = String::new();
        for (p, (host, w)) in keys.iter().zip(&normalized).enumerate() {
            target += scale * w;
            let mut i = 0u64;
            while current < target {
                key.clear();
                key.push_str(host);
                key.push('_');
                key.push_str(itoa::Buffer::new().format(i));
                points.push((xxh64(key.as_bytes(), 0), p as u32));
                i += 1;
                current += 1.0;
            }
        }
        points.sort_unstable_by_key(|e| e.0);
        Ring {
            points: points.into(),
        }
    }

    /// The first point at or after `hash`, wrapping around. Must not be called when empty.
    pub(super) fn pick(&self, hash: u64) -> usize {
        let i = self.points.partition_point(|e| e.0 < hash);
        let i = if i == self.points.len() { 0 } else { i };
        self.points[i].1 as usize
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{}:80", i + 1)).collect()
    }

    #[test]
    fn ring_size_follows_min_and_max() {
        let r = Ring::new(&keys(4), &[1; 4], 1024, 8 << 20);
        assert_eq!(r.len(), 1024);
        let r = Ring::new(&keys(4), &[1; 4], 1024, 100);
        assert_eq!(r.len(), 100);
        // Weights 1:3: a quarter of the points for the light host.
        let r = Ring::new(&keys(2), &[1, 3], 1024, 8 << 20);
        assert_eq!(r.len(), 1024);
        assert_eq!(r.points.iter().filter(|p| p.1 == 0).count(), 256);
        // Weights 1:100: scale = ceil(1024 / 101) × 101 = 1111 points, 11 for the light host.
        let r = Ring::new(&keys(2), &[1, 100], 1024, 8 << 20);
        assert_eq!(r.len(), 1111);
        assert_eq!(r.points.iter().filter(|p| p.1 == 0).count(), 11);
    }

    #[test]
    fn spreads_keys_by_weight() {
        let r = Ring::new(&keys(4), &[1, 1, 1, 3], 1024, 8 << 20);
        let mut counts = [0u32; 4];
        for k in 0..60_000u64 {
            counts[r.pick(xxh64(&k.to_le_bytes(), 0))] += 1;
        }
        for c in &counts[..3] {
            assert!((7_500..12_500).contains(c), "{counts:?}");
        }
        assert!((25_000..35_000).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn removing_a_host_moves_few_other_keys() {
        let all = keys(5);
        let before = Ring::new(&all, &[1; 5], 1024, 8 << 20);
        let after = Ring::new(&all[..4], &[1; 4], 1024, 8 << 20);
        let (mut stayed, mut moved) = (0, 0);
        for k in 0..20_000u64 {
            let h = xxh64(&k.to_le_bytes(), 0);
            let b = before.pick(h);
            if b == 4 {
                assert_ne!(after.pick(h), 4);
            } else {
                stayed += 1;
                moved += usize::from(after.pick(h) != b);
            }
        }
        // The survivors gain points (their share grows from 1/5 to 1/4), so keys next to the
        // new points move: about a fifth, where `hash % n` would move four fifths.
        assert!(moved * 4 < stayed, "{moved} of {stayed} moved");
    }

    #[test]
    fn wraps_past_the_last_point() {
        let r = Ring::new(&keys(3), &[1; 3], 16, 16);
        let first = r.points[0].1 as usize;
        assert_eq!(r.pick(u64::MAX), first);
        assert_eq!(r.pick(0), first);
    }
}
