//! The command operators beyond the first set (addresses and ports, the raw cluster name,
//! long response flags, ids, attempt counts, transfer durations, the host and environment,
//! the peer certificate's details), rendered as Envoy 1.40 renders them: ports, ids, counts
//! and durations as JSON numbers, `null` for a missing value.
use std::io::Write;
use std::net::SocketAddr;

use super::fields::{Entry, ms};
use super::format::{HeaderOp, Kind, Needs, addr, num, request_header, text};
use super::time::TimeFormat;
use crate::conn_info::PeerCert;
use crate::local_reply::ResponseFlag;

/// An operator of this module (`format::Op::Ext`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ext {
    /// `%UPSTREAM_CLUSTER_RAW%`: the cluster's `name` (`%UPSTREAM_CLUSTER%` shows its
    /// `alt_stat_name` when it has one).
    UpstreamClusterRaw,
    UpstreamRemoteAddress,
    UpstreamRemoteAddressWithoutPort,
    UpstreamRemotePort,
    UpstreamLocalAddressWithoutPort,
    UpstreamLocalPort,
    DownstreamRemotePort,
    DownstreamLocalAddressWithoutPort,
    DownstreamLocalPort,
    DownstreamDirectRemoteAddress,
    DownstreamDirectRemoteAddressWithoutPort,
    DownstreamDirectRemotePort,
    /// `%REQ_WITHOUT_QUERY(X?Y):Z%`.
    ReqWithoutQuery(HeaderOp),
    ResponseFlagsLong,
    TraceId,
    /// Envoy's stream id: the request's `x-request-id`; a `tcp_proxy` connection's random
    /// UUID (`Fields::stream_id`).
    StreamId,
    /// `%HOSTNAME%` and `%ENVIRONMENT(X):Z%`: read once when the format is compiled.
    Constant(Option<Box<[u8]>>),
    UpstreamRequestAttemptCount,
    RequestTxDuration,
    ResponseTxDuration,
    ConnectionId,
    DownstreamTlsCipher,
    DownstreamLocalUriSan,
    DownstreamPeerDnsSan,
    DownstreamPeerIssuer,
    DownstreamPeerSerial,
    DownstreamPeerFingerprint256,
    DownstreamPeerFingerprint1,
    DownstreamPeerCertVStart(TimeFormat),
    DownstreamPeerCertVEnd(TimeFormat),
}

impl Ext {
    /// Adds what rendering `self` needs kept per request.
    pub fn needs(&self, n: &mut Needs) {
        match self {
            Ext::UpstreamLocalAddressWithoutPort | Ext::UpstreamLocalPort => {
                n.upstream_local = true
            }
            Ext::DownstreamRemotePort => n.remote = true,
            Ext::ReqWithoutQuery(_) => n.req_head = true,
            Ext::StreamId => {
                n.req_head = true;
                n.stream_id = true;
            }
            _ => {}
        }
    }
}

/// `%HOSTNAME%`: the machine's host name (as `gethostname(2)` gives it), read once.
pub fn hostname() -> Ext {
    let name = std::fs::read("/proc/sys/kernel/hostname")
        .ok()
        .map(|b| b.trim_ascii().to_vec())
        .filter(|b| !b.is_empty());
    Ext::Constant(name.map(Into::into))
}

/// `%ENVIRONMENT(X):Z%`: the variable's value when the format is compiled, cut to `Z` bytes.
/// An unset variable is the string `-` (also in JSON, where Envoy 1.40 writes `"-"`, not
/// `null`).
pub fn environment(var: &str, max: Option<usize>) -> Ext {
    let mut b = std::env::var_os(var).map_or_else(|| b"-".to_vec(), |v| v.into_encoded_bytes());
    if let Some(m) = max {
        b.truncate(m);
    }
    Ext::Constant(Some(b.into_boxed_slice()))
}

fn without_port(out: &mut Vec<u8>, a: Option<SocketAddr>) -> Kind {
    match a {
        Some(a) => {
            let _ = write!(out, "{}", a.ip());
            Kind::Str
        }
        None => Kind::Missing,
    }
}

fn port(out: &mut Vec<u8>, a: Option<SocketAddr>) -> Kind {
    match a {
        Some(a) => num(out, u64::from(a.port())),
        None => Kind::Missing,
    }
}

/// Envoy's long flag names, in its order, joined by `,` (`-` when there is none).
fn flags_long(e: &Entry<'_>, out: &mut Vec<u8>) -> Kind {
    if e.flags.is_empty() {
        return text(out, b"-");
    }
    let mut first = true;
    for flag in ResponseFlag::ALL.iter().filter(|f| e.flags.contains(**f)) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(long_name(*flag).as_bytes());
    }
    Kind::Str
}

fn long_name(f: ResponseFlag) -> &'static str {
    match f {
        ResponseFlag::NoRoute => "NoRouteFound",
        ResponseFlag::NoHealthyUpstream => "NoHealthyUpstream",
        ResponseFlag::UpstreamConnectionFailure => "UpstreamConnectionFailure",
        ResponseFlag::UpstreamRequestTimeout => "UpstreamRequestTimeout",
        ResponseFlag::UpstreamConnectionTermination => "UpstreamConnectionTermination",
        ResponseFlag::UpstreamProtocolError => "UpstreamProtocolError",
        ResponseFlag::DownstreamConnectionTermination => "DownstreamConnectionTermination",
        ResponseFlag::DownstreamProtocolError => "DownstreamProtocolError",
        ResponseFlag::UpstreamOverflow => "UpstreamOverflow",
        ResponseFlag::FaultInjected => "FaultInjected",
        ResponseFlag::DelayInjected => "DelayInjected",
        ResponseFlag::RateLimited => "RateLimited",
        ResponseFlag::StreamIdleTimeout => "StreamIdleTimeout",
        ResponseFlag::UpstreamRetryLimitExceeded => "UpstreamRetryLimitExceeded",
        ResponseFlag::NoClusterFound => "NoClusterFound",
    }
}

/// `%REQ_WITHOUT_QUERY(...)%`: `%REQ(...)%` with everything from the first `?` cut, then
/// the length limit.
fn req_without_query(h: &HeaderOp, e: &Entry<'_>, out: &mut Vec<u8>) -> Kind {
    let start = out.len();
    if request_header(&h.unlimited(), e, out) == Kind::Missing {
        return Kind::Missing;
    }
    if let Some(q) = memchr::memchr(b'?', &out[start..]) {
        out.truncate(start + q);
    }
    if let Some(m) = h.max()
        && out.len() - start > m
    {
        out.truncate(start + m);
    }
    Kind::Str
}

fn peer<'a>(e: &Entry<'a>) -> Option<&'a PeerCert> {
    e.tls.and_then(|t| t.peer_cert.as_ref())
}

fn joined(out: &mut Vec<u8>, items: &[String]) -> Kind {
    if items.is_empty() {
        return Kind::Missing;
    }
    text(out, items.join(",").as_bytes())
}

/// Writes `x`'s value for `e` into `out`.
pub(super) fn value(x: &Ext, e: &Entry<'_>, out: &mut Vec<u8>) -> Kind {
    let f = e.fields;
    // The upstream connection's remote address: only once a response came from it or (a
    // `tcp_proxy` connection) it connected — not after a connect failure, where
    // `%UPSTREAM_HOST%` still names the host.
    let connected = f.first_byte.is_some() || f.upstream_local.is_some();
    let upstream_remote = f.upstream_host.filter(|_| connected);
    match x {
        Ext::UpstreamClusterRaw => text(out, e.cluster.map_or("", |c| c.name).as_bytes()),
        Ext::UpstreamRemoteAddress => addr(out, upstream_remote),
        Ext::UpstreamRemoteAddressWithoutPort => without_port(out, upstream_remote),
        Ext::UpstreamRemotePort => port(out, upstream_remote),
        Ext::UpstreamLocalAddressWithoutPort => without_port(out, f.upstream_local),
        Ext::UpstreamLocalPort => port(out, f.upstream_local),
        Ext::DownstreamRemotePort => port(out, Some(f.remote.unwrap_or(e.downstream_remote))),
        Ext::DownstreamLocalAddressWithoutPort => without_port(out, Some(e.downstream_local)),
        Ext::DownstreamLocalPort => port(out, Some(e.downstream_local)),
        Ext::DownstreamDirectRemoteAddress => addr(out, Some(e.downstream_remote)),
        Ext::DownstreamDirectRemoteAddressWithoutPort => {
            without_port(out, Some(e.downstream_remote))
        }
        Ext::DownstreamDirectRemotePort => port(out, Some(e.downstream_remote)),
        Ext::ReqWithoutQuery(h) => req_without_query(h, e, out),
        Ext::ResponseFlagsLong => flags_long(e, out),
        Ext::TraceId => match &f.trace {
            Some(t) if t.trace128 => {
                let _ = write!(out, "{:016x}{:016x}", t.trace_hi, t.trace_lo);
                Kind::Str
            }
            Some(t) => {
                let _ = write!(out, "{:016x}", t.trace_lo);
                Kind::Str
            }
            None => Kind::Missing,
        },
        Ext::StreamId => match &f.stream_id {
            Some(id) => text(out, id),
            None => request_header(&HeaderOp::new("x-request-id"), e, out),
        },
        Ext::Constant(v) => text(out, v.as_deref().unwrap_or(b"")),
        Ext::UpstreamRequestAttemptCount => num(out, u64::from(f.attempts)),
        // From the start to the last byte sent upstream: the request's end, at the latest
        // the first response byte (`-` without an upstream response).
        Ext::RequestTxDuration | Ext::ResponseTxDuration if f.tunneled => Kind::Missing,
        Ext::RequestTxDuration => match f.first_byte {
            Some(first) => {
                let sent = f.req_done.map_or(first, |d| d.min(first));
                num(out, ms(sent.saturating_duration_since(f.begun)))
            }
            None => Kind::Missing,
        },
        // From the first upstream response byte to the end of the response.
        Ext::ResponseTxDuration => match f.first_byte {
            Some(first) => num(out, ms(e.end.saturating_duration_since(first))),
            None => Kind::Missing,
        },
        Ext::ConnectionId => num(out, e.connection_id),
        Ext::DownstreamTlsCipher => match e.tls.and_then(|t| t.cipher) {
            Some(c) => text(out, c.as_bytes()),
            None => Kind::Missing,
        },
        Ext::DownstreamLocalUriSan => match e.tls.filter(|t| t.terminated) {
            Some(t) => joined(out, &t.local_uri_sans),
            None => Kind::Missing,
        },
        Ext::DownstreamPeerDnsSan => match peer(e) {
            Some(p) => joined(out, &p.dns_sans),
            None => Kind::Missing,
        },
        Ext::DownstreamPeerFingerprint256 => match peer(e) {
            Some(p) => text(out, p.sha256_hex.as_bytes()),
            None => Kind::Missing,
        },
        Ext::DownstreamPeerIssuer
        | Ext::DownstreamPeerSerial
        | Ext::DownstreamPeerFingerprint1
        | Ext::DownstreamPeerCertVStart(_)
        | Ext::DownstreamPeerCertVEnd(_) => {
            let Some(d) = peer(e).and_then(|p| p.details()) else {
                return Kind::Missing;
            };
            match x {
                Ext::DownstreamPeerIssuer => text(out, d.issuer.as_bytes()),
                Ext::DownstreamPeerSerial => text(out, d.serial.as_bytes()),
                Ext::DownstreamPeerFingerprint1 => text(out, d.sha1_hex.as_bytes()),
                Ext::DownstreamPeerCertVStart(t) => {
                    t.render(d.not_before, out);
                    Kind::Str
                }
                Ext::DownstreamPeerCertVEnd(t) => {
                    t.render(d.not_after, out);
                    Kind::Str
                }
                _ => Kind::Missing,
            }
        }
    }
}
