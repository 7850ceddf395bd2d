//! Distributed tracing of the HTTP connection manager (`tracing` with Envoy's Zipkin and
//! OpenTelemetry providers): the sampling decision and the propagation headers when a request
//! is prepared (`propagate`), a span rendered on the worker when a sampled request ends
//! (`span`) into a bounded per-worker buffer (`buffer`) that the control layer drains with
//! `Engine.take_spans` and exports. An unsampled request costs its decision and its headers.
pub mod buffer;
pub mod context;
pub mod decide;
pub mod propagate;
pub mod span;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::config::tracing::Tracing;
use crate::stats::{Layout, Registry, Scope};

/// `http.<stat_prefix>.tracing.*`: why requests were (not) traced, as Envoy counts them.
static LAYOUT: Layout = Layout {
    counters: &[
        "client_enabled",
        "health_check",
        "not_traceable",
        "random_sampling",
        "service_forced",
    ],
    gauges: &[],
    histograms: &[],
    globals: &[],
    control_counters: &[],
    status_codes: None,
    order: std::sync::OnceLock::new(),
};

/// `tracing.spans_dropped`: spans lost because the control layer fell behind.
static BUFFER_LAYOUT: Layout = Layout {
    counters: &["spans_dropped"],
    gauges: &[],
    histograms: &[],
    globals: &[],
    control_counters: &[],
    status_codes: None,
    order: std::sync::OnceLock::new(),
};

/// A connection manager's compiled `tracing`.
pub struct Tracer {
    pub cfg: Tracing,
    stats: Arc<Scope>,
    dropped: Arc<Scope>,
}

/// The trace of one request, decided when it is prepared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanCtx {
    /// High 64 bits of the trace id (0 with `trace128` false: a 64-bit trace id).
    pub trace_hi: u64,
    pub trace_lo: u64,
    pub trace128: bool,
    pub span: u64,
    /// 0: a root span.
    pub parent: u64,
    pub sampled: bool,
    /// The span reuses the caller's span id (Zipkin `shared_span_context`).
    pub shared: bool,
    /// The request id of a request that was not forwarded (its head was not rewritten).
    pub rid: Option<[u8; 36]>,
}

impl Tracer {
    /// Errors name `path.tracing...`.
    pub fn compile(
        cfg: &Tracing,
        registry: &Registry,
        stat_prefix: &str,
        path: &str,
    ) -> Result<Tracer, String> {
        for s in [
            cfg.random_sampling,
            cfg.client_sampling,
            cfg.overall_sampling,
        ] {
            if s > 10_000 {
                return Err(format!("{path}.tracing: sampling above 100%"));
            }
        }
        Ok(Tracer {
            cfg: cfg.clone(),
            stats: registry.scope(&format!("http.{stat_prefix}.tracing"), &LAYOUT),
            dropped: registry.scope("tracing", &BUFFER_LAYOUT),
        })
    }

    fn count(&self, reason: decide::Reason, w: usize) {
        let i = match reason {
            decide::Reason::ClientForced => 0,
            decide::Reason::HealthCheck => 1,
            decide::Reason::NotTraceable => 2,
            decide::Reason::Sampling => 3,
            decide::Reason::ServiceForced => 4,
        };
        self.stats.add(w, i, 1);
    }

    /// Queues the span of a finished sampled request (rendered by `span::render`).
    pub fn report(&self, e: &crate::access_log::Entry<'_>, ctx: &SpanCtx, w: usize) {
        if !buffer::push(w, |out| span::render(self, e, ctx, out)) {
            self.dropped.add(w, 0, 1);
        }
    }
}
