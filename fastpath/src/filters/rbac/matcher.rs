//! RBAC permissions and principals compiled into one matcher tree (the two share most kinds),
//! with Envoy's semantics per kind.
use std::net::IpAddr;

use super::Input;
use super::metadata::MetadataMatch;
use crate::config::rbac::{Cidr, Permission, Principal};
use crate::proxy::forwarded;
use crate::router::{HeaderMatch, StringMatch, split_target};

pub(super) enum Matcher {
    Any,
    Header(HeaderMatch),
    /// The path without query and fragment.
    UrlPath(StringMatch),
    DestinationIp(CidrRange),
    DestinationPort(u32),
    /// `[start, end)`.
    DestinationPortRange(u32, u32),
    RequestedServerName(StringMatch),
    /// `None`: any TLS connection meshcore terminated.
    Authenticated(Option<StringMatch>),
    DirectRemoteIp(CidrRange),
    RemoteIp(CidrRange),
    And(Box<[Matcher]>),
    Or(Box<[Matcher]>),
    Not(Box<Matcher>),
    Metadata(MetadataMatch),
}

fn list<T>(
    items: &[T],
    at: &str,
    field: &str,
    each: impl Fn(&T, &str) -> Result<Matcher, String>,
) -> Result<Box<[Matcher]>, String> {
    if items.is_empty() {
        return Err(format!("{at}.{field}: must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| each(m, &format!("{at}.{field}[{i}]")))
        .collect()
}

fn network_header(network: bool, at: &str) -> Result<(), String> {
    if network {
        return Err(format!(
            "{at}.header: header rules are not supported by the network RBAC filter"
        ));
    }
    Ok(())
}

impl Matcher {
    pub(super) fn permission(p: &Permission, network: bool, at: &str) -> Result<Matcher, String> {
        let sub = |m: &Permission, at: &str| Matcher::permission(m, network, at);
        Ok(match p {
            Permission::Any => Matcher::Any,
            Permission::Header(h) => {
                network_header(network, at)?;
                Matcher::Header(HeaderMatch::compile(h, &format!("{at}.header"))?)
            }
            Permission::UrlPath(s) => {
                Matcher::UrlPath(StringMatch::compile(s, &format!("{at}.url_path.path"))?)
            }
            Permission::DestinationIp(c) => {
                Matcher::DestinationIp(CidrRange::compile(c, &format!("{at}.destination_ip"))?)
            }
            Permission::DestinationPort(p) => Matcher::DestinationPort(*p),
            Permission::DestinationPortRange { start, end } => {
                let at = format!("{at}.destination_port_range");
                // Envoy's `PortRangeMatcher` checks.
                if !(0..=65536).contains(start) {
                    return Err(format!("{at}: range start {start} is out of bounds"));
                }
                if !(0..=65536).contains(end) {
                    return Err(format!("{at}: range end {end} is out of bounds"));
                }
                if start >= end {
                    return Err(format!(
                        "{at}: range start {start} cannot be greater or equal than range end {end}"
                    ));
                }
                Matcher::DestinationPortRange(*start as u32, *end as u32)
            }
            Permission::RequestedServerName(s) => Matcher::RequestedServerName(
                StringMatch::compile(s, &format!("{at}.requested_server_name"))?,
            ),
            Permission::AndRules(l) => Matcher::And(list(l, at, "and_rules.rules", sub)?),
            Permission::OrRules(l) => Matcher::Or(list(l, at, "or_rules.rules", sub)?),
            Permission::NotRule(m) => Matcher::Not(Box::new(sub(m, &format!("{at}.not_rule"))?)),
            Permission::Metadata(m) => {
                Matcher::Metadata(MetadataMatch::compile(m, &format!("{at}.metadata"))?)
            }
        })
    }

    pub(super) fn principal(p: &Principal, network: bool, at: &str) -> Result<Matcher, String> {
        let sub = |m: &Principal, at: &str| Matcher::principal(m, network, at);
        Ok(match p {
            Principal::Any => Matcher::Any,
            Principal::Authenticated(m) => Matcher::Authenticated(
                m.as_ref()
                    .map(|s| StringMatch::compile(s, &format!("{at}.authenticated.principal_name")))
                    .transpose()?,
            ),
            Principal::DirectRemoteIp(c) => {
                Matcher::DirectRemoteIp(CidrRange::compile(c, &format!("{at}.direct_remote_ip"))?)
            }
            Principal::RemoteIp(c) => {
                Matcher::RemoteIp(CidrRange::compile(c, &format!("{at}.remote_ip"))?)
            }
            Principal::Header(h) => {
                network_header(network, at)?;
                Matcher::Header(HeaderMatch::compile(h, &format!("{at}.header"))?)
            }
            Principal::UrlPath(s) => {
                Matcher::UrlPath(StringMatch::compile(s, &format!("{at}.url_path.path"))?)
            }
            Principal::AndIds(l) => Matcher::And(list(l, at, "and_ids.ids", sub)?),
            Principal::OrIds(l) => Matcher::Or(list(l, at, "or_ids.ids", sub)?),
            Principal::NotId(m) => Matcher::Not(Box::new(sub(m, &format!("{at}.not_id"))?)),
            Principal::Metadata(m) => {
                Matcher::Metadata(MetadataMatch::compile(m, &format!("{at}.metadata"))?)
            }
        })
    }

    pub(super) fn matches(&self, input: &Input<'_>) -> bool {
        let local = input.conn.local;
        match self {
            Matcher::Any => true,
            Matcher::Header(h) => input.http.as_ref().is_some_and(|r| h.matches(r.view)),
            Matcher::UrlPath(s) => input
                .http
                .as_ref()
                .is_some_and(|r| s.matches(split_target(r.view.path).0.as_bytes())),
            Matcher::DestinationIp(c) => c.contains(local.ip()),
            Matcher::DestinationPort(p) => u32::from(local.port()) == *p,
            Matcher::DestinationPortRange(start, end) => {
                (*start..*end).contains(&u32::from(local.port()))
            }
            Matcher::RequestedServerName(s) => {
                s.matches(input.conn.sni().unwrap_or_default().as_bytes())
            }
            Matcher::Authenticated(m) => authenticated(input, m.as_ref()),
            Matcher::DirectRemoteIp(c) => c.contains(input.conn.peer.ip()),
            Matcher::RemoteIp(c) => c.contains(input.remote_ip()),
            Matcher::And(l) => l.iter().all(|m| m.matches(input)),
            Matcher::Or(l) => l.iter().any(|m| m.matches(input)),
            Matcher::Not(m) => !m.matches(input),
            Matcher::Metadata(m) => m.matches(input.metadata),
        }
    }
}

/// Envoy's `AuthenticatedMatcher`: a connection meshcore terminated TLS on; with a matcher,
/// any URI SAN, then any DNS SAN, then the subject of the client certificate must match
/// (without a certificate: the subject is "").
fn authenticated(input: &Input<'_>, m: Option<&StringMatch>) -> bool {
    let Some(tls) = input.conn.tls.as_deref().filter(|t| t.terminated) else {
        return false;
    };
    let Some(m) = m else {
        return true;
    };
    let Some(cert) = tls.peer_cert.as_ref() else {
        return m.matches(b"");
    };
    cert.uri_sans.iter().any(|s| m.matches(s.as_bytes()))
        || cert.dns_sans.iter().any(|s| m.matches(s.as_bytes()))
        || m.matches(cert.subject.as_bytes())
}

/// An Envoy `CidrRange`: the address truncated to `prefix_len` bits; matches addresses of
/// the same family (IPv4-mapped IPv6 addresses count as IPv4).
pub(super) struct CidrRange {
    network: IpAddr,
    len: u8,
}

impl CidrRange {
    fn compile(c: &Cidr, at: &str) -> Result<CidrRange, String> {
        let ip: IpAddr = c.address_prefix.parse().map_err(|_| {
            format!(
                "{at}.address_prefix: malformed IP address: {:?}",
                c.address_prefix
            )
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if c.prefix_len > max {
            return Err(format!(
                "{at}.prefix_len: {} is longer than the address ({max} bits)",
                c.prefix_len
            ));
        }
        let len = c.prefix_len as u8;
        Ok(CidrRange {
            network: mask(ip, len),
            len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = forwarded::peer_ip(std::net::SocketAddr::new(ip, 0));
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.len) == self.network
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}
