//! The sampling decision, Envoy's way: the trace status lives in the `x-request-id` UUID (its
//! 15th character: `9` sampled, `a` forced by the service, `b` forced by the client, `4` not
//! traced), so every proxy a request crosses agrees. A request whose id carries no status is
//! sampled by `x-client-trace-id` (`client_sampling`) or `random_sampling` on the id's first
//! 32 bits mod 10000; `overall_sampling` can then turn any of it off.
use crate::config::tracing::Tracing;

/// Why a request is (not) traced (`http.<prefix>.tracing.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    NotTraceable,
    HealthCheck,
    Sampling,
    ServiceForced,
    ClientForced,
}

impl Reason {
    pub fn traced(self) -> bool {
        matches!(
            self,
            Reason::Sampling | Reason::ServiceForced | Reason::ClientForced
        )
    }
}

const STATUS_AT: usize = 14;

fn status(rid: &[u8]) -> Reason {
    if rid.len() != 36 {
        return Reason::NotTraceable;
    }
    match rid[STATUS_AT] {
        b'9' => Reason::Sampling,
        b'a' => Reason::ServiceForced,
        b'b' => Reason::ClientForced,
        _ => Reason::NotTraceable,
    }
}

fn set_status(rid: &mut [u8], r: Reason) {
    if rid.len() != 36 {
        return;
    }
    rid[STATUS_AT] = match r {
        Reason::Sampling => b'9',
        Reason::ServiceForced => b'a',
        Reason::ClientForced => b'b',
        Reason::NotTraceable | Reason::HealthCheck => b'4',
    };
}

/// The first 8 hex digits of the id (Envoy's `UUIDRequestIDExtension::getInteger`).
fn as_integer(rid: &[u8]) -> Option<u64> {
    let head = rid.get(..8)?;
    let s = std::str::from_utf8(head).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// Decides for a request whose id is `rid` (rewritten in place with the status it gets);
/// `client` is true when it carries `x-client-trace-id`.
pub fn decide(cfg: &Tracing, rid: Option<&mut [u8]>, client: bool) -> Reason {
    let Some(rid) = rid else {
        return Reason::NotTraceable;
    };
    let Some(n) = as_integer(rid) else {
        return status(rid);
    };
    let result = (n % 10_000) as u32;
    if status(rid) == Reason::NotTraceable {
        if client && fastrand::u32(..10_000) < cfg.client_sampling {
            set_status(rid, Reason::ClientForced);
        } else if result < cfg.random_sampling {
            set_status(rid, Reason::Sampling);
        }
    }
    if result >= cfg.overall_sampling {
        set_status(rid, Reason::NotTraceable);
    }
    status(rid)
}
