//! One span as a JSON line for the control layer, in Zipkin v2's shape (`traceId`, `id`,
//! `parentId`, `kind`, `name`, `timestamp` and `duration` in µs, `shared`, `tags`) plus the
//! `tracer` it goes to; the exporters turn it into Zipkin JSON or OTLP. Tags are Envoy's
//! standard ones, with its spellings (`http.url`, `upstream_cluster`, `guid:x-request-id`, …).
use std::time::UNIX_EPOCH;

use super::context::{push_hex64, push_trace};
use super::{SpanCtx, Tracer};
use crate::access_log::head::HeadIndex;
use crate::access_log::{Entry, MINOR_HTTP2};
use crate::config::tracing::CustomTagValue;

fn json_str(out: &mut Vec<u8>, raw: &[u8]) {
    let s = String::from_utf8_lossy(raw);
    // Serialising a str cannot fail.
    let _ = serde_json::to_writer(&mut *out, &*s);
}

struct Tags<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Tags<'_> {
    fn tag(&mut self, k: &str, v: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json_str(self.out, k.as_bytes());
        self.out.push(b':');
        json_str(self.out, v);
    }
}

/// Renders the span of the finished request `e` (one line) into `out`.
pub fn render(t: &Tracer, e: &Entry<'_>, c: &SpanCtx, out: &mut Vec<u8>) {
    let cfg = &t.cfg;
    let f = e.fields;
    let head = HeadIndex::new(e.req_head);
    let mut v = Vec::with_capacity(64);
    let header = |name: &str, v: &mut Vec<u8>| {
        v.clear();
        head.find(name, v)
    };
    let (method, path) = {
        let mut parts = head.first_line().split(|&b| b == b' ');
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    };
    let start_us = f
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let duration_us = e.end.saturating_duration_since(f.begun).as_micros() as u64;
    let mut num = itoa::Buffer::new();

    out.extend_from_slice(b"{\"tracer\":");
    out.extend_from_slice(num.format(cfg.tracer).as_bytes());
    out.extend_from_slice(b",\"traceId\":\"");
    push_trace(out, c.trace_hi, c.trace_lo, c.trace128);
    out.extend_from_slice(b"\",\"id\":\"");
    push_hex64(out, c.span);
    out.push(b'"');
    if c.parent != 0 {
        out.extend_from_slice(b",\"parentId\":\"");
        push_hex64(out, c.parent);
        out.push(b'"');
    }
    out.extend_from_slice(if cfg.egress {
        b",\"kind\":\"CLIENT\""
    } else {
        b",\"kind\":\"SERVER\""
    });
    if c.shared {
        out.extend_from_slice(b",\"shared\":true");
    }
    // Envoy names the span after the request's host.
    out.extend_from_slice(b",\"name\":");
    header("host", &mut v);
    json_str(out, &v);
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(num.format(start_us).as_bytes());
    out.extend_from_slice(b",\"duration\":");
    out.extend_from_slice(num.format(duration_us).as_bytes());
    out.extend_from_slice(b",\"tags\":{");
    let mut tags = Tags { out, first: true };
    tags.tag("component", b"proxy");
    tags.tag("node_id", cfg.node_id.as_bytes());
    tags.tag("zone", cfg.zone.as_bytes());
    match &c.rid {
        Some(id) => tags.tag("guid:x-request-id", id),
        None => {
            if header("x-request-id", &mut v) {
                tags.tag("guid:x-request-id", &v);
            }
        }
    }
    // http.url: scheme://host + path (x-envoy-original-path before a rewrite), the path cut
    // to max_path_tag_length.
    let mut url = Vec::with_capacity(96);
    if header("x-forwarded-proto", &mut v) {
        url.extend_from_slice(&v);
    } else {
        url.extend_from_slice(if e.tls.is_some() { b"https" } else { b"http" });
    }
    url.extend_from_slice(b"://");
    header("host", &mut v);
    url.extend_from_slice(&v);
    let p = if header("x-envoy-original-path", &mut v) {
        &v[..]
    } else {
        path
    };
    url.extend_from_slice(&p[..p.len().min(cfg.max_path_tag_length as usize)]);
    tags.tag("http.url", &url);
    tags.tag("http.method", method);
    let protocol: &[u8] = match e.minor {
        Some(MINOR_HTTP2) => b"HTTP/2",
        Some(0) => b"HTTP/1.0",
        _ => b"HTTP/1.1",
    };
    tags.tag("http.protocol", protocol);
    if !header("x-envoy-downstream-service-cluster", &mut v) {
        v.push(b'-');
    }
    tags.tag("downstream_cluster", &v);
    if !header("user-agent", &mut v) {
        v.push(b'-');
    }
    tags.tag("user_agent", &v);
    tags.tag("request_size", num.format(f.bytes_received).as_bytes());
    tags.tag(
        "peer.address",
        e.downstream_remote.ip().to_string().as_bytes(),
    );
    for ct in &cfg.custom_tags {
        match &ct.value {
            CustomTagValue::Literal(s) => tags.tag(&ct.tag, s.as_bytes()),
            CustomTagValue::RequestHeader {
                name,
                default_value,
            } => {
                if header(name, &mut v) {
                    tags.tag(&ct.tag, &v);
                } else if let Some(d) = default_value {
                    tags.tag(&ct.tag, d.as_bytes());
                }
            }
        }
    }
    if let Some(cl) = e.cluster {
        // As Envoy: the cluster's name, and its observability name (`alt_stat_name`).
        tags.tag("upstream_cluster", cl.name.as_bytes());
        tags.tag("upstream_cluster.name", cl.stat.as_bytes());
    }
    tags.tag("http.status_code", num.format(e.status).as_bytes());
    tags.tag("response_flags", e.flags.to_string().as_bytes());
    tags.tag("response_size", num.format(f.bytes_sent).as_bytes());
    if e.status == 0 || e.status >= 500 {
        tags.tag("error", b"true");
    }
    out.extend_from_slice(b"}}\n");
}
