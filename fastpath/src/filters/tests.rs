//! Filter chain unit tests: percentage maths, header-controlled faults, `max_active_faults`,
//! the token bucket on an injected clock, enforcement and per-route overrides.
use std::time::Duration;

use tokio::time::Instant;

use super::local_ratelimit::{ConnBuckets, RateLimit, TokenBucket, decide_for_test};
use super::*;
use crate::config::snapshot::{self, HttpFilterConfig};
use crate::local_reply::ResponseFlag;

fn pct(numerator: u32, denominator: u32) -> snapshot::Percent {
    snapshot::Percent {
        numerator,
        denominator,
    }
}

fn down_info() -> crate::conn_info::ConnInfo {
    let a: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    crate::conn_info::ConnInfo::plain(a, a)
}

fn no_cluster(_: &str) -> Option<usize> {
    None
}

fn view<'a>(headers: &'a [httparse::Header<'a>]) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path: "/",
        authority: "a",
        scheme: "http",
        headers,
    }
}

fn fault_cfg() -> snapshot::Fault {
    snapshot::Fault {
        delay: None,
        abort: None,
        headers: vec![],
        upstream_cluster: None,
        max_active_faults: None,
    }
}

fn hcm(
    filters: Vec<snapshot::HttpFilter>,
    vhosts: Vec<snapshot::VirtualHost>,
) -> snapshot::HttpConnectionManager {
    let json = serde_json::json!({"stat_prefix": "in", "route_config": {}});
    let mut h: snapshot::HttpConnectionManager = serde_json::from_value(json).unwrap();
    h.http_filters = filters;
    h.route_config.virtual_hosts = vhosts;
    h
}

fn chain(filters: Vec<snapshot::HttpFilter>, reg: &Registry) -> FilterChain {
    FilterChain::compile(&hcm(filters, vec![]), &no_cluster, reg, "hcm").unwrap()
}

fn fault_filter(c: snapshot::Fault) -> snapshot::HttpFilter {
    snapshot::HttpFilter {
        name: "envoy.filters.http.fault".into(),
        config: HttpFilterConfig::Fault(c),
    }
}

fn stat(reg: &Registry, kind: &str, name: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_slice(&reg.export()).unwrap();
    v[kind][name].as_i64().unwrap_or(-1)
}

#[test]
fn percentages_select_the_numerator_share_of_the_denominator() {
    let p = Percent::compile(&pct(25, 100), "p").unwrap();
    let hits = (0..100u64).filter(|r| p.hit(*r)).count();
    assert_eq!(hits, 25);
    let p = Percent::compile(&pct(1, 1_000_000), "p").unwrap();
    assert!(p.hit(0) && p.hit(2_000_000) && !p.hit(1));
    assert!(!Percent::compile(&pct(0, 100), "p").unwrap().hit(0));
    // A numerator over the denominator selects everything.
    assert!((0..1000u64).all(|r| Percent::compile(&pct(200, 100), "p").unwrap().hit(r)));
    assert_eq!(
        Percent::compile(&pct(10, 100), "p")
            .unwrap()
            .capped(3)
            .numerator,
        3
    );
    assert_eq!(
        Percent::compile(&pct(10, 100), "p")
            .unwrap()
            .capped(30)
            .numerator,
        10
    );
    let err = Percent::compile(&pct(1, 1000), "x.percentage").unwrap_err();
    assert!(err.starts_with("x.percentage.denominator"), "{err}");
}

#[test]
fn empty_chain_continues() {
    let reg = Registry::new(1);
    let c = chain(vec![], &reg);
    assert!(c.is_empty());
    let v = view(&[]);
    let verdict = c.run(
        &FilterRequest {
            view: &v,
            route: None,
            cluster: None,
            conn: &ConnBuckets::default(),
            downstream: &down_info(),
        },
        0,
    );
    assert!(verdict.is_continue() && verdict.flags.is_empty());
}

#[test]
fn full_abort_answers_with_the_status_flag_and_stats() {
    let reg = Registry::new(1);
    let mut cfg = fault_cfg();
    cfg.abort = Some(snapshot::FaultAbort {
        kind: snapshot::FaultAbortKind::HttpStatus(503),
        percentage: pct(100, 100),
    });
    let c = chain(vec![fault_filter(cfg)], &reg);
    let v = view(&[]);
    {
        let verdict = c.run(
            &FilterRequest {
                view: &v,
                route: None,
                cluster: None,
                conn: &ConnBuckets::default(),
                downstream: &down_info(),
            },
            0,
        );
        let reply = verdict.reply.as_ref().unwrap();
        assert_eq!(
            (reply.status, reply.body),
            (503, &b"fault filter abort"[..])
        );
        assert!(verdict.flags.contains(ResponseFlag::FaultInjected));
        assert_eq!(stat(&reg, "gauges", "http.in.fault.active_faults"), 1);
    }
    assert_eq!(stat(&reg, "counters", "http.in.fault.aborts_injected"), 1);
    assert_eq!(stat(&reg, "gauges", "http.in.fault.active_faults"), 0);
}

#[test]
fn header_faults_follow_the_request_headers_within_the_configured_percentage() {
    let reg = Registry::new(1);
    let mut cfg = fault_cfg();
    cfg.abort = Some(snapshot::FaultAbort {
        kind: snapshot::FaultAbortKind::Header,
        percentage: pct(100, 100),
    });
    cfg.delay = Some(snapshot::FaultDelay {
        kind: snapshot::FaultDelayKind::Header,
        percentage: pct(100, 100),
    });
    let c = chain(vec![fault_filter(cfg)], &reg);
    let run = |headers: &[httparse::Header<'_>]| {
        let v = view(headers);
        let verdict = c.run(
            &FilterRequest {
                view: &v,
                route: None,
                cluster: None,
                conn: &ConnBuckets::default(),
                downstream: &down_info(),
            },
            0,
        );
        (verdict.delay, verdict.reply.map(|r| (r.status, r.headers)))
    };
    assert_eq!(run(&[]), (None, None));
    let h = |name, value| httparse::Header { name, value };
    assert_eq!(
        run(&[h("x-envoy-fault-abort-request", b"418")])
            .1
            .unwrap()
            .0,
        418
    );
    // Out of [200, 600): no HTTP abort, the gRPC header is tried.
    assert_eq!(run(&[h("x-envoy-fault-abort-request", b"700")]).1, None);
    let grpc = run(&[
        h("X-Envoy-Fault-Abort-Grpc-Request", b"14"),
        h("content-type", b"application/grpc"),
    ]);
    let (status, headers) = grpc.1.unwrap();
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(headers)
            .unwrap()
            .contains("grpc-status: 14\r\n")
    );
    // The percentage header lowers the configured numerator: 0 disables the abort.
    let off = run(&[
        h("x-envoy-fault-abort-request", b"500"),
        h("x-envoy-fault-abort-request-percentage", b"0"),
    ]);
    assert_eq!(off.1, None);
    let delayed = run(&[h("x-envoy-fault-delay-request", b"250")]);
    assert_eq!(delayed, (Some(Duration::from_millis(250)), None));
    assert_eq!(run(&[h("x-envoy-fault-delay-request", b"0")]).0, None);
    assert_eq!(run(&[h("x-envoy-fault-delay-request", b"x")]).0, None);
    assert_eq!(stat(&reg, "counters", "http.in.fault.delays_injected"), 1);
}

#[test]
fn max_active_faults_overflows() {
    let reg = Registry::new(1);
    let mut cfg = fault_cfg();
    cfg.delay = Some(snapshot::FaultDelay {
        kind: snapshot::FaultDelayKind::FixedMs(1000),
        percentage: pct(100, 100),
    });
    cfg.max_active_faults = Some(1);
    let c = chain(vec![fault_filter(cfg)], &reg);
    let v = view(&[]);
    let req = FilterRequest {
        view: &v,
        route: None,
        cluster: None,
        conn: &ConnBuckets::default(),
        downstream: &down_info(),
    };
    let first = c.run(&req, 0);
    assert_eq!(first.delay, Some(Duration::from_secs(1)));
    assert!(first.flags.contains(ResponseFlag::DelayInjected));
    let second = c.run(&req, 0);
    assert!(second.delay.is_none() && second.flags.is_empty());
    assert_eq!(stat(&reg, "counters", "http.in.fault.faults_overflow"), 1);
    drop(first);
    assert!(c.run(&req, 0).delay.is_some());
}

#[test]
fn header_condition_and_upstream_cluster_gate_the_fault() {
    let reg = Registry::new(1);
    let mut cfg = fault_cfg();
    cfg.abort = Some(snapshot::FaultAbort {
        kind: snapshot::FaultAbortKind::HttpStatus(500),
        percentage: pct(100, 100),
    });
    cfg.upstream_cluster = Some("b".into());
    cfg.headers = vec![snapshot::HeaderMatcher {
        name: "x-fault".into(),
        rule: snapshot::HeaderRule::Present(true),
        invert: false,
        treat_missing_header_as_empty: false,
    }];
    let index = |n: &str| (n == "b").then_some(1);
    let c = FilterChain::compile(&hcm(vec![fault_filter(cfg)], vec![]), &index, &reg, "h").unwrap();
    let with = [httparse::Header {
        name: "x-fault",
        value: b"1",
    }];
    let hit = |headers: &[httparse::Header<'_>], cluster| {
        let v = view(headers);
        c.run(
            &FilterRequest {
                view: &v,
                route: None,
                cluster,
                conn: &ConnBuckets::default(),
                downstream: &down_info(),
            },
            0,
        )
        .reply
        .is_some()
    };
    assert!(hit(&with, Some(1)));
    assert!(!hit(&with, Some(0)));
    assert!(!hit(&with, None));
    assert!(!hit(&[], Some(1)));
}

#[test]
fn token_bucket_fills_on_its_interval_up_to_max() {
    let t0 = Instant::now();
    let b = TokenBucket::new(3, 2, Duration::from_secs(1), t0);
    assert_eq!(b.try_take(t0), Some(2));
    assert_eq!(b.try_take(t0), Some(1));
    assert_eq!(b.try_take(t0), Some(0));
    assert_eq!(b.try_take(t0 + Duration::from_millis(999)), None);
    assert_eq!(b.reset_seconds(t0 + Duration::from_millis(100)), 1);
    assert_eq!(b.reset_header(t0 + Duration::from_millis(100), 1), 0);
    // One fill: two tokens.
    let t1 = t0 + Duration::from_millis(1500);
    assert_eq!(b.remaining(t1), 2);
    assert_eq!(b.try_take(t1), Some(1));
    // Many fills cap at max.
    assert_eq!(b.remaining(t0 + Duration::from_secs(60)), 3);
    let long = TokenBucket::new(1, 1, Duration::from_secs(10), t0);
    assert_eq!(long.reset_seconds(t0 + Duration::from_millis(2500)), 8);
    assert_eq!(long.reset_header(t0 + Duration::from_millis(2500), 0), 8);
}

fn rl_cfg(max: u32) -> snapshot::LocalRateLimit {
    serde_json::from_value(serde_json::json!({
        "stat_prefix": "rl",
        "token_bucket": {"max_tokens": max, "tokens_per_fill": 1, "fill_interval_ms": 60_000},
        "filter_enabled": {"numerator": 100, "denominator": 100},
        "filter_enforced": {"numerator": 100, "denominator": 100},
        "enable_x_ratelimit_headers": true,
        "response_headers_to_add": [{"key": "x-limited", "value": "yes"}],
    }))
    .unwrap()
}

#[test]
fn rate_limit_passes_the_bucket_then_answers_429_with_headers() {
    let reg = Registry::new(1);
    let ctx = Ctx {
        hcm_prefix: "in",
        registry: &reg,
        cluster_index: &no_cluster,
    };
    let r = RateLimit::compile(&rl_cfg(2), &ctx, "f").unwrap();
    let now = Instant::now();
    for _ in 0..2 {
        let mut v = Verdict::default();
        assert!(!decide_for_test(&r, &mut v, now, 0, 0));
        assert!(v.reply.is_none());
    }
    let mut v = Verdict::default();
    assert!(decide_for_test(&r, &mut v, now, 0, 0));
    let reply = v.reply.unwrap();
    assert_eq!(
        (reply.status, reply.body),
        (429, &b"local_rate_limited"[..])
    );
    let headers = String::from_utf8(reply.headers).unwrap();
    assert!(headers.contains("x-limited: yes\r\n"), "{headers}");
    assert!(headers.contains("x-ratelimit-limit: 2\r\nx-ratelimit-remaining: 0\r\n"));
    assert!(v.flags.contains(ResponseFlag::RateLimited));
    assert_eq!(
        stat(&reg, "counters", "rl.http_local_rate_limit.enabled"),
        3
    );
    assert_eq!(stat(&reg, "counters", "rl.http_local_rate_limit.ok"), 2);
    assert_eq!(
        stat(&reg, "counters", "rl.http_local_rate_limit.rate_limited"),
        1
    );
    assert_eq!(
        stat(&reg, "counters", "rl.http_local_rate_limit.enforced"),
        1
    );
}

#[test]
fn not_enforced_or_not_enabled_lets_requests_through() {
    let reg = Registry::new(1);
    let ctx = Ctx {
        hcm_prefix: "in",
        registry: &reg,
        cluster_index: &no_cluster,
    };
    let mut cfg = rl_cfg(0);
    cfg.filter_enforced = pct(0, 100);
    cfg.request_headers_to_add_when_not_enforced =
        vec![serde_json::from_value(serde_json::json!({"key": "x-rl", "value": "1"})).unwrap()];
    let r = RateLimit::compile(&cfg, &ctx, "f").unwrap();
    let mut v = Verdict::default();
    assert!(!decide_for_test(&r, &mut v, Instant::now(), 0, 0));
    assert!(v.reply.is_none());
    assert_eq!(v.request_lines, b"x-rl: 1\r\n");
    cfg.filter_enabled = pct(0, 100);
    cfg.stat_prefix = "off".into();
    let r = RateLimit::compile(&cfg, &ctx, "f").unwrap();
    let mut v = Verdict::default();
    assert!(!decide_for_test(&r, &mut v, Instant::now(), 0, 0));
    assert!(v.is_continue());
    assert_eq!(
        stat(&reg, "counters", "off.http_local_rate_limit.enabled"),
        0
    );
}

#[test]
fn per_route_config_overrides_virtual_host_and_filter_level() {
    let reg = Registry::new(1);
    let route = |name: &str, per: Vec<snapshot::PerFilterConfig>| -> snapshot::Route {
        let mut r: snapshot::Route = serde_json::from_value(serde_json::json!({
            "name": name,
            "match": {"path": {"prefix": "/"}},
            "action": {"direct_response": {"status": 200}},
        }))
        .unwrap();
        r.typed_per_filter_config = per;
        r
    };
    let per = |max: u32| snapshot::PerFilterConfig {
        name: "rl".into(),
        config: HttpFilterConfig::LocalRatelimit(rl_cfg(max)),
    };
    let mut vh: snapshot::VirtualHost =
        serde_json::from_value(serde_json::json!({"name": "v", "domains": ["*"]})).unwrap();
    vh.routes = vec![route("own", vec![per(1)]), route("inherits", vec![])];
    vh.typed_per_filter_config = vec![per(0)];
    let mut top = rl_cfg(5);
    top.stat_prefix = "top".into();
    let filter = snapshot::HttpFilter {
        name: "rl".into(),
        config: HttpFilterConfig::LocalRatelimit(top),
    };
    let c = FilterChain::compile(&hcm(vec![filter], vec![vh]), &no_cluster, &reg, "h").unwrap();
    let v = view(&[]);
    let limited = |route| {
        c.run(
            &FilterRequest {
                view: &v,
                route,
                cluster: None,
                conn: &ConnBuckets::default(),
                downstream: &down_info(),
            },
            0,
        )
        .reply
        .is_some()
    };
    assert!(!limited(Some((0, 0))));
    assert!(limited(Some((0, 0))));
    assert!(limited(Some((0, 1))));
    for _ in 0..5 {
        assert!(!limited(None));
    }
    assert!(limited(None));
}

#[test]
fn counted_requests_get_x_ratelimit_headers_on_their_response() {
    let reg = Registry::new(1);
    let ctx = Ctx {
        hcm_prefix: "in",
        registry: &reg,
        cluster_index: &no_cluster,
    };
    let r = RateLimit::compile(&rl_cfg(2), &ctx, "f").unwrap();
    let now = Instant::now();
    let mut v = Verdict::default();
    assert!(!decide_for_test(&r, &mut v, now, 0, 0));
    assert!(!v.is_continue());
    assert_eq!(
        String::from_utf8(v.response_lines).unwrap(),
        "x-ratelimit-limit: 2\r\nx-ratelimit-remaining: 1\r\nx-ratelimit-reset: 0\r\n"
    );
    let mut v = Verdict::default();
    assert!(!decide_for_test(&r, &mut v, now, 0, 0));
    let lines = String::from_utf8(v.response_lines).unwrap();
    assert!(lines.contains("x-ratelimit-remaining: 0\r\nx-ratelimit-reset: 60\r\n"));
}

#[test]
fn per_connection_buckets_are_separate() {
    let reg = Registry::new(1);
    let ctx = Ctx {
        hcm_prefix: "in",
        registry: &reg,
        cluster_index: &no_cluster,
    };
    let mut cfg = rl_cfg(1);
    cfg.per_downstream_connection = true;
    let r = RateLimit::compile(&cfg, &ctx, "f").unwrap();
    let v = view(&[]);
    let (a, b) = (ConnBuckets::default(), ConnBuckets::default());
    let info = down_info();
    let req = |conn| FilterRequest {
        view: &v,
        route: None,
        cluster: None,
        conn,
        downstream: &info,
    };
    let mut verdict = Verdict::default();
    assert!(!r.on_request(&req(&a), 0, &mut verdict));
    assert!(r.on_request(&req(&a), 0, &mut Verdict::default()));
    // Another connection starts with a full bucket of its own.
    assert!(!r.on_request(&req(&b), 0, &mut Verdict::default()));
    assert!(r.on_request(&req(&b), 0, &mut Verdict::default()));
}
