//! The connection's side of tracing: a prepared request's trace decision and propagation
//! lines (`crate::tracing::propagate`), kept in its record for the span at its end.
use super::prepare::Prepared;
use crate::access_log::Fields;
use crate::compiled::Hcm;
use crate::tracing::Tracer;

/// Decides the trace of a prepared request: a forwarded request's upstream head in `req_out`
/// gets its trace lines; a local reply decides on the `received` head. A sampled request keeps
/// its head for the span's tags.
pub(super) fn begin(
    t: &Tracer,
    l: &mut Fields,
    prepared: &Prepared<'_>,
    req_out: &mut Vec<u8>,
    received: &[u8],
    hcm: &Hcm,
    w: usize,
) {
    let ctx = match prepared {
        Prepared::Forward(..) => t.forward(req_out, w),
        Prepared::Local(..) | Prepared::NoRoute(_) => {
            t.local(received, hcm.cfg.generate_request_id, w)
        }
        Prepared::Reject(..) => return,
    };
    if ctx.sampled {
        l.needs.req_head = true;
    }
    l.trace = Some(ctx);
}
