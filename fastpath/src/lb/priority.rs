//! Envoy's priority load: how much traffic each priority level gets from its health
//! (`healthy / total × overprovisioning_factor`, capped at 100), spilling to lower levels, and
//! which levels are in panic (`LoadBalancerBase::recalculatePriorityLoad` and
//! `recalculatePerPriorityPanic`).

/// Host counts of one priority level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCounts {
    pub total: u32,
    pub healthy: u32,
}

/// Per level: its share of the traffic in percent (the shares sum to 100) and whether it
/// balances over all its hosts (panic) instead of the healthy ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityLoad {
    pub load: Vec<u32>,
    pub panic: Vec<bool>,
}

/// Computes the load as Envoy does. `overprovisioning` is the factor in percent (140 = 1.4);
/// `panic_threshold` in percent (0 disables panic mode).
pub fn compute(
    levels: &[LevelCounts],
    overprovisioning: u32,
    panic_threshold: u32,
) -> PriorityLoad {
    let n = levels.len();
    let mut out = PriorityLoad {
        load: vec![0; n],
        panic: vec![false; n],
    };
    if n == 0 {
        return out;
    }
    let health: Vec<u32> = levels
        .iter()
        .map(|l| {
            if l.total == 0 {
                0
            } else {
                let h = u64::from(overprovisioning) * u64::from(l.healthy) / u64::from(l.total);
                h.min(100) as u32
            }
        })
        .collect();
    let total_health = health.iter().sum::<u32>().min(100);
    if total_health > 0 {
        let mut remaining = 100u32;
        let mut first_healthy = None;
        for (i, h) in health.iter().enumerate() {
            if *h > 0 && first_healthy.is_none() {
                first_healthy = Some(i);
            }
            let share = (h * 100)
                .checked_div(total_health)
                .unwrap_or(0)
                .min(remaining);
            out.load[i] = share;
            remaining -= share;
        }
        if let Some(first) = first_healthy {
            out.load[first] += remaining;
        }
    }
    let threshold = panic_threshold.min(100);
    if threshold == 0 && total_health == 0 {
        // No healthy host and panic disabled: P0 takes the load and finds nobody.
        out.load[0] = 100;
        return out;
    }
    for (i, l) in levels.iter().enumerate() {
        out.panic[i] = total_health != 100 && in_panic(*l, threshold);
    }
    if out.panic.iter().all(|p| *p) {
        load_in_total_panic(levels, &mut out.load);
    }
    out
}

/// Envoy's `isHostSetInPanic`: the healthy share is below the threshold.
fn in_panic(l: LevelCounts, threshold: u32) -> bool {
    let healthy_pct = if l.total == 0 {
        0.0
    } else {
        100.0 * f64::from(l.healthy) / f64::from(l.total)
    };
    healthy_pct < f64::from(threshold)
}

/// Every level in panic: load in proportion to host counts, the rest to the first non-empty.
fn load_in_total_panic(levels: &[LevelCounts], load: &mut [u32]) {
    let hosts: u64 = levels.iter().map(|l| u64::from(l.total)).sum();
    if hosts == 0 {
        return;
    }
    let mut remaining = 100u32;
    let mut first = None;
    for (i, l) in levels.iter().enumerate() {
        if first.is_none() && l.total > 0 {
            first = Some(i);
        }
        let share = (100 * u64::from(l.total) / hosts) as u32;
        load[i] = share;
        remaining -= share;
    }
    if let Some(f) = first {
        load[f] += remaining;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(healthy: u32, total: u32) -> LevelCounts {
        LevelCounts { total, healthy }
    }

    #[test]
    fn envoy_documented_priority_levels() {
        // The table of Envoy's "Priority levels" page (two levels, factor 1.4).
        let cases = [
            (100, 100, 100, 0),
            (72, 100, 100, 0),
            (71, 100, 99, 1),
            (50, 100, 70, 30),
            (25, 100, 35, 65),
            (0, 100, 0, 100),
        ];
        for (p0, p1, l0, l1) in cases {
            let r = compute(&[lv(p0, 100), lv(p1, 100)], 140, 50);
            assert_eq!(r.load, vec![l0, l1], "P0 {p0}% P1 {p1}%");
            assert_eq!(r.panic, vec![false, false]);
        }
    }

    #[test]
    fn envoy_documented_three_levels() {
        // P0 20% healthy, P1 20%, P2 100%: 28, 28, 44.
        let r = compute(&[lv(20, 100), lv(20, 100), lv(100, 100)], 140, 50);
        assert_eq!(r.load, vec![28, 28, 44]);
    }

    #[test]
    fn normalized_when_total_health_is_below_100() {
        // P0 20% and P1 30% healthy: health 28 + 42 = 70 < 100, so panic is checked per
        // level: 20% and 30% are both below 50%, a total panic: load by host count.
        let r = compute(&[lv(20, 100), lv(30, 100)], 140, 50);
        assert_eq!(r.panic, vec![true, true]);
        assert_eq!(r.load, vec![50, 50]);
        // With panic disabled, the normalised load stays.
        let r = compute(&[lv(20, 100), lv(30, 100)], 140, 0);
        assert_eq!(r.panic, vec![false, false]);
        assert_eq!(r.load, vec![40, 60]);
    }

    #[test]
    fn single_level_panic_threshold() {
        let r = compute(&[lv(2, 4)], 140, 50);
        assert_eq!((r.load.clone(), r.panic.clone()), (vec![100], vec![false]));
        let r = compute(&[lv(1, 3)], 140, 50);
        assert_eq!((r.load.clone(), r.panic.clone()), (vec![100], vec![true]));
        let r = compute(&[lv(0, 3)], 140, 0);
        assert_eq!((r.load.clone(), r.panic.clone()), (vec![100], vec![false]));
        let r = compute(&[lv(3, 4)], 140, 80);
        // 105 health caps at 100: never panic when the total health is 100.
        assert_eq!(r.panic, vec![false]);
    }

    #[test]
    fn total_panic_spreads_by_host_count() {
        let r = compute(&[lv(0, 3), lv(0, 1)], 140, 50);
        assert_eq!(r.panic, vec![true, true]);
        assert_eq!(r.load, vec![75, 25]);
        let r = compute(&[lv(0, 0), lv(0, 3)], 140, 50);
        assert_eq!(r.load, vec![0, 100]);
    }

    #[test]
    fn custom_overprovisioning_factor() {
        // Factor 1.0: P0 at 80% keeps 80%.
        let r = compute(&[lv(80, 100), lv(100, 100)], 100, 50);
        assert_eq!(r.load, vec![80, 20]);
    }
}
