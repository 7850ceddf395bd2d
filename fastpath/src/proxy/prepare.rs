//! Request preparation (synchronous, borrowing the read buffer): parse the head, apply the
//! connection manager's version and Host rules, route it, and build the upstream request head
//! into a reused buffer.
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::authority::strip_port;
use super::upstream_head::{self, Routed};
use crate::compiled::Hcm;
use crate::conn_info::ConnInfo;
use crate::filters::local_ratelimit::ConnBuckets;
use crate::filters::{FilterRequest, Verdict};
use crate::http1::request::request_line_version;
use crate::http1::{Framing, HeadError, MAX_HEADERS, parse_request};
use crate::router::{Action, RequestView, Selection};

/// What the connection needs to know about a request after its head is gone from the buffer.
#[derive(Clone, Copy, Debug)]
pub struct ReqInfo {
    pub head_len: usize,
    pub framing: Framing,
    pub keep_alive: bool,
    /// 0 for an accepted HTTP/1.0 request (answered with an `HTTP/1.0` status line).
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
    /// The 404 for `OPTIONS *` (`downstream_rq_non_relative_path`).
    pub non_relative: bool,
}

pub struct ForwardPlan<'v> {
    pub sel: Selection<'v>,
    pub choice: usize,
    pub cluster: usize,
    pub timeout: Option<Duration>,
    /// The route action (retry policy, mirrors).
    pub route: &'v crate::router::ForwardRoute,
    /// The route `hash_policy`'s request hash (RING_HASH, MAGLEV).
    pub hash: Option<u64>,
}

pub enum Prepared<'v> {
    /// Rejected head: 400/426/431/501 (with this HTTP minor version) and close.
    Reject(HeadError, u8),
    NoRoute(ReqInfo),
    Local(LocalSpec<'v>, ReqInfo),
    /// `req_out` holds the upstream head.
    Forward(ForwardPlan<'v>, ReqInfo),
}

/// Parses the head at the start of `buf`, routes it and, for a forwarded request, writes the
/// upstream head into `req_out`. `listener_port` is the port the connection arrived on (for
/// `strip_matching_host_port`). The HTTP filters (if any) run on the routed head, on worker
/// `w`, and leave their decision in `verdict`.
#[allow(clippy::too_many_arguments)]
pub fn prepare<'v>(
    buf: &[u8],
    hcm: &'v Hcm,
    down: &ConnInfo,
    listener_port: u16,
    req_out: &mut Vec<u8>,
    w: usize,
    verdict: &mut Verdict<'v>,
    conn: &ConnBuckets,
) -> Prepared<'v> {
    let cfg = &hcm.cfg;
    let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let head = match parse_request(buf, &mut storage, hcm.max_head) {
        Ok(Some(h)) => h,
        Ok(None) => return Prepared::Reject(HeadError::Malformed("incomplete head"), 1),
        Err(e @ (HeadError::TooLarge | HeadError::TooManyHeaders)) => {
            return Prepared::Reject(e, 1);
        }
        // Envoy checks the version before the rest of the head: an HTTP/1.0 request it does
        // not accept is a 426 whatever else is wrong with it; an accepted one is answered in
        // HTTP/1.0.
        Err(e) => {
            return match (is_http10(buf), cfg.accept_http_10) {
                (true, false) => Prepared::Reject(HeadError::UnsupportedVersion, 1),
                (true, true) => Prepared::Reject(e, 0),
                (false, _) => Prepared::Reject(e, 1),
            };
        }
    };
    let info = ReqInfo {
        head_len: head.head_len,
        framing: head.framing,
        keep_alive: head.keep_alive,
        minor: head.minor,
        is_head: head.method == "HEAD",
        expect_continue: head.expect_continue,
    };
    if head.minor == 0 && !cfg.accept_http_10 {
        return Prepared::Reject(HeadError::UnsupportedVersion, 1);
    }
    let (authority, default_host) = match (&cfg.default_host_for_http_10, head.has_host) {
        (_, true) => (head.authority, false),
        (Some(default), false) => (default.as_str(), true),
        (None, false) => return Prepared::Reject(HeadError::MissingHost, head.minor),
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
    if head.connect {
        return Prepared::NoRoute(info);
    }
    let stripped = strip_port(authority, head.method, cfg.strip_port_mode, listener_port);
    let tls = down.tls.as_deref().is_some_and(|t| t.terminated);
    let view = RequestView {
        method: head.method,
        path: head.path,
        authority: stripped,
        scheme: if tls { "https" } else { "http" },
        headers: head.headers,
    };
    let sel = hcm.routes.select(&view);
    let mut run_filters = |route, cluster| {
        if !hcm.filters.is_empty() {
            let req = FilterRequest {
                view: &view,
                route,
                cluster,
                conn,
                downstream: down,
            };
            *verdict = hcm.filters.run(&req, w);
        }
    };
    let Some(sel) = sel else {
        run_filters(None, None);
        return Prepared::NoRoute(info);
    };
    let action = sel.action(&view);
    let cluster = match &action {
        Action::Forward(route) => Some(route.pick_cluster(fastrand::u64(..))),
        _ => None,
    };
    run_filters(Some(sel.indices()), cluster.map(|c| c.0));
    match action {
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
            let (cluster, choice) = cluster.unwrap_or_default();
            let routed = Routed {
                authority: stripped,
                rewrite_host: head.authority_from_target
                    || default_host
                    || stripped.len() != authority.len(),
                peer: down.peer,
                tls,
                xfcc: crate::tls::xfcc::action(
                    cfg.forward_client_cert_details,
                    &cfg.set_current_client_cert_details,
                    down,
                ),
            };
            upstream_head::build(req_out, buf, &head, hcm, &routed, route, &sel, choice);
            if !verdict.request_lines.is_empty() && req_out.ends_with(b"\r\n\r\n") {
                // Filter request headers go before the blank line ending the head.
                req_out.truncate(req_out.len() - 2);
                req_out.extend_from_slice(&verdict.request_lines);
                req_out.extend_from_slice(b"\r\n");
            }
            Prepared::Forward(
                ForwardPlan {
                    sel,
                    choice,
                    cluster,
                    timeout: route.timeout(),
                    route,
                    hash: route.request_hash(&view, down.peer.ip()),
                },
                info,
            )
        }
    }
}

/// The request line says `HTTP/1.0`.
fn is_http10(buf: &[u8]) -> bool {
    request_line_version(buf).is_some_and(|v| &buf[v] == b"HTTP/1.0")
}
