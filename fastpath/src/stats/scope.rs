//! One stat scope (a prefix such as `cluster.backend`): one cache-line aligned shard per worker.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use super::histogram::{self, BUCKETS, HISTOGRAM_SLOTS};
use super::order::Item;

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
    /// The flat export's walk of these stats in name order (`order::layout_items`), built on
    /// first export.
    pub(crate) order: OnceLock<Box<[Item]>>,
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
pub(crate) const CODES: usize = 500;

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

/// A histogram's reading at the last stats flush and the samples of the interval before it
/// (bucket counts), kept once the histogram has had a sample.
pub(crate) struct Flushed {
    at_flush: [u64; HISTOGRAM_SLOTS],
    pub(crate) interval: [u64; BUCKETS],
}

pub struct Scope {
    prefix: String,
    /// `prefix.` with NUL and newline (the flat export's separators) replaced by `_`.
    key: Box<str>,
    layout: &'static Layout,
    shards: Box<[Shard]>,
    globals: Box<[AtomicU64]>,
    control: Box<[AtomicU64]>,
    /// Per histogram: `None` until a flush saw a sample.
    flushed: Mutex<Box<[Option<Box<Flushed>>]>>,
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
        let key = format!("{prefix}.").replace(['\0', '\n'], "_").into();
        let flushed = Mutex::new(layout.histograms.iter().map(|_| None).collect());
        Scope {
            prefix,
            key,
            layout,
            shards,
            globals,
            control,
            flushed,
        }
    }

    /// The prefix and a dot, as the flat export writes it.
    pub(crate) fn key(&self) -> &str {
        &self.key
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
        if super::samples::enabled() {
            // Envoy's statsd timers are whole milliseconds (truncated).
            super::samples::push(w, &self.key, self.layout.histograms[h], us / 1000);
        }
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

    /// Counter `i`, merged over the shards.
    pub(crate) fn counter(&self, i: usize) -> u64 {
        self.sum(i)
    }

    pub(crate) fn control_counter(&self, i: usize) -> u64 {
        self.control[i].load(Relaxed)
    }

    pub(crate) fn gauge(&self, i: usize) -> i64 {
        self.sum(self.layout.counters.len() + i) as i64
    }

    pub(crate) fn global(&self, i: usize) -> u64 {
        self.globals[i].load(Relaxed)
    }

    /// Histogram `h`'s slots (buckets, sum in µs, count), merged over the shards.
    pub(crate) fn histogram(&self, h: usize) -> [u64; HISTOGRAM_SLOTS] {
        let base = self.layout.counters.len() + self.layout.gauges.len() + h * HISTOGRAM_SLOTS;
        std::array::from_fn(|k| self.sum(base + k))
    }

    /// Whether any worker counted a status code (the export skips the code walk otherwise).
    pub(crate) fn has_codes(&self) -> bool {
        self.shards.iter().any(|s| s.codes.get().is_some())
    }

    /// Count of status code `code` (100..600), merged over the shards.
    pub(crate) fn code(&self, code: usize) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.codes.get())
            .fold(0u64, |acc, c| acc.wrapping_add(c[code - 100].load(Relaxed)))
    }

    /// Ends a stats flush interval: each histogram's samples since the last flush become its
    /// interval reading (Envoy's `P50(interval,...)`). Histograms that never had a sample keep
    /// no state.
    pub(crate) fn flush_histograms(&self) {
        if self.layout.histograms.is_empty() {
            return;
        }
        let first = self.layout.counters.len() + self.layout.gauges.len();
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        for (h, state) in flushed.iter_mut().enumerate() {
            // A histogram that never had a sample has a zero count: one slot read per shard
            // instead of all of them (at 10,000 idle clusters the flush is this walk). A
            // sample whose count is not bumped yet is read at the next flush.
            if state.is_none() && self.sum(first + h * HISTOGRAM_SLOTS + histogram::COUNT_SLOT) == 0
            {
                continue;
            }
            let now = self.histogram(h);
            let st = state.get_or_insert_with(|| {
                Box::new(Flushed {
                    at_flush: [0; HISTOGRAM_SLOTS],
                    interval: [0; BUCKETS],
                })
            });
            for (k, slot) in st.interval.iter_mut().enumerate() {
                *slot = now[k].saturating_sub(st.at_flush[k]);
            }
            st.at_flush = now;
        }
    }

    /// Histogram `h`'s interval bucket counts, when the last complete interval had samples.
    pub(crate) fn interval(&self, h: usize) -> Option<[u64; BUCKETS]> {
        let flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        let st = flushed.get(h)?.as_ref()?;
        st.interval.iter().any(|&v| v > 0).then_some(st.interval)
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
