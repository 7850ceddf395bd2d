//! The order of the flat export: each stat set's stats sorted by name once, and the merged
//! order of scopes nested in one another (`cluster.a.` and `cluster.a.outlier_detection.`).
use std::sync::Arc;

use super::scope::{CODES, Layout, Scope};

/// One step of an export walk: a stat of a layout, by its index in that kind's list, or a run
/// of status codes `lo..hi` (shown only when non-zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Counter(u16),
    Control(u16),
    Gauge(u16),
    Global(u16),
    Histogram(u16),
    Codes(u16, u16),
}

/// The name of `item` relative to its scope's key (`upstream_rq_total`, `upstream_rq_200`).
fn name(l: &Layout, item: Item) -> String {
    match item {
        Item::Counter(i) => l.counters[i as usize].to_string(),
        Item::Control(i) => l.control_counters[i as usize].to_string(),
        Item::Gauge(i) => l.gauges[i as usize].to_string(),
        Item::Global(i) => l.globals[i as usize].to_string(),
        Item::Histogram(i) => l.histograms[i as usize].to_string(),
        Item::Codes(lo, _) => format!("{}{lo}", l.status_codes.unwrap_or_default()),
    }
}

/// The last name a `Codes` run stands for (its own name for any other item).
fn last_name(l: &Layout, item: Item) -> String {
    match item {
        Item::Codes(_, hi) => format!("{}{}", l.status_codes.unwrap_or_default(), hi - 1),
        other => name(l, other),
    }
}

fn all_items(l: &Layout) -> Vec<Item> {
    let idx = |n: usize| (0..n).map(|i| i as u16);
    let mut items: Vec<Item> = idx(l.counters.len()).map(Item::Counter).collect();
    items.extend(idx(l.control_counters.len()).map(Item::Control));
    items.extend(idx(l.gauges.len()).map(Item::Gauge));
    items.extend(idx(l.globals.len()).map(Item::Global));
    items.extend(idx(l.histograms.len()).map(Item::Histogram));
    if l.status_codes.is_some() {
        items.extend((100..100 + CODES as u16).map(|c| Item::Codes(c, c + 1)));
    }
    items
}

/// Joins adjacent runs of codes into one.
fn compress(items: impl IntoIterator<Item = Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for item in items {
        if let (Some(Item::Codes(_, hi)), Item::Codes(lo, new_hi)) = (out.last_mut(), item)
            && *hi == lo
        {
            *hi = new_hi;
            continue;
        }
        out.push(item);
    }
    out
}

/// A layout's stats in name order, status codes as runs (computed once per layout).
pub(crate) fn layout_items(l: &'static Layout) -> &'static [Item] {
    l.order.get_or_init(|| {
        let mut named: Vec<(String, Item)> =
            all_items(l).into_iter().map(|i| (name(l, i), i)).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        compress(named.into_iter().map(|(_, i)| i)).into()
    })
}

/// The name order of scopes whose keys nest (`members[0]`'s key is a prefix of every other's;
/// members sorted by key): (member, item) pairs. A run of codes is kept whole unless another
/// member's name falls inside it.
pub(crate) fn group_items(members: &[Arc<Scope>]) -> Vec<(u16, Item)> {
    let root = members[0].key().len();
    let named = |expand: bool| {
        let mut v: Vec<(String, String, (u16, Item))> = Vec::new();
        for (m, s) in members.iter().enumerate() {
            let rel = &s.key()[root..];
            let l = s.layout();
            let items: Vec<Item> = if expand {
                let mut all = all_items(l);
                all.sort_by_key(|&i| name(l, i));
                all
            } else {
                layout_items(l).to_vec()
            };
            for i in items {
                v.push((
                    format!("{rel}{}", name(l, i)),
                    format!("{rel}{}", last_name(l, i)),
                    (m as u16, i),
                ));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let mut v = named(false);
    let overlaps = v.windows(2).any(|w| w[1].0 < w[0].1);
    if overlaps {
        v = named(true);
    }
    v.into_iter().map(|(_, _, e)| e).collect()
}
