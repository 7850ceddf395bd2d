//! Trace context on the wire: B3 (`x-b3-traceid` / `x-b3-spanid` / `x-b3-parentspanid` /
//! `x-b3-sampled`, or the single `b3` header) for Zipkin, W3C `traceparent` for
//! OpenTelemetry. Hand-written: the formats are a few fixed-width hex fields.

/// A caller's span, as read from its headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    pub trace_hi: u64,
    pub trace_lo: u64,
    pub trace128: bool,
    pub span: u64,
    pub parent: u64,
    /// `None`: the caller left the decision to us.
    pub sampled: Option<bool>,
}

fn hex64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// A 16- or 32-digit trace id: (hi, lo, 128-bit).
fn trace_id(s: &[u8]) -> Option<(u64, u64, bool)> {
    match s.len() {
        32 => Some((hex64(&s[..16])?, hex64(&s[16..])?, true)),
        16 => Some((0, hex64(s)?, false)),
        _ => None,
    }
}

fn b3_sampled(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"true" | b"d" => Some(true),
        b"0" | b"false" => Some(false),
        _ => None,
    }
}

/// The multi-header B3 form (trace and span ids both needed; a bad value: no context).
pub fn b3_multi(
    trace: Option<&[u8]>,
    span: Option<&[u8]>,
    parent: Option<&[u8]>,
    sampled: Option<&[u8]>,
) -> Option<Incoming> {
    let (trace_hi, trace_lo, trace128) = trace_id(trace?)?;
    let span = hex64(span?)?;
    let parent = match parent {
        Some(p) => hex64(p)?,
        None => 0,
    };
    Some(Incoming {
        trace_hi,
        trace_lo,
        trace128,
        span,
        parent,
        sampled: sampled.and_then(b3_sampled),
    })
}

/// The single `b3` header: `{trace}-{span}[-{sampled}[-{parent}]]` (a lone sampling flag
/// carries no context).
pub fn b3_single(v: &[u8]) -> Option<Incoming> {
    let mut parts = v.split(|&b| b == b'-');
    let (trace_hi, trace_lo, trace128) = trace_id(parts.next()?)?;
    let span = hex64(parts.next()?)?;
    let sampled = match parts.next() {
        Some(s) => Some(b3_sampled(s)?),
        None => None,
    };
    let parent = match parts.next() {
        Some(p) => hex64(p)?,
        None => 0,
    };
    Some(Incoming {
        trace_hi,
        trace_lo,
        trace128,
        span,
        parent,
        sampled,
    })
}

/// `traceparent: 00-{32 hex trace}-{16 hex span}-{2 hex flags}` (all-zero ids are invalid).
pub fn traceparent(v: &[u8]) -> Option<Incoming> {
    if v.len() != 55 || &v[..3] != b"00-" || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let (trace_hi, trace_lo, _) = trace_id(&v[3..35])?;
    let span = hex64(&v[36..52])?;
    let flags = u8::from_str_radix(std::str::from_utf8(&v[53..55]).ok()?, 16).ok()?;
    if (trace_hi == 0 && trace_lo == 0) || span == 0 {
        return None;
    }
    Some(Incoming {
        trace_hi,
        trace_lo,
        trace128: true,
        span,
        parent: 0,
        sampled: Some(flags & 1 == 1),
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v` as 16 lower-case hex digits.
pub fn push_hex64(out: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// Appends the trace id: 32 digits when 128-bit, else 16.
pub fn push_trace(out: &mut Vec<u8>, hi: u64, lo: u64, wide: bool) {
    if wide {
        push_hex64(out, hi);
    }
    push_hex64(out, lo);
}
