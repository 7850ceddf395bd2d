//! Unit tests of the sampling decision, the context formats and the head rewrite.
use super::context::{self, Incoming};
use super::decide::{Reason, decide};
use super::*;
use crate::config::tracing::{TraceProvider, Tracing};

fn cfg(provider: TraceProvider, random: u32) -> Tracing {
    Tracing {
        tracer: 0,
        provider,
        random_sampling: random,
        client_sampling: 10_000,
        overall_sampling: 10_000,
        egress: false,
        shared_span_context: true,
        trace_id_128bit: false,
        max_path_tag_length: 256,
        node_id: String::new(),
        zone: String::new(),
        custom_tags: Vec::new(),
        export: Default::default(),
    }
}

fn tracer(c: Tracing) -> Tracer {
    Tracer::compile(&c, &Registry::new(1), "t", "x").unwrap()
}

#[test]
fn the_request_id_carries_the_decision() {
    let c = cfg(TraceProvider::Zipkin, 10_000);
    let mut rid = *b"11111111-2222-4333-8444-555555555555";
    assert_eq!(decide(&c, Some(&mut rid), false), Reason::Sampling);
    assert_eq!(rid[14], b'9');
    // Already sampled upstream: kept even at 0 % random sampling.
    let none = cfg(TraceProvider::Zipkin, 0);
    assert_eq!(decide(&none, Some(&mut rid), false), Reason::Sampling);
    let mut fresh = *b"11111111-2222-4333-8444-555555555555";
    assert_eq!(decide(&none, Some(&mut fresh), false), Reason::NotTraceable);
    assert_eq!(fresh[14], b'4');
    // x-client-trace-id forces it (client_sampling 100 %).
    assert_eq!(decide(&none, Some(&mut fresh), true), Reason::ClientForced);
    assert_eq!(fresh[14], b'b');
    // overall_sampling 0 turns everything off.
    let mut off = cfg(TraceProvider::Zipkin, 10_000);
    off.overall_sampling = 0;
    let mut rid = *b"11111111-2222-9333-8444-555555555555";
    assert_eq!(decide(&off, Some(&mut rid), false), Reason::NotTraceable);
    assert_eq!(rid[14], b'4');
    // Random sampling on the id's first 32 bits mod 10000: 0x00000001 -> 1 < 2.
    let two = cfg(TraceProvider::Zipkin, 2);
    let mut low = *b"00000001-2222-4333-8444-555555555555";
    assert!(decide(&two, Some(&mut low), false).traced());
    let mut high = *b"00000005-2222-4333-8444-555555555555";
    assert!(!decide(&two, Some(&mut high), false).traced());
    assert_eq!(decide(&two, None, false), Reason::NotTraceable);
}

#[test]
fn context_headers_parse_and_reject_garbage() {
    let i =
        context::b3_single(b"463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1-0020000000000001")
            .unwrap();
    assert_eq!(
        i,
        Incoming {
            trace_hi: 0x463ac35c9f6413ad,
            trace_lo: 0x48485a3953bb6124,
            trace128: true,
            span: 0xa2fb4a1d1a96d312,
            parent: 0x0020000000000001,
            sampled: Some(true),
        }
    );
    assert!(context::b3_single(b"0").is_none());
    assert!(context::b3_single(b"xyz-abc").is_none());
    let m = context::b3_multi(
        Some(b"463ac35c9f6413ad"),
        Some(b"a2fb4a1d1a96d312"),
        None,
        None,
    )
    .unwrap();
    assert_eq!((m.trace128, m.sampled, m.parent), (false, None, 0));
    assert!(context::b3_multi(Some(b"463ac35c9f6413ad"), None, None, None).is_none());
    let t =
        context::traceparent(b"00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01").unwrap();
    assert_eq!((t.span, t.sampled), (0xa2fb4a1d1a96d312, Some(true)));
    assert!(
        context::traceparent(b"00-00000000000000000000000000000000-a2fb4a1d1a96d312-01").is_none()
    );
    assert!(
        context::traceparent(b"01-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312").is_none()
    );
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn forwarding_replaces_the_callers_context_with_this_span() {
    let mut c = cfg(TraceProvider::Zipkin, 10_000);
    c.shared_span_context = false;
    let t = tracer(c);
    let mut head = b"GET / HTTP/1.1\r\nhost: a\r\nX-B3-TraceId: 463ac35c9f6413ad\r\nx-b3-spanid: a2fb4a1d1a96d312\r\nx-b3-sampled: 1\r\nx-request-id: 11111111-2222-4333-8444-555555555555\r\n\r\n".to_vec();
    let ctx = t.forward(&mut head, 0);
    let s = String::from_utf8(head).unwrap();
    assert!(s.ends_with("\r\n\r\n"), "{s}");
    assert_eq!(header(&s, "x-b3-traceid"), ["463ac35c9f6413ad"]);
    assert_eq!(header(&s, "x-b3-parentspanid"), ["a2fb4a1d1a96d312"]);
    assert_eq!(
        header(&s, "x-b3-spanid"),
        [format!("{:016x}", ctx.span).as_str()]
    );
    assert_eq!(header(&s, "x-b3-sampled"), ["1"]);
    assert_eq!(
        header(&s, "x-request-id"),
        ["11111111-2222-9333-8444-555555555555"]
    );
    assert_eq!(header(&s, "host"), ["a"]);
    assert!(ctx.sampled && ctx.parent == 0xa2fb4a1d1a96d312 && !ctx.shared);

    // An unsampled caller stays unsampled whatever our decision.
    let t = tracer(cfg(TraceProvider::Opentelemetry, 10_000));
    let mut head = b"GET / HTTP/1.1\r\ntraceparent: 00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-00\r\ntracestate: a=b\r\n\r\n".to_vec();
    let ctx = t.forward(&mut head, 0);
    let s = String::from_utf8(head).unwrap();
    assert!(!ctx.sampled);
    assert_eq!(
        header(&s, "traceparent"),
        [format!("00-463ac35c9f6413ad48485a3953bb6124-{:016x}-00", ctx.span).as_str()]
    );
    assert_eq!(header(&s, "tracestate"), ["a=b"]);
}

#[test]
fn a_local_reply_keeps_a_generated_request_id_with_its_status() {
    let t = tracer(cfg(TraceProvider::Zipkin, 10_000));
    let ctx = t.local(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n", true, 0);
    let rid = ctx.rid.unwrap();
    assert_eq!(rid[14], b'9');
    assert!(ctx.sampled && ctx.shared && ctx.trace_lo == ctx.span && !ctx.trace128);
}

#[test]
fn the_span_buffer_drops_when_full_and_take_empties_it() {
    // Worker slot 63 is not used by any other test.
    assert!(buffer::push(63, |b| b.resize(buffer::CAP, b'x')));
    assert!(!buffer::push(63, |b| b.push(b'y')));
    let taken = buffer::take();
    assert!(taken.len() >= buffer::CAP);
    assert!(buffer::push(63, |b| b.push(b'z')));
    assert!(buffer::take().contains(&b'z'));
}
