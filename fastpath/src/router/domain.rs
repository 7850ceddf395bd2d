//! Virtual host selection by authority: Envoy's exact / suffix-wildcard / prefix-wildcard / `*`
//! precedence on the host as given, port included (the connection manager strips the port
//! first when `strip_any_host_port` / `strip_matching_host_port` says so).
use std::borrow::Cow;
use std::collections::HashMap;

use super::observe::{DomainMatch, Observer};
use crate::config::snapshot::VirtualHost;

/// Longest authority lower-cased on the stack; longer ones allocate.
const STACK_HOST: usize = 256;

/// Wildcard domains grouped by the length of their fixed part, longest first.
type Wildcards = Vec<(usize, HashMap<Box<[u8]>, usize>)>;

/// Maps an authority to a virtual host index.
#[derive(Debug, Default)]
pub(super) struct DomainIndex {
    exact: HashMap<Box<[u8]>, usize>,
    /// `*.foo.com` / `*-bar.foo.com`, keyed by the part after `*`.
    suffixes: Wildcards,
    /// `foo.*`, keyed by the part before `*`.
    prefixes: Wildcards,
    /// The virtual host with domain `*`.
    default: Option<usize>,
}

impl DomainIndex {
    /// Errors (paths relative to the route configuration) for an empty domain list, a domain
    /// used twice, or more than one `*`, as Envoy rejects them.
    pub(super) fn build(vhosts: &[VirtualHost]) -> Result<DomainIndex, String> {
        let domains = vhosts.iter().map(|vh| vh.domains.len()).sum();
        let mut index = DomainIndex {
            exact: HashMap::with_capacity(domains),
            ..DomainIndex::default()
        };
        for (i, vh) in vhosts.iter().enumerate() {
            if vh.domains.is_empty() {
                return Err(format!("virtual_hosts[{i}].domains: must not be empty"));
            }
            for (j, domain) in vh.domains.iter().enumerate() {
                let lower = lowercase(domain);
                let bytes: &[u8] = &lower;
                // A domain maps to one key of one table (the `*` is stripped at a fixed
                // place), so a domain used twice is a key inserted twice.
                let fresh = if bytes == b"*" {
                    index.default.replace(i).is_none()
                } else if let Some(rest) = bytes.strip_prefix(b"*") {
                    insert_wildcard(&mut index.suffixes, rest, i)
                } else if let Some(rest) = bytes.strip_suffix(b"*") {
                    insert_wildcard(&mut index.prefixes, rest, i)
                } else {
                    index.exact.insert(bytes.into(), i).is_none()
                };
                if !fresh {
                    return Err(duplicate(vhosts, i, j));
                }
            }
        }
        index
            .suffixes
            .sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        index
            .prefixes
            .sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        Ok(index)
    }

    /// `find_observed` with no observer.
    #[cfg(test)]
    pub(super) fn find(&self, authority: &str) -> Option<usize> {
        self.find_observed(authority, &mut super::observe::Silent)
    }

    /// The virtual host for `authority` (a Host header value), compared ASCII
    /// case-insensitively: exact, then the longest suffix wildcard, then the longest prefix
    /// wildcard, then `*`. As in Envoy, the port is part of the host: `example.com:8080`
    /// matches the domain `example.com:8080` (or `example.*`), not `example.com`.
    /// `obs` learns which domain chose the virtual host.
    pub(super) fn find_observed<O: Observer>(&self, authority: &str, obs: &mut O) -> Option<usize> {
        let any = |obs: &mut O| {
            let found = self.default;
            if let Some(i) = found {
                obs.virtual_host(i, DomainMatch::Any);
            }
            found
        };
        if self.exact.is_empty() && self.suffixes.is_empty() && self.prefixes.is_empty() {
            return any(obs);
        }
        let raw = authority.as_bytes();
        let mut stack = [0u8; STACK_HOST];
        let heap: Vec<u8>;
        let host: &[u8] = if !raw.iter().any(u8::is_ascii_uppercase) {
            raw
        } else if raw.len() <= STACK_HOST {
            let lowered = &mut stack[..raw.len()];
            lowered.copy_from_slice(raw);
            lowered.make_ascii_lowercase();
            lowered
        } else {
            heap = raw.to_ascii_lowercase();
            &heap
        };
        match self.find_specific(host) {
            Some((i, by)) => {
                obs.virtual_host(i, by);
                Some(i)
            }
            None => any(obs),
        }
    }

    fn find_specific<'h>(&self, host: &'h [u8]) -> Option<(usize, DomainMatch<'h>)> {
        if let Some(&i) = self.exact.get(host) {
            return Some((i, DomainMatch::Exact(host)));
        }
        if let Some((i, len)) = find_wildcard(&self.suffixes, host, true) {
            return Some((i, DomainMatch::Suffix(&host[host.len() - len..])));
        }
        find_wildcard(&self.prefixes, host, false)
            .map(|(i, len)| (i, DomainMatch::Prefix(&host[..len])))
    }
}

/// The longest wildcard whose fixed part ends (`suffix`) or starts `host`. A wildcard never
/// matches an empty remainder: `*.foo.com` does not match `.foo.com`.
/// Returns the virtual host and the length of the fixed part.
fn find_wildcard(groups: &Wildcards, host: &[u8], suffix: bool) -> Option<(usize, usize)> {
    groups.iter().find_map(|(len, map)| {
        if *len >= host.len() {
            return None;
        }
        let fixed = if suffix {
            &host[host.len() - len..]
        } else {
            &host[..*len]
        };
        map.get(fixed).map(|&i| (i, *len))
    })
}

/// Inserts a wildcard's fixed part; false if it was there already.
fn insert_wildcard(groups: &mut Wildcards, fixed: &[u8], vhost: usize) -> bool {
    match groups.iter_mut().find(|(len, _)| *len == fixed.len()) {
        Some((_, map)) => map.insert(fixed.into(), vhost).is_none(),
        None => {
            groups.push((fixed.len(), HashMap::from([(fixed.into(), vhost)])));
            true
        }
    }
}

/// `domain` ASCII lower-cased, copied only when it has an upper-case letter.
fn lowercase(domain: &str) -> Cow<'_, [u8]> {
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase().into_bytes())
    } else {
        Cow::Borrowed(domain.as_bytes())
    }
}

/// The error for `virtual_hosts[i].domains[j]`, a domain an earlier one already used
/// (compared ASCII case-insensitively), naming that first use.
#[cold]
fn duplicate(vhosts: &[VirtualHost], i: usize, j: usize) -> String {
    let domain = vhosts[i].domains[j].to_ascii_lowercase();
    let first = vhosts
        .iter()
        .enumerate()
        .flat_map(|(fi, vh)| {
            vh.domains
                .iter()
                .enumerate()
                .map(move |(fj, d)| (fi, fj, d))
        })
        .find(|(_, _, d)| d.eq_ignore_ascii_case(&domain))
        .map(|(fi, fj, _)| format!("virtual_hosts[{fi}].domains[{fj}]"))
        .unwrap_or_default();
    format!(
        "virtual_hosts[{i}].domains[{j}]: domain {domain:?} is already used at {first}; domains \
         must be unique across virtual hosts"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vhosts(domains: &[&[&str]]) -> Vec<VirtualHost> {
        domains
            .iter()
            .enumerate()
            .map(|(i, d)| VirtualHost {
                name: format!("vh{i}"),
                domains: d.iter().map(|s| s.to_string()).collect(),
                routes: vec![],
                headers: Default::default(),
                typed_per_filter_config: vec![],
            })
            .collect()
    }

    #[test]
    fn precedence_is_exact_then_suffix_then_prefix_then_star() {
        let index = DomainIndex::build(&vhosts(&[
            &["*"],
            &["api.example.com"],
            &["*.example.com"],
            &["*-api.example.com"],
            &["api.*"],
            &["api.example.*"],
        ]))
        .unwrap();
        assert_eq!(index.find("api.example.com"), Some(1));
        assert_eq!(index.find("web.example.com"), Some(2));
        // Suffix wildcards beat prefix wildcards, whatever their lengths.
        assert_eq!(index.find("api.example.example.com"), Some(2));
        assert_eq!(index.find("foo-api.example.com"), Some(3));
        assert_eq!(index.find("api.example.org"), Some(5));
        assert_eq!(index.find("api.other.org"), Some(4));
        assert_eq!(index.find("other.org"), Some(0));
        // The wildcard must cover at least one character.
        assert_eq!(index.find(".example.com"), Some(0));
        assert_eq!(index.find("-api.example.com"), Some(2));
        assert_eq!(index.find("api."), Some(0));
    }

    #[test]
    fn matching_is_ascii_case_insensitive() {
        let index =
            DomainIndex::build(&vhosts(&[&["api.example.com"], &["*.Example.COM"]])).unwrap();
        assert_eq!(index.find("API.Example.Com"), Some(0));
        assert_eq!(index.find("WWW.EXAMPLE.COM"), Some(1));
        let long = format!("{}.EXAMPLE.com", "A".repeat(300));
        assert_eq!(index.find(&long), Some(1));
    }

    #[test]
    fn the_port_is_part_of_the_host_like_envoy() {
        let index = DomainIndex::build(&vhosts(&[
            &["example.com"],
            &["example.com:8080"],
            &["*.example.com"],
            &["[::1]"],
            &["api.*"],
            &["*"],
        ]))
        .unwrap();
        assert_eq!(index.find("example.com:8080"), Some(1));
        assert_eq!(index.find("example.com"), Some(0));
        // No fallback to the host without its port.
        assert_eq!(index.find("example.com:9090"), Some(5));
        assert_eq!(index.find("a.example.com:9090"), Some(5));
        assert_eq!(index.find("[::1]:80"), Some(5));
        assert_eq!(index.find("[::1]"), Some(3));
        // A prefix wildcard covers the port.
        assert_eq!(index.find("api.example.com:8080"), Some(4));
    }

    #[test]
    fn no_match_without_star_is_none() {
        let index = DomainIndex::build(&vhosts(&[&["a.com"]])).unwrap();
        assert_eq!(index.find("b.com"), None);
        assert_eq!(index.find(""), None);
        let only_star = DomainIndex::build(&vhosts(&[&["*"]])).unwrap();
        assert_eq!(only_star.find("anything:1"), Some(0));
        assert_eq!(DomainIndex::build(&[]).unwrap().find("x"), None);
    }

    #[test]
    fn invalid_domain_sets_are_errors_naming_the_domain() {
        let err = DomainIndex::build(&vhosts(&[&["a.com"], &["b.com", "A.com"]])).unwrap_err();
        assert!(
            err.starts_with("virtual_hosts[1].domains[1]: domain \"a.com\""),
            "{err}"
        );
        assert_eq!(
            err,
            "virtual_hosts[1].domains[1]: domain \"a.com\" is already used at \
             virtual_hosts[0].domains[0]; domains must be unique across virtual hosts"
        );
        let err = DomainIndex::build(&vhosts(&[&["x"], &["*.a", "b*", "B*"]])).unwrap_err();
        assert!(
            err.starts_with("virtual_hosts[1].domains[2]: domain \"b*\" is already used at virtual_hosts[1].domains[1];"),
            "{err}"
        );
        let err = DomainIndex::build(&vhosts(&[&["*.A", "b*"], &["*.a"]])).unwrap_err();
        assert!(
            err.starts_with("virtual_hosts[1].domains[0]: domain \"*.a\" is already used at virtual_hosts[0].domains[0];"),
            "{err}"
        );
        // The same fixed part in the other wildcard table is another domain.
        assert!(DomainIndex::build(&vhosts(&[&["*a"], &["a*"], &["a"]])).is_ok());
        let err = DomainIndex::build(&vhosts(&[&["*"], &["*"]])).unwrap_err();
        assert!(err.starts_with("virtual_hosts[1].domains[0]:"), "{err}");
        let err = DomainIndex::build(&vhosts(&[&[]])).unwrap_err();
        assert_eq!(err, "virtual_hosts[0].domains: must not be empty");
    }
}
