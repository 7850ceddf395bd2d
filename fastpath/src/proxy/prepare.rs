//! Request preparation (synchronous, borrowing the read buffer): parse the head, apply the
//! connection manager's version and Host rules, route it, and build the upstream request head
//! into a reused buffer.
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::authority::strip_port;
use super::path_normalize::{Normalized, PathOptions};
use super::stream_duration;
use super::upstream_head::{self, Routed};
use crate::compiled::Hcm;
use crate::config::snapshot::UnderscoresAction;
use crate::conn_info::ConnInfo;
use crate::filters::local_ratelimit::ConnBuckets;
use crate::filters::{FilterRequest, Verdict};
use crate::http1::request::request_line_version;
use crate::http1::{Framing, HeadError, MAX_HEADERS, parse_request};
use crate::router::{Action, RequestView, Selection};
use crate::stats::sets::http1_codec;

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
    pub origin: LocalOrigin,
}

/// Who made a local reply (for its stat and `%RESPONSE_CODE_DETAILS%`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalOrigin {
    /// The route: `direct_response` or `redirect`.
    Route,
    /// The 404 for `OPTIONS *` (`downstream_rq_non_relative_path`).
    NonRelative,
    /// `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT` (`path_normalization_failed`).
    PathRedirect,
    /// An upgrade neither the connection manager nor the route enables: 403 and close
    /// (`upgrade_failed`).
    UpgradeFailed,
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
    /// The request is an upgrade (`websocket`) or a CONNECT this route proxies.
    pub upgrade: bool,
    /// The stream duration limit from the first byte (`stream_duration.rs`; `None`: none).
    pub duration: Option<Duration>,
    /// The request is gRPC (`content-type: application/grpc*`); only looked for when a
    /// duration limit is configured.
    pub grpc: bool,
    /// Where the call's `grpc-status` counts (`grpc_stats` filter, gRPC requests only).
    pub grpc_stats: Option<crate::filters::grpc_stats::GrpcScope>,
    /// Which kind of tunnel the request may become.
    pub tunnel: Tunnel,
}

/// What a request becomes once its tunnel is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// A plain request.
    None,
    /// An HTTP/1.1 upgrade (`websocket`): a tunnel after the upstream's 101.
    Upgrade,
    /// CONNECT forwarded upstream as it is: a tunnel after the upstream's 2xx.
    ConnectForward,
    /// CONNECT terminated here (`connect_config`): 200 once a TCP connection to the cluster
    /// is open, then a tunnel (`proxy/connect.rs`).
    ConnectTerminate,
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
    let mut head = head;
    let norm = &cfg.request_normalization;
    if head.headers.len() > norm.max_headers_count as usize {
        return Prepared::Reject(HeadError::TooManyHeaders, head.minor);
    }
    // Headers with underscores (rare: scanned only when the action is not ALLOW).
    let mut kept: Option<Vec<httparse::Header<'_>>> = None;
    if norm.headers_with_underscores_action != UnderscoresAction::Allow
        && head.headers.iter().any(|h| h.name.contains('_'))
    {
        if norm.headers_with_underscores_action == UnderscoresAction::RejectRequest {
            hcm.codec_stats.inc(
                w,
                http1_codec::Counter::RequestsRejectedWithUnderscoresInHeaders,
            );
            return Prepared::Reject(HeadError::UnderscoreInHeader, head.minor);
        }
        let mut list = Vec::with_capacity(head.headers.len());
        for (i, h) in head.headers.iter().enumerate() {
            if h.name.contains('_') {
                // Dropped from routing and from the upstream head (not a kept line).
                head.kinds[i] = crate::http1::Kind::HopByHop;
                hcm.codec_stats
                    .inc(w, http1_codec::Counter::DroppedHeadersWithUnderscores);
            } else {
                list.push(*h);
            }
        }
        kept = Some(list);
    }
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
                origin: LocalOrigin::NonRelative,
            },
            info,
        );
    }
    let normalized;
    let mut path = head.path;
    let opts = PathOptions::of(norm);
    // A CONNECT has no path to normalize.
    if opts.active() && !head.connect {
        match opts.apply(head.path) {
            Normalized::Unchanged => {}
            Normalized::Path(p) => {
                normalized = p;
                path = &normalized;
            }
            Normalized::Reject => return Prepared::Reject(HeadError::InvalidPath, head.minor),
            Normalized::Redirect(location) => {
                return Prepared::Local(
                    LocalSpec {
                        status: 307,
                        body: Cow::Borrowed(b""),
                        location: Some(location),
                        mutations: None,
                        origin: LocalOrigin::PathRedirect,
                    },
                    info,
                );
            }
        }
    }
    // An upgrade request (`connection: upgrade` + `upgrade: X`); h2c is not one, as Envoy's
    // HTTP/1 codec drops it (the request goes on as a plain one).
    let upgrade = super::upgrade::requested(&head).filter(|u| !u.eq_ignore_ascii_case("h2c"));
    // CONNECT is enabled like an upgrade (`upgrade_type: CONNECT`), but carries no upgrade
    // headers upstream.
    let (upgrade, kind) = if head.connect {
        (None, Some("connect"))
    } else {
        (upgrade, upgrade)
    };
    let stripped = strip_port(authority, head.method, cfg.strip_port_mode, listener_port);
    let tls = down.tls.as_deref().is_some_and(|t| t.terminated);
    let view = RequestView {
        method: head.method,
        path,
        authority: stripped,
        scheme: if tls { "https" } else { "http" },
        headers: kept.as_deref().unwrap_or(head.headers),
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
    if let Some(kind) = kind {
        let enabled = super::upgrade::enabled(&cfg.upgrade_configs, &action, kind);
        if !enabled {
            let info = ReqInfo {
                keep_alive: false,
                ..info
            };
            return Prepared::Local(
                LocalSpec {
                    status: 403,
                    body: Cow::Borrowed(b""),
                    location: None,
                    mutations: None,
                    origin: LocalOrigin::UpgradeFailed,
                },
                info,
            );
        }
    }
    match action {
        Action::Direct { status, body } => Prepared::Local(
            LocalSpec {
                status,
                body: Cow::Borrowed(body),
                location: None,
                mutations: Some((sel, 0)),
                origin: LocalOrigin::Route,
            },
            info,
        ),
        Action::Redirect { status, location } => Prepared::Local(
            LocalSpec {
                status,
                body: Cow::Borrowed(b""),
                location: Some(location),
                mutations: Some((sel, 0)),
                origin: LocalOrigin::Route,
            },
            info,
        ),
        Action::Forward(route) => {
            let (cluster, choice) = cluster.unwrap_or_default();
            let tunnel = match (head.connect, route.connect_terminate()) {
                (false, _) if upgrade.is_some() => Tunnel::Upgrade,
                (false, _) => Tunnel::None,
                (true, false) => Tunnel::ConnectForward,
                (true, true) => Tunnel::ConnectTerminate,
            };
            let routed = Routed {
                authority: stripped,
                rewrite_host: head.authority_from_target
                    || default_host
                    || stripped.len() != authority.len(),
                peer: down.peer,
                // A forwarded CONNECT keeps its authority-form target.
                path: if head.connect { head.authority } else { path },
                upgrade,
                tls,
                xfcc: crate::tls::xfcc::action(
                    cfg.forward_client_cert_details,
                    &cfg.set_current_client_cert_details,
                    down,
                ),
            };
            upstream_head::build(req_out, buf, &head, hcm, &routed, route, &sel, choice);
            if !verdict.remove_request_headers.is_empty() {
                upstream_head::remove_lines(req_out, &verdict.remove_request_headers);
            }
            if !verdict.request_lines.is_empty() && req_out.ends_with(b"\r\n\r\n") {
                // Filter request headers go before the blank line ending the head.
                req_out.truncate(req_out.len() - 2);
                req_out.extend_from_slice(&verdict.request_lines);
                req_out.extend_from_slice(b"\r\n");
            }
            let hcm_duration = Duration::from_millis(cfg.stream_timeouts.max_stream_duration_ms);
            let (duration, grpc) = match route.stream_duration() {
                None if hcm_duration.is_zero() => (None, false),
                configured => {
                    let (grpc_timeout, grpc) = stream_duration::grpc_headers(view.headers);
                    let limit = stream_duration::limit(configured, hcm_duration, grpc_timeout);
                    // Envoy's "new timeouts": the upstream's grpc-timeout says the limit.
                    if configured.is_some() && grpc && (limit.is_some() || !hcm_duration.is_zero())
                    {
                        stream_duration::set_grpc_timeout(req_out, limit);
                    }
                    (limit, grpc)
                }
            };
            let grpc_stats = hcm.grpc_stats.as_deref().and_then(|g| {
                let is_grpc = grpc || stream_duration::grpc_headers(view.headers).1;
                is_grpc.then(|| g.scope(w, cluster, head.path)).flatten()
            });
            Prepared::Forward(
                ForwardPlan {
                    sel,
                    choice,
                    cluster,
                    duration,
                    grpc,
                    grpc_stats,
                    timeout: route.timeout(),
                    route,
                    hash: route.request_hash(&view, down.peer.ip()),
                    upgrade: tunnel != Tunnel::None,
                    tunnel,
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
