//! Request preparation (synchronous, borrowing the read buffer): parse the head, route it,
//! and build the upstream request head into a reused buffer.
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Duration;

use crate::compiled::Hcm;
use crate::config::snapshot::HttpConnectionManager;
use crate::http1::write::{push_header, push_kept_lines, request_id};
use crate::http1::{Framing, HeadError, Kind, MAX_HEADERS, RequestHead, parse_request};
use crate::router::{Action, ForwardRoute, HeaderList, RequestView, Selection};

/// What the connection needs to know about a request after its head is gone from the buffer.
#[derive(Clone, Copy, Debug)]
pub struct ReqInfo {
    pub head_len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
    pub minor: u8,
    pub is_head: bool,
    pub expect_continue: bool,
}

/// A reply the proxy writes itself.
pub struct LocalSpec<'v> {
    pub status: u16,
    pub body: Cow<'v, [u8]>,
    pub location: Option<String>,
    /// Route response header mutations to apply (direct responses and redirects).
    pub mutations: Option<(Selection<'v>, usize)>,
    /// The 404 for a target that is not a path (`downstream_rq_non_relative_path`).
    pub non_relative: bool,
}

pub struct ForwardPlan<'v> {
    pub sel: Selection<'v>,
    pub choice: usize,
    pub cluster: usize,
    pub timeout: Option<Duration>,
}

pub enum Prepared<'v> {
    /// Malformed head: 400/431 and close.
    Reject(HeadError),
    NoRoute(ReqInfo),
    Local(LocalSpec<'v>, ReqInfo),
    /// `req_out` holds the upstream head.
    Forward(ForwardPlan<'v>, ReqInfo),
}

/// Parses the head at the start of `buf`, routes it and, for a forwarded request, writes the
/// upstream head into `req_out`.
pub fn prepare<'v>(
    buf: &[u8],
    hcm: &'v Hcm,
    peer: SocketAddr,
    req_out: &mut Vec<u8>,
) -> Prepared<'v> {
    let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let head = match parse_request(buf, &mut storage, hcm.max_head) {
        Ok(Some(h)) => h,
        Ok(None) => return Prepared::Reject(HeadError::Malformed("incomplete head")),
        Err(e) => return Prepared::Reject(e),
    };
    let info = ReqInfo {
        head_len: head.head_len,
        framing: head.framing,
        keep_alive: head.keep_alive,
        minor: head.minor,
        is_head: head.method == "HEAD",
        expect_continue: head.expect_continue,
    };
    if head.non_relative_path {
        return Prepared::Local(
            LocalSpec {
                status: 404,
                body: Cow::Borrowed(b""),
                location: None,
                mutations: None,
                non_relative: true,
            },
            info,
        );
    }
    let view = RequestView {
        method: head.method,
        path: head.path,
        authority: head.authority,
        scheme: "http",
        headers: head.headers,
    };
    let Some(sel) = hcm.routes.select(&view) else {
        return Prepared::NoRoute(info);
    };
    match sel.action(&view) {
        Action::Direct { status, body } => Prepared::Local(
            LocalSpec {
                status,
                body: Cow::Borrowed(body),
                location: None,
                mutations: Some((sel, 0)),
                non_relative: false,
            },
            info,
        ),
        Action::Redirect { status, location } => Prepared::Local(
            LocalSpec {
                status,
                body: Cow::Borrowed(b""),
                location: Some(location),
                mutations: Some((sel, 0)),
                non_relative: false,
            },
            info,
        ),
        Action::Forward(route) => {
            let (cluster, choice) = route.pick_cluster(fastrand::u64(..));
            build_upstream_head(req_out, buf, &head, &hcm.cfg, route, &sel, choice, peer);
            Prepared::Forward(
                ForwardPlan {
                    sel,
                    choice,
                    cluster,
                    timeout: route.timeout(),
                },
                info,
            )
        }
    }
}

/// Envoy's request decoration, as upstream header lines to add, and which received lines to
/// drop because of it.
struct Decoration<'a> {
    host: Option<&'a str>,
    xfp: bool,
    xff_append: Option<String>,
    request_id: bool,
    timeout_ms: Option<u64>,
}

#[allow(clippy::too_many_arguments)]
fn build_upstream_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead<'_, '_>,
    cfg: &HttpConnectionManager,
    route: &ForwardRoute,
    sel: &Selection<'_>,
    choice: usize,
    peer: SocketAddr,
) {
    let mut has_xfp = false;
    let mut has_rid = false;
    let mut xff: Option<String> = None;
    for (h, k) in head.headers.iter().zip(&head.kinds) {
        match k {
            Kind::XForwardedProto => has_xfp = true,
            Kind::XRequestId => has_rid = true,
            Kind::XForwardedFor if cfg.use_remote_address && !cfg.skip_xff_append => {
                let v = String::from_utf8_lossy(h.value);
                xff = Some(match xff {
                    Some(prev) => format!("{prev}, {v}"),
                    None => v.into_owned(),
                });
            }
            _ => {}
        }
    }
    let external = cfg.use_remote_address;
    let dec = Decoration {
        host: route
            .host_rewrite()
            .or(head.authority_from_target.then_some(head.authority)),
        xfp: !has_xfp || external,
        xff_append: (cfg.use_remote_address && !cfg.skip_xff_append).then(|| match xff {
            Some(prev) => format!("{prev}, {}", peer.ip()),
            None => peer.ip().to_string(),
        }),
        request_id: cfg.generate_request_id
            && (!has_rid || (external && !cfg.preserve_external_request_id)),
        timeout_ms: route.timeout().map(|t| t.as_millis() as u64),
    };
    let keep = |k: Kind| match k {
        Kind::Other | Kind::Te | Kind::ContentLength | Kind::Server | Kind::Date => true,
        Kind::XEnvoyUpstreamServiceTime => true,
        Kind::Host => dec.host.is_none(),
        Kind::XForwardedProto => !dec.xfp,
        Kind::XForwardedFor => dec.xff_append.is_none(),
        Kind::XRequestId => !dec.request_id,
        Kind::XEnvoyExpectedRqTimeoutMs => dec.timeout_ms.is_none(),
        Kind::HopByHop | Kind::Connection | Kind::TransferEncoding | Kind::Expect => false,
    };

    out.clear();
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    match route.rewrite_path(head.path) {
        Some(p) => out.extend_from_slice(p.as_bytes()),
        None => out.extend_from_slice(head.path.as_bytes()),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let rid = dec.request_id.then(request_id);
    let mut ms = itoa::Buffer::new();
    let mut extra: [(&str, &[u8]); 6] = [("", b""); 6];
    let mut n = 0;
    if let Some(h) = dec.host {
        extra[n] = ("host", h.as_bytes());
        n += 1;
    }
    if dec.xfp {
        extra[n] = ("x-forwarded-proto", b"http");
        n += 1;
    }
    if let Some(x) = &dec.xff_append {
        extra[n] = ("x-forwarded-for", x.as_bytes());
        n += 1;
    }
    if let Some(id) = &rid {
        extra[n] = ("x-request-id", id);
        n += 1;
    }
    if let Some(t) = dec.timeout_ms {
        extra[n] = ("x-envoy-expected-rq-timeout-ms", ms.format(t).as_bytes());
        n += 1;
    }
    if head.framing == Framing::Chunked {
        let te = head
            .headers
            .iter()
            .zip(&head.kinds)
            .find(|(_, k)| **k == Kind::TransferEncoding)
            .map_or(&b"chunked"[..], |(h, _)| h.value);
        extra[n] = ("transfer-encoding", te);
        n += 1;
    }
    let extra = &extra[..n];

    if !sel.has_request_mutations(choice) {
        push_kept_lines(out, buf, head.headers, &head.kinds, keep);
        for (name, value) in extra {
            push_header(out, name.as_bytes(), value);
        }
    } else {
        let mut list: HeaderList<'_> = head
            .headers
            .iter()
            .zip(&head.kinds)
            .filter(|(_, k)| keep(**k))
            .map(|(h, _)| (Cow::Borrowed(h.name), Cow::Borrowed(h.value)))
            .collect();
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
