//! Envoy's `MetadataMatcher` and `ValueMatcher` on the dynamic metadata earlier filters left
//! in the verdict (e.g. the JWT filter's `payload_in_metadata`).
use serde_json::Value;

use crate::config::rbac::{MetadataMatcher, ValueMatcher};
use crate::filters::Metadata;
use crate::router::StringMatch;

pub(super) struct MetadataMatch {
    filter: Box<str>,
    path: Box<[Box<str>]>,
    value: ValueMatch,
    invert: bool,
}

enum ValueMatch {
    Null,
    DoubleExact(f64),
    /// `[start, end)`.
    DoubleRange(f64, f64),
    String(StringMatch),
    Bool(bool),
    Present(bool),
    ListOneOf(Box<ValueMatch>),
    Or(Box<[ValueMatch]>),
}

impl ValueMatch {
    fn compile(v: &ValueMatcher, at: &str) -> Result<ValueMatch, String> {
        Ok(match v {
            ValueMatcher::NullMatch => ValueMatch::Null,
            ValueMatcher::DoubleExact(x) => ValueMatch::DoubleExact(*x),
            ValueMatcher::DoubleRange { start, end } => ValueMatch::DoubleRange(*start, *end),
            ValueMatcher::StringMatch(s) => {
                ValueMatch::String(StringMatch::compile(s, &format!("{at}.string_match"))?)
            }
            ValueMatcher::BoolMatch(b) => ValueMatch::Bool(*b),
            ValueMatcher::PresentMatch(b) => ValueMatch::Present(*b),
            ValueMatcher::ListOneOf(m) => ValueMatch::ListOneOf(Box::new(ValueMatch::compile(
                m,
                &format!("{at}.list_match.one_of"),
            )?)),
            ValueMatcher::OrMatch(l) => ValueMatch::Or(
                l.iter()
                    .enumerate()
                    .map(|(i, m)| {
                        ValueMatch::compile(m, &format!("{at}.or_match.value_matchers[{i}]"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Envoy's value matchers; `None` is a missing value (`KIND_NOT_SET`), which only a
    /// negated matcher accepts.
    fn matches(&self, v: Option<&Value>) -> bool {
        match (self, v) {
            (ValueMatch::Present(p), v) => *p && v.is_some(),
            (_, None) => false,
            (ValueMatch::Null, Some(v)) => v.is_null(),
            (ValueMatch::DoubleExact(x), Some(v)) => v.as_f64().is_some_and(|n| n == *x),
            (ValueMatch::DoubleRange(s, e), Some(v)) => {
                v.as_f64().is_some_and(|n| *s <= n && n < *e)
            }
            (ValueMatch::String(m), Some(v)) => v.as_str().is_some_and(|s| m.matches(s.as_bytes())),
            (ValueMatch::Bool(b), Some(v)) => v.as_bool() == Some(*b),
            (ValueMatch::ListOneOf(m), Some(v)) => v
                .as_array()
                .is_some_and(|l| l.iter().any(|e| m.matches(Some(e)))),
            (ValueMatch::Or(l), v) => l.iter().any(|m| m.matches(v)),
        }
    }
}

impl MetadataMatch {
    pub(super) fn compile(m: &MetadataMatcher, at: &str) -> Result<MetadataMatch, String> {
        if m.path.is_empty() {
            return Err(format!("{at}.path: must name at least one key"));
        }
        Ok(MetadataMatch {
            filter: m.filter.as_str().into(),
            path: m.path.iter().map(|k| k.as_str().into()).collect(),
            value: ValueMatch::compile(&m.value, &format!("{at}.value"))?,
            invert: m.invert,
        })
    }

    /// Envoy's `Metadata::metadataValue`: `filter_metadata[filter]`, then the path keys
    /// through nested objects. The latest entry for a key wins (Envoy merges each filter's
    /// metadata over the earlier).
    pub(super) fn matches(&self, metadata: &[Metadata]) -> bool {
        let first = metadata
            .iter()
            .rev()
            .find(|m| *m.namespace == *self.filter && *m.key == *self.path[0])
            .map(|m| &m.value);
        let mut value = first;
        for key in &self.path[1..] {
            value = value.and_then(Value::as_object).and_then(|o| o.get(&**key));
        }
        self.value.matches(value) != self.invert
    }
}
