//! Criterion benchmarks of the jwt_authn filter on one request: a token checked with its
//! signature (RS256, ES256, EdDSA), and an RS256 token found in the provider's verified-token
//! cache (`jwt_cache_config`).
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use meshcore_fastpath::config::snapshot::HttpConnectionManager;
use meshcore_fastpath::conn_info::ConnInfo;
use meshcore_fastpath::filters::local_ratelimit::ConnBuckets;
use meshcore_fastpath::filters::{FilterChain, FilterRequest};
use meshcore_fastpath::router::RequestView;
use meshcore_fastpath::stats::Registry;
use serde_json::json;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use thread_cpu::ThreadCpuTime;

// The unit tests' keys (only some are used here).
#[allow(dead_code)]
#[path = "../src/filters/jwt_authn/test_keys.rs"]
mod keys;
mod thread_cpu;

fn der(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).expect("test key")
}

fn token(alg: Algorithm) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_der(&der(keys::RSA_DER)),
        Algorithm::ES256 => EncodingKey::from_ec_der(&der(keys::P256_DER)),
        _ => EncodingKey::from_ed_der(&der(keys::ED_DER)),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": "https://issuer", "sub": "alice", "aud": "api",
                        "iat": now, "exp": now + 3600, "scope": "read write"});
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).expect("signs")
}

/// A connection manager whose only filter is jwt_authn with one provider (all three keys),
/// required on every path; `cache` adds `jwt_cache_config`.
fn chain(cache: bool) -> FilterChain {
    let jwks = json!({"keys": [
        {"kty": "RSA", "n": keys::RSA_N, "e": keys::RSA_E, "alg": "RS256"},
        {"kty": "EC", "crv": "P-256", "x": keys::P256_X, "y": keys::P256_Y},
        {"kty": "OKP", "crv": "Ed25519", "x": keys::ED_X},
    ]});
    let mut provider = json!({"name": "p", "issuer": "https://issuer", "audiences": ["api"],
        "jwks": {"local": jwks.to_string()}, "payload_in_metadata": "claims"});
    if cache {
        provider["jwt_cache_size"] = json!(100);
    }
    let hcm: HttpConnectionManager = serde_json::from_value(json!({
        "stat_prefix": "in", "route_config": {},
        "http_filters": [{"name": "jwt", "config": {"jwt_authn": {"providers": [provider],
            "rules": [{"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "p"}}]}}}],
    }))
    .expect("hcm JSON");
    FilterChain::compile(&hcm, &|_| None, &Registry::new(1), "hcm").expect("compiles")
}

/// Runs the chain on a request carrying `token`; true when it passed.
fn passes(chain: &FilterChain, token: &str) -> bool {
    let value = format!("Bearer {token}");
    let headers = [
        httparse::Header {
            name: "host",
            value: b"app.local",
        },
        httparse::Header {
            name: "authorization",
            value: value.as_bytes(),
        },
    ];
    let view = RequestView {
        method: "GET",
        path: "/api/items?page=2",
        authority: "app.local",
        scheme: "http",
        headers: &headers,
    };
    let peer = "127.0.0.1:40000".parse().unwrap();
    let info = ConnInfo::plain(peer, peer);
    let conn = ConnBuckets::default();
    let req = FilterRequest {
        view: &view,
        route: None,
        cluster: None,
        conn: &conn,
        downstream: &info,
    };
    chain.run(&req, 0).reply.is_none()
}

fn jwt_verify(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("jwt_authn");
    let plain = chain(false);
    for (name, alg) in [
        ("rs256", Algorithm::RS256),
        ("es256", Algorithm::ES256),
        ("eddsa", Algorithm::EdDSA),
    ] {
        let t = token(alg);
        assert!(passes(&plain, &t), "{name}");
        group.bench_function(name, |b| b.iter(|| passes(&plain, black_box(&t))));
    }
    let cached = chain(true);
    let t = token(Algorithm::RS256);
    assert!(passes(&cached, &t));
    group.bench_function("rs256_cache_hit", |b| {
        b.iter(|| passes(&cached, black_box(&t)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = thread_cpu::criterion();
    targets = jwt_verify
}
criterion_main!(benches);
