//! Access log `filter`s (status code, duration, not-health-check, response flag, and/or),
//! compiled once per config and evaluated on the finished request.
use super::fields::Entry;
use crate::config::access_log::{AccessLogFilter, Comparison, ComparisonOp};
use crate::local_reply::{ResponseFlag, ResponseFlags};

/// Envoy's response flag names; meshcore sets only some of them (the others never match).
const ENVOY_FLAGS: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
    "UDO",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Status(Comparison),
    Duration(Comparison),
    /// meshcore has no health check filter: no request is a health check.
    NotHealthCheck,
    /// Any of these flags (`None`: any flag at all).
    Flags(Option<ResponseFlags>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    pub fn compile(cfg: &AccessLogFilter) -> Result<Filter, String> {
        Ok(match cfg {
            AccessLogFilter::StatusCode(c) => Filter::Status(*c),
            AccessLogFilter::Duration(c) => Filter::Duration(*c),
            AccessLogFilter::NotHealthCheck => Filter::NotHealthCheck,
            AccessLogFilter::ResponseFlag(names) if names.is_empty() => Filter::Flags(None),
            AccessLogFilter::ResponseFlag(names) => {
                let mut mask = ResponseFlags::default();
                for (i, n) in names.iter().enumerate() {
                    if !ENVOY_FLAGS.contains(&n.as_str()) {
                        return Err(format!(
                            "response_flag_filter.flags[{i}]: unknown flag {n:?}"
                        ));
                    }
                    if let Some(f) = ResponseFlag::ALL.iter().find(|f| f.short() == n) {
                        mask.insert(*f);
                    }
                }
                Filter::Flags(Some(mask))
            }
            AccessLogFilter::And(list) => Filter::And(compile_all(list, "and_filter")?),
            AccessLogFilter::Or(list) => Filter::Or(compile_all(list, "or_filter")?),
        })
    }

    pub fn matches(&self, e: &Entry<'_>) -> bool {
        match self {
            Filter::Status(c) => compare(*c, u64::from(e.status)),
            Filter::Duration(c) => compare(*c, e.duration_ms()),
            Filter::NotHealthCheck => true,
            Filter::Flags(None) => !e.flags.is_empty(),
            Filter::Flags(Some(mask)) => e.flags.intersects(*mask),
            Filter::And(list) => list.iter().all(|f| f.matches(e)),
            Filter::Or(list) => list.iter().any(|f| f.matches(e)),
        }
    }
}

fn compile_all(list: &[AccessLogFilter], name: &str) -> Result<Vec<Filter>, String> {
    list.iter()
        .enumerate()
        .map(|(i, f)| Filter::compile(f).map_err(|e| format!("{name}.filters[{i}].{e}")))
        .collect()
}

fn compare(c: Comparison, v: u64) -> bool {
    match c.op {
        ComparisonOp::Eq => v == c.value,
        ComparisonOp::Ge => v >= c.value,
        ComparisonOp::Le => v <= c.value,
        ComparisonOp::Ne => v != c.value,
    }
}
