//! `prefix_rewrite` (of a forward route or a redirect): replaces the part of the path the route
//! matched, keeping the rest and the query string, as Envoy does.
use crate::config::snapshot::PathMatch;

/// What a `prefix_rewrite` replaces.
#[derive(Debug)]
pub(super) struct PrefixRewrite {
    replacement: Box<str>,
    matched: Matched,
}

#[derive(Debug)]
enum Matched {
    /// `prefix` / `path_separated_prefix` routes: the configured prefix.
    Prefix { prefix: Box<str>, ignore_case: bool },
    /// `path` and `safe_regex` routes: the whole path before `?` / `#`.
    WholePath,
}

impl PrefixRewrite {
    /// `None` for an empty rewrite (protobuf's "not set") and on a `connect_matcher` route.
    pub(super) fn new(
        replacement: &str,
        path: &PathMatch,
        case_sensitive: bool,
    ) -> Option<PrefixRewrite> {
        if replacement.is_empty() {
            return None;
        }
        let matched = match path {
            PathMatch::Prefix(p) | PathMatch::PathSeparatedPrefix(p) => Matched::Prefix {
                prefix: p.as_str().into(),
                ignore_case: !case_sensitive,
            },
            PathMatch::Path(_) | PathMatch::SafeRegex(_) => Matched::WholePath,
            // A CONNECT has no path: its authority-form target is never rewritten.
            PathMatch::ConnectMatcher {} => return None,
        };
        Some(PrefixRewrite {
            replacement: replacement.into(),
            matched,
        })
    }

    /// The rewritten target, or `None` when `target` is not one this route matched.
    pub(super) fn apply(&self, target: &str) -> Option<String> {
        let cut = match &self.matched {
            Matched::Prefix {
                prefix,
                ignore_case,
            } => {
                let head = target.as_bytes().get(..prefix.len())?;
                let same = if *ignore_case {
                    head.eq_ignore_ascii_case(prefix.as_bytes())
                } else {
                    head == prefix.as_bytes()
                };
                if !same {
                    return None;
                }
                prefix.len()
            }
            Matched::WholePath => target.find(['?', '#']).unwrap_or(target.len()),
        };
        let rest = &target[cut..];
        let mut out = String::with_capacity(self.replacement.len() + rest.len());
        out.push_str(&self.replacement);
        out.push_str(rest);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(replacement: &str, path: PathMatch, case_sensitive: bool) -> PrefixRewrite {
        PrefixRewrite::new(replacement, &path, case_sensitive).unwrap()
    }

    #[test]
    fn prefix_routes_replace_the_prefix_and_keep_the_query() {
        let r = rewrite("/v2/", PathMatch::Prefix("/api/".into()), true);
        assert_eq!(
            r.apply("/api/users?id=1").as_deref(),
            Some("/v2/users?id=1")
        );
        assert_eq!(r.apply("/other"), None);
        let r = rewrite("/", PathMatch::Prefix("/API".into()), false);
        assert_eq!(r.apply("/api/x").as_deref(), Some("//x"));
        let r = rewrite("/new", PathMatch::PathSeparatedPrefix("/old".into()), true);
        assert_eq!(r.apply("/old/a?b").as_deref(), Some("/new/a?b"));
        assert_eq!(r.apply("/old").as_deref(), Some("/new"));
    }

    #[test]
    fn exact_and_regex_routes_replace_the_whole_path() {
        let r = rewrite("/z", PathMatch::Path("/r6".into()), true);
        assert_eq!(r.apply("/r6?k=v").as_deref(), Some("/z?k=v"));
        let r = rewrite("/z", PathMatch::SafeRegex("/a/.*".into()), true);
        assert_eq!(r.apply("/a/b/c").as_deref(), Some("/z"));
        assert_eq!(r.apply("/a/b#f").as_deref(), Some("/z#f"));
    }

    #[test]
    fn empty_rewrite_is_unset() {
        assert!(PrefixRewrite::new("", &PathMatch::Prefix("/".into()), true).is_none());
        // A CONNECT's target is an authority, never rewritten.
        assert!(PrefixRewrite::new("/x", &PathMatch::ConnectMatcher {}, true).is_none());
    }

    #[test]
    fn non_ascii_boundaries_do_not_panic() {
        let r = rewrite("/x", PathMatch::Prefix("/ab".into()), false);
        assert_eq!(r.apply("/é"), None);
    }
}
