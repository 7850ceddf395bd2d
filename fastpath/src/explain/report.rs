//! Builds the explanation: listener, filter chain, connection manager normalisation, HTTP
//! filters, virtual host, routes checked, and the action, each decided by the data path's
//! own code (chain matcher, `RouteTable::select_observed`, `ForwardRoute`, `FilterChain`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_json::{Value, json};

use super::compile::Compiled;
use super::recorder::Recorder;
use super::request::Request;
use super::{Routed, describe};
use crate::compiled::ListenerView;
use crate::config::snapshot::{self, NetworkFilter, UnderscoresAction};
use crate::conn_info::{ConnInfo, TlsInfo};
use crate::filters::FilterRequest;
use crate::filters::local_ratelimit::ConnBuckets;
use crate::listener::MatchInputs;
use crate::proxy::authority::strip_port;
use crate::proxy::path_normalize::{Normalized, PathOptions};
use crate::router::{Action, RequestView};

fn has_hcm(l: &snapshot::Listener) -> bool {
    l.filter_chains
        .iter()
        .chain(&l.default_filter_chain)
        .any(|c| matches!(c.filter, NetworkFilter::HttpConnectionManager(_)))
}

/// The listener: by name, by configured port, else the first with an HTTP connection manager.
fn pick_listener(snap: &snapshot::Snapshot, req: &Request) -> Result<(usize, String), String> {
    let names = || {
        snap.listeners
            .iter()
            .map(|l| format!("{} ({}:{})", l.name, l.address, l.port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = &req.listener {
        return snap
            .listeners
            .iter()
            .position(|l| &l.name == name)
            .map(|i| (i, "--listener".to_string()))
            .ok_or_else(|| {
                format!(
                    "request.listener: no listener named {name:?} (listeners: {})",
                    names()
                )
            });
    }
    if let Some(port) = req.port {
        return snap
            .listeners
            .iter()
            .position(|l| l.port == port)
            .map(|i| (i, "--port".to_string()))
            .ok_or_else(|| {
                format!(
                    "request.port: no listener on port {port} (listeners: {})",
                    names()
                )
            });
    }
    snap.listeners
        .iter()
        .position(has_hcm)
        .map(|i| {
            (
                i,
                "the first listener with an http_connection_manager".to_string(),
            )
        })
        .ok_or_else(|| "the configuration has no HTTP listener".to_string())
}

/// Where the connection arrives: the listener's address (loopback for a wildcard one).
fn local_addr(l: &snapshot::Listener) -> SocketAddr {
    let ip: IpAddr = l.address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let ip = match ip {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, l.port)
}

/// The report so far plus the outcome.
fn finish(
    mut out: serde_json::Map<String, Value>,
    kind: &str,
    status: Option<u16>,
    summary: String,
) -> Value {
    out.insert(
        "outcome".into(),
        json!({"kind": kind, "status": status, "summary": summary}),
    );
    Value::Object(out)
}

pub fn report(
    snap: &snapshot::Snapshot,
    compiled: &Compiled,
    req: &Request,
) -> Result<Value, String> {
    let (li, chosen_by) = pick_listener(snap, req)?;
    let l = &snap.listeners[li];
    let cl = &compiled.listeners[li];
    let mut out = serde_json::Map::new();
    out.insert(
        "listener".into(),
        json!({"index": li, "name": l.name, "address": l.address, "port": l.port, "chosen_by": chosen_by}),
    );

    // The connection, as the listener filters see it.
    let local = local_addr(l);
    let peer = req.source_addr()?;
    let inspector = l.tls_inspector.is_some();
    let mut notes: Vec<String> = Vec::new();
    let mut inputs = MatchInputs::plain(peer, local);
    let tls = req.is_tls();
    if inspector && tls {
        inputs.tls = true;
        inputs.server_name = req.sni.as_deref().map(|s| s.to_ascii_lowercase().into());
        inputs.alpn = req.alpn.iter().map(|p| p.as_bytes().into()).collect();
    } else if tls {
        notes.push(
            "the listener has no tls_inspector: SNI, ALPN and TLS are not detected, so the \
             filter chain is chosen as for a plain connection"
                .into(),
        );
    }
    if peer.port() == 0 {
        notes.push("source port unknown (0): only chains without source_ports match".into());
    }
    out.insert(
        "connection".into(),
        json!({
            "destination": local.to_string(),
            "source": peer.to_string(),
            "tls": inputs.tls,
            "sni": inputs.server_name.as_deref(),
            "alpn": req.alpn,
            "tls_inspector": inspector,
            "notes": notes,
        }),
    );

    // The filter chain: the listener's own matcher.
    let found = cl.matcher.find(&inputs);
    let (view, chain): (&ListenerView, &snapshot::FilterChain) = match found {
        Some(i) => (&cl.chains[i], &l.filter_chains[i]),
        None => match (&cl.default_chain, &l.default_filter_chain) {
            (Some(v), Some(c)) => (v, c),
            _ => {
                out.insert("filter_chain".into(), Value::Null);
                return Ok(finish(
                    out,
                    "no_filter_chain",
                    None,
                    "no filter_chain_match matches the connection and the listener has no \
                     default_filter_chain: the connection is closed (no_filter_chain_match)"
                        .into(),
                ));
            }
        },
    };
    let why = match found {
        Some(_) if describe::chain_match(&chain.filter_chain_match).as_object().is_some_and(|m| m.is_empty()) => {
            "its filter_chain_match is empty: it matches every connection".to_string()
        }
        Some(_) => "every field of its filter_chain_match holds for the connection (the most specific chain wins at each level, in Envoy's order)".to_string(),
        None => "no filter_chain_match matches the connection: the default_filter_chain applies".to_string(),
    };
    let terminal = match &chain.filter {
        NetworkFilter::HttpConnectionManager(_) => "http_connection_manager",
        NetworkFilter::TcpProxy(_) => "tcp_proxy",
    };
    out.insert(
        "filter_chain".into(),
        json!({
            "index": found,
            "default": found.is_none(),
            "name": chain.name,
            "match": describe::chain_match(&chain.filter_chain_match),
            "why": why,
            "terminates_tls": view.tls.is_some(),
            "terminal_filter": terminal,
        }),
    );
    if let NetworkFilter::TcpProxy(t) = &chain.filter {
        let clusters: Vec<_> = t
            .clusters
            .iter()
            .map(|c| json!({"name": c.name, "weight": c.weight}))
            .collect();
        out.insert(
            "tcp_proxy".into(),
            json!({"stat_prefix": t.stat_prefix, "clusters": clusters}),
        );
        return Ok(finish(
            out,
            "tcp_proxy",
            None,
            "the chain's terminal filter is tcp_proxy: bytes are relayed, HTTP routing does not apply".into(),
        ));
    }
    http(out, view, req, peer, local, &inputs)
}

/// The connection manager's part: normalisation, route selection, filters, action.
fn http(
    mut out: serde_json::Map<String, Value>,
    view: &ListenerView,
    req: &Request,
    peer: SocketAddr,
    local: SocketAddr,
    inputs: &MatchInputs,
) -> Result<Value, String> {
    let hcm = &view.hcm;
    let cfg = &hcm.cfg;
    if req.method == "CONNECT" {
        return Err("request.method: CONNECT requests are not explained".into());
    }
    let mut notes: Vec<String> = Vec::new();
    let norm = &cfg.request_normalization;
    let opts = PathOptions::of(norm);
    let normalized;
    let mut path = req.path.as_str();
    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut early: Option<(&str, u16, String)> = None;
    if opts.active() {
        match opts.apply(&req.path) {
            Normalized::Unchanged => {}
            Normalized::Path(p) => {
                normalized = p;
                path = &normalized;
                notes.push(format!("path normalised to {path:?} (normalize_path / merge_slashes / path_with_escaped_slashes_action)"));
            }
            Normalized::Reject => {
                early = Some(("rejected", 400, "path_with_escaped_slashes_action: REJECT_REQUEST rejects the escaped slash in the path".into()));
            }
            Normalized::Redirect(loc) => {
                early = Some((
                    "redirect",
                    307,
                    format!(
                        "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT redirects to {loc:?}"
                    ),
                ));
            }
        }
    }
    if early.is_none()
        && norm.headers_with_underscores_action != UnderscoresAction::Allow
        && headers.iter().any(|(n, _)| n.contains('_'))
    {
        if norm.headers_with_underscores_action == UnderscoresAction::RejectRequest {
            early = Some((
                "rejected",
                400,
                "headers_with_underscores_action: REJECT_REQUEST and a header name has '_'".into(),
            ));
        } else {
            headers.retain(|(n, _)| !n.contains('_'));
            notes.push("headers with '_' in their names are dropped (headers_with_underscores_action: DROP_HEADER)".into());
        }
    }
    let stripped = strip_port(
        &req.authority,
        &req.method,
        cfg.strip_port_mode,
        local.port(),
    );
    if stripped.len() != req.authority.len() {
        notes.push(format!(
            "host port stripped for routing ({:?}): {stripped:?}",
            cfg.strip_port_mode
        ));
    }
    let terminated = view.tls.is_some();
    let scheme = if terminated { "https" } else { "http" };
    if inputs.tls && !terminated {
        notes.push(
            "the connection is TLS but this chain has no transport_socket: the connection \
             manager would read TLS bytes, not a request"
                .into(),
        );
    } else if terminated && !inputs.tls {
        notes
            .push("this chain terminates TLS: a plain-text client would fail the handshake".into());
    }
    out.insert(
        "request".into(),
        json!({
            "method": req.method,
            "authority": req.authority,
            "routed_authority": stripped,
            "path": req.path,
            "routed_path": path,
            "scheme": scheme,
            "headers": headers,
            "connection_manager": cfg.stat_prefix,
            "notes": notes,
        }),
    );
    if let Some((kind, status, why)) = early {
        return Ok(finish(out, kind, Some(status), why));
    }

    let lines: Vec<httparse::Header<'_>> = headers
        .iter()
        .map(|(n, v)| httparse::Header {
            name: n,
            value: v.as_bytes(),
        })
        .collect();
    let rv = RequestView {
        method: &req.method,
        path,
        authority: stripped,
        scheme,
        headers: &lines,
    };
    let routed = Routed {
        path,
        authority: stripped,
        scheme,
    };
    let mut rec = Recorder::default();
    let sel = hcm.routes.select_observed(&rv, &mut rec);

    // Virtual host and the routes checked.
    let vhosts = &cfg.route_config.virtual_hosts;
    match &rec.vhost {
        Some(d) => {
            let vh = &vhosts[d.index];
            let domain = vh
                .domains
                .iter()
                .find(|x| x.eq_ignore_ascii_case(&d.pattern))
                .cloned()
                .unwrap_or_else(|| d.pattern.clone());
            out.insert(
                "virtual_host".into(),
                json!({"index": d.index, "name": vh.name, "domains": vh.domains, "matched_domain": domain, "match_kind": d.kind}),
            );
            let routes: Vec<Value> = rec
                .routes
                .iter()
                .map(|t| {
                    let r = &vh.routes[t.index];
                    let conditions: Vec<Value> = t
                        .conditions
                        .iter()
                        .map(|(c, m)| describe::condition(*c, *m, &r.matcher, req, &routed))
                        .collect();
                    let path_ok = t.conditions.first().is_some_and(|(_, m)| *m);
                    json!({
                        "index": t.index,
                        "name": r.name,
                        "match": describe::path(&r.matcher),
                        "conditions": conditions,
                        "matched": t.matched(),
                        "near_miss": path_ok && !t.matched(),
                    })
                })
                .collect();
            out.insert("routes".into(), json!(routes));
            out.insert(
                "routes_not_checked".into(),
                json!(vh.routes.len() - rec.routes.len()),
            );
            if d.kind == "catch-all"
                && has_port(stripped)
                && let Some(n) = out["request"]["notes"].as_array_mut()
            {
                n.push(json!(format!(
                    "the authority {stripped:?} keeps its port: domains match the host as \
                         sent, port included (strip_any_host_port / strip_matching_host_port \
                         remove it)"
                )));
            }
        }
        None => {
            out.insert("virtual_host".into(), Value::Null);
            out.insert("routes".into(), json!([]));
        }
    }

    // The action, before the filters (they see the picked cluster, as on a worker).
    let indices = sel.map(|s| s.indices());
    let action = sel.map(|s| s.action(&rv));
    let picked = match &action {
        Some(Action::Forward(f)) => Some(f.pick_cluster(req.random.unwrap_or(0))),
        _ => None,
    };
    out.insert(
        "route".into(),
        match (&sel, indices) {
            (Some(s), Some((v, r))) => {
                json!({"index": r, "virtual_host": v, "name": s.route_name()})
            }
            _ => Value::Null,
        },
    );

    // HTTP filters: run once, as on a worker.
    let filters: Vec<Value> = cfg
        .http_filters
        .iter()
        .map(|f| json!({"name": f.name, "type": describe::filter_kind(&f.config)}))
        .collect();
    out.insert("http_filters".into(), json!(filters));
    let mut verdict_reply = None;
    if !hcm.filters.is_empty() {
        let downstream = ConnInfo {
            peer,
            local,
            id: 0,
            tls: inputs.tls.then(|| {
                Box::new(TlsInfo {
                    sni: inputs.server_name.clone(),
                    alpn: inputs.alpn.first().cloned(),
                    terminated: view.tls.is_some(),
                    ..Default::default()
                })
            }),
        };
        let conn = ConnBuckets::default();
        let freq = FilterRequest {
            view: &rv,
            route: indices,
            cluster: picked.map(|p| p.0),
            conn: &conn,
            downstream: &downstream,
        };
        let verdict = hcm.filters.run(&freq, 0);
        let mut caveats: Vec<&str> = Vec::new();
        for f in &cfg.http_filters {
            match describe::filter_kind(&f.config) {
                "fault" => caveats.push("fault: delays and aborts are drawn at random per request; this run drew once"),
                "jwt_authn" => caveats.push("jwt_authn: remote JWKS are only known to a running meshcore (the admin /explain uses them); from the CLI a token signed by a remote key fails"),
                "rbac" => caveats.push("rbac: no client certificate is assumed (authenticated principals do not match)"),
                "local_ratelimit" => caveats.push("local_ratelimit: evaluated with full token buckets"),
                _ => {}
            }
        }
        caveats.dedup();
        let outcome = if verdict.reply.is_some() {
            "reply"
        } else if verdict.delay.is_some() {
            "delay"
        } else {
            "continue"
        };
        out.insert(
            "filters_verdict".into(),
            json!({
                "outcome": outcome,
                "status": verdict.reply.as_ref().map(|r| r.status),
                "details": verdict.details,
                "delay_ms": verdict.delay.map(|d| d.as_millis() as u64),
                "response_flags": format!("{:?}", verdict.flags),
                "caveats": caveats,
            }),
        );
        verdict_reply = verdict
            .reply
            .map(|r| (r.status, verdict.details.to_string()));
    }

    if sel.is_none() {
        let why = if rec.vhost.is_none() {
            format!(
                "no virtual host matches the authority {stripped:?} and there is no '*' virtual host"
            )
        } else {
            "no route of the virtual host matches".to_string()
        };
        if let Some((status, details)) = verdict_reply {
            return Ok(finish(
                out,
                "rejected_by_filter",
                Some(status),
                format!("an HTTP filter answers {status} ({details}) before routing; {why}"),
            ));
        }
        return Ok(finish(
            out,
            "no_route",
            Some(404),
            format!("{why}: 404 (NR)"),
        ));
    }
    let (status, kind, summary) = match action.expect("a selection has an action") {
        Action::Forward(f) => {
            let target = forward_target(cfg, indices.unwrap_or_default());
            let mut a = action_forward(
                f,
                target,
                req,
                &rv,
                peer,
                picked.unwrap_or_default(),
                view,
                cfg,
                path,
            );
            let picked_name = a["picked"]["cluster"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let summary = match (a["weighted"] == json!(true), req.random) {
                (false, _) => format!("forwarded to cluster {picked_name:?}"),
                (true, None) => "forwarded to one of the weighted clusters: a weighted random \
                                 choice per request"
                    .to_string(),
                (true, Some(r)) => format!(
                    "forwarded to one of the weighted clusters (a weighted random choice per \
                     request); with random value {r}: cluster {picked_name:?}"
                ),
            };
            if req.random.is_none() && a["weighted"] == json!(true) {
                a["picked"] = Value::Null;
            }
            out.insert("action".into(), a);
            (None, "forward", summary)
        }
        Action::Redirect { status, location } => {
            out.insert(
                "action".into(),
                json!({"kind": "redirect", "status": status, "location": location}),
            );
            (
                Some(status),
                "redirect",
                format!("redirect {status} to {location}"),
            )
        }
        Action::Direct { status, body } => {
            let body = String::from_utf8_lossy(body);
            out.insert(
                "action".into(),
                json!({"kind": "direct_response", "status": status, "body": body}),
            );
            (
                Some(status),
                "direct_response",
                format!("direct response {status}"),
            )
        }
    };
    if let Some((st, details)) = verdict_reply {
        return Ok(finish(
            out,
            "rejected_by_filter",
            Some(st),
            format!("an HTTP filter answers {st} ({details}) instead"),
        ));
    }
    Ok(finish(out, kind, status, summary))
}

/// The authority ends with `:digits` (not inside an IPv6 literal).
fn has_port(authority: &str) -> bool {
    authority.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (!h.starts_with('[') || h.ends_with(']'))
    })
}

/// The route's forward action in the connection manager's config.
fn forward_target(
    cfg: &snapshot::HttpConnectionManager,
    (v, r): (usize, usize),
) -> Option<&snapshot::ForwardAction> {
    match &cfg.route_config.virtual_hosts.get(v)?.routes.get(r)?.action {
        snapshot::RouteAction::Route(f) => Some(f),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn action_forward(
    f: &crate::router::ForwardRoute,
    cfg: Option<&snapshot::ForwardAction>,
    req: &Request,
    rv: &RequestView<'_>,
    peer: SocketAddr,
    (cluster, choice): (usize, usize),
    view: &ListenerView,
    hcm: &snapshot::HttpConnectionManager,
    path: &str,
) -> Value {
    let name = |i: usize| {
        view.clusters
            .get(i)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let (clusters, weighted) = match cfg.map(|c| &c.target) {
        Some(snapshot::ClusterTarget::WeightedClusters(ws)) => {
            let total: u64 = ws.iter().map(|w| u64::from(w.weight)).sum();
            let list: Vec<Value> = ws
                .iter()
                .map(|w| json!({"name": w.name, "weight": w.weight, "probability": w.weight as f64 / total.max(1) as f64}))
                .collect();
            (list, true)
        }
        _ => (
            vec![json!({"name": name(cluster), "weight": 1, "probability": 1.0})],
            false,
        ),
    };
    let rewritten = f.rewrite_path(path);
    let idle = match f.idle_timeout() {
        Some(None) => json!({"ms": 0, "from": "route idle_timeout (0: disabled)"}),
        Some(Some(d)) => json!({"ms": d.as_millis() as u64, "from": "route idle_timeout"}),
        None => {
            json!({"ms": hcm.stream_timeouts.stream_idle_timeout_ms, "from": "connection manager stream_idle_timeout"})
        }
    };
    let retry = cfg
        .and_then(|c| c.retry_policy.as_ref())
        .map(describe::retry_policy);
    let hash = f.request_hash(rv, peer.ip()).map(|h| format!("{h:#018x}"));
    let mirrors: Vec<Value> = f
        .mirrors()
        .iter()
        .map(|m| json!({"cluster": name(m.cluster), "fraction": f64::from(m.fraction_ppm) / 1e6}))
        .collect();
    json!({
        "kind": "forward",
        "weighted": weighted,
        "clusters": clusters,
        "picked": {"cluster": name(cluster), "choice": choice, "random": req.random},
        "prefix_rewrite": rewritten.as_ref().map(|p| json!({"from": path, "to": p})),
        "upstream_path": rewritten.as_deref().unwrap_or(path),
        "host_rewrite": f.host_rewrite(),
        "timeouts": {
            "route_ms": f.timeout().map_or(0, |d| d.as_millis() as u64),
            "route_from": if f.timeout().is_some() { "route timeout (Envoy's default 15 s when unset)" } else { "route timeout 0: disabled" },
            "idle": idle,
            "request_ms": hcm.stream_timeouts.request_timeout_ms,
            "per_try_ms": cfg.and_then(|c| c.retry_policy.as_ref()).map_or(0, |p| p.per_try_timeout_ms),
        },
        "retry_policy": retry,
        "hash": hash,
        "mirrors": mirrors,
    })
}
