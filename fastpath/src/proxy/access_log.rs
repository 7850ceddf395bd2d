//! The connection's side of the access log: what is kept once a request head is prepared,
//! and the line handed to the writer when the request ends.
use std::cell::OnceCell;
use std::time::Instant;

use super::Conn;
use super::prepare::{Prepared, ReqInfo};
use crate::access_log::{ClusterNames, Entry, Fields, LogType};
use crate::compiled::ListenerView;
use crate::conn_info::ConnInfo;
use crate::http1::Framing;
use crate::local_reply::ResponseFlags;

/// Keeps what the log needs from a prepared request: the head as Envoy's log sees it (for a
/// forwarded request the upstream head `req_out`, which carries meshcore's additions such as
/// a generated `x-request-id`; else the received head), the route name and the cluster.
pub(super) fn stash(
    l: &mut Fields,
    prepared: &Prepared<'_>,
    info: &ReqInfo,
    req_out: &[u8],
    received: &[u8],
) {
    l.ready = true;
    l.minor = Some(info.minor);
    let (head, route) = match prepared {
        Prepared::Forward(plan, _) => {
            l.cluster = Some(plan.cluster);
            (req_out, Some(plan.sel.route_name()))
        }
        Prepared::Local(spec, _) => (received, spec.mutations.map(|(s, _)| s.route_name())),
        Prepared::NoRoute(_) | Prepared::Reject(..) => (received, None),
    };
    if l.needs.req_head {
        l.req_head.extend_from_slice(head);
    }
    if let Some(name) = route {
        l.route_name.push_str(name);
    }
    match info.framing {
        // A body-less request is complete with its head (read in the same instant, to the
        // millisecond): no clock read.
        Framing::None | Framing::Length(0) => l.req_done = Some(l.begun),
        Framing::Length(n) => l.bytes_received = n,
        _ => {}
    }
}

/// Keeps the client address Envoy's log shows when it comes from x-forwarded-for (Envoy's
/// original-IP detection, `proxy/forwarded.rs`): with `use_remote_address`, the entry
/// `xff_num_trusted_hops - 1` from the right when hops are set; without it, the entry
/// `xff_num_trusted_hops` from the right. Its port is 0, as in Envoy. Only when a format
/// reads `%DOWNSTREAM_REMOTE_ADDRESS%` (`Needs::remote`).
pub(super) fn stash_remote(l: &mut Fields, received: &[u8], use_remote_address: bool, hops: u32) {
    let skip = match (use_remote_address, hops) {
        (true, 0) => return,
        (true, h) => h - 1,
        (false, h) => h,
    };
    let mut xff = Vec::new();
    if !crate::access_log::head::HeadIndex::new(received).find("x-forwarded-for", &mut xff) {
        return;
    }
    l.remote = super::forwarded::address_from_xff(std::iter::once(&xff[..]), skip as usize)
        .map(|ip| std::net::SocketAddr::new(ip, 0));
}

impl Conn {
    /// Renders the finished request's lines (if it is to be logged) and queues them.
    pub(super) fn write_access_log(&mut self) {
        let Some(l) = self.record.log.as_deref_mut() else {
            return;
        };
        if !l.ready {
            return;
        }
        l.ready = false;
        let end = Instant::now();
        if l.req_done.is_none() && l.minor.is_some() && self.record.status != 0 && !l.tunneled {
            // The body was read by the time the response was complete.
            l.req_done = Some(end);
        }
        let trace = l.trace;
        let view = self.view.clone();
        let logs = view.hcm.access_log.as_deref();
        let span = view.hcm.tracing.as_deref().zip(trace.filter(|c| c.sampled));
        if logs.is_none() && span.is_none() {
            return;
        }
        let Some(l) = self.record.log.as_deref() else {
            return;
        };
        let entry = self.entry(l, &view, end, LogType::DownstreamEnd);
        if let Some(logs) = logs {
            logs.log(&entry, self.worker.index);
        }
        if let Some((t, ctx)) = span {
            t.report(&entry, &ctx, self.worker.index);
        }
    }

    /// An intermediate line of the request in progress (`DownstreamStart` once it is routed,
    /// `DownstreamTunnelSuccessfullyEstablished`), when `access_log_options` ask for it.
    pub(super) fn flush_access_log(&self, kind: LogType) {
        let view = self.view.clone();
        let (Some(l), Some(logs)) = (self.record.log.as_deref(), view.hcm.access_log.as_deref())
        else {
            return;
        };
        let entry = self.entry(l, &view, Instant::now(), kind);
        logs.log(&entry, self.worker.index);
    }

    /// The line of the current request as it stands (`end`: now).
    fn entry<'a>(
        &'a self,
        l: &'a Fields,
        view: &'a ListenerView,
        end: Instant,
        kind: LogType,
    ) -> Entry<'a> {
        let r = &self.record;
        request_entry(l, view, &self.down.info, (r.status, r.flags), end, kind)
    }
}

/// The line of a request whose log fields are `l`, on the connection `info`, with its
/// `(status, flags)` as they stand (`end`: when the line is written). The final and
/// intermediate lines and the periodic ones (`proxy/periodic.rs`) all come from here.
pub(super) fn request_entry<'a>(
    l: &'a Fields,
    view: &'a ListenerView,
    info: &'a ConnInfo,
    (status, flags): (u16, ResponseFlags),
    end: Instant,
    kind: LogType,
) -> Entry<'a> {
    Entry {
        fields: l,
        kind,
        termination: "",
        transport_failure: "",
        status,
        flags,
        minor: l.minor,
        req_head: &l.req_head,
        route_name: &l.route_name,
        cluster: l
            .cluster
            .and_then(|i| view.clusters.get(i))
            .map(|c| ClusterNames::of(&c.cfg)),
        downstream_remote: info.peer,
        // On a wildcard listener: the address the client connected to, as Envoy logs it.
        downstream_local: info.local,
        connection_id: info.id,
        tls: info.tls.as_deref(),
        end,
        generate_request_id: view.hcm.cfg.generate_request_id,
        generated_id: OnceCell::new(),
        req_index: OnceCell::new(),
    }
}
