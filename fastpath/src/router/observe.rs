//! Hooks route selection calls as it decides, for `meshcore explain`. The data path passes
//! `Silent`, whose empty methods (and `EXHAUSTIVE = false`) compile away when the generic
//! selection code is monomorphized, so the hot path is the same machine code as before.

/// How the virtual host was found: Envoy's domain precedence, with the (lower-case) part of
/// the host that the winning domain pattern fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainMatch<'a> {
    /// The whole host equals a domain.
    Exact(&'a [u8]),
    /// `*<fixed>`: the host ends with `fixed`.
    Suffix(&'a [u8]),
    /// `<fixed>*`: the host starts with `fixed`.
    Prefix(&'a [u8]),
    /// The `*` virtual host.
    Any,
}

/// One condition of a route's `match`, in the order the router checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `prefix` / `path` / `safe_regex` / `path_separated_prefix`.
    Path,
    /// `headers[i]`.
    Header(usize),
    /// `query_parameters[i]`.
    Query(usize),
}

/// Receives the steps of one route selection.
pub trait Observer {
    /// Check every condition of a route even after one failed (to name all that failed);
    /// the data path stops at the first.
    const EXHAUSTIVE: bool = false;
    /// The virtual host at `index` was chosen.
    #[inline(always)]
    fn virtual_host(&mut self, _index: usize, _by: DomainMatch<'_>) {}
    /// No virtual host matches the authority.
    #[inline(always)]
    fn no_virtual_host(&mut self) {}
    /// Route `index` of the chosen virtual host is about to be checked.
    #[inline(always)]
    fn route(&mut self, _index: usize) {}
    /// A condition of the route being checked held (or not).
    #[inline(always)]
    fn condition(&mut self, _condition: Condition, _matched: bool) {}
}

/// The data path's observer: records nothing.
pub struct Silent;

impl Observer for Silent {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::snapshot;
    use crate::router::{RequestView, RouteTable};

    /// Records every hook call, in order.
    #[derive(Default)]
    struct Log {
        vhost: Option<(usize, String)>,
        none: bool,
        events: Vec<(usize, Condition, bool)>,
        current: usize,
        exhaustive: bool,
    }

    impl Log {
        fn on_vhost(&mut self, index: usize, by: DomainMatch<'_>) {
            let t = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let pattern = match by {
                DomainMatch::Exact(h) => t(h),
                DomainMatch::Suffix(f) => format!("*{}", t(f)),
                DomainMatch::Prefix(f) => format!("{}*", t(f)),
                DomainMatch::Any => "*".into(),
            };
            self.vhost = Some((index, pattern));
        }
    }

    /// Stops at the first failing condition, as the data path does.
    struct Short(Log);
    /// Checks every condition.
    struct Full(Log);

    macro_rules! observer {
        ($t:ty, $exhaustive:expr) => {
            impl Observer for $t {
                const EXHAUSTIVE: bool = $exhaustive;
                fn virtual_host(&mut self, index: usize, by: DomainMatch<'_>) {
                    self.0.on_vhost(index, by);
                }
                fn no_virtual_host(&mut self) {
                    self.0.none = true;
                }
                fn route(&mut self, index: usize) {
                    self.0.current = index;
                }
                fn condition(&mut self, c: Condition, matched: bool) {
                    self.0.exhaustive = $exhaustive;
                    self.0.events.push((self.0.current, c, matched));
                }
            }
        };
    }
    observer!(Short, false);
    observer!(Full, true);

    const CONFIG: &str = r#"{
      "virtual_hosts": [
        {"name": "api", "domains": ["api.example.com", "*.api.example.com"], "routes": [
          {"name": "canary", "match": {"path": {"prefix": "/v1"},
             "headers": [{"name": "x-canary", "rule": {"string": {"pattern": {"exact": "1"}}}},
                         {"name": "x-env", "rule": {"present": true}}],
             "query_parameters": [{"name": "debug", "rule": {"present": true}}]},
           "action": {"route": {"target": {"cluster": "c"}}}},
          {"name": "v1", "match": {"path": {"prefix": "/v1"}},
           "action": {"route": {"target": {"cluster": "c"}}}}
        ]},
        {"name": "www", "domains": ["www.*"], "routes": [
          {"name": "all", "match": {"path": {"prefix": "/"}},
           "action": {"direct_response": {"status": 200}}}
        ]}
      ]
    }"#;

    fn table() -> RouteTable {
        let cfg: snapshot::RouteConfig = serde_json::from_str(CONFIG).unwrap();
        RouteTable::compile(&cfg, &|n| (n == "c").then_some(0)).unwrap()
    }

    fn view<'a>(
        authority: &'a str,
        path: &'a str,
        h: &'a [httparse::Header<'a>],
    ) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            authority,
            scheme: "http",
            headers: h,
        }
    }

    #[test]
    fn silent_selection_equals_observed_selection() {
        let t = table();
        let canary = [httparse::Header {
            name: "X-Canary",
            value: b"1",
        }];
        for (auth, path, headers) in [
            ("api.example.com", "/v1/x", &[][..]),
            ("api.example.com", "/v1/x?debug", &canary[..]),
            ("a.api.example.com", "/v2", &[][..]),
            ("www.example.org", "/", &[][..]),
            ("nowhere", "/", &[][..]),
        ] {
            let r = view(auth, path, headers);
            let plain = t.select(&r).map(|s| s.indices());
            let mut full = Full(Log::default());
            let observed = t.select_observed(&r, &mut full).map(|s| s.indices());
            assert_eq!(plain, observed, "{auth}{path}");
        }
    }

    #[test]
    fn exhaustive_observer_sees_every_condition_and_the_domain() {
        let t = table();
        let h = [httparse::Header {
            name: "x-canary",
            value: b"2",
        }];
        let mut full = Full(Log::default());
        let sel = t.select_observed(&view("API.example.com", "/v1/users", &h), &mut full);
        assert_eq!(sel.map(|s| s.route_name()), Some("v1"));
        assert_eq!(full.0.vhost, Some((0, "api.example.com".into())));
        assert!(full.0.exhaustive);
        assert_eq!(
            full.0.events,
            vec![
                (0, Condition::Path, true),
                (0, Condition::Header(0), false),
                (0, Condition::Header(1), false),
                (0, Condition::Query(0), false),
                (1, Condition::Path, true),
            ]
        );
    }

    #[test]
    fn short_observer_stops_at_the_first_failure_like_the_data_path() {
        let t = table();
        let mut short = Short(Log::default());
        let sel = t.select_observed(&view("x.api.example.com", "/v1", &[]), &mut short);
        assert_eq!(sel.map(|s| s.route_name()), Some("v1"));
        assert_eq!(short.0.vhost, Some((0, "*.api.example.com".into())));
        assert_eq!(
            short.0.events,
            vec![
                (0, Condition::Path, true),
                (0, Condition::Header(0), false),
                (1, Condition::Path, true),
            ]
        );
    }

    #[test]
    fn domain_kinds_and_no_virtual_host() {
        let t = table();
        let mut full = Full(Log::default());
        t.select_observed(&view("www.example.org:8080", "/", &[]), &mut full);
        assert_eq!(full.0.vhost, Some((1, "www.*".into())));
        let mut full = Full(Log::default());
        assert!(
            t.select_observed(&view("other", "/", &[]), &mut full)
                .is_none()
        );
        assert!(full.0.none);
        assert!(full.0.events.is_empty());
    }
}
