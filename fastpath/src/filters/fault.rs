//! `envoy.filters.http.fault`: delay and abort faults (fixed or header-controlled), with
//! percentages, header and upstream cluster conditions, `max_active_faults`, and Envoy's
//! stats `http.<prefix>.fault.{delays_injected,aborts_injected,faults_overflow,active_faults}`.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Ctx, FilterReply, FilterRequest, Percent, Verdict, header, parse_u64, push_line};
use crate::config::snapshot;
use crate::local_reply::ResponseFlag;
use crate::router::HeaderMatchers;
use crate::stats::{Scope, stat_set};

stat_set! { fault_stats, prefix_codes: None,
    counters {
        DelaysInjected => "delays_injected",
        AbortsInjected => "aborts_injected",
        FaultsOverflow => "faults_overflow",
    }
    gauges {
        ActiveFaults => "active_faults",
    }
    histograms {}
    globals {}
    control_counters {}
}
use fault_stats::{Counter, Gauge};

const DELAY_HEADER: &str = "x-envoy-fault-delay-request";
const DELAY_PERCENT_HEADER: &str = "x-envoy-fault-delay-request-percentage";
const ABORT_HEADER: &str = "x-envoy-fault-abort-request";
const ABORT_GRPC_HEADER: &str = "x-envoy-fault-abort-grpc-request";
const ABORT_PERCENT_HEADER: &str = "x-envoy-fault-abort-request-percentage";
const ABORT_BODY: &[u8] = b"fault filter abort";

/// State of one fault filter shared by its per-route configs and by all workers: the count
/// of active faults (for `max_active_faults`) and the stats scope.
pub struct Shared {
    active: AtomicU64,
    stats: Arc<Scope>,
}

impl Shared {
    pub fn new(ctx: &Ctx<'_>) -> Arc<Shared> {
        let prefix = format!("http.{}.fault", ctx.hcm_prefix);
        Arc::new(Shared {
            active: AtomicU64::new(0),
            stats: ctx.registry.scope(&prefix, &fault_stats::LAYOUT),
        })
    }
}

/// A fault counted in `active_faults` until the request ends (Envoy's `onDestroy`).
pub struct ActiveFault<'v> {
    shared: &'v Shared,
    w: usize,
}

impl Drop for ActiveFault<'_> {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::Relaxed);
        self.shared
            .stats
            .gauge_add(self.w, Gauge::ActiveFaults as usize, -1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DelayKind {
    Fixed(Duration),
    Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AbortKind {
    Http(u16),
    Grpc(u32),
    Header,
}

/// A compiled `HTTPFault` (filter level or one route's override).
pub struct Fault {
    delay: Option<(DelayKind, Percent)>,
    abort: Option<(AbortKind, Percent)>,
    headers: HeaderMatchers,
    /// `Some(None)`: an unknown cluster, which no request is routed to.
    upstream_cluster: Option<Option<usize>>,
    max_active: Option<u64>,
    shared: Arc<Shared>,
}

/// The status a fault aborts with: HTTP, or gRPC (answered as a gRPC reply when the request
/// is gRPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    Http(u16),
    Grpc(u64),
}

impl Fault {
    pub fn compile(
        c: &snapshot::Fault,
        shared: Arc<Shared>,
        ctx: &Ctx<'_>,
        at: &str,
    ) -> Result<Fault, String> {
        let delay = match &c.delay {
            None => None,
            Some(d) => {
                let p = Percent::compile(&d.percentage, &format!("{at}.delay.percentage"))?;
                let kind = match d.kind {
                    snapshot::FaultDelayKind::FixedMs(ms) => {
                        DelayKind::Fixed(Duration::from_millis(ms))
                    }
                    snapshot::FaultDelayKind::Header => DelayKind::Header,
                };
                Some((kind, p))
            }
        };
        let abort = match &c.abort {
            None => None,
            Some(a) => {
                let p = Percent::compile(&a.percentage, &format!("{at}.abort.percentage"))?;
                let kind = match a.kind {
                    snapshot::FaultAbortKind::HttpStatus(s) => {
                        if !(200..600).contains(&s) {
                            return Err(format!(
                                "{at}.abort.http_status: {s} is not in [200, 600)"
                            ));
                        }
                        AbortKind::Http(s)
                    }
                    snapshot::FaultAbortKind::GrpcStatus(s) => AbortKind::Grpc(s),
                    snapshot::FaultAbortKind::Header => AbortKind::Header,
                };
                Some((kind, p))
            }
        };
        Ok(Fault {
            delay,
            abort,
            headers: HeaderMatchers::compile(&c.headers, at)?,
            upstream_cluster: c
                .upstream_cluster
                .as_deref()
                .map(|n| (ctx.cluster_index)(n)),
            max_active: c.max_active_faults,
            shared,
        })
    }

    /// Envoy's `FaultFilter::decodeHeaders`; true when the chain stops (abort).
    pub fn on_request<'v>(
        &'v self,
        req: &FilterRequest<'_>,
        w: usize,
        verdict: &mut Verdict<'v>,
    ) -> bool {
        if let Some(target) = self.upstream_cluster
            && (target.is_none() || target != req.cluster)
        {
            return false;
        }
        if !self.headers.is_empty() && !self.headers.matches(req.view) {
            return false;
        }
        let mut active = false;
        if let Some(d) = self.delay_duration(req, fastrand::u64(..))
            && self.try_activate(&mut active, w, verdict)
        {
            verdict.delay = Some(d);
            verdict.flags.insert(ResponseFlag::DelayInjected);
            self.count(w, Counter::DelaysInjected);
        }
        if let Some(abort) = self.abort_status(req, fastrand::u64(..))
            && self.try_activate(&mut active, w, verdict)
        {
            verdict.flags.insert(ResponseFlag::FaultInjected);
            verdict.reply = Some(abort_reply(abort, req));
            self.count(w, Counter::AbortsInjected);
            return true;
        }
        false
    }

    fn count(&self, w: usize, c: Counter) {
        self.shared.stats.add(w, c as usize, 1);
    }

    /// Envoy's `tryIncActiveFaults`: one active fault per filter and request, refused (and
    /// counted in `faults_overflow`) at `max_active_faults`.
    fn try_activate<'v>(&'v self, active: &mut bool, w: usize, verdict: &mut Verdict<'v>) -> bool {
        if *active {
            return true;
        }
        let shared = &*self.shared;
        if let Some(max) = self.max_active
            && shared.active.load(Ordering::Relaxed) >= max
        {
            self.count(w, Counter::FaultsOverflow);
            return false;
        }
        shared.active.fetch_add(1, Ordering::Relaxed);
        shared.stats.gauge_add(w, Gauge::ActiveFaults as usize, 1);
        verdict.faults.push(ActiveFault { shared, w });
        *active = true;
        true
    }

    /// The delay to inject, if any: the percentage (capped by the percentage header for a
    /// header delay) selects the request, then the duration must be over 0.
    fn delay_duration(&self, req: &FilterRequest<'_>, random: u64) -> Option<Duration> {
        let (kind, percent) = self.delay?;
        let percent = match kind {
            DelayKind::Header => header_percent(req, DELAY_PERCENT_HEADER, percent),
            DelayKind::Fixed(_) => percent,
        };
        if !percent.hit(random) {
            return None;
        }
        let d = match kind {
            DelayKind::Fixed(d) => d,
            DelayKind::Header => Duration::from_millis(parse_u64(header(req.view, DELAY_HEADER)?)?),
        };
        (!d.is_zero()).then_some(d)
    }

    /// The abort to inject, if any (Envoy's `abortStatus`): an HTTP status header must be in
    /// [200, 600); without one, the gRPC status header is used.
    fn abort_status(&self, req: &FilterRequest<'_>, random: u64) -> Option<Abort> {
        let (kind, percent) = self.abort?;
        let percent = match kind {
            AbortKind::Header => header_percent(req, ABORT_PERCENT_HEADER, percent),
            _ => percent,
        };
        if !percent.hit(random) {
            return None;
        }
        match kind {
            AbortKind::Http(s) => Some(Abort::Http(s)),
            AbortKind::Grpc(s) => Some(Abort::Grpc(s as u64)),
            AbortKind::Header => {
                let http = header(req.view, ABORT_HEADER)
                    .and_then(parse_u64)
                    .filter(|c| (200..600).contains(c));
                match http {
                    Some(c) => Some(Abort::Http(c as u16)),
                    None => header(req.view, ABORT_GRPC_HEADER)
                        .and_then(parse_u64)
                        .map(Abort::Grpc),
                }
            }
        }
    }
}

/// The configured percentage, its numerator capped by the request's percentage header.
fn header_percent(req: &FilterRequest<'_>, name: &str, configured: Percent) -> Percent {
    match header(req.view, name).and_then(parse_u64) {
        Some(n) => configured.capped(n),
        None => configured,
    }
}

/// The local reply for an abort. A gRPC status to a gRPC request is a trailers-only gRPC
/// reply (200, `grpc-status`, `grpc-message`), as Envoy's `sendLocalReply` makes it; to any
/// other request, a 200 with the abort body.
fn abort_reply(abort: Abort, req: &FilterRequest<'_>) -> FilterReply {
    match abort {
        Abort::Http(status) => FilterReply {
            status,
            body: ABORT_BODY,
            headers: Vec::new(),
        },
        Abort::Grpc(code) => {
            let grpc = header(req.view, "content-type")
                .is_some_and(|v| v.starts_with(b"application/grpc"));
            if !grpc {
                return FilterReply {
                    status: 200,
                    body: ABORT_BODY,
                    headers: Vec::new(),
                };
            }
            let mut headers = Vec::new();
            push_line(&mut headers, "content-type", b"application/grpc");
            push_line(&mut headers, "grpc-status", code.to_string().as_bytes());
            push_line(&mut headers, "grpc-message", ABORT_BODY);
            FilterReply {
                status: 200,
                body: b"",
                headers,
            }
        }
    }
}
