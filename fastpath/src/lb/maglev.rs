//! MAGLEV: Envoy's Maglev lookup table (size 65537 by default), built the way Envoy's
//! `MaglevTable` does: per host an offset (xxHash64 seed 0 of `ip:port`) and a skip (seed 1),
//! weighted by letting lighter hosts skip rounds.
use xxhash_rust::xxh64::xxh64;

#[derive(Debug)]
pub(super) struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    /// `size` should be prime (Envoy requires it); `keys[p]` is host p's `ip:port`.
    pub(super) fn new(keys: &[String], weights: &[u32], size: u64) -> Maglev {
        if keys.is_empty() || size < 2 {
            return Maglev {
                table: Box::new([]),
            };
        }
        let sum: f64 = weights.iter().map(|w| f64::from(*w)).sum();
        let normalized: Vec<f64> = weights.iter().map(|w| f64::from(*w) / sum).collect();
        let max_w = normalized.iter().copied().fold(0.0, f64::max);
        struct Entry {
            offset: u64,
            skip: u64,
            weight: f64,
            target: f64,
            next: u64,
        }
        let mut entries: Vec<Entry> = keys
            .iter()
            .zip(&normalized)
            .map(|(k, w)| Entry {
                offset: xxh64(k.as_bytes(), 0) % size,
                skip: xxh64(k.as_bytes(), 1) % (size - 1) + 1,
                weight: *w,
                target: 0.0,
                next: 0,
            })
            .collect();
        let mut table = vec![u32::MAX; size as usize];
        let mut filled = 0u64;
        let mut iteration = 1u64;
        while filled < size {
            for (p, e) in entries.iter_mut().enumerate() {
                if filled >= size {
                    break;
                }
                if (iteration as f64) * e.weight < e.target {
                    continue;
                }
                e.target += max_w;
                let mut c = (e.offset + e.skip * e.next) % size;
                while table[c as usize] != u32::MAX {
                    e.next += 1;
                    c = (e.offset + e.skip * e.next) % size;
                }
                table[c as usize] = p as u32;
                e.next += 1;
                filled += 1;
            }
            iteration += 1;
        }
        Maglev {
            table: table.into(),
        }
    }

    /// Must not be called when empty.
    pub(super) fn pick(&self, hash: u64) -> usize {
        self.table[(hash % self.table.len() as u64) as usize] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.1.{}:8080", i + 1)).collect()
    }

    fn counts(m: &Maglev, hosts: usize) -> Vec<u64> {
        let mut c = vec![0u64; hosts];
        for p in m.table.iter() {
            c[*p as usize] += 1;
        }
        c
    }

    #[test]
    fn table_is_full_and_even() {
        let m = Maglev::new(&keys(5), &[1; 5], 65_537);
        let c = counts(&m, 5);
        assert_eq!(c.iter().sum::<u64>(), 65_537);
        for n in &c {
            assert!((13_000..13_215).contains(n), "{c:?}");
        }
    }

    #[test]
    fn weights_scale_the_table_share() {
        let m = Maglev::new(&keys(2), &[1, 3], 65_537);
        let c = counts(&m, 2);
        let ratio = c[1] as f64 / c[0] as f64;
        assert!((ratio - 3.0).abs() < 0.05, "{c:?}");
    }

    #[test]
    fn removing_a_host_moves_few_other_keys() {
        let all = keys(10);
        let before = Maglev::new(&all, &[1; 10], 65_537);
        let after = Maglev::new(&all[..9], &[1; 9], 65_537);
        let mut moved = 0;
        let mut stayed_hosts = 0;
        for slot in 0..65_537usize {
            let b = before.table[slot];
            if b != 9 {
                stayed_hosts += 1;
                if after.table[slot] != b {
                    moved += 1;
                }
            }
        }
        // Maglev promises minimal disruption, not none: well under 5% of the other slots.
        assert!(moved * 20 < stayed_hosts, "{moved} of {stayed_hosts} moved");
    }
}
