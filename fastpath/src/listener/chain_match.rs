//! `filter_chain_match` with Envoy's semantics: the chains are indexed in a tree with one
//! level per criterion, in Envoy's order (destination port, destination IP, server name,
//! transport protocol, application protocols, direct source IP, source type, source IP,
//! source port). At each level the most specific entry that matches wins and the others are
//! dropped, so a connection that matches a specific entry but fails a later criterion gets
//! no chain (then `default_filter_chain`), as in Envoy's `FilterChainManagerImpl`.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::config::snapshot::{CidrRange, FilterChainMatch, SourceType};

/// What a connection offers to the matcher, known after the listener filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchInputs {
    /// Where the connection arrived (destination port and IP).
    pub local: SocketAddr,
    /// The peer (source and direct source: meshcore has no PROXY protocol).
    pub peer: SocketAddr,
    /// The ClientHello's SNI, lower-cased (None: none, or no TLS inspector).
    pub server_name: Option<Box<str>>,
    /// The TLS inspector found a ClientHello (`tls`; else `raw_buffer`).
    pub tls: bool,
    /// The offered ALPN protocols, in the client's order.
    pub alpn: Box<[Box<[u8]>]>,
}

impl MatchInputs {
    pub fn plain(peer: SocketAddr, local: SocketAddr) -> MatchInputs {
        MatchInputs {
            local,
            peer,
            server_name: None,
            tls: false,
            alpn: Box::default(),
        }
    }

    fn transport(&self) -> &'static str {
        if self.tls { "tls" } else { "raw_buffer" }
    }

    /// Envoy's `isSameIpOrLoopback`: the peer is a loopback address or the local one.
    fn is_local(&self) -> bool {
        self.peer.ip().is_loopback() || self.peer.ip() == self.local.ip()
    }
}

/// An IP prefix, masked (`10.1.2.3/8` is `10.0.0.0/8`, as Envoy normalises it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses a `CidrRange`; `path` names it in errors.
    pub fn parse(r: &CidrRange, path: &str) -> Result<Cidr, String> {
        let ip: IpAddr = r.address_prefix.parse().map_err(|_| {
            format!(
                "{path}.address_prefix: {:?} is not an IP address",
                r.address_prefix
            )
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if r.prefix_len > max {
            return Err(format!(
                "{path}.prefix_len: {} is longer than the address ({max} bits)",
                r.prefix_len
            ));
        }
        let len = r.prefix_len as u8;
        Ok(Cidr {
            net: mask(ip, len),
            len,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.len) == self.net
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// One IP level: entries by prefix (None: no requirement, i.e. 0.0.0.0/0 and ::/0); the
/// longest matching prefix wins, an explicit prefix before "no requirement" of equal length.
#[derive(Debug)]
struct IpLevel<T>(Vec<(Option<Cidr>, T)>);

impl<T> Default for IpLevel<T> {
    fn default() -> Self {
        IpLevel(Vec::new())
    }
}

impl<T: Default> IpLevel<T> {
    fn entry(&mut self, key: Option<Cidr>) -> &mut T {
        let i = match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.0.push((key, T::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
}

impl<T> IpLevel<T> {
    fn find(&self, ip: IpAddr) -> Option<&T> {
        self.0
            .iter()
            .filter(|(k, _)| k.is_none_or(|c| c.contains(ip)))
            // (prefix length, explicit): the most specific entry is the largest.
            .max_by_key(|(k, _)| k.map_or((0, false), |c| (c.len, true)))
            .map(|(_, t)| t)
    }
}

/// Source ports (0: any) → chain index.
type SourcePorts = HashMap<u16, usize>;
type SourceIps = IpLevel<SourcePorts>;

#[derive(Debug, Default)]
struct SourceTypes {
    any: Option<SourceIps>,
    local: Option<SourceIps>,
    external: Option<SourceIps>,
}

type DirectSourceIps = IpLevel<SourceTypes>;
/// Application protocol ("": any) → next level.
type AppProtocols = HashMap<String, DirectSourceIps>;
/// Transport protocol ("": any) → next level.
type Transports = HashMap<String, AppProtocols>;
/// Server name ("": any; ".example.com" for `*.example.com`) → next level.
type ServerNames = HashMap<String, Transports>;
type DestinationIps = IpLevel<ServerNames>;

/// A listener's compiled `filter_chain_match`es.
#[derive(Debug, Default)]
pub struct ChainMatcher {
    /// Destination port (0: any) → next level.
    ports: HashMap<u16, DestinationIps>,
}

/// A chain's match with its lists parsed (every combination of the listed values is a path
/// through the tree).
struct Parsed<'a> {
    port: u16,
    destination: Vec<Option<Cidr>>,
    server_names: Vec<String>,
    transport: &'a str,
    alpn: Vec<&'a str>,
    direct_source: Vec<Option<Cidr>>,
    source_type: SourceType,
    source: Vec<Option<Cidr>>,
    source_ports: Vec<u16>,
}

fn cidrs(list: &[CidrRange], path: &str) -> Result<Vec<Option<Cidr>>, String> {
    if list.is_empty() {
        return Ok(vec![None]);
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| Cidr::parse(r, &format!("{path}[{i}]")).map(Some))
        .collect()
}

fn or_any<T: Clone>(list: &[T], any: T) -> Vec<T> {
    if list.is_empty() {
        vec![any]
    } else {
        list.to_vec()
    }
}

impl<'a> Parsed<'a> {
    fn new(m: &'a FilterChainMatch, path: &str) -> Result<Parsed<'a>, String> {
        let mut server_names = Vec::with_capacity(m.server_names.len());
        for (i, name) in m.server_names.iter().enumerate() {
            let name = name.to_ascii_lowercase();
            let wildcard = name.strip_prefix('*');
            if name.is_empty()
                || (name.contains('*') && !wildcard.is_some_and(|w| w.starts_with('.')))
            {
                return Err(format!(
                    "{path}.server_names[{i}]: {name:?}: partial wildcards are not supported \
                     (only a leading \"*.\")"
                ));
            }
            server_names.push(wildcard.map_or(name.clone(), str::to_string));
        }
        if !matches!(m.transport_protocol.as_str(), "" | "tls" | "raw_buffer") {
            return Err(format!(
                "{path}.transport_protocol: {:?} is never detected (meshcore's listener filters \
                 detect \"tls\" and \"raw_buffer\")",
                m.transport_protocol
            ));
        }
        Ok(Parsed {
            port: m.destination_port.unwrap_or(0),
            destination: cidrs(&m.prefix_ranges, &format!("{path}.prefix_ranges"))?,
            server_names: or_any(&server_names, String::new()),
            transport: &m.transport_protocol,
            alpn: or_any(
                &m.application_protocols
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                "",
            ),
            direct_source: cidrs(
                &m.direct_source_prefix_ranges,
                &format!("{path}.direct_source_prefix_ranges"),
            )?,
            source_type: m.source_type,
            source: cidrs(
                &m.source_prefix_ranges,
                &format!("{path}.source_prefix_ranges"),
            )?,
            source_ports: or_any(&m.source_ports, 0),
        })
    }
}

impl ChainMatcher {
    /// Indexes `matches` (chain i's match at `paths[i]`); two chains with the same rules, or
    /// rules that overlap (one combination in both), are an error naming the later one, as in
    /// Envoy.
    pub fn compile(matches: &[(&FilterChainMatch, String)]) -> Result<ChainMatcher, String> {
        let mut out = ChainMatcher::default();
        for (i, (m, path)) in matches.iter().enumerate() {
            if let Some(j) = matches[..i].iter().position(|(other, _)| other == m) {
                return Err(format!(
                    "{path}.filter_chain_match: the same matching rules as {}",
                    matches[j].1
                ));
            }
            let p = Parsed::new(m, &format!("{path}.filter_chain_match"))?;
            out.insert(&p, i).map_err(|j| {
                format!(
                    "{path}.filter_chain_match: overlaps the matching rules of {} (a connection \
                     could match both)",
                    matches[j].1
                )
            })?;
        }
        Ok(out)
    }

    /// Adds every combination of `p`'s values for chain `chain`; Err(other chain) on a
    /// combination already taken.
    fn insert(&mut self, p: &Parsed<'_>, chain: usize) -> Result<(), usize> {
        let ips = self.ports.entry(p.port).or_default();
        for &dst in &p.destination {
            let names = ips.entry(dst);
            for name in &p.server_names {
                let apps = names
                    .entry(name.clone())
                    .or_default()
                    .entry(p.transport.to_string())
                    .or_default();
                for alpn in &p.alpn {
                    let direct = apps.entry((*alpn).to_string()).or_default();
                    for &d in &p.direct_source {
                        let types = direct.entry(d);
                        let by_type = match p.source_type {
                            SourceType::Any => &mut types.any,
                            SourceType::SameIpOrLoopback => &mut types.local,
                            SourceType::External => &mut types.external,
                        };
                        let sources = by_type.get_or_insert_with(IpLevel::default);
                        for &s in &p.source {
                            let ports = sources.entry(s);
                            for &port in &p.source_ports {
                                if let Some(&other) = ports.get(&port) {
                                    return Err(other);
                                }
                                ports.insert(port, chain);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The index of the chain for `c` (None: no chain matches; the listener's
    /// `default_filter_chain` applies).
    pub fn find(&self, c: &MatchInputs) -> Option<usize> {
        // A port with chains of its own never falls back to the catch-all port.
        match self.ports.get(&c.local.port()) {
            Some(ips) => find_destination(ips, c),
            None => find_destination(self.ports.get(&0)?, c),
        }
    }

    /// True when no chain is indexed.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

fn find_destination(ips: &DestinationIps, c: &MatchInputs) -> Option<usize> {
    find_server_name(ips.find(c.local.ip())?, c)
}

fn find_server_name(names: &ServerNames, c: &MatchInputs) -> Option<usize> {
    let name = c.server_name.as_deref().unwrap_or("");
    if !name.is_empty() {
        if let Some(t) = names.get(name) {
            return find_transport(t, c);
        }
        // Wildcards, longest suffix first: ".b.example.com", then ".example.com", ".com"
        // (never the whole name, never a lone ".").
        let mut from = 1;
        while let Some(dot) = name.get(from..).and_then(|s| s.find('.')) {
            let at = from + dot;
            if at + 1 >= name.len() {
                break;
            }
            if let Some(t) = names.get(&name[at..]) {
                return find_transport(t, c);
            }
            from = at + 1;
        }
    }
    find_transport(names.get("")?, c)
}

fn find_transport(t: &Transports, c: &MatchInputs) -> Option<usize> {
    let apps = t.get(c.transport()).or_else(|| t.get(""))?;
    // The first offered protocol (in the client's order) that has chains wins.
    let direct = c
        .alpn
        .iter()
        .filter_map(|p| std::str::from_utf8(p).ok())
        .find_map(|p| apps.get(p))
        .or_else(|| apps.get(""))?;
    find_source_type(direct.find(c.peer.ip())?, c)
}

fn find_source_type(types: &SourceTypes, c: &MatchInputs) -> Option<usize> {
    let specific = if types.local.is_some() || types.external.is_some() {
        if c.is_local() {
            types.local.as_ref()
        } else {
            types.external.as_ref()
        }
    } else {
        None
    };
    let sources = specific.or(types.any.as_ref())?;
    let ports = sources.find(c.peer.ip())?;
    ports.get(&c.peer.port()).or_else(|| ports.get(&0)).copied()
}

#[cfg(test)]
mod tests;
