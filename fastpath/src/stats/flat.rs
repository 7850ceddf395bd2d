//! The flat export behind `Engine.stats()`: every stat as a `name\0value\n` line, sorted by
//! name, written straight into one buffer per kind. The walk (scopes sorted by key, each
//! layout's stats in name order) is planned once per set of scopes, not per call.
use std::collections::HashMap;
use std::sync::Arc;

use super::histogram::{COUNT_SLOT, SUM_SLOT};
use super::order::{Item, group_items, layout_items};
use super::scope::{Layout, Scope};

/// Sorted lines: counters `name\0value\n`, gauges `name\0value\n` (signed), histograms
/// `name\0count[ sum_ms b0 … bN[ ib0 … ibN]]\n`: the count alone when every slot is zero,
/// otherwise the sum in ms, the bucket counts (one per bound, then the overflow) and, when the
/// last complete flush interval had samples, that interval's bucket counts.
#[derive(Default)]
pub struct Flat {
    pub counters: Vec<u8>,
    pub gauges: Vec<u8>,
    pub histograms: Vec<u8>,
}

/// A walk over a group's stats: (member, stat) in name order.
type Walk = Arc<[(u16, Item)]>;
/// What makes two groups walk alike: each member's layout and key relative to the first's.
type Shape = Vec<(usize, String)>;

/// Scopes whose keys nest, walked together in merged name order.
struct Group {
    members: Box<[Arc<Scope>]>,
    items: Walk,
}

pub(super) struct Plan {
    /// The registry version the plan was built for.
    pub version: u64,
    groups: Vec<Group>,
    /// Sizes of the last export, to allocate the next one once.
    sizes: [usize; 3],
}

impl Plan {
    pub fn build(version: u64, mut scopes: Vec<Arc<Scope>>) -> Plan {
        scopes.sort_by(|a, b| a.key().cmp(b.key()));
        // One walk per shape of group (layouts and relative keys): every cluster with outlier
        // detection shares one.
        let mut walks: HashMap<Shape, Walk> = HashMap::new();
        let mut groups = Vec::new();
        let mut i = 0;
        while i < scopes.len() {
            let root = scopes[i].key();
            let end = i
                + 1
                + scopes[i + 1..]
                    .iter()
                    .take_while(|s| s.key().starts_with(root))
                    .count();
            let members: Box<[Arc<Scope>]> = scopes[i..end].into();
            let shape = members
                .iter()
                .map(|s| {
                    let layout = s.layout() as *const Layout as usize;
                    (layout, s.key()[root.len()..].to_string())
                })
                .collect();
            let items = walks
                .entry(shape)
                .or_insert_with(|| match &*members {
                    [one] => layout_items(one.layout()).iter().map(|&i| (0, i)).collect(),
                    _ => group_items(&members).into(),
                })
                .clone();
            groups.push(Group { members, items });
            i = end;
        }
        Plan {
            version,
            groups,
            sizes: [0; 3],
        }
    }

    pub fn scopes(&self) -> impl Iterator<Item = &Arc<Scope>> {
        self.groups.iter().flat_map(|g| g.members.iter())
    }

    pub fn write(&mut self) -> Flat {
        let cap = |n: usize| Vec::with_capacity(n + n / 8);
        let mut out = Flat {
            counters: cap(self.sizes[0]),
            gauges: cap(self.sizes[1]),
            histograms: cap(self.sizes[2]),
        };
        let mut num = itoa::Buffer::new();
        for g in &self.groups {
            for &(m, item) in g.items.iter() {
                let s = &g.members[m as usize];
                let l = s.layout();
                let key = s.key().as_bytes();
                match item {
                    Item::Counter(i) => {
                        let v = num.format(s.counter(i as usize));
                        line(&mut out.counters, key, l.counters[i as usize], v);
                    }
                    Item::Control(i) => {
                        let v = num.format(s.control_counter(i as usize));
                        line(&mut out.counters, key, l.control_counters[i as usize], v);
                    }
                    Item::Gauge(i) => {
                        let v = num.format(s.gauge(i as usize));
                        line(&mut out.gauges, key, l.gauges[i as usize], v);
                    }
                    Item::Global(i) => {
                        let v = num.format(s.global(i as usize));
                        line(&mut out.gauges, key, l.globals[i as usize], v);
                    }
                    Item::Codes(lo, hi) => {
                        if let (Some(p), true) = (l.status_codes, s.has_codes()) {
                            for c in lo..hi {
                                let v = s.code(c as usize);
                                if v > 0 {
                                    let mut name = String::from(p);
                                    name.push_str(num.format(c));
                                    line(
                                        &mut out.counters,
                                        key,
                                        &name,
                                        itoa::Buffer::new().format(v),
                                    );
                                }
                            }
                        }
                    }
                    Item::Histogram(h) => histogram_line(&mut out.histograms, s, h as usize),
                }
            }
        }
        self.sizes = [out.counters.len(), out.gauges.len(), out.histograms.len()];
        out
    }
}

fn line(buf: &mut Vec<u8>, key: &[u8], name: &str, value: &str) {
    buf.extend_from_slice(key);
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    buf.extend_from_slice(value.as_bytes());
    buf.push(b'\n');
}

fn histogram_line(buf: &mut Vec<u8>, s: &Scope, h: usize) {
    use std::io::Write;
    buf.extend_from_slice(s.key().as_bytes());
    buf.extend_from_slice(s.layout().histograms[h].as_bytes());
    buf.push(0);
    let slots = s.histogram(h);
    let mut num = itoa::Buffer::new();
    buf.extend_from_slice(num.format(slots[COUNT_SLOT]).as_bytes());
    if slots.iter().any(|&v| v != 0) {
        // Shortest text that reads back as the same double (what the JSON export wrote).
        let _ = write!(buf, " {}", slots[SUM_SLOT] as f64 / 1000.0);
        let interval = s.interval(h);
        for v in slots[..SUM_SLOT].iter().chain(interval.iter().flatten()) {
            buf.push(b' ');
            buf.extend_from_slice(num.format(*v).as_bytes());
        }
    }
    buf.push(b'\n');
}
