//! Histogram layout in a shard: one slot per bucket (Envoy's default bounds), sum and count.
use serde_json::{Value, json};

/// Envoy's default histogram bucket bounds, in milliseconds.
pub const BUCKET_BOUNDS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// The same bounds in microseconds, for the recording path.
const BOUNDS_US: [u64; 19] = [
    500,
    1_000,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    600_000_000,
    1_800_000_000,
    3_600_000_000,
];
/// Buckets (bounds + overflow), then the sum in µs, then the count.
pub const HISTOGRAM_SLOTS: usize = BOUNDS_US.len() + 3;
/// Bucket counts: one per bound, then the overflow.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;
pub const SUM_SLOT: usize = BOUNDS_US.len() + 1;
pub const COUNT_SLOT: usize = BOUNDS_US.len() + 2;

/// Index of the first bucket whose bound is >= the value (values equal to a bound fall in
/// that bound's bucket, as Envoy's cumulative "le" buckets do); overflow is the last index.
#[inline]
pub fn bucket_of_us(us: u64) -> usize {
    BOUNDS_US.partition_point(|&b| b < us)
}

pub fn to_json(slots: &[u64]) -> Value {
    json!({
        "bounds": BUCKET_BOUNDS_MS.to_vec(),
        "counts": slots[..=BOUNDS_US.len()].to_vec(),
        "sum": slots[SUM_SLOT] as f64 / 1000.0,
        "count": slots[COUNT_SLOT],
    })
}
