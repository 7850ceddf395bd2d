//! One stat scope (a prefix such as `cluster.backend`): one cache-line aligned shard per worker.
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde_json::{Value, json};

use super::histogram::{self, HISTOGRAM_SLOTS};

/// The names of a stat set, in slot order.
pub struct Layout {
    pub counters: &'static [&'static str],
    pub gauges: &'static [&'static str],
    pub histograms: &'static [&'static str],
    /// Gauges set from the control path (not sharded), e.g. `membership_total`.
    pub globals: &'static [&'static str],
    /// Counters only the control path increments (not sharded, atomic add), e.g.
    /// `membership_change`: workers cannot reach them, so they never race a shard.
    pub control_counters: &'static [&'static str],
    /// When set, per-status-code counters `<prefix><code>` (e.g. `upstream_rq_200`).
    pub status_codes: Option<&'static str>,
}

impl Layout {
    fn slots(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len() * HISTOGRAM_SLOTS
    }
}

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const LINE: usize = 8;
/// Status codes 100..=599.
const CODES: usize = 500;

/// Eight counters on their own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; LINE]);

struct Shard {
    lines: Box<[Line]>,
    codes: OnceLock<Box<[AtomicU64]>>,
}

impl Shard {
    #[inline]
    fn slot(&self, i: usize) -> &AtomicU64 {
        &self.lines[i / LINE].0[i % LINE]
    }
}

pub struct Scope {
    prefix: String,
    layout: &'static Layout,
    shards: Box<[Shard]>,
    globals: Box<[AtomicU64]>,
    control: Box<[AtomicU64]>,
}

/// Adds to a slot that only one thread (the shard's worker) writes: a plain load and store,
/// no locked instruction.
#[inline]
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Scope {
    pub fn new(prefix: String, layout: &'static Layout, workers: usize) -> Scope {
        let lines = layout.slots().div_ceil(LINE).max(1);
        let shards = (0..workers.max(1))
            .map(|_| Shard {
                lines: (0..lines).map(|_| Line::default()).collect(),
                codes: OnceLock::new(),
            })
            .collect();
        let globals = layout.globals.iter().map(|_| AtomicU64::new(0)).collect();
        let control = layout
            .control_counters
            .iter()
            .map(|_| AtomicU64::new(0))
            .collect();
        Scope {
            prefix,
            layout,
            shards,
            globals,
            control,
        }
    }

    pub fn layout(&self) -> &'static Layout {
        self.layout
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    #[inline]
    pub fn add(&self, w: usize, counter: usize, n: u64) {
        bump(self.shards[w].slot(counter), n);
    }

    #[inline]
    pub fn gauge_add(&self, w: usize, gauge: usize, delta: i64) {
        let i = self.layout.counters.len() + gauge;
        bump(self.shards[w].slot(i), delta as u64);
    }

    /// Records a duration (µs) into histogram `h`.
    #[inline]
    pub fn record_us(&self, w: usize, h: usize, us: u64) {
        let base = self.layout.counters.len() + self.layout.gauges.len() + h * HISTOGRAM_SLOTS;
        let shard = &self.shards[w];
        bump(shard.slot(base + histogram::bucket_of_us(us)), 1);
        bump(shard.slot(base + histogram::SUM_SLOT), us);
        bump(shard.slot(base + histogram::COUNT_SLOT), 1);
    }

    #[inline]
    pub fn status_code(&self, w: usize, code: u16) {
        if self.layout.status_codes.is_none() || !(100..600).contains(&code) {
            return;
        }
        let codes = self.shards[w]
            .codes
            .get_or_init(|| (0..CODES).map(|_| AtomicU64::new(0)).collect());
        bump(&codes[(code - 100) as usize], 1);
    }

    pub fn set_global(&self, g: usize, v: u64) {
        self.globals[g].store(v, Relaxed);
    }

    /// Adds to a control counter (any thread; an atomic add, off the data path).
    pub fn control_add(&self, c: usize, n: u64) {
        self.control[c].fetch_add(n, Relaxed);
    }

    fn sum(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |acc, s| acc.wrapping_add(s.slot(i).load(Relaxed)))
    }

    /// Calls `out(kind, full_name, value)` for every stat, merged over the shards.
    pub fn export(&self, out: &mut dyn FnMut(Kind, String, Value)) {
        let l = self.layout;
        let name = |n: &str| format!("{}.{}", self.prefix, n);
        for (i, n) in l.counters.iter().enumerate() {
            out(Kind::Counter, name(n), json!(self.sum(i)));
        }
        for (i, n) in l.control_counters.iter().enumerate() {
            out(Kind::Counter, name(n), json!(self.control[i].load(Relaxed)));
        }
        for (i, n) in l.gauges.iter().enumerate() {
            let v = self.sum(l.counters.len() + i) as i64;
            out(Kind::Gauge, name(n), json!(v));
        }
        for (i, n) in l.globals.iter().enumerate() {
            out(Kind::Gauge, name(n), json!(self.globals[i].load(Relaxed)));
        }
        for (h, n) in l.histograms.iter().enumerate() {
            let base = l.counters.len() + l.gauges.len() + h * HISTOGRAM_SLOTS;
            let slots: Vec<u64> = (0..HISTOGRAM_SLOTS).map(|k| self.sum(base + k)).collect();
            out(Kind::Histogram, name(n), histogram::to_json(&slots));
        }
        if let Some(p) = l.status_codes {
            for c in 0..CODES {
                let v: u64 = self
                    .shards
                    .iter()
                    .filter_map(|s| s.codes.get())
                    .map(|codes| codes[c].load(Relaxed))
                    .sum();
                if v > 0 {
                    out(
                        Kind::Counter,
                        format!("{}.{}{}", self.prefix, p, c + 100),
                        json!(v),
                    );
                }
            }
        }
    }
}
