//! Route `hash_policy`: the request hash RING_HASH and MAGLEV pick by, computed as Envoy's
//! `HashPolicyImpl::generateHash` does (xxHash64, seed 0, of the header / cookie / source IP /
//! query parameter value; rotated and XORed across policies; `terminal` stops the walk).
use std::net::IpAddr;

use xxhash_rust::xxh64::xxh64;

use super::RequestView;
use super::matcher::{first_value, split_target};
use crate::config::snapshot::{HashPolicy, HashSource};

#[derive(Debug)]
pub struct HashPolicies(Box<[HashPolicy]>);

impl HashPolicies {
    /// None for an empty list (no hash is computed per request).
    pub fn compile(policies: &[HashPolicy]) -> Option<HashPolicies> {
        (!policies.is_empty()).then(|| HashPolicies(policies.into()))
    }

    /// The request's hash, or None when no policy found its input.
    pub fn hash(&self, req: &RequestView<'_>, peer: IpAddr) -> Option<u64> {
        let mut hash: Option<u64> = None;
        for p in self.0.iter() {
            if let Some(new) = one(&p.policy, req, peer) {
                let old = hash.map_or(0, |h| h.rotate_left(1));
                hash = Some(old ^ new);
            }
            if p.terminal && hash.is_some() {
                break;
            }
        }
        hash
    }
}

fn one(source: &HashSource, req: &RequestView<'_>, peer: IpAddr) -> Option<u64> {
    match source {
        HashSource::Header(name) => {
            let mut values: Vec<&[u8]> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
                .collect();
            match values.len() {
                0 => None,
                1 => Some(xxh64(values[0], 0)),
                _ => {
                    // Envoy sorts the values and chains them through the seed.
                    values.sort_unstable();
                    Some(values.iter().fold(0, |seed, v| xxh64(v, seed)))
                }
            }
        }
        HashSource::Cookie(name) => cookie(req, name).map(|v| xxh64(v, 0)),
        HashSource::SourceIp => Some(xxh64(peer.to_string().as_bytes(), 0)),
        HashSource::QueryParameter(name) => {
            let (_, query) = split_target(req.path);
            first_value(query.as_bytes(), name.as_bytes()).map(|v| xxh64(v, 0))
        }
    }
}

/// The value of the first cookie `name` in the `cookie` headers.
fn cookie<'a>(req: &RequestView<'a>, name: &str) -> Option<&'a [u8]> {
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("cookie"))
        .flat_map(|h| h.value.split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let eq = memchr::memchr(b'=', pair)?;
            let value = &pair[eq + 1..];
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            (pair[..eq].trim_ascii() == name.as_bytes()).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(path: &'a str, headers: &'a [httparse::Header<'a>]) -> RequestView<'a> {
        RequestView {
            method: "GET",
            path,
            authority: "a",
            scheme: "http",
            headers,
        }
    }

    fn policies(list: Vec<(HashSource, bool)>) -> HashPolicies {
        let v: Vec<HashPolicy> = list
            .into_iter()
            .map(|(policy, terminal)| HashPolicy { policy, terminal })
            .collect();
        HashPolicies::compile(&v).unwrap()
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    #[test]
    fn each_source_hashes_its_value() {
        let h = [
            httparse::Header {
                name: "X-User",
                value: b"alice",
            },
            httparse::Header {
                name: "cookie",
                value: b"a=1; session=\"s42\"",
            },
        ];
        let r = view("/p?x=1&user=bob", &h);
        let p = policies(vec![(HashSource::Header("x-user".into()), false)]);
        assert_eq!(p.hash(&r, PEER), Some(xxh64(b"alice", 0)));
        let p = policies(vec![(HashSource::Cookie("session".into()), false)]);
        assert_eq!(p.hash(&r, PEER), Some(xxh64(b"s42", 0)));
        let p = policies(vec![(HashSource::QueryParameter("user".into()), false)]);
        assert_eq!(p.hash(&r, PEER), Some(xxh64(b"bob", 0)));
        let p = policies(vec![(HashSource::SourceIp, false)]);
        assert_eq!(p.hash(&r, PEER), Some(xxh64(b"10.1.2.3", 0)));
        let p = policies(vec![(HashSource::Header("absent".into()), false)]);
        assert_eq!(p.hash(&r, PEER), None);
    }

    #[test]
    fn policies_combine_and_terminal_stops() {
        let h = [httparse::Header {
            name: "x-a",
            value: b"1",
        }];
        let r = view("/", &h);
        let a = xxh64(b"1", 0);
        let ip = xxh64(b"10.1.2.3", 0);
        let p = policies(vec![
            (HashSource::Header("x-a".into()), false),
            (HashSource::SourceIp, false),
        ]);
        assert_eq!(p.hash(&r, PEER), Some(a.rotate_left(1) ^ ip));
        let p = policies(vec![
            (HashSource::Header("x-a".into()), true),
            (HashSource::SourceIp, false),
        ]);
        assert_eq!(p.hash(&r, PEER), Some(a));
        // A terminal policy that found nothing does not stop the walk.
        let p = policies(vec![
            (HashSource::Header("x-missing".into()), true),
            (HashSource::SourceIp, false),
        ]);
        assert_eq!(p.hash(&r, PEER), Some(ip));
        assert!(HashPolicies::compile(&[]).is_none());
    }
}
