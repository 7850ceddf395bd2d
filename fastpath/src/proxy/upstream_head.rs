//! The upstream request head: the request line (after `prefix_rewrite`), the received header
//! lines kept byte for byte, and Envoy's request decoration (host, x-forwarded-*,
//! x-request-id, x-envoy-*), or the route's header mutations over all of it.
use std::borrow::Cow;
use std::net::SocketAddr;

use super::forwarded::{self, IpText};
use crate::compiled::Hcm;
use crate::http1::write::{push_header, push_kept_lines, request_id};
use crate::http1::{Framing, Kind, RequestHead};
use crate::router::{ForwardRoute, HeaderList, Selection};
use crate::tls::xfcc::Xfcc;

/// The request as routing saw it.
pub struct Routed<'a> {
    /// Authority after port stripping / the HTTP/1.0 default host.
    pub authority: &'a str,
    /// `authority` differs from the received `host` line (absolute-form target, stripped
    /// port, default host): the upstream gets a `host` line with it.
    pub rewrite_host: bool,
    pub peer: SocketAddr,
    /// The request path after normalization (`head.path` when none applied).
    pub path: &'a str,
    /// The `upgrade` value of an upgrade request the route proxies: the upstream gets
    /// `connection: Upgrade` and this `upgrade` line.
    pub upgrade: Option<&'a str>,
    /// The downstream connection is TLS terminated here (`x-forwarded-proto: https`).
    pub tls: bool,
    /// What becomes of `x-forwarded-client-cert`.
    pub xfcc: Xfcc,
}

/// Writes the upstream head for `head` (parsed from `buf`) into `out`.
#[allow(clippy::too_many_arguments)]
pub fn build(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead<'_, '_>,
    hcm: &Hcm,
    routed: &Routed<'_>,
    route: &ForwardRoute,
    sel: &Selection<'_>,
    choice: usize,
) {
    let cfg = &hcm.cfg;
    let headers = head.headers;
    let kinds = &head.kinds[..headers.len()];
    let mut has_xfp = false;
    let mut has_rid = false;
    let mut xff_lines = 0;
    for k in kinds {
        match k {
            Kind::XForwardedProto => has_xfp = true,
            Kind::XRequestId => has_rid = true,
            Kind::XForwardedFor => xff_lines += 1,
            _ => {}
        }
    }
    let xff = || {
        headers
            .iter()
            .zip(kinds)
            .filter(|(_, k)| **k == Kind::XForwardedFor)
            .map(|(h, _)| h.value)
    };
    // Every request is external (see `forwarded`); with use_remote_address it is an edge
    // request.
    let edge = cfg.use_remote_address;
    let peer_ip = forwarded::peer_ip(routed.peer);
    let peer_text = (cfg.use_remote_address && !cfg.skip_xff_append).then(|| IpText::new(peer_ip));
    let append: Option<&[u8]> = peer_text
        .as_ref()
        .map(|t| forwarded::appended_address(t, peer_ip, &hcm.local_address));
    let external = edge.then(|| {
        IpText::new(forwarded::trusted_client(
            xff(),
            cfg.xff_num_trusted_hops,
            peer_ip,
        ))
    });
    // Several x-forwarded-for lines become one, joined by ',' (as Envoy's header map does).
    let rewrite_xff = append.is_some() || xff_lines > 1;
    let rewritten_path = route.rewrite_path(routed.path);
    let set_xfp = !has_xfp || (cfg.use_remote_address && cfg.xff_num_trusted_hops == 0);
    let set_rid =
        cfg.generate_request_id && (!has_rid || (edge && !cfg.preserve_external_request_id));
    let timeout_ms = route.timeout().map(|t| t.as_millis() as u64);
    let host = route
        .host_rewrite()
        .or(routed.rewrite_host.then_some(routed.authority));
    let keep = |k: Kind| match k {
        Kind::Other | Kind::Te | Kind::ContentLength | Kind::Server | Kind::Date => true,
        Kind::XEnvoyUpstreamServiceTime => true,
        Kind::Host => host.is_none(),
        Kind::XForwardedProto => !set_xfp,
        Kind::XForwardedFor => !rewrite_xff,
        Kind::XRequestId => !set_rid,
        Kind::XEnvoyUntrusted => false,
        Kind::XEnvoyEdge => !edge,
        Kind::XEnvoyOriginalPath => !edge && rewritten_path.is_none(),
        Kind::XForwardedClientCert => routed.xfcc.keeps_received(),
        Kind::HopByHop | Kind::Connection | Kind::TransferEncoding | Kind::Expect => false,
    };

    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(rewritten_path.as_deref().unwrap_or(routed.path).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let rid = set_rid.then(request_id);
    let mut ms = itoa::Buffer::new();
    let mut extra: [(&str, &[u8]); 12] = [("", b""); 12];
    let mut n = 0;
    macro_rules! add {
        ($name:expr, $value:expr) => {{
            extra[n] = ($name, $value);
            n += 1;
        }};
    }
    if let Some(h) = host {
        add!("host", h.as_bytes());
    }
    if set_xfp {
        add!(
            "x-forwarded-proto",
            if routed.tls { b"https" } else { b"http" }
        );
    }
    let xfcc_value = match &routed.xfcc {
        Xfcc::Set(v) => Some(v.clone().into_bytes()),
        Xfcc::Append(v) => {
            let mut joined: Vec<u8> = Vec::new();
            for (h, _) in headers
                .iter()
                .zip(kinds)
                .filter(|(_, k)| **k == Kind::XForwardedClientCert)
            {
                joined.extend_from_slice(h.value);
                joined.push(b',');
            }
            joined.extend_from_slice(v.as_bytes());
            Some(joined)
        }
        Xfcc::Keep | Xfcc::Remove => None,
    };
    if let Some(v) = &xfcc_value {
        add!("x-forwarded-client-cert", v);
    }
    if let Some(id) = &rid {
        add!("x-request-id", id);
    }
    if let Some(ext) = &external {
        add!("x-envoy-external-address", ext.as_bytes());
    }
    if rewritten_path.is_some() {
        add!("x-envoy-original-path", routed.path.as_bytes());
    }
    if let Some(t) = timeout_ms {
        add!("x-envoy-expected-rq-timeout-ms", ms.format(t).as_bytes());
    }
    if head.framing == Framing::Chunked {
        add!("transfer-encoding", b"chunked");
    }
    if let Some(u) = routed.upgrade {
        add!("connection", b"Upgrade");
        add!("upgrade", u.as_bytes());
    }
    let extra = &extra[..n];
    // The merged x-forwarded-for value, in parts: the received values, then the appended
    // address, joined by ','.
    let xff_parts = || xff().chain(append);

    if !sel.has_request_mutations(choice) {
        push_kept_lines(out, buf, headers, kinds, keep);
        if rewrite_xff {
            out.extend_from_slice(b"x-forwarded-for: ");
            for (i, part) in xff_parts().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(part);
            }
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra {
            push_header(out, name.as_bytes(), value);
        }
    } else {
        let mut list: HeaderList<'_> = headers
            .iter()
            .zip(kinds)
            .filter(|(_, k)| keep(**k))
            .map(|(h, _)| (Cow::Borrowed(h.name), Cow::Borrowed(h.value)))
            .collect();
        if rewrite_xff {
            let value = xff_parts().collect::<Vec<_>>().join(&b","[..]);
            list.push((Cow::Borrowed("x-forwarded-for"), Cow::Owned(value)));
        }
        list.extend(
            extra
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v))),
        );
        sel.mutate_request_headers(choice, &mut list);
        for (name, value) in &list {
            push_header(out, name.as_bytes(), value);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Drops the header lines named in `names` (lower-case) from the finished head in `out`
/// (HTTP filters' removals, e.g. a JWT not forwarded). A second pass over the head, only for
/// requests whose filters asked for it.
pub fn remove_lines(out: &mut Vec<u8>, names: &[Box<str>]) {
    let Some(first) = memchr::memmem::find(out, b"\r\n") else {
        return;
    };
    let mut kept = Vec::with_capacity(out.len());
    kept.extend_from_slice(&out[..first + 2]);
    let mut at = first + 2;
    while let Some(len) = memchr::memmem::find(&out[at..], b"\r\n") {
        let line = &out[at..at + len + 2];
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let drop = len > 0
            && names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()));
        if !drop {
            kept.extend_from_slice(line);
        }
        at += len + 2;
    }
    kept.extend_from_slice(&out[at..]);
    *out = kept;
}

#[cfg(test)]
mod tests {
    #[test]
    fn remove_lines_drops_only_the_named_headers() {
        let mut head =
            b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\nx-keep: 1\r\n\r\n".to_vec();
        super::remove_lines(&mut head, &["authorization".into()]);
        assert_eq!(head, b"GET / HTTP/1.1\r\nHost: a\r\nx-keep: 1\r\n\r\n");
    }
}
