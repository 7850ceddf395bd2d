//! A compiled `retry_policy`: which attempt outcomes are retried (Envoy's `retry_on`
//! semantics), how many times, the per-try timeout and the jittered exponential back-off.
use std::time::Duration;

use super::string_match::StringMatch;
use crate::config::snapshot;

/// `retry_on` conditions, as bits.
pub mod on {
    pub const FIVE_XX: u16 = 1;
    pub const GATEWAY_ERROR: u16 = 1 << 1;
    pub const RESET: u16 = 1 << 2;
    pub const CONNECT_FAILURE: u16 = 1 << 3;
    pub const RETRIABLE_4XX: u16 = 1 << 4;
    pub const REFUSED_STREAM: u16 = 1 << 5;
    pub const RETRIABLE_STATUS_CODES: u16 = 1 << 6;
    pub const RETRIABLE_HEADERS: u16 = 1 << 7;
    // gRPC codes of a trailers-only response (`grpc-status` in the response head).
    pub const GRPC_CANCELLED: u16 = 1 << 8;
    pub const GRPC_DEADLINE_EXCEEDED: u16 = 1 << 9;
    pub const GRPC_RESOURCE_EXHAUSTED: u16 = 1 << 10;
    pub const GRPC_UNAVAILABLE: u16 = 1 << 11;
    pub const GRPC_INTERNAL: u16 = 1 << 12;
    pub const GRPC_ANY: u16 = GRPC_CANCELLED
        | GRPC_DEADLINE_EXCEEDED
        | GRPC_RESOURCE_EXHAUSTED
        | GRPC_UNAVAILABLE
        | GRPC_INTERNAL;
}

/// The `retry_on` bit of a gRPC status code, if `retry_on` can name it.
fn grpc_bit(status: &[u8]) -> u16 {
    match status.trim_ascii() {
        b"1" => on::GRPC_CANCELLED,
        b"4" => on::GRPC_DEADLINE_EXCEEDED,
        b"8" => on::GRPC_RESOURCE_EXHAUSTED,
        b"13" => on::GRPC_INTERNAL,
        b"14" => on::GRPC_UNAVAILABLE,
        _ => 0,
    }
}

/// How one upstream attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The connection could not be made (or timed out connecting).
    ConnectFailure,
    /// The upstream closed or reset before a complete response head (or the request could
    /// not be written).
    Reset,
    /// The per-try timeout fired before the response head.
    PerTryTimeout,
    /// A response head with this status.
    Response(u16),
}

/// A response header matcher for `retriable_headers` (Envoy `HeaderMatcher`, name plus
/// present / string / range rule, optionally inverted).
#[derive(Debug)]
struct RespHeaderMatch {
    name: Box<str>,
    rule: Rule,
    invert: bool,
}

#[derive(Debug)]
enum Rule {
    Present(bool),
    String(StringMatch),
    Range(i64, i64),
}

impl RespHeaderMatch {
    fn matches(&self, headers: &[httparse::Header<'_>]) -> bool {
        let mut present = false;
        let mut any = false;
        for h in headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(&self.name))
        {
            present = true;
            any |= match &self.rule {
                Rule::Present(p) => *p,
                Rule::String(m) => m.matches(h.value),
                Rule::Range(s, e) => std::str::from_utf8(h.value.trim_ascii())
                    .ok()
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| (*s..*e).contains(&v)),
            };
        }
        if !present {
            return matches!(self.rule, Rule::Present(p) if p == self.invert);
        }
        any != self.invert
    }
}

#[derive(Debug)]
pub struct RetryPolicy {
    pub on: u16,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    /// `per_try_idle_timeout`: an attempt whose upstream is silent this long is abandoned.
    pub per_try_idle_timeout: Option<Duration>,
    base_ms: u64,
    max_ms: u64,
    codes: Box<[u16]>,
    headers: Box<[RespHeaderMatch]>,
    pub previous_hosts: bool,
    pub host_selection_max_attempts: u32,
    /// Largest request body kept for a retry (`None`: the listener's buffer limit).
    pub buffer_limit: Option<u32>,
}

impl RetryPolicy {
    /// `at` names the `retry_policy` field in errors.
    pub fn compile(cfg: &snapshot::RetryPolicy, at: &str) -> Result<RetryPolicy, String> {
        let mut bits = 0;
        for (i, name) in cfg.retry_on.iter().enumerate() {
            bits |= match name.trim() {
                "5xx" => on::FIVE_XX,
                "gateway-error" => on::GATEWAY_ERROR,
                "reset" => on::RESET,
                "connect-failure" => on::CONNECT_FAILURE,
                "retriable-4xx" => on::RETRIABLE_4XX,
                "refused-stream" => on::REFUSED_STREAM,
                "retriable-status-codes" => on::RETRIABLE_STATUS_CODES,
                "retriable-headers" => on::RETRIABLE_HEADERS,
                "cancelled" => on::GRPC_CANCELLED,
                "deadline-exceeded" => on::GRPC_DEADLINE_EXCEEDED,
                "resource-exhausted" => on::GRPC_RESOURCE_EXHAUSTED,
                "unavailable" => on::GRPC_UNAVAILABLE,
                "internal" => on::GRPC_INTERNAL,
                other => return Err(format!("{at}.retry_on[{i}]: {other:?} is not supported")),
            };
        }
        if cfg.base_interval_ms == 0 {
            return Err(format!(
                "{at}.retry_back_off.base_interval: must be at least 1ms"
            ));
        }
        let max_ms = cfg.max_interval_ms.unwrap_or(cfg.base_interval_ms * 10);
        if max_ms < cfg.base_interval_ms {
            return Err(format!(
                "{at}.retry_back_off.max_interval: must not be less than base_interval"
            ));
        }
        let mut headers = Vec::new();
        for (i, h) in cfg.retriable_headers.iter().enumerate() {
            let hat = format!("{at}.retriable_headers[{i}]");
            let rule = match &h.rule {
                snapshot::HeaderRule::Present(p) => Rule::Present(*p),
                snapshot::HeaderRule::String(m) => {
                    Rule::String(StringMatch::compile(m, &format!("{hat}.string_match"))?)
                }
                snapshot::HeaderRule::Range { start, end } => Rule::Range(*start, *end),
            };
            headers.push(RespHeaderMatch {
                name: h.name.to_ascii_lowercase().into(),
                rule,
                invert: h.invert,
            });
        }
        Ok(RetryPolicy {
            on: bits,
            num_retries: cfg.num_retries,
            per_try_timeout: (cfg.per_try_timeout_ms > 0)
                .then(|| Duration::from_millis(cfg.per_try_timeout_ms)),
            per_try_idle_timeout: (cfg.per_try_idle_timeout_ms > 0)
                .then(|| Duration::from_millis(cfg.per_try_idle_timeout_ms)),
            base_ms: cfg.base_interval_ms,
            max_ms,
            codes: cfg.retriable_status_codes.clone().into(),
            headers: headers.into(),
            previous_hosts: cfg.previous_hosts,
            host_selection_max_attempts: cfg.host_selection_retry_max_attempts,
            buffer_limit: cfg.per_request_buffer_limit_bytes,
        })
    }

    /// Whether Envoy's `retry_on` retries this outcome (ignoring the retry budget).
    /// `headers` are the response's headers (for `retriable-headers`).
    pub fn retriable(&self, outcome: Outcome, headers: &[httparse::Header<'_>]) -> bool {
        let on = self.on;
        match outcome {
            // Envoy's `wouldRetryFromReset`: 5xx, gateway-error and reset cover every reset
            // and connect failure; connect-failure only the latter.
            Outcome::ConnectFailure => {
                on & (on::FIVE_XX | on::GATEWAY_ERROR | on::RESET | on::CONNECT_FAILURE) != 0
            }
            Outcome::Reset | Outcome::PerTryTimeout => {
                on & (on::FIVE_XX | on::GATEWAY_ERROR | on::RESET) != 0
            }
            Outcome::Response(code) => {
                (on & on::FIVE_XX != 0 && code >= 500)
                    || (on & on::GATEWAY_ERROR != 0 && matches!(code, 502..=504))
                    || (on & on::RETRIABLE_4XX != 0 && code == 409)
                    || (on & on::RETRIABLE_STATUS_CODES != 0 && self.codes.contains(&code))
                    || (on & on::RETRIABLE_HEADERS != 0
                        && self.headers.iter().any(|m| m.matches(headers)))
                    || (on & on::GRPC_ANY != 0
                        && headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case("grpc-status")
                                && on & grpc_bit(h.value) != 0
                        }))
            }
        }
    }

    /// A fresh back-off for one request.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            base_ms: self.base_ms,
            max_ms: self.max_ms,
            step: 1,
        }
    }
}

/// Envoy's `JitteredExponentialBackOffStrategy`: the n-th wait is uniformly random in
/// `[0, (2^n - 1) × base)`, capped at `max`.
#[derive(Debug)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    step: u32,
}

impl Backoff {
    /// The next wait; `rand` is a uniformly random u64.
    pub fn next(&mut self, rand: u64) -> Duration {
        let multiplier = (1u64 << self.step.min(62)) - 1;
        let ceiling = multiplier.saturating_mul(self.base_ms);
        if ceiling <= self.max_ms {
            self.step += 1;
        }
        Duration::from_millis((rand % ceiling.max(1)).min(self.max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_of_a_trailers_only_response() {
        let p = policy(&["unavailable", "cancelled"]);
        let h = |v: &'static [u8]| {
            [httparse::Header {
                name: "grpc-status",
                value: v,
            }]
        };
        assert!(p.retriable(Outcome::Response(200), &h(b"14")));
        assert!(p.retriable(Outcome::Response(200), &h(b"1")));
        assert!(!p.retriable(Outcome::Response(200), &h(b"13")));
        assert!(!p.retriable(Outcome::Response(200), &h(b"0")));
        assert!(!p.retriable(Outcome::Response(200), &[]));
        assert!(!p.retriable(Outcome::Reset, &[]));
        assert!(policy(&["internal"]).retriable(Outcome::Response(200), &h(b"13")));
    }

    fn policy(retry_on: &[&str]) -> RetryPolicy {
        let cfg = snapshot::RetryPolicy {
            retry_on: retry_on.iter().map(|s| s.to_string()).collect(),
            num_retries: 1,
            per_try_timeout_ms: 0,
            per_try_idle_timeout_ms: 0,
            base_interval_ms: 25,
            max_interval_ms: None,
            retriable_status_codes: vec![418],
            retriable_headers: vec![snapshot::HeaderMatcher {
                name: "X-Retry".into(),
                rule: snapshot::HeaderRule::String(snapshot::StringMatcher {
                    pattern: snapshot::StringPattern::Exact("yes".into()),
                    ignore_case: false,
                }),
                invert: false,
                treat_missing_header_as_empty: false,
            }],
            previous_hosts: false,
            host_selection_retry_max_attempts: 0,
            per_request_buffer_limit_bytes: None,
        };
        RetryPolicy::compile(&cfg, "r").unwrap()
    }

    const NONE: &[httparse::Header<'static>] = &[];

    #[test]
    fn five_xx_covers_every_5xx_and_resets() {
        let p = policy(&["5xx"]);
        for code in [500, 501, 503, 504, 599] {
            assert!(p.retriable(Outcome::Response(code), NONE), "{code}");
        }
        assert!(!p.retriable(Outcome::Response(404), NONE));
        assert!(!p.retriable(Outcome::Response(200), NONE));
        assert!(p.retriable(Outcome::Reset, NONE));
        assert!(p.retriable(Outcome::ConnectFailure, NONE));
        assert!(p.retriable(Outcome::PerTryTimeout, NONE));
    }

    #[test]
    fn gateway_error_only_502_to_504() {
        let p = policy(&["gateway-error"]);
        assert!(!p.retriable(Outcome::Response(500), NONE));
        for code in [502, 503, 504] {
            assert!(p.retriable(Outcome::Response(code), NONE));
        }
        assert!(p.retriable(Outcome::Reset, NONE));
    }

    #[test]
    fn connect_failure_is_only_connect_failures() {
        let p = policy(&["connect-failure"]);
        assert!(p.retriable(Outcome::ConnectFailure, NONE));
        assert!(!p.retriable(Outcome::Reset, NONE));
        assert!(!p.retriable(Outcome::PerTryTimeout, NONE));
        assert!(!p.retriable(Outcome::Response(503), NONE));
    }

    #[test]
    fn reset_is_resets_and_timeouts_not_statuses() {
        let p = policy(&["reset"]);
        assert!(p.retriable(Outcome::Reset, NONE));
        assert!(p.retriable(Outcome::ConnectFailure, NONE));
        assert!(!p.retriable(Outcome::Response(503), NONE));
    }

    #[test]
    fn retriable_4xx_codes_and_headers() {
        assert!(policy(&["retriable-4xx"]).retriable(Outcome::Response(409), NONE));
        assert!(!policy(&["retriable-4xx"]).retriable(Outcome::Response(404), NONE));
        let codes = policy(&["retriable-status-codes"]);
        assert!(codes.retriable(Outcome::Response(418), NONE));
        assert!(!codes.retriable(Outcome::Response(503), NONE));
        let hdrs = policy(&["retriable-headers"]);
        let yes = [httparse::Header {
            name: "x-retry",
            value: b"yes",
        }];
        let no = [httparse::Header {
            name: "x-retry",
            value: b"no",
        }];
        assert!(hdrs.retriable(Outcome::Response(200), &yes));
        assert!(!hdrs.retriable(Outcome::Response(200), &no));
        assert!(!hdrs.retriable(Outcome::Response(200), NONE));
    }

    #[test]
    fn unknown_condition_names_its_path() {
        let mut cfg = snapshot::RetryPolicy {
            retry_on: vec!["5xx".into(), "bogus".into()],
            num_retries: 1,
            per_try_timeout_ms: 0,
            per_try_idle_timeout_ms: 0,
            base_interval_ms: 25,
            max_interval_ms: None,
            retriable_status_codes: vec![],
            retriable_headers: vec![],
            previous_hosts: false,
            host_selection_retry_max_attempts: 0,
            per_request_buffer_limit_bytes: None,
        };
        let e = RetryPolicy::compile(&cfg, "x.retry_policy").unwrap_err();
        assert_eq!(e, "x.retry_policy.retry_on[1]: \"bogus\" is not supported");
        cfg.retry_on.pop();
        cfg.max_interval_ms = Some(10);
        assert!(
            RetryPolicy::compile(&cfg, "x")
                .unwrap_err()
                .contains("max_interval")
        );
    }

    #[test]
    fn backoff_is_jittered_exponential_and_capped() {
        let p = policy(&["5xx"]);
        // The n-th wait is `rand % ((2^n - 1) × 25 ms)`, capped at 250 ms; the exponent stops
        // growing once the ceiling passes the cap.
        let mut b = p.backoff();
        let waits: Vec<u64> = [24, 74, 174, 374, 375, 376]
            .iter()
            .map(|r| b.next(*r).as_millis() as u64)
            .collect();
        assert_eq!(waits, [24, 74, 174, 250, 0, 1]);
        // Zero randomness: no wait.
        let mut b = p.backoff();
        assert_eq!(b.next(0), Duration::ZERO);
        // Every wait stays within [0, max] for any random value.
        let mut b = p.backoff();
        for i in 0..100u64 {
            assert!(b.next(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) <= Duration::from_millis(250));
        }
    }
}
