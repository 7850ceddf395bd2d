//! A request's trace as it is prepared: find the trace lines of its head (`x-request-id`,
//! `x-client-trace-id`, the provider's context headers), decide (`decide`), continue the
//! caller's trace or start one, and for a forwarded request rewrite the upstream head: the
//! request id with its trace status, the caller's context lines replaced by this proxy's
//! span (B3 in the form the caller used, or `traceparent`; `tracestate` passes through).
use std::ops::Range;

use super::context::{self, Incoming};
use super::decide::{self, Reason};
use super::{SpanCtx, Tracer};
use crate::config::tracing::TraceProvider;

/// Context lines removed from the forwarded head (more are rare and stay as they came).
const MAX_DROPPED: usize = 8;

#[derive(Default)]
struct Scan {
    rid: Option<Range<usize>>,
    client: bool,
    b3: [Option<Range<usize>>; 4],
    single: Option<Range<usize>>,
    traceparent: Option<Range<usize>>,
    /// Whole lines (with their CRLF) to drop when forwarding.
    drop: [Range<usize>; MAX_DROPPED],
    dropped: usize,
}

/// Walks the header lines of `head` (a request line, then `name: value` lines).
fn scan(head: &[u8], provider: TraceProvider) -> Scan {
    let mut s = Scan::default();
    let Some(first) = memchr::memmem::find(head, b"\r\n") else {
        return s;
    };
    let mut at = first + 2;
    while let Some(len) = memchr::memmem::find(&head[at..], b"\r\n") {
        if len == 0 {
            break;
        }
        let line = at..at + len;
        let next = at + len + 2;
        let bytes = &head[line.clone()];
        if let Some(colon) = memchr::memchr(b':', bytes) {
            let name = &bytes[..colon];
            let mut vs = line.start + colon + 1;
            while vs < line.end && (head[vs] == b' ' || head[vs] == b'\t') {
                vs += 1;
            }
            let mut ve = line.end;
            while ve > vs && (head[ve - 1] == b' ' || head[ve - 1] == b'\t') {
                ve -= 1;
            }
            let value = vs..ve;
            let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
            let mut context_line = true;
            if is("x-request-id") {
                s.rid = Some(value);
                context_line = false;
            } else if is("x-client-trace-id") {
                s.client = true;
                context_line = false;
            } else if provider == TraceProvider::Zipkin && is("x-b3-traceid") {
                s.b3[0] = Some(value);
            } else if provider == TraceProvider::Zipkin && is("x-b3-spanid") {
                s.b3[1] = Some(value);
            } else if provider == TraceProvider::Zipkin && is("x-b3-parentspanid") {
                s.b3[2] = Some(value);
            } else if provider == TraceProvider::Zipkin && is("x-b3-sampled") {
                s.b3[3] = Some(value);
            } else if provider == TraceProvider::Zipkin && is("x-b3-flags") {
            } else if provider == TraceProvider::Zipkin && is("b3") {
                s.single = Some(value);
            } else if provider == TraceProvider::Opentelemetry && is("traceparent") {
                s.traceparent = Some(value);
            } else {
                context_line = false;
            }
            if context_line && s.dropped < MAX_DROPPED {
                s.drop[s.dropped] = at..next;
                s.dropped += 1;
            }
        }
        at = next;
    }
    s
}

fn incoming(head: &[u8], s: &Scan) -> (Option<Incoming>, bool) {
    let get = |r: &Option<Range<usize>>| r.clone().map(|r| &head[r]);
    if let Some(v) = get(&s.traceparent) {
        return (context::traceparent(v), false);
    }
    if let Some(v) = get(&s.single) {
        return (context::b3_single(v), true);
    }
    let c = context::b3_multi(get(&s.b3[0]), get(&s.b3[1]), get(&s.b3[2]), get(&s.b3[3]));
    (c, false)
}

fn nonzero() -> u64 {
    fastrand::u64(1..)
}

/// This proxy's span: a continuation of `inc` or a new trace.
fn span_for(t: &Tracer, inc: Option<Incoming>, traced: bool) -> SpanCtx {
    let cfg = &t.cfg;
    let zipkin = cfg.provider == TraceProvider::Zipkin;
    let shared = zipkin && !cfg.egress && cfg.shared_span_context;
    match inc {
        Some(i) => SpanCtx {
            trace_hi: i.trace_hi,
            trace_lo: i.trace_lo,
            trace128: i.trace128,
            span: if shared { i.span } else { nonzero() },
            parent: if shared { i.parent } else { i.span },
            sampled: i.sampled.unwrap_or(traced),
            shared,
            rid: None,
        },
        None => {
            let span = nonzero();
            let wide = !zipkin || cfg.trace_id_128bit;
            SpanCtx {
                trace_hi: if wide { nonzero() } else { 0 },
                // Zipkin's root span id is its trace id's low half, as in Envoy.
                trace_lo: if zipkin { span } else { nonzero() },
                trace128: wide,
                span,
                parent: 0,
                sampled: traced,
                shared,
                rid: None,
            }
        }
    }
}

/// Writes this proxy's context lines for `c`.
fn push_context(out: &mut Vec<u8>, provider: TraceProvider, c: &SpanCtx, single: bool) {
    let flag = if c.sampled { b'1' } else { b'0' };
    match provider {
        TraceProvider::Opentelemetry => {
            out.extend_from_slice(b"traceparent: 00-");
            context::push_trace(out, c.trace_hi, c.trace_lo, true);
            out.push(b'-');
            context::push_hex64(out, c.span);
            out.extend_from_slice(b"-0");
            out.push(flag);
            out.extend_from_slice(b"\r\n");
        }
        TraceProvider::Zipkin if single => {
            out.extend_from_slice(b"b3: ");
            context::push_trace(out, c.trace_hi, c.trace_lo, c.trace128);
            out.push(b'-');
            context::push_hex64(out, c.span);
            out.push(b'-');
            out.push(flag);
            if c.parent != 0 {
                out.push(b'-');
                context::push_hex64(out, c.parent);
            }
            out.extend_from_slice(b"\r\n");
        }
        TraceProvider::Zipkin => {
            out.extend_from_slice(b"x-b3-traceid: ");
            context::push_trace(out, c.trace_hi, c.trace_lo, c.trace128);
            out.extend_from_slice(b"\r\nx-b3-spanid: ");
            context::push_hex64(out, c.span);
            if c.parent != 0 {
                out.extend_from_slice(b"\r\nx-b3-parentspanid: ");
                context::push_hex64(out, c.parent);
            }
            out.extend_from_slice(b"\r\nx-b3-sampled: ");
            out.push(flag);
            out.extend_from_slice(b"\r\n");
        }
    }
}

impl Tracer {
    /// A forwarded request: decides on the upstream head in `head` (its `x-request-id` is
    /// final) and rewrites its trace lines.
    pub fn forward(&self, head: &mut Vec<u8>, w: usize) -> SpanCtx {
        let s = scan(head, self.cfg.provider);
        let reason = match s.rid.clone() {
            Some(r) => decide::decide(&self.cfg, Some(&mut head[r]), s.client),
            None => decide::decide(&self.cfg, None, s.client),
        };
        self.count(reason, w);
        let (inc, single) = incoming(head, &s);
        let ctx = span_for(self, inc, reason.traced());
        if !head.ends_with(b"\r\n\r\n") {
            return ctx;
        }
        if s.dropped == 0 {
            head.truncate(head.len() - 2);
            push_context(head, self.cfg.provider, &ctx, single);
            head.extend_from_slice(b"\r\n");
        } else {
            let mut out = Vec::with_capacity(head.len() + 128);
            let mut at = 0;
            for r in &s.drop[..s.dropped] {
                out.extend_from_slice(&head[at..r.start]);
                at = r.end;
            }
            out.extend_from_slice(&head[at..head.len() - 2]);
            push_context(&mut out, self.cfg.provider, &ctx, single);
            out.extend_from_slice(b"\r\n");
            *head = out;
        }
        ctx
    }

    /// A request answered locally (its head as received): decides, keeping the request id
    /// (generated when it has none and `generate` is on) for the span's `guid:x-request-id`.
    pub fn local(&self, head: &[u8], generate: bool, w: usize) -> SpanCtx {
        let s = scan(head, self.cfg.provider);
        let mut rid: Option<[u8; 36]> = match &s.rid {
            Some(r) => head[r.clone()].try_into().ok(),
            None if generate => Some(crate::http1::write::request_id()),
            None => None,
        };
        let reason = match (&mut rid, &s.rid) {
            (Some(id), _) => decide::decide(&self.cfg, Some(&mut id[..]), s.client),
            (None, Some(r)) => {
                decide::decide(&self.cfg, Some(&mut head[r.clone()].to_vec()), s.client)
            }
            (None, None) => Reason::NotTraceable,
        };
        self.count(reason, w);
        let (inc, _) = incoming(head, &s);
        let mut ctx = span_for(self, inc, reason.traced());
        ctx.rid = rid;
        ctx
    }
}
