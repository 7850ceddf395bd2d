//! Header mutations (`*_headers_to_add` / `*_headers_to_remove`) compiled per level and applied
//! the way Envoy's `HeaderParser::evaluateHeaders` does.
use std::borrow::Cow;

use super::HeaderList;
use crate::config::snapshot::{AppendAction, HeaderMutations, HeaderValueOption};

/// The request and response mutations of one level (route config, virtual host, route or
/// weighted cluster).
#[derive(Debug, Default)]
pub(super) struct Mutations {
    pub(super) request: HeaderOps,
    pub(super) response: HeaderOps,
}

impl Mutations {
    /// `at` is the path of the level, e.g. `virtual_hosts[0].routes[2]`; errors name the field.
    pub(super) fn compile(cfg: &HeaderMutations, at: &str) -> Result<Mutations, String> {
        Ok(Mutations {
            request: HeaderOps::compile_at(
                &cfg.request_headers_to_add,
                &cfg.request_headers_to_remove,
                at,
                "request",
            )?,
            response: HeaderOps::compile_at(
                &cfg.response_headers_to_add,
                &cfg.response_headers_to_remove,
                at,
                "response",
            )?,
        })
    }
}

/// Removals, then additions, of one direction at one level.
#[derive(Debug, Default)]
pub(super) struct HeaderOps {
    remove: Box<[Box<str>]>,
    add: Box<[AddOp]>,
    /// Two additions name the same header: their conditions must then be evaluated against the
    /// headers as they were before this level added anything (Envoy's two-phase evaluation).
    repeated_keys: bool,
}

#[derive(Debug)]
struct AddOp {
    key: Box<str>,
    value: Box<[u8]>,
    action: AppendAction,
}

impl HeaderOps {
    /// One direction (`request` or `response`) of the level at `at`; no paths are
    /// formatted for a level without mutations (most of them, in a large route table).
    fn compile_at(
        add: &[HeaderValueOption],
        remove: &[String],
        at: &str,
        direction: &str,
    ) -> Result<HeaderOps, String> {
        if add.is_empty() && remove.is_empty() {
            return Ok(HeaderOps::default());
        }
        let dot = if at.is_empty() { "" } else { "." };
        HeaderOps::compile(
            add,
            remove,
            &format!("{at}{dot}{direction}_headers_to_add"),
            &format!("{at}{dot}{direction}_headers_to_remove"),
        )
    }

    fn compile(
        add: &[HeaderValueOption],
        remove: &[String],
        add_at: &str,
        remove_at: &str,
    ) -> Result<HeaderOps, String> {
        let mut removals = Vec::with_capacity(remove.len());
        for (i, name) in remove.iter().enumerate() {
            check_name(name).map_err(|e| format!("{remove_at}[{i}]: {e}"))?;
            removals.push(name.to_ascii_lowercase().into_boxed_str());
        }
        let mut ops: Vec<AddOp> = Vec::with_capacity(add.len());
        for (i, opt) in add.iter().enumerate() {
            check_name(&opt.key).map_err(|e| format!("{add_at}[{i}].header.key: {e}"))?;
            if let Some(bad) = opt
                .value
                .bytes()
                .find(|b| matches!(b, b'\0' | b'\r' | b'\n'))
            {
                return Err(format!(
                    "{add_at}[{i}].header.value: control character {bad:#04x} is not allowed in a \
                     header value"
                ));
            }
            // Envoy skips an addition whose value is empty unless `keep_empty_value`; values
            // are literal, so that is decided once here.
            if opt.value.is_empty() && !opt.keep_empty_value {
                continue;
            }
            ops.push(AddOp {
                key: opt.key.to_ascii_lowercase().into_boxed_str(),
                value: opt.value.as_bytes().into(),
                action: opt.append_action,
            });
        }
        let repeated_keys = ops
            .iter()
            .enumerate()
            .any(|(i, a)| ops[..i].iter().any(|b| b.key == a.key));
        Ok(HeaderOps {
            remove: removals.into_boxed_slice(),
            add: ops.into_boxed_slice(),
            repeated_keys,
        })
    }

    /// True when applying would never change anything.
    pub(super) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }

    /// Removes, then overwrites, then appends — Envoy's order within one level.
    pub(super) fn apply<'a>(&'a self, headers: &mut HeaderList<'a>) {
        for name in self.remove.iter() {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
        if self.add.is_empty() {
            return;
        }
        let before: Option<Vec<bool>> = self.repeated_keys.then(|| {
            self.add
                .iter()
                .map(|op| contains(headers, &op.key))
                .collect()
        });
        let existed = |i: usize, headers: &HeaderList<'a>| match &before {
            Some(flags) => flags[i],
            // Keys are distinct: nothing this level did so far touched this key.
            None => contains(headers, &self.add[i].key),
        };
        for (i, op) in self.add.iter().enumerate() {
            let overwrite = match op.action {
                AppendAction::OverwriteIfExistsOrAdd => true,
                AppendAction::OverwriteIfExists => existed(i, headers),
                AppendAction::AppendIfExistsOrAdd | AppendAction::AddIfAbsent => false,
            };
            if overwrite {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&op.key));
                headers.push((Cow::Borrowed(&op.key), Cow::Borrowed(&op.value)));
            }
        }
        for (i, op) in self.add.iter().enumerate() {
            let append = match op.action {
                AppendAction::AppendIfExistsOrAdd => true,
                AppendAction::AddIfAbsent => !existed(i, headers),
                AppendAction::OverwriteIfExistsOrAdd | AppendAction::OverwriteIfExists => false,
            };
            if append {
                headers.push((Cow::Borrowed(&op.key), Cow::Borrowed(&op.value)));
            }
        }
    }
}

fn contains(headers: &HeaderList<'_>, name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// A header name that may be added or removed: an RFC 9110 token, not a pseudo-header and not
/// `host` (Envoy refuses to modify those).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".to_string());
    }
    if name.starts_with(':') || name.eq_ignore_ascii_case("host") {
        return Err(format!(
            "\"{name}\": ':'-prefixed or host headers may not be modified"
        ));
    }
    if let Some(c) = name.chars().find(|c| !is_token_char(*c)) {
        return Err(format!(
            "\"{name}\": character {c:?} is not allowed in a header name"
        ));
    }
    Ok(())
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(key: &str, value: &str, action: AppendAction) -> HeaderValueOption {
        HeaderValueOption {
            key: key.to_string(),
            value: value.to_string(),
            append_action: action,
            keep_empty_value: false,
        }
    }

    fn request_ops(add: Vec<HeaderValueOption>, remove: Vec<&str>) -> HeaderOps {
        let cfg = HeaderMutations {
            request_headers_to_add: add,
            request_headers_to_remove: remove.into_iter().map(String::from).collect(),
            ..Default::default()
        };
        Mutations::compile(&cfg, "virtual_hosts[0]")
            .unwrap()
            .request
    }

    fn list<'a>(pairs: &[(&'a str, &'a str)]) -> HeaderList<'a> {
        pairs
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(v.as_bytes())))
            .collect()
    }

    fn render(headers: &HeaderList<'_>) -> Vec<String> {
        headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect()
    }

    #[test]
    fn append_adds_another_line_and_add_if_absent_respects_existing() {
        let ops = request_ops(
            vec![
                opt("x-a", "2", AppendAction::AppendIfExistsOrAdd),
                opt("x-b", "new", AppendAction::AddIfAbsent),
                opt("x-c", "c", AppendAction::AddIfAbsent),
            ],
            vec![],
        );
        let mut h = list(&[("X-A", "1"), ("x-b", "old")]);
        ops.apply(&mut h);
        assert_eq!(render(&h), ["X-A: 1", "x-b: old", "x-a: 2", "x-c: c"]);
    }

    #[test]
    fn overwrite_replaces_every_line_case_insensitively() {
        let ops = request_ops(
            vec![
                opt("x-a", "9", AppendAction::OverwriteIfExistsOrAdd),
                opt("x-missing", "m", AppendAction::OverwriteIfExists),
                opt("x-b", "b2", AppendAction::OverwriteIfExists),
            ],
            vec![],
        );
        let mut h = list(&[("X-A", "1"), ("x-b", "b1"), ("x-a", "2")]);
        ops.apply(&mut h);
        assert_eq!(render(&h), ["x-a: 9", "x-b: b2"]);
    }

    #[test]
    fn removals_happen_before_additions() {
        let ops = request_ops(
            vec![opt("x-a", "new", AppendAction::AddIfAbsent)],
            vec!["x-a", "X-Gone"],
        );
        let mut h = list(&[("x-a", "old"), ("x-gone", "1"), ("x-keep", "k")]);
        ops.apply(&mut h);
        assert_eq!(render(&h), ["x-keep: k", "x-a: new"]);
    }

    #[test]
    fn empty_values_are_skipped_unless_kept() {
        let mut kept = opt("x-kept", "", AppendAction::AppendIfExistsOrAdd);
        kept.keep_empty_value = true;
        let ops = request_ops(
            vec![
                opt("x-dropped", "", AppendAction::AppendIfExistsOrAdd),
                kept,
            ],
            vec![],
        );
        let mut h = list(&[]);
        ops.apply(&mut h);
        assert_eq!(render(&h), ["x-kept: "]);
    }

    #[test]
    fn repeated_keys_are_decided_against_the_headers_before_the_level() {
        // Envoy evaluates every condition first, so both add_if_absent lines are added.
        let ops = request_ops(
            vec![
                opt("x-a", "1", AppendAction::AddIfAbsent),
                opt("x-a", "2", AppendAction::AddIfAbsent),
                opt("x-b", "3", AppendAction::AppendIfExistsOrAdd),
                opt("x-b", "4", AppendAction::OverwriteIfExists),
            ],
            vec![],
        );
        let mut h = list(&[]);
        ops.apply(&mut h);
        assert_eq!(render(&h), ["x-a: 1", "x-a: 2", "x-b: 3"]);
    }

    #[test]
    fn emptiness_reflects_configuration() {
        assert!(request_ops(vec![], vec![]).is_empty());
        assert!(
            request_ops(
                vec![opt("x", "", AppendAction::AppendIfExistsOrAdd)],
                vec![]
            )
            .is_empty()
        );
        assert!(!request_ops(vec![], vec!["x"]).is_empty());
    }

    #[test]
    fn bad_names_and_values_are_errors_naming_the_field() {
        let cfg = HeaderMutations {
            response_headers_to_add: vec![opt("x-ok", "1", AppendAction::AddIfAbsent), {
                opt("bad name", "1", AppendAction::AddIfAbsent)
            }],
            ..Default::default()
        };
        let err = Mutations::compile(&cfg, "virtual_hosts[1]").unwrap_err();
        assert!(
            err.starts_with("virtual_hosts[1].response_headers_to_add[1].header.key:"),
            "{err}"
        );

        let cfg = HeaderMutations {
            request_headers_to_add: vec![opt("x-a", "a\r\nx-evil: 1", AppendAction::AddIfAbsent)],
            ..Default::default()
        };
        let err = Mutations::compile(&cfg, "").unwrap_err();
        assert!(
            err.starts_with("request_headers_to_add[0].header.value:"),
            "{err}"
        );

        for name in [":path", "host", "Host"] {
            let cfg = HeaderMutations {
                request_headers_to_remove: vec![name.to_string()],
                ..Default::default()
            };
            let err = Mutations::compile(&cfg, "x").unwrap_err();
            assert!(err.starts_with("x.request_headers_to_remove[0]:"), "{err}");
        }
    }
}
