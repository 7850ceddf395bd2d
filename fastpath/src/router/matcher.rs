//! Route matchers (path, headers, query parameters) compiled from a `RouteMatch`, with Envoy's
//! semantics.
use regex::bytes::Regex;

use super::RequestView;
use super::observe::{Condition, Observer, Silent};
use super::string_match::{StringMatch, eq, full_match_regex, starts_with};
use crate::config::snapshot;

/// Splits an origin-form target into the path (what path matchers see: no query, no fragment)
/// and the query string (without `?`, up to any fragment).
pub fn split_target(target: &str) -> (&str, &str) {
    let path_end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..path_end];
    let rest = &target[path_end..];
    let query = match rest.strip_prefix('?') {
        Some(q) => &q[..q.find('#').unwrap_or(q.len())],
        None => "",
    };
    (path, query)
}

/// The compiled `match` of one route.
#[derive(Debug)]
pub(super) struct RouteMatch {
    path: PathMatch,
    headers: Box<[HeaderMatch]>,
    query: Box<[QueryMatch]>,
}

impl RouteMatch {
    /// `at` is the path of the `match` field.
    pub(super) fn compile(cfg: &snapshot::RouteMatch, at: &str) -> Result<RouteMatch, String> {
        let ci = !cfg.case_sensitive;
        let path = match &cfg.path {
            snapshot::PathMatch::Prefix(p) => PathMatch::Prefix(p.as_str().into(), ci),
            snapshot::PathMatch::Path(p) => PathMatch::Exact(p.as_str().into(), ci),
            snapshot::PathMatch::SafeRegex(r) => {
                PathMatch::Regex(full_match_regex(r).map_err(|e| format!("{at}.safe_regex: {e}"))?)
            }
            snapshot::PathMatch::PathSeparatedPrefix(p) => {
                // Envoy's own validation: `^[^?#]+[^?#/]$`.
                if p.is_empty() || p.contains(['?', '#']) || p.ends_with('/') {
                    return Err(format!(
                        "{at}.path_separated_prefix: {p:?} must be non-empty, contain no '?' or \
                         '#' and not end with '/'"
                    ));
                }
                PathMatch::Separated(p.as_str().into(), ci)
            }
            snapshot::PathMatch::ConnectMatcher {} => PathMatch::Connect,
        };
        let headers = cfg
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatch::compile(h, &format!("{at}.headers[{i}]")))
            .collect::<Result<_, _>>()?;
        let query = cfg
            .query_parameters
            .iter()
            .enumerate()
            .map(|(i, q)| QueryMatch::compile(q, &format!("{at}.query_parameters[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(RouteMatch {
            path,
            headers,
            query,
        })
    }

    /// `path` and `query` are `split_target(req.path)`.
    pub(super) fn matches(&self, req: &RequestView<'_>, path: &str, query: &str) -> bool {
        self.matches_observed(req, path, query, &mut Silent)
    }

    /// `matches`, reporting each condition to `obs` (all of them when `O::EXHAUSTIVE`).
    #[inline]
    pub(super) fn matches_observed<O: Observer>(
        &self,
        req: &RequestView<'_>,
        path: &str,
        query: &str,
        obs: &mut O,
    ) -> bool {
        // A CONNECT request has no path: only `connect_matcher` matches it (as Envoy). The
        // method is looked at only once the path matched: most routes a request is checked
        // against miss on the path, and this loop runs for each of them.
        let mut all = match self.path {
            PathMatch::Connect => req.method == "CONNECT",
            _ => self.path.matches(path) && req.method != "CONNECT",
        };
        obs.condition(Condition::Path, all);
        // The data path (`Silent`) stops at a path miss before touching the header and query
        // lists, as before the observer existed; `explain` goes on to report every condition.
        if !all && !O::EXHAUSTIVE {
            return false;
        }
        for (i, h) in self.headers.iter().enumerate() {
            if !all && !O::EXHAUSTIVE {
                return false;
            }
            let m = h.matches(req);
            obs.condition(Condition::Header(i), m);
            all &= m;
        }
        for (i, q) in self.query.iter().enumerate() {
            if !all && !O::EXHAUSTIVE {
                return false;
            }
            let m = q.matches(query);
            obs.condition(Condition::Query(i), m);
            all &= m;
        }
        all
    }
}

#[derive(Debug)]
enum PathMatch {
    /// (prefix, ignore case)
    Prefix(Box<str>, bool),
    Exact(Box<str>, bool),
    /// Never affected by `case_sensitive`, as in Envoy.
    Regex(Regex),
    Separated(Box<str>, bool),
    /// `connect_matcher`: CONNECT requests (checked by `RouteMatch::matches`).
    Connect,
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Prefix(p, ci) => starts_with(path.as_bytes(), p.as_bytes(), *ci),
            PathMatch::Exact(p, ci) => eq(path.as_bytes(), p.as_bytes(), *ci),
            PathMatch::Regex(r) => r.is_match(path.as_bytes()),
            PathMatch::Separated(p, ci) => {
                starts_with(path.as_bytes(), p.as_bytes(), *ci)
                    && matches!(path.as_bytes().get(p.len()), None | Some(b'/'))
            }
            PathMatch::Connect => false,
        }
    }
}

/// Envoy `HeaderMatcher`.
#[derive(Debug)]
pub struct HeaderMatch {
    /// Lower-case.
    name: Box<str>,
    rule: HeaderRule,
    invert: bool,
    treat_missing_as_empty: bool,
}

#[derive(Debug)]
enum HeaderRule {
    Present(bool),
    String(StringMatch),
    /// [start, end)
    Range(i64, i64),
}

impl HeaderRule {
    fn matches(&self, value: &[u8]) -> bool {
        match self {
            HeaderRule::Present(p) => *p,
            HeaderRule::String(m) => m.matches(value),
            HeaderRule::Range(start, end) => {
                parse_i64(value).is_some_and(|v| (*start..*end).contains(&v))
            }
        }
    }
}

/// `absl::SimpleAtoi`: surrounding ASCII whitespace and a sign are accepted.
fn parse_i64(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value.trim_ascii()).ok()?.parse().ok()
}

impl HeaderMatch {
    pub fn compile(cfg: &snapshot::HeaderMatcher, at: &str) -> Result<HeaderMatch, String> {
        if cfg.name.is_empty() {
            return Err(format!("{at}.name: must not be empty"));
        }
        let rule = match &cfg.rule {
            snapshot::HeaderRule::Present(p) => HeaderRule::Present(*p),
            snapshot::HeaderRule::String(m) => {
                HeaderRule::String(StringMatch::compile(m, &format!("{at}.string_match"))?)
            }
            snapshot::HeaderRule::Range { start, end } => HeaderRule::Range(*start, *end),
        };
        Ok(HeaderMatch {
            name: cfg.name.to_ascii_lowercase().into_boxed_str(),
            rule,
            invert: cfg.invert,
            treat_missing_as_empty: cfg.treat_missing_header_as_empty,
        })
    }

    /// Envoy 1.40 semantics: each line of a repeated header is matched on its own and the
    /// matcher holds when any line does (the fix for CVE-2026-26308; older Envoys matched the
    /// lines joined with ","). `invert` negates that result. A missing header fails every rule
    /// except `present_match: false` (and `present_match: true` inverted), unless
    /// `treat_missing_header_as_empty` makes it match as "".
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let pseudo = match &*self.name {
            ":path" => Some(req.path),
            ":method" => Some(req.method),
            ":authority" => Some(req.authority),
            ":scheme" => Some(req.scheme),
            _ => None,
        };
        let mut present = false;
        let mut any = false;
        if let Some(value) = pseudo {
            present = true;
            any = self.rule.matches(value.as_bytes());
        } else if !self.name.starts_with(':') {
            for h in req.headers {
                if h.name.eq_ignore_ascii_case(&self.name) {
                    present = true;
                    if self.rule.matches(h.value) {
                        any = true;
                        break;
                    }
                }
            }
        }
        if !present {
            if !self.treat_missing_as_empty {
                return match self.rule {
                    HeaderRule::Present(p) => p == self.invert,
                    _ => false,
                };
            }
            any = self.rule.matches(b"");
        }
        any != self.invert
    }
}

/// Envoy `QueryParameterMatcher`.
#[derive(Debug)]
struct QueryMatch {
    name: Box<[u8]>,
    rule: QueryRule,
}

#[derive(Debug)]
enum QueryRule {
    Present(bool),
    String(StringMatch),
}

impl QueryMatch {
    fn compile(cfg: &snapshot::QueryParameterMatcher, at: &str) -> Result<QueryMatch, String> {
        if cfg.name.is_empty() {
            return Err(format!("{at}.name: must not be empty"));
        }
        let rule = match &cfg.rule {
            snapshot::QueryRule::Present(p) => QueryRule::Present(*p),
            snapshot::QueryRule::String(m) => {
                QueryRule::String(StringMatch::compile(m, &format!("{at}.string_match"))?)
            }
        };
        Ok(QueryMatch {
            name: cfg.name.as_bytes().into(),
            rule,
        })
    }

    /// Looks at the first value of the (case-sensitive) name, without percent-decoding, as
    /// Envoy does; `present_match: false` matches when the parameter is absent.
    fn matches(&self, query: &str) -> bool {
        let value = first_value(query.as_bytes(), &self.name);
        match &self.rule {
            QueryRule::Present(p) => value.is_some() == *p,
            QueryRule::String(m) => value.is_some_and(|v| m.matches(v)),
        }
    }
}

/// The value of the first `name` parameter of `a=1&b&c=3` ("" when it has no `=`).
pub(super) fn first_value<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    if query.is_empty() {
        return None;
    }
    query.split(|b| *b == b'&').find_map(|param| {
        let (key, value) = match memchr::memchr(b'=', param) {
            Some(eq) => (&param[..eq], &param[eq + 1..]),
            None => (param, &param[param.len()..]),
        };
        (key == name).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot::{
        HeaderMatcher, PathMatch as P, QueryParameterMatcher, StringMatcher, StringPattern as SP,
    };

    fn string(pattern: SP, ignore_case: bool) -> StringMatcher {
        StringMatcher {
            pattern,
            ignore_case,
        }
    }

    fn route(path: P, case_sensitive: bool) -> snapshot::RouteMatch {
        snapshot::RouteMatch {
            path,
            case_sensitive,
            headers: vec![],
            query_parameters: vec![],
        }
    }

    fn header(name: &str, rule: snapshot::HeaderRule) -> HeaderMatcher {
        HeaderMatcher {
            name: name.to_string(),
            rule,
            invert: false,
            treat_missing_header_as_empty: false,
        }
    }

    fn req<'a>(path: &'a str, headers: &'a [httparse::Header<'a>]) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            authority: "example.com:8080",
            scheme: "http",
            headers,
        }
    }

    fn path_matches(m: &snapshot::RouteMatch, target: &str) -> bool {
        let compiled = RouteMatch::compile(m, "match").unwrap();
        let (path, query) = split_target(target);
        compiled.matches(&req(target, &[]), path, query)
    }

    fn header_matches(m: HeaderMatcher, headers: &[httparse::Header<'_>]) -> bool {
        let compiled = HeaderMatch::compile(&m, "h").unwrap();
        compiled.matches(&req("/p?q=1", headers))
    }

    fn h<'a>(name: &'a str, value: &'a str) -> httparse::Header<'a> {
        httparse::Header {
            name,
            value: value.as_bytes(),
        }
    }

    #[test]
    fn split_target_separates_path_query_and_fragment() {
        assert_eq!(split_target("/a/b?x=1&y#frag"), ("/a/b", "x=1&y"));
        assert_eq!(split_target("/a#f?x"), ("/a", ""));
        assert_eq!(split_target("/a?"), ("/a", ""));
        assert_eq!(split_target("/plain"), ("/plain", ""));
    }

    #[test]
    fn prefix_ignores_the_query_and_honours_case_sensitivity() {
        let m = route(P::Prefix("/api".into()), true);
        assert!(path_matches(&m, "/api/v1?x=1"));
        assert!(path_matches(&m, "/apix"));
        assert!(!path_matches(&m, "/API/v1"));
        assert!(!path_matches(&m, "/ap?i"));
        let m = route(P::Prefix("/api".into()), false);
        assert!(path_matches(&m, "/API/v1"));
    }

    #[test]
    fn exact_path_ignores_the_query() {
        let m = route(P::Path("/health".into()), true);
        assert!(path_matches(&m, "/health"));
        assert!(path_matches(&m, "/health?verbose=1"));
        assert!(!path_matches(&m, "/health/"));
        assert!(!path_matches(&m, "/Health"));
        assert!(path_matches(
            &route(P::Path("/health".into()), false),
            "/HEALTH"
        ));
    }

    #[test]
    fn regex_must_match_the_whole_path_and_ignores_case_setting() {
        let m = route(P::SafeRegex("/re/[0-9]+".into()), false);
        assert!(path_matches(&m, "/re/12"));
        assert!(path_matches(&m, "/re/12?x=1"));
        assert!(!path_matches(&m, "/re/12/"));
        assert!(!path_matches(&m, "/x/re/12"));
        assert!(!path_matches(&m, "/RE/12"));
        // Alternation must not escape the anchors.
        let m = route(P::SafeRegex("/a|/b".into()), true);
        assert!(path_matches(&m, "/b"));
        assert!(!path_matches(&m, "/a/x"));
    }

    #[test]
    fn path_separated_prefix_needs_a_segment_boundary() {
        let m = route(P::PathSeparatedPrefix("/ps".into()), true);
        assert!(path_matches(&m, "/ps"));
        assert!(path_matches(&m, "/ps/"));
        assert!(path_matches(&m, "/ps/x"));
        assert!(path_matches(&m, "/ps?x"));
        assert!(!path_matches(&m, "/psx"));
        assert!(!path_matches(&m, "/PS"));
        assert!(path_matches(
            &route(P::PathSeparatedPrefix("/ps".into()), false),
            "/PS/x"
        ));
        for bad in ["/ps/", "/p?s", ""] {
            let err = RouteMatch::compile(&route(P::PathSeparatedPrefix(bad.into()), true), "m")
                .unwrap_err();
            assert!(err.starts_with("m.path_separated_prefix:"), "{err}");
        }
    }

    #[test]
    fn bad_regex_is_an_error_naming_the_field() {
        let err = RouteMatch::compile(&route(P::SafeRegex("(".into()), true), "routes[3].match")
            .unwrap_err();
        assert!(
            err.starts_with("routes[3].match.safe_regex: invalid regex \"(\""),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn header_names_are_case_insensitive_and_pseudo_headers_come_from_the_request() {
        let exact = |name: &str, v: &str| {
            header(
                name,
                snapshot::HeaderRule::String(string(SP::Exact(v.into()), false)),
            )
        };
        assert!(header_matches(
            exact("x-env", "prod"),
            &[h("X-Env", "prod")]
        ));
        assert!(!header_matches(
            exact("x-env", "prod"),
            &[h("X-Env", "dev")]
        ));
        assert!(header_matches(exact(":path", "/p?q=1"), &[]));
        assert!(header_matches(exact(":method", "GET"), &[]));
        assert!(header_matches(exact(":authority", "example.com:8080"), &[]));
        assert!(header_matches(exact(":scheme", "http"), &[]));
        // A pseudo-header the router does not know is missing, even if a header line has that
        // name.
        assert!(!header_matches(
            exact(":status", "200"),
            &[h(":status", "200")]
        ));
    }

    #[test]
    fn repeated_headers_match_when_any_line_matches() {
        let lines = [h("x-a", "1"), h("x-a", "2")];
        let exact = |v: &str| {
            header(
                "x-a",
                snapshot::HeaderRule::String(string(SP::Exact(v.into()), false)),
            )
        };
        assert!(header_matches(exact("1"), &lines));
        assert!(header_matches(exact("2"), &lines));
        assert!(!header_matches(exact("1,2"), &lines));
        let mut inverted = exact("1");
        inverted.invert = true;
        assert!(!header_matches(inverted, &lines));
        let mut inverted = exact("3");
        inverted.invert = true;
        assert!(header_matches(inverted, &lines));
        // A single line holding a comma is one value.
        assert!(!header_matches(exact("1"), &[h("x-a", "1,2")]));
    }

    #[test]
    fn present_and_missing_semantics() {
        let present = |p: bool, invert: bool, treat: bool| {
            let mut m = header("x-a", snapshot::HeaderRule::Present(p));
            m.invert = invert;
            m.treat_missing_header_as_empty = treat;
            m
        };
        let with = [h("x-a", "")];
        assert!(header_matches(present(true, false, false), &with));
        assert!(!header_matches(present(true, false, false), &[]));
        assert!(!header_matches(present(false, false, false), &with));
        assert!(header_matches(present(false, false, false), &[]));
        assert!(!header_matches(present(true, true, false), &with));
        assert!(header_matches(present(true, true, false), &[]));
        assert!(header_matches(present(false, true, false), &with));
        assert!(!header_matches(present(false, true, false), &[]));
        // Envoy: treat_missing_header_as_empty makes a missing header present with value "".
        assert!(header_matches(present(true, false, true), &[]));

        let exact_inverted = |treat: bool| {
            let mut m = header(
                "x-a",
                snapshot::HeaderRule::String(string(SP::Exact("a".into()), false)),
            );
            m.invert = true;
            m.treat_missing_header_as_empty = treat;
            m
        };
        // A missing header fails even an inverted matcher...
        assert!(!header_matches(exact_inverted(false), &[]));
        // ...unless it is treated as "", which does not equal "a".
        assert!(header_matches(exact_inverted(true), &[]));
        let mut empty_exact = header(
            "x-a",
            snapshot::HeaderRule::String(string(SP::Exact("".into()), false)),
        );
        empty_exact.treat_missing_header_as_empty = true;
        assert!(header_matches(empty_exact, &[]));
    }

    #[test]
    fn range_is_half_open_on_the_integer_value() {
        let range = header("x-n", snapshot::HeaderRule::Range { start: -5, end: 10 });
        let check = |v: &str| {
            let m = HeaderMatch::compile(&range, "h").unwrap();
            m.matches(&req("/", &[h("x-n", v)]))
        };
        assert!(check("-5"));
        assert!(check(" 9 "));
        assert!(check("+3"));
        assert!(!check("10"));
        assert!(!check("-6"));
        assert!(!check("5x"));
        assert!(!check(""));
        assert!(!check("99999999999999999999"));
    }

    #[test]
    fn query_parameters_use_the_first_raw_value() {
        let q = |name: &str, rule: snapshot::QueryRule| {
            let m = QueryMatch::compile(
                &QueryParameterMatcher {
                    name: name.into(),
                    rule,
                },
                "q",
            )
            .unwrap();
            move |query: &str| m.matches(query)
        };
        let exact = |v: &str| snapshot::QueryRule::String(string(SP::Exact(v.into()), false));
        let m = q("a", exact("x%20y"));
        assert!(m("a=x%20y"));
        assert!(!m("a=x y"));
        let m = q("a", exact("1"));
        assert!(m("b=2&a=1&a=2"));
        assert!(!m("a=2&a=1"));
        assert!(!m("A=1"));
        assert!(!m(""));
        let m = q("a", exact(""));
        assert!(m("a"));
        assert!(m("b=1&a&a=2"));
        assert!(m("a="));
        let present = q("a", snapshot::QueryRule::Present(true));
        assert!(present("x=1&a"));
        assert!(!present("x=1&ab=2"));
        let absent = q("a", snapshot::QueryRule::Present(false));
        assert!(absent("x=1"));
        assert!(absent(""));
        assert!(!absent("a=1"));
    }

    #[test]
    fn all_matchers_of_a_route_must_hold() {
        let mut m = route(P::Prefix("/".into()), true);
        m.headers
            .push(header("x-a", snapshot::HeaderRule::Present(true)));
        m.query_parameters.push(QueryParameterMatcher {
            name: "debug".into(),
            rule: snapshot::QueryRule::Present(true),
        });
        let compiled = RouteMatch::compile(&m, "match").unwrap();
        let with = [h("x-a", "1")];
        let check = |target: &str, headers: &[httparse::Header<'_>]| {
            let (path, query) = split_target(target);
            compiled.matches(&req(target, headers), path, query)
        };
        assert!(check("/x?debug", &with));
        assert!(!check("/x", &with));
        assert!(!check("/x?debug", &[]));
    }
}
