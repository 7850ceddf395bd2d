//! Envoy `StringMatcher` (exact / prefix / suffix / contains / full-match regex, with
//! `ignore_case`) and the byte comparisons the path matchers share with it.
use regex::bytes::Regex;

use crate::config::snapshot;

/// Compiles `pattern` so that it must match the whole input, as Envoy's `safe_regex` does.
pub(super) fn full_match_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        // The regex crate's message spans several lines; keep the config error on one.
        let detail = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        format!("invalid regex {pattern:?}: {detail}")
    })
}

pub(super) fn eq(value: &[u8], pattern: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        value.eq_ignore_ascii_case(pattern)
    } else {
        value == pattern
    }
}

pub(super) fn starts_with(value: &[u8], prefix: &[u8], ignore_case: bool) -> bool {
    value.len() >= prefix.len() && eq(&value[..prefix.len()], prefix, ignore_case)
}

fn ends_with(value: &[u8], suffix: &[u8], ignore_case: bool) -> bool {
    value.len() >= suffix.len() && eq(&value[value.len() - suffix.len()..], suffix, ignore_case)
}

fn contains(value: &[u8], needle: &[u8], ignore_case: bool) -> bool {
    if !ignore_case {
        return memchr::memmem::find(value, needle).is_some();
    }
    // Hand-written: memchr has no ASCII case-insensitive search, and lowering the value would
    // allocate per request. Header values are short.
    needle.is_empty()
        || value
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Envoy `StringMatcher`.
#[derive(Debug)]
pub struct StringMatch {
    pattern: Pattern,
    ignore_case: bool,
}

#[derive(Debug)]
enum Pattern {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(Box<[u8]>),
    /// `ignore_case` does not apply to regexes, as in Envoy.
    Regex(Regex),
}

impl StringMatch {
    pub fn compile(cfg: &snapshot::StringMatcher, at: &str) -> Result<StringMatch, String> {
        let bytes = |s: &String| s.as_bytes().into();
        let pattern = match &cfg.pattern {
            snapshot::StringPattern::Exact(s) => Pattern::Exact(bytes(s)),
            snapshot::StringPattern::Prefix(s) => Pattern::Prefix(bytes(s)),
            snapshot::StringPattern::Suffix(s) => Pattern::Suffix(bytes(s)),
            snapshot::StringPattern::Contains(s) => Pattern::Contains(bytes(s)),
            snapshot::StringPattern::Regex(r) => {
                Pattern::Regex(full_match_regex(r).map_err(|e| format!("{at}.safe_regex: {e}"))?)
            }
        };
        Ok(StringMatch {
            pattern,
            ignore_case: cfg.ignore_case,
        })
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        let ci = self.ignore_case;
        match &self.pattern {
            Pattern::Exact(p) => eq(value, p, ci),
            Pattern::Prefix(p) => starts_with(value, p, ci),
            Pattern::Suffix(p) => ends_with(value, p, ci),
            Pattern::Contains(p) => contains(value, p, ci),
            Pattern::Regex(r) => r.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::{StringMatcher, StringPattern as SP};

    fn string(pattern: SP, ignore_case: bool) -> StringMatcher {
        StringMatcher {
            pattern,
            ignore_case,
        }
    }

    #[test]
    fn string_matchers() {
        let cases: &[(SP, bool, &str, bool)] = &[
            (SP::Exact("abc".into()), false, "abc", true),
            (SP::Exact("abc".into()), false, "ABC", false),
            (SP::Exact("abc".into()), true, "ABC", true),
            (SP::Exact("".into()), false, "", true),
            (SP::Exact("".into()), false, "x", false),
            (SP::Prefix("ab".into()), false, "abc", true),
            (SP::Prefix("AB".into()), true, "abc", true),
            (SP::Prefix("abcd".into()), false, "abc", false),
            (SP::Suffix("bc".into()), false, "abc", true),
            (SP::Suffix("BC".into()), true, "abc", true),
            (SP::Suffix("BC".into()), false, "abc", false),
            (SP::Contains("b".into()), false, "abc", true),
            (SP::Contains("XB".into()), true, "axbc", true),
            (SP::Contains("XB".into()), false, "axbc", false),
            (SP::Regex("a.c".into()), false, "abc", true),
            (SP::Regex("a.c".into()), true, "ABC", false),
            (SP::Regex("b".into()), false, "abc", false),
        ];
        for (pattern, ci, value, want) in cases {
            let m = StringMatch::compile(&string(pattern.clone(), *ci), "s").unwrap();
            assert_eq!(
                m.matches(value.as_bytes()),
                *want,
                "{pattern:?} ci={ci} on {value:?}"
            );
        }
    }
}
