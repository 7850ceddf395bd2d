//! `redirect` actions: builds the absolute `location` URL the way Envoy's `Utility::newUri`
//! does.
use super::RequestView;
use super::rewrite::PrefixRewrite;
use crate::config::snapshot;

/// A compiled `RedirectAction`.
#[derive(Debug)]
pub(super) struct Redirect {
    scheme: Option<Box<str>>,
    host: Option<Box<str>>,
    /// ":8443"
    port: Option<Box<str>>,
    path: Option<Box<str>>,
    prefix_rewrite: Option<PrefixRewrite>,
    strip_query: bool,
    pub(super) status: u16,
}

impl Redirect {
    /// `at` is the path of the `redirect` field; `route` is the route's match (for
    /// `prefix_rewrite`).
    pub(super) fn compile(
        cfg: &snapshot::Redirect,
        route: &snapshot::RouteMatch,
        at: &str,
    ) -> Result<Redirect, String> {
        if !matches!(cfg.response_code, 301 | 302 | 303 | 307 | 308) {
            return Err(format!(
                "{at}.response_code: {} is not a redirect code (301, 302, 303, 307 or 308)",
                cfg.response_code
            ));
        }
        for (field, value) in [
            ("scheme_redirect", &cfg.scheme_redirect),
            ("host_redirect", &cfg.host_redirect),
            ("path_redirect", &cfg.path_redirect),
            ("prefix_rewrite", &cfg.prefix_rewrite),
        ] {
            if let Some(v) = value
                && v.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n'))
            {
                return Err(format!("{at}.{field}: {v:?} contains NUL, CR or LF"));
            }
        }
        if non_empty(&cfg.path_redirect).is_some() && non_empty(&cfg.prefix_rewrite).is_some() {
            return Err(format!(
                "{at}: path_redirect and prefix_rewrite are mutually exclusive"
            ));
        }
        Ok(Redirect {
            scheme: non_empty(&cfg.scheme_redirect).map(Into::into),
            host: non_empty(&cfg.host_redirect).map(Into::into),
            port: cfg
                .port_redirect
                .filter(|p| *p != 0)
                .map(|p| format!(":{p}").into_boxed_str()),
            path: non_empty(&cfg.path_redirect).map(Into::into),
            prefix_rewrite: non_empty(&cfg.prefix_rewrite)
                .and_then(|r| PrefixRewrite::new(r, &route.path, route.case_sensitive)),
            strip_query: cfg.strip_query,
            status: cfg.response_code,
        })
    }

    /// The `location` value for `req`. `req.scheme` stands for both Envoy's `:scheme` and
    /// `x-forwarded-proto`.
    pub(super) fn location(&self, req: &RequestView<'_>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(req.scheme);
        let port = self.port.as_deref().unwrap_or("");
        let host = match &self.host {
            Some(h) => h,
            None => request_host(req.authority, req.scheme, scheme, port),
        };
        let rewritten;
        let mut path: &str = match (&self.path, &self.prefix_rewrite) {
            (Some(p), _) => p,
            (None, Some(r)) => {
                rewritten = r.apply(req.path);
                rewritten.as_deref().unwrap_or(req.path)
            }
            (None, None) => req.path,
        };
        // A `path_redirect` without a query keeps the request's; one with a query replaces it
        // and is never stripped.
        let path_has_query = self.path.as_deref().is_some_and(|p| p.contains('?'));
        let kept_query = match (&self.path, req.path.find('?')) {
            (Some(_), Some(q)) if !path_has_query => &req.path[q..],
            _ => "",
        };
        let mut query = kept_query;
        if self.strip_query && !path_has_query {
            if let Some(q) = path.find('?') {
                path = &path[..q];
            }
            query = "";
        }
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{host}{port}{slash}{path}{query}")
    }
}

/// Envoy's `processRequestHost`: the request's host, without its port when a port redirect
/// replaces it, or when the scheme changes and the port was the old scheme's default
/// (`http://a:80` → `https://a`).
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn request_host<'a>(
    authority: &'a str,
    request_scheme: &str,
    new_scheme: &str,
    new_port: &str,
) -> &'a str {
    let port_at = if authority.starts_with('[') {
        authority.rfind("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    let Some(at) = port_at else {
        return authority;
    };
    let port = &authority[at..];
    let mut remove = !new_port.is_empty();
    if new_scheme != request_scheme {
        remove |= request_scheme.eq_ignore_ascii_case("https") && port == ":443";
        remove |= request_scheme.eq_ignore_ascii_case("http") && port == ":80";
    }
    if remove { &authority[..at] } else { authority }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> snapshot::Redirect {
        snapshot::Redirect {
            scheme_redirect: None,
            host_redirect: None,
            port_redirect: None,
            path_redirect: None,
            prefix_rewrite: None,
            response_code: 301,
            strip_query: false,
        }
    }

    fn prefix_match(p: &str) -> snapshot::RouteMatch {
        snapshot::RouteMatch {
            path: snapshot::PathMatch::Prefix(p.into()),
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
        }
    }

    fn location(
        cfg: &snapshot::Redirect,
        route: &snapshot::RouteMatch,
        authority: &str,
        path: &str,
    ) -> String {
        let r = Redirect::compile(cfg, route, "redirect").unwrap();
        r.location(&RequestView {
            method: "GET",
            path,
            authority,
            scheme: "http",
            headers: &[],
        })
    }

    /// Checks `cfg` on a `/` prefix route: each case is (authority, path, expected location).
    fn assert_locations(cfg: &snapshot::Redirect, cases: &[(&str, &str, &str)]) {
        let m = prefix_match("/");
        for &(authority, path, want) in cases {
            assert_eq!(
                location(cfg, &m, authority, path),
                want,
                "{authority}{path}"
            );
        }
    }

    // Expected values below were observed from Envoy 1.40 with the same configuration.
    #[test]
    fn scheme_change_drops_only_the_old_default_port() {
        let https = snapshot::Redirect {
            scheme_redirect: Some("https".into()),
            ..redirect()
        };
        assert_locations(
            &https,
            &[
                ("foo.com:80", "/r1?a=b", "https://foo.com/r1?a=b"),
                ("foo.com:8080", "/r1", "https://foo.com:8080/r1"),
                ("foo.com", "/r1", "https://foo.com/r1"),
            ],
        );
        // Same scheme: the port stays even when it is the default.
        assert_locations(&redirect(), &[("foo.com:80", "/x", "http://foo.com:80/x")]);
    }

    #[test]
    fn port_redirect_replaces_the_port_even_in_ipv6_literals() {
        let cfg = snapshot::Redirect {
            port_redirect: Some(8443),
            ..redirect()
        };
        assert_locations(
            &cfg,
            &[
                ("foo.com:8080", "/r2", "http://foo.com:8443/r2"),
                ("[::1]:8080", "/r2", "http://[::1]:8443/r2"),
                ("[::1]", "/r2", "http://[::1]:8443/r2"),
            ],
        );
        let https_443 = snapshot::Redirect {
            scheme_redirect: Some("https".into()),
            port_redirect: Some(443),
            ..redirect()
        };
        assert_locations(
            &https_443,
            &[("foo.com:80", "/r5", "https://foo.com:443/r5")],
        );
    }

    #[test]
    fn host_redirect_replaces_host_and_port() {
        let cfg = snapshot::Redirect {
            host_redirect: Some("new.example".into()),
            ..redirect()
        };
        assert_eq!(
            location(&cfg, &prefix_match("/"), "foo.com:8080", "/r3"),
            "http://new.example/r3"
        );
    }

    #[test]
    fn path_redirect_keeps_the_request_query_unless_it_has_its_own() {
        let m = prefix_match("/");
        let cfg = snapshot::Redirect {
            path_redirect: Some("/new".into()),
            ..redirect()
        };
        assert_eq!(location(&cfg, &m, "a", "/old?x=1"), "http://a/new?x=1");
        let cfg = snapshot::Redirect {
            path_redirect: Some("/new?y=2".into()),
            strip_query: true,
            ..redirect()
        };
        assert_eq!(location(&cfg, &m, "a", "/old?x=1"), "http://a/new?y=2");
        let cfg = snapshot::Redirect {
            path_redirect: Some("/new".into()),
            strip_query: true,
            ..redirect()
        };
        assert_eq!(location(&cfg, &m, "a", "/old?x=1"), "http://a/new");
        let cfg = snapshot::Redirect {
            path_redirect: Some("relative".into()),
            ..redirect()
        };
        assert_eq!(location(&cfg, &m, "a", "/old"), "http://a/relative");
    }

    #[test]
    fn prefix_rewrite_and_strip_query() {
        let cfg = snapshot::Redirect {
            prefix_rewrite: Some("/x/".into()),
            strip_query: true,
            ..redirect()
        };
        assert_eq!(
            location(&cfg, &prefix_match("/r4/"), "foo.com", "/r4/abc?k=v"),
            "http://foo.com/x/abc"
        );
        let exact = snapshot::RouteMatch {
            path: snapshot::PathMatch::Path("/r6".into()),
            ..prefix_match("")
        };
        let cfg = snapshot::Redirect {
            prefix_rewrite: Some("/z".into()),
            ..redirect()
        };
        assert_eq!(
            location(&cfg, &exact, "foo.com", "/r6?k=v"),
            "http://foo.com/z?k=v"
        );
        assert_eq!(
            location(&redirect(), &prefix_match("/"), "h", "/p?q"),
            "http://h/p?q"
        );
    }

    #[test]
    fn invalid_redirects_are_errors_naming_the_field() {
        let cfg = snapshot::Redirect {
            response_code: 200,
            ..redirect()
        };
        let err = Redirect::compile(&cfg, &prefix_match("/"), "r").unwrap_err();
        assert!(err.starts_with("r.response_code:"), "{err}");
        let cfg = snapshot::Redirect {
            host_redirect: Some("a\r\nb".into()),
            ..redirect()
        };
        let err = Redirect::compile(&cfg, &prefix_match("/"), "r").unwrap_err();
        assert!(err.starts_with("r.host_redirect:"), "{err}");
        let cfg = snapshot::Redirect {
            path_redirect: Some("/a".into()),
            prefix_rewrite: Some("/b".into()),
            ..redirect()
        };
        let err = Redirect::compile(&cfg, &prefix_match("/"), "r").unwrap_err();
        assert!(err.contains("mutually exclusive"), "{err}");
    }
}
