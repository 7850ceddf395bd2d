//! `envoy.filters.http.local_ratelimit`: a token bucket shared by all workers (lock-free, one
//! atomic word), `filter_enabled` / `filter_enforced`, the rate-limited reply (429 by default,
//! body `local_rate_limited`, flag RL, `x-ratelimit-*` headers) and Envoy's stats
//! `<stat_prefix>.http_local_rate_limit.{enabled,enforced,rate_limited,ok}`.
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

    /// Whole seconds until the next fill (`x-ratelimit-reset`).
    pub fn reset_seconds(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.start).as_nanos();
        let interval = self.interval.as_nanos().max(1);
        ((interval - since % interval) / 1_000_000_000) as u64
    }
}

/// A compiled `LocalRateLimit` (filter level or one route's override).
pub struct RateLimit {
    bucket: Option<Arc<TokenBucket>>,
    enabled: Percent,
    enforced: Percent,
    response_lines: Box<[u8]>,
    request_lines: Box<[u8]>,
    status: u16,
    x_headers: bool,
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
            stats: ctx.registry.scope(&prefix, &rate_limit_stats::LAYOUT),
        })
    }

    fn count(&self, w: usize, c: Counter) {
        self.stats.add(w, c as usize, 1);
    }

    /// Envoy's `Filter::decodeHeaders`; true when the request is answered (enforced).
    pub fn on_request(
        &self,
        _req: &FilterRequest<'_>,
        w: usize,
        verdict: &mut Verdict<'_>,
    ) -> bool {
        self.decide(
            w,
            verdict,
            Instant::now(),
            fastrand::u64(..),
            fastrand::u64(..),
        )
    }

    fn decide(
        &self,
        w: usize,
        verdict: &mut Verdict<'_>,
        now: Instant,
        r_enabled: u64,
        r_enforced: u64,
    ) -> bool {
        if !self.enabled.hit(r_enabled) {
            return false;
        }
        self.count(w, Counter::Enabled);
        let Some(bucket) = &self.bucket else {
            self.count(w, Counter::Ok);
            return false;
        };
        if bucket.try_take(now).is_some() {
            self.count(w, Counter::Ok);
            return false;
        }
        self.count(w, Counter::RateLimited);
        if !self.enforced.hit(r_enforced) {
            verdict.request_lines.extend_from_slice(&self.request_lines);
            return false;
        }
        self.count(w, Counter::Enforced);
        let mut headers = self.response_lines.to_vec();
        if self.x_headers {
            push_line(
                &mut headers,
                "x-ratelimit-limit",
                bucket.max.to_string().as_bytes(),
            );
            let left = bucket.remaining(now).to_string();
            push_line(&mut headers, "x-ratelimit-remaining", left.as_bytes());
            let reset = bucket.reset_seconds(now).to_string();
            push_line(&mut headers, "x-ratelimit-reset", reset.as_bytes());
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

#[cfg(test)]
pub(super) fn decide_for_test(
    r: &RateLimit,
    verdict: &mut Verdict<'_>,
    now: Instant,
    r_enabled: u64,
    r_enforced: u64,
) -> bool {
    r.decide(0, verdict, now, r_enabled, r_enforced)
}
