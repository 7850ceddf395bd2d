//! `envoy.filters.http.local_ratelimit`: a token bucket shared by all workers (lock-free, one
//! atomic word) or one per downstream connection (`local_rate_limit_per_downstream_connection`),
//! `filter_enabled` / `filter_enforced`, the rate-limited reply (429 by default, body
//! `local_rate_limited`, flag RL), `x-ratelimit-*` headers on every response of a request the
//! bucket counted, and Envoy's stats
//! `<stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}`.
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Ctx, FilterReply, FilterRequest, Percent, Verdict, push_line, render_lines};
use crate::config::snapshot;
use crate::local_reply::ResponseFlag;
use crate::stats::{Scope, stat_set};

stat_set! { rate_limit_stats, prefix_codes: None,
    counters {
        Enabled => "enabled",
        Enforced => "enforced",
        RateLimited => "rate_limited",
        Ok => "ok",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}
use rate_limit_stats::Counter;

const BODY: &[u8] = b"local_rate_limited";

/// A token bucket refilled with `per_fill` tokens (up to `max`) at every `interval` since it
/// was created, as Envoy's timer-driven fills; the fills are computed when a token is taken,
/// so no timer runs. State is one `AtomicU64`: the fill count (high 32 bits, wrapping) and
/// the tokens (low 32 bits), updated with compare-and-swap, so every worker shares it.
pub struct TokenBucket {
    max: u32,
    per_fill: u32,
    interval: Duration,
    start: Instant,
    state: AtomicU64,
}

fn pack(fills: u32, tokens: u32) -> u64 {
    (fills as u64) << 32 | tokens as u64
}

fn unpack(s: u64) -> (u32, u32) {
    ((s >> 32) as u32, s as u32)
}

impl TokenBucket {
    /// Starts full.
    pub fn new(max: u32, per_fill: u32, interval: Duration, now: Instant) -> TokenBucket {
        TokenBucket {
            max,
            per_fill,
            interval,
            start: now,
            state: AtomicU64::new(pack(0, max)),
        }
    }

    fn fills(&self, now: Instant) -> u32 {
        let since = now.saturating_duration_since(self.start).as_nanos();
        (since / self.interval.as_nanos().max(1)) as u32
    }

    /// The tokens after the fills due by `now`.
    fn refilled(&self, s: u64, now: Instant) -> (u32, u32) {
        let (done, tokens) = unpack(s);
        let due = self.fills(now);
        let n = due.wrapping_sub(done) as u64;
        let tokens = (tokens as u64 + n.saturating_mul(self.per_fill as u64)).min(self.max as u64);
        (due, tokens as u32)
    }

    /// Takes one token: `Some(remaining)`, or `None` when the bucket is empty.
    pub fn try_take(&self, now: Instant) -> Option<u32> {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (fills, tokens) = self.refilled(cur, now);
            if tokens == 0 {
                return None;
            }
            let next = pack(fills, tokens - 1);
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(tokens - 1),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Tokens left at `now`.
    pub fn remaining(&self, now: Instant) -> u32 {
        self.refilled(self.state.load(Ordering::Relaxed), now).1
    }

    /// Seconds until the next fill, rounded up.
    pub fn reset_seconds(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_nanos();
        let interval = self.interval.as_nanos().max(1);
        (interval - since % interval).div_ceil(1_000_000_000) as u64
    }

    /// Envoy's `x-ratelimit-reset`: 0 while a token is left, else the seconds until the next
    /// one.
    pub fn reset_header(&self, now: Instant, remaining: u32) -> u64 {
        if remaining > 0 {
            0
        } else {
            self.reset_seconds(now)
        }
    }
}

/// The per-connection buckets of one downstream connection
/// (`local_rate_limit_per_downstream_connection`), by rate limit config id; allocated on
/// first use.
#[derive(Default)]
pub struct ConnBuckets(RefCell<Option<Box<BucketList>>>);

/// Config id and bucket.
type BucketList = Vec<(u64, Arc<TokenBucket>)>;

impl ConnBuckets {
    /// This connection's bucket for config `id`, created full from `template` on first use.
    fn get(&self, id: u64, template: &TokenBucket, now: Instant) -> Arc<TokenBucket> {
        let mut slot = self.0.borrow_mut();
        let list = slot.get_or_insert_with(Default::default);
        if let Some((_, b)) = list.iter().find(|(i, _)| *i == id) {
            return b.clone();
        }
        let b = Arc::new(TokenBucket::new(
            template.max,
            template.per_fill,
            template.interval,
            now,
        ));
        list.push((id, b.clone()));
        b
    }
}

/// Unique ids of compiled configs (per-connection buckets are keyed by them, so a reloaded
/// config never shares a connection's old bucket).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compiled `LocalRateLimit` (filter level or one route's override).
pub struct RateLimit {
    bucket: Option<Arc<TokenBucket>>,
    enabled: Percent,
    enforced: Percent,
    response_lines: Box<[u8]>,
    request_lines: Box<[u8]>,
    status: u16,
    x_headers: bool,
    /// `Some(id)`: one bucket per downstream connection, made from `bucket`.
    per_connection: Option<u64>,
    stats: Arc<Scope>,
}

impl RateLimit {
    pub fn compile(
        c: &snapshot::LocalRateLimit,
        ctx: &Ctx<'_>,
        at: &str,
    ) -> Result<RateLimit, String> {
        if c.stat_prefix.is_empty() {
            return Err(format!("{at}.stat_prefix: must not be empty"));
        }
        let bucket = match &c.token_bucket {
            None => None,
            Some(b) => {
                if b.fill_interval_ms < 50 {
                    return Err(format!(
                        "{at}.token_bucket.fill_interval: must be at least 50ms"
                    ));
                }
                Some(Arc::new(TokenBucket::new(
                    b.max_tokens,
                    b.tokens_per_fill,
                    Duration::from_millis(b.fill_interval_ms),
                    Instant::now(),
                )))
            }
        };
        if !(400..600).contains(&c.status) {
            return Err(format!("{at}.status: {} is not in [400, 600)", c.status));
        }
        let prefix = format!("{}.http_local_rate_limit", c.stat_prefix);
        Ok(RateLimit {
            bucket,
            enabled: Percent::compile(&c.filter_enabled, &format!("{at}.filter_enabled"))?,
            enforced: Percent::compile(&c.filter_enforced, &format!("{at}.filter_enforced"))?,
            response_lines: render_lines(
                &c.response_headers_to_add,
                &format!("{at}.response_headers_to_add"),
            )?,
            request_lines: render_lines(
                &c.request_headers_to_add_when_not_enforced,
                &format!("{at}.request_headers_to_add_when_not_enforced"),
            )?,
            status: c.status,
            x_headers: c.enable_x_ratelimit_headers,
            per_connection: c
                .per_downstream_connection
                .then(|| NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            stats: ctx.registry.scope(&prefix, &rate_limit_stats::LAYOUT),
        })
    }

    fn count(&self, w: usize, c: Counter) {
        self.stats.add(w, c as usize, 1);
    }

    /// Envoy's `Filter::decodeHeaders`; true when the request is answered (enforced).
    pub fn on_request(&self, req: &FilterRequest<'_>, w: usize, verdict: &mut Verdict<'_>) -> bool {
        let now = Instant::now();
        let own = match (self.per_connection, &self.bucket) {
            (Some(id), Some(b)) => Some(req.conn.get(id, b, now)),
            _ => None,
        };
        self.decide(
            w,
            verdict,
            own.as_deref(),
            now,
            fastrand::u64(..),
            fastrand::u64(..),
        )
    }

    /// `own`: the connection's bucket (per-connection configs), else the shared one is used.
    fn decide(
        &self,
        w: usize,
        verdict: &mut Verdict<'_>,
        own: Option<&TokenBucket>,
        now: Instant,
        r_enabled: u64,
        r_enforced: u64,
    ) -> bool {
        if !self.enabled.hit(r_enabled) {
            return false;
        }
        self.count(w, Counter::Enabled);
        let Some(bucket) = own.or(self.bucket.as_deref()) else {
            self.count(w, Counter::Ok);
            return false;
        };
        if let Some(left) = bucket.try_take(now) {
            self.count(w, Counter::Ok);
            if self.x_headers {
                // Envoy's encodeHeaders adds them to the response of every counted request.
                x_ratelimit_lines(&mut verdict.response_lines, bucket, left, now);
            }
            return false;
        }
        self.count(w, Counter::RateLimited);
        if !self.enforced.hit(r_enforced) {
            verdict.request_lines.extend_from_slice(&self.request_lines);
            if self.x_headers {
                x_ratelimit_lines(&mut verdict.response_lines, bucket, 0, now);
            }
            return false;
        }
        self.count(w, Counter::Enforced);
        let mut headers = self.response_lines.to_vec();
        if self.x_headers {
            x_ratelimit_lines(&mut headers, bucket, bucket.remaining(now), now);
        }
        verdict.flags.insert(ResponseFlag::RateLimited);
        verdict.reply = Some(FilterReply {
            status: self.status,
            body: BODY,
            headers,
        });
        true
    }
}

/// Envoy's `DRAFT_VERSION_03` headers: the bucket size, the tokens left and
/// `x-ratelimit-reset`.
fn x_ratelimit_lines(out: &mut Vec<u8>, bucket: &TokenBucket, left: u32, now: Instant) {
    let mut n = itoa::Buffer::new();
    push_line(out, "x-ratelimit-limit", n.format(bucket.max).as_bytes());
    push_line(out, "x-ratelimit-remaining", n.format(left).as_bytes());
    let reset = bucket.reset_header(now, left);
    push_line(out, "x-ratelimit-reset", n.format(reset).as_bytes());
}

#[cfg(test)]
pub(super) fn decide_for_test(
    r: &RateLimit,
    verdict: &mut Verdict<'_>,
    now: Instant,
    r_enabled: u64,
    r_enforced: u64,
) -> bool {
    r.decide(0, verdict, None, now, r_enabled, r_enforced)
}
