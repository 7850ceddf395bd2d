//! jwt_authn unit tests: token parsing statuses, every algorithm, kid/alg selection, time
//! with skew, audiences, extraction, the requirement kinds, per-route configs, effects.
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::test_keys as k;
use super::*;
use crate::filters::FilterChain;
use crate::filters::local_ratelimit::ConnBuckets;
use crate::stats::Registry;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn der(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap()
}

/// A token signed with the test key of `alg`.
fn sign(alg: Algorithm, kid: Option<&str>, claims: Value) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_der(&der(k::RSA_DER))
        }
        Algorithm::ES256 => EncodingKey::from_ec_der(&der(k::P256_DER)),
        Algorithm::ES384 => EncodingKey::from_ec_der(&der(k::P384_DER)),
        Algorithm::EdDSA => EncodingKey::from_ed_der(&der(k::ED_DER)),
        Algorithm::HS256 => EncodingKey::from_secret(b"secret-0123456789"),
        _ => unreachable!(),
    };
    let mut h = Header::new(alg);
    h.kid = kid.map(Into::into);
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

fn claims() -> Value {
    json!({"iss": "https://issuer", "sub": "alice", "aud": "api", "exp": now() + 600,
           "scope": "read write", "n": {"level": 3}})
}

fn jwks_all() -> Value {
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": k::RSA_N, "e": k::RSA_E},
        {"kty": "EC", "kid": "p256", "crv": "P-256", "x": k::P256_X, "y": k::P256_Y},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "x": k::P384_X, "y": k::P384_Y},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": k::ED_X},
        {"kty": "oct", "kid": "hs", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(b"secret-0123456789")},
    ]})
}

fn provider(name: &str, extra: Value) -> Value {
    let mut p = json!({"name": name, "issuer": "https://issuer",
                       "jwks": {"local": jwks_all().to_string()}});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

struct Setup {
    chain: FilterChain,
    reg: Registry,
}

/// A chain with one jwt_authn filter (`filter`), and one virtual host whose routes carry
/// `routes_per_filter` (a per-route config each, or null).
fn setup(filter: Value, routes_per_filter: &[Value]) -> Result<Setup, String> {
    let routes: Vec<Value> = routes_per_filter
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut r = json!({"match": {"path": {"prefix": format!("/r{i}")}},
                               "action": {"direct_response": {"status": 200}}});
            if !p.is_null() {
                r["typed_per_filter_config"] =
                    json!([{"name": "jwt", "config": {"jwt_authn_per_route": p}}]);
            }
            r
        })
        .collect();
    let hcm = json!({"stat_prefix": "in", "route_config": {"virtual_hosts": [
        {"name": "v", "domains": ["*"], "routes": routes}]},
        "http_filters": [{"name": "jwt", "config": {"jwt_authn": filter}}]});
    let hcm: snapshot::HttpConnectionManager =
        serde_json::from_value(hcm).map_err(|e| e.to_string())?;
    let reg = Registry::new(1);
    let chain = FilterChain::compile(&hcm, &|c| (c == "jwks").then_some(0), &reg, "hcm")?;
    Ok(Setup { chain, reg })
}

struct Outcome {
    status: Option<u16>,
    body: String,
    www: String,
    lines: String,
    removed: Vec<Box<str>>,
    metadata: Vec<super::super::Metadata>,
    details: String,
}

fn run(s: &Setup, path: &str, headers: &[(&str, &str)], route: Option<(usize, usize)>) -> Outcome {
    let hs: Vec<httparse::Header<'_>> = headers
        .iter()
        .map(|(n, v)| httparse::Header {
            name: n,
            value: v.as_bytes(),
        })
        .collect();
    let view = RequestView {
        method: headers
            .iter()
            .find(|(n, _)| *n == ":method")
            .map_or("GET", |(_, v)| v),
        path,
        authority: "example.com",
        scheme: "http",
        headers: &hs,
    };
    let a: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let info = crate::conn_info::ConnInfo::plain(a, a);
    let conn = ConnBuckets::default();
    let req = FilterRequest {
        view: &view,
        route,
        cluster: None,
        conn: &conn,
        downstream: &info,
    };
    let v = s.chain.run(&req, 0);
    let reply = v.reply.as_ref();
    let headers = reply.map(|r| String::from_utf8(r.headers.clone()).unwrap());
    Outcome {
        status: reply.map(|r| r.status),
        body: reply.map_or(String::new(), |r| String::from_utf8_lossy(r.body).into()),
        www: headers.unwrap_or_default(),
        lines: String::from_utf8(v.request_lines.clone()).unwrap(),
        removed: v.remove_request_headers.clone(),
        metadata: v.metadata.clone(),
        details: v.details.to_string(),
    }
}

fn stat(reg: &Registry, name: &str) -> i64 {
    let v: Value = serde_json::from_slice(&reg.export()).unwrap();
    v["counters"][name].as_i64().unwrap_or(-1)
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn one_provider(extra: Value) -> Setup {
    setup(
        json!({"providers": [provider("p", extra)],
               "rules": [{"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "p"}}]}),
        &[],
    )
    .unwrap()
}

#[test]
fn every_algorithm_verifies_with_its_key() {
    let s = one_provider(json!({}));
    for (alg, kid) in [
        (Algorithm::RS256, "rsa"),
        (Algorithm::RS384, "rsa"),
        (Algorithm::RS512, "rsa"),
        (Algorithm::PS256, "rsa"),
        (Algorithm::ES256, "p256"),
        (Algorithm::ES384, "p384"),
        (Algorithm::EdDSA, "ed"),
        (Algorithm::HS256, "hs"),
    ] {
        let t = sign(alg, Some(kid), claims());
        let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
        assert_eq!(o.status, None, "{alg:?}: {}", o.body);
        // Without a kid every key is tried.
        let t = sign(alg, None, claims());
        let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
        assert_eq!(o.status, None, "{alg:?} without kid: {}", o.body);
    }
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.allowed"), 16);
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.jwt_cache_miss"), 16);
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.jwt_cache_hit"), 0);
}

#[test]
fn bad_signature_unknown_kid_and_alg_mismatch() {
    let s = one_provider(json!({}));
    let t = sign(Algorithm::RS256, Some("rsa"), claims());
    // Flip a signature byte.
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 1;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
    let o = run(&s, "/", &[("authorization", &bearer(&forged))], None);
    assert_eq!(
        (o.status, o.body.as_str()),
        (Some(401), "Jwt verification fails")
    );
    assert_eq!(o.details, "jwt_authn_access_denied{Jwt_verification_fails}");
    assert_eq!(
        o.www,
        "www-authenticate: Bearer realm=\"http://example.com/\", error=\"invalid_token\"\r\n"
    );
    let t = sign(Algorithm::RS256, Some("nope"), claims());
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.body, "Jwks doesn't have key to match kid or alg from Jwt");
    // A key whose alg is HS256 does not serve an RS256 token of its kid.
    let t = sign(Algorithm::RS256, Some("hs"), claims());
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.body, "Jwks doesn't have key to match kid or alg from Jwt");
    // An ES256 token against the P-384 key (kid matches, curve does not).
    let t = sign(Algorithm::ES256, Some("p384"), claims());
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.body, "Jwt verification fails");
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.denied"), 4);
}

#[test]
fn malformed_tokens_get_envoys_statuses() {
    let s = one_provider(json!({}));
    let h = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let good_h = h(json!({"alg": "RS256"}));
    let good_p = h(json!({"iss": "https://issuer"}));
    let cases = [
        (
            "abc".to_string(),
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            "a.b.c.d".into(),
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        (
            format!("a.{good_p}.c2ln"),
            "Jwt header is an invalid Base64url encoded",
        ),
        (
            format!("{}.{good_p}.c2ln", URL_SAFE_NO_PAD.encode("{x")),
            "Jwt header is an invalid JSON",
        ),
        (
            format!("{}.{good_p}.c2ln", h(json!({"typ": "JWT"}))),
            "Jwt header [alg] field is required and must be a string",
        ),
        (
            format!("{}.{good_p}.c2ln", h(json!({"alg": "none"}))),
            "Jwt header [alg] is not supported",
        ),
        (
            format!("{}.{good_p}.c2ln", h(json!({"alg": "RS256", "kid": 1}))),
            "Jwt header [kid] field is not a string",
        ),
        (
            format!("{good_h}.a.c2ln"),
            "Jwt payload is an invalid Base64url encoded",
        ),
        (
            format!("{good_h}.{}.c2ln", h(json!({"exp": "soon"}))),
            "Jwt payload [exp] field is not an integer",
        ),
        (
            format!("{good_h}.{}.c2ln", h(json!({"aud": [1]}))),
            "Jwt payload [aud] field is not a string or string list",
        ),
        (
            format!("{good_h}.{}.c2ln", h(json!({"iss": 5}))),
            "Jwt payload [iss] field is not a string",
        ),
        (
            format!("{good_h}.{good_p}.a"),
            "Jwt signature is an invalid Base64url encoded",
        ),
    ];
    for (token, body) in cases {
        let o = run(&s, "/", &[("authorization", &bearer(&token))], None);
        assert_eq!((o.status, o.body.as_str()), (Some(401), body), "{token}");
    }
}

#[test]
fn expiry_and_not_before_allow_the_clock_skew() {
    let s = one_provider(json!({"clock_skew_seconds": 30}));
    let mut c = claims();
    let check = |c: &Value| {
        let t = sign(Algorithm::ES256, Some("p256"), c.clone());
        run(&s, "/", &[("authorization", &bearer(&t))], None).body
    };
    c["exp"] = json!(now() - 10);
    assert_eq!(check(&c), "", "within the skew");
    c["exp"] = json!(now() - 100);
    assert_eq!(check(&c), "Jwt is expired");
    c["exp"] = json!(now() + 100);
    c["nbf"] = json!(now() + 10);
    assert_eq!(check(&c), "", "nbf within the skew");
    c["nbf"] = json!(now() + 100);
    assert_eq!(check(&c), "Jwt not yet valid");
    let short = one_provider(json!({"max_lifetime_s": 3600}));
    let mut c = claims();
    c["iat"] = json!(now() - 10);
    c["exp"] = json!(now() + 7200);
    let t = sign(Algorithm::ES256, Some("p256"), c.clone());
    let o = run(&short, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(
        o.body, "Jwt verification fails",
        "lifetime over max_lifetime"
    );
    c["exp"] = json!(now() + 600);
    let t = sign(Algorithm::ES256, Some("p256"), c);
    assert_eq!(
        run(&short, "/", &[("authorization", &bearer(&t))], None).status,
        None
    );
    let strict = one_provider(json!({"require_expiration": true}));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    let t = sign(Algorithm::ES256, Some("p256"), c);
    let o = run(&strict, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.body, "Jwt verification fails", "as Envoy 1.40");
}

#[test]
fn issuer_and_audiences() {
    let s = one_provider(json!({"audiences": ["https://api/", "other"]}));
    let mut c = claims();
    let check = |c: &Value| {
        let t = sign(Algorithm::EdDSA, None, c.clone());
        let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
        (o.status, o.body)
    };
    // "api" matches "https://api/" once both are sanitized, as jwt_verify_lib does.
    assert_eq!(check(&c), (None, String::new()));
    c["aud"] = json!(["x", "other"]);
    assert_eq!(check(&c), (None, String::new()));
    c["aud"] = json!("nope");
    assert_eq!(
        check(&c),
        (Some(403), "Audiences in Jwt are not allowed".into())
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        check(&c),
        (Some(403), "Audiences in Jwt are not allowed".into())
    );
    c["aud"] = json!("api");
    c["iss"] = json!("https://evil");
    assert_eq!(
        check(&c),
        (Some(401), "Jwt issuer is not configured".into())
    );
}

#[test]
fn extraction_from_headers_params_and_cookies() {
    let s = one_provider(json!({}));
    let t = sign(Algorithm::RS256, Some("rsa"), claims());
    // Default: Authorization Bearer (removed upstream) and ?access_token= (kept).
    let o = run(&s, "/", &[("Authorization", &bearer(&t))], None);
    assert_eq!(
        (o.status, o.removed.clone()),
        (None, vec!["authorization".into()])
    );
    let o = run(&s, &format!("/x?a=1&access_token={t}"), &[], None);
    assert_eq!((o.status, o.removed.len()), (None, 0));
    let o = run(&s, "/", &[("authorization", &format!("Basic {t}"))], None);
    assert_eq!((o.status, o.body.as_str()), (Some(401), "Jwt is missing"));
    assert_eq!(
        o.www,
        "www-authenticate: Bearer realm=\"http://example.com/\"\r\n"
    );
    assert_eq!(o.details, "jwt_authn_access_denied{Jwt_is_missing}");

    let s = one_provider(json!({
        "from_headers": [{"name": "x-token", "value_prefix": "tok="}],
        "from_params": ["jwt"], "from_cookies": ["session"], "forward": true}));
    let o = run(&s, "/", &[("x-token", &format!("a tok=  {t}"))], None);
    assert_eq!((o.status, o.removed.len()), (None, 0), "{}", o.body);
    // The token runs to the end of the value (Envoy 1.40); spaces inside base64 are skipped.
    let o = run(&s, "/", &[("x-token", &format!("tok={t};"))], None);
    assert_eq!(o.body, "Jwt signature is an invalid Base64url encoded");
    let o = run(&s, "/", &[("x-token", &format!("tok={t} junk"))], None);
    assert_eq!(o.body, "Jwt verification fails");
    let o = run(&s, &format!("/?jwt={t}"), &[], None);
    assert_eq!(o.status, None);
    let o = run(&s, "/", &[("cookie", &format!("a=b; session={t}"))], None);
    assert_eq!(o.status, None);
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.body, "Jwt is missing", "the default location is off");
    // Two tokens: both must be good.
    let o = run(&s, &format!("/?jwt={t}"), &[("x-token", "tok=abc")], None);
    assert_eq!(o.status, Some(401));
}

#[test]
fn good_token_effects_payload_claims_metadata() {
    let s = one_provider(json!({
        "forward_payload_header": "x-jwt-payload", "pad_forward_payload_header": true,
        "claim_to_headers": [{"header_name": "x-sub", "claim_name": "sub"},
                             {"header_name": "x-level", "claim_name": "n.level"},
                             {"header_name": "x-none", "claim_name": "missing"}],
        "payload_in_metadata": "claims", "space_delimited_claims": ["scope"]}));
    let t = sign(Algorithm::ES384, Some("p384"), claims());
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.status, None);
    let payload = t.split('.').nth(1).unwrap();
    let mut padded = payload.to_string();
    while !padded.len().is_multiple_of(4) {
        padded.push('=');
    }
    assert_eq!(
        o.lines,
        format!("x-jwt-payload: {padded}\r\nx-sub: alice\r\nx-level: 3\r\n")
    );
    // The client's own values of these headers are replaced.
    assert_eq!(
        o.removed,
        ["x-jwt-payload", "x-sub", "x-level", "authorization"].map(Box::<str>::from)
    );
    assert_eq!(o.metadata.len(), 1);
    let m = &o.metadata[0];
    assert_eq!((m.namespace, &*m.key), (NAMESPACE, "claims"));
    assert_eq!(m.value["sub"], "alice");
    assert_eq!(m.value["scope"], json!(["read", "write"]));
}

fn two_providers(requires: Value) -> Setup {
    let a = provider(
        "a",
        json!({"issuer": "https://a", "from_headers": [{"name": "x-a"}]}),
    );
    let b = provider(
        "b",
        json!({"issuer": "https://b", "from_headers": [{"name": "x-b"}],
                                 "audiences": ["b-api"]}),
    );
    setup(
        json!({"providers": [a, b],
               "rules": [{"match": {"path": {"prefix": "/"}}, "requires": requires}]}),
        &[],
    )
    .unwrap()
}

fn token_for(iss: &str, aud: &str) -> String {
    let mut c = claims();
    c["iss"] = json!(iss);
    c["aud"] = json!(aud);
    sign(Algorithm::RS256, Some("rsa"), c)
}

#[test]
fn requires_any_and_all() {
    let ta = token_for("https://a", "x");
    let tb = token_for("https://b", "b-api");
    let any =
        two_providers(json!({"requires_any": [{"provider_name": "a"}, {"provider_name": "b"}]}));
    assert_eq!(run(&any, "/", &[("x-a", &ta)], None).status, None);
    assert_eq!(run(&any, "/", &[("x-b", &tb)], None).status, None);
    assert_eq!(run(&any, "/", &[], None).body, "Jwt is missing");
    // A failure other than missing is what requires_any reports.
    let tb_bad = token_for("https://b", "wrong");
    let o = run(&any, "/", &[("x-b", &tb_bad)], None);
    assert_eq!(
        (o.status, o.body.as_str()),
        (Some(403), "Audiences in Jwt are not allowed")
    );

    let all =
        two_providers(json!({"requires_all": [{"provider_name": "a"}, {"provider_name": "b"}]}));
    assert_eq!(
        run(&all, "/", &[("x-a", &ta), ("x-b", &tb)], None).status,
        None
    );
    assert_eq!(run(&all, "/", &[("x-a", &ta)], None).body, "Jwt is missing");

    let aud = two_providers(
        json!({"provider_and_audiences": {"provider_name": "b", "audiences": ["x"]}}),
    );
    assert_eq!(
        run(&aud, "/", &[("x-b", &token_for("https://b", "x"))], None).status,
        None
    );
    assert_eq!(run(&aud, "/", &[("x-b", &tb)], None).status, Some(403));
}

#[test]
fn allow_missing_and_allow_missing_or_failed() {
    let ta = token_for("https://a", "x");
    let m = two_providers(json!("allow_missing"));
    assert_eq!(run(&m, "/", &[], None).status, None);
    assert_eq!(run(&m, "/", &[("x-a", &ta)], None).status, None);
    assert_eq!(run(&m, "/", &[("x-a", "garbage")], None).status, Some(401));
    let f = two_providers(json!("allow_missing_or_failed"));
    assert_eq!(run(&f, "/", &[("x-a", "garbage")], None).status, None);
    let o = run(&f, "/", &[("x-a", &ta)], None);
    assert_eq!((o.status, o.removed), (None, vec!["x-a".into()]));
    let any = two_providers(json!({"requires_any": [{"provider_name": "a"}, "allow_missing"]}));
    assert_eq!(run(&any, "/", &[], None).status, None);
    assert_eq!(
        run(&any, "/", &[("x-a", "garbage")], None).status,
        Some(401)
    );
    // A token of no provider's issuer fails both members (as Envoy 1.40).
    let foreign = token_for("https://other", "x");
    let o = run(&any, "/", &[("x-a", &foreign)], None);
    assert_eq!(o.body, "Jwt issuer is not configured");
    let o = run(&m, "/", &[("x-a", &foreign)], None);
    assert_eq!(o.body, "Jwt issuer is not configured");
}

#[test]
fn rules_first_match_and_per_route_configs() {
    let p = provider("p", json!({}));
    let filter = json!({"providers": [p],
        "rules": [{"match": {"path": {"prefix": "/open"}}},
                  {"match": {"path": {"prefix": "/"}, "headers": [
                      {"name": "x-mode", "rule": {"string": {"pattern": {"exact": "named"}}}}]},
                   "requirement_name": "opt"},
                  {"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "p"}}],
        "requirement_map": [{"name": "opt", "requires": "allow_missing"}],
        "bypass_cors_preflight": true});
    let s = setup(
        filter.clone(),
        &[
            json!("disabled"),
            json!({"requirement_name": "opt"}),
            Value::Null,
        ],
    )
    .unwrap();
    assert_eq!(run(&s, "/open/x", &[], None).status, None);
    assert_eq!(run(&s, "/x", &[], None).status, Some(401));
    assert_eq!(run(&s, "/x", &[("x-mode", "named")], None).status, None);
    // Per route: disabled, a named requirement, none (the rules).
    assert_eq!(run(&s, "/x", &[], Some((0, 0))).status, None);
    assert_eq!(run(&s, "/x", &[], Some((0, 1))).status, None);
    assert_eq!(run(&s, "/x", &[], Some((0, 2))).status, Some(401));
    let preflight = [
        (":method", "OPTIONS"),
        ("origin", "https://a"),
        ("access-control-request-method", "GET"),
    ];
    assert_eq!(run(&s, "/x", &preflight, None).status, None);
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.cors_preflight_bypassed"), 1);

    let e = setup(filter, &[json!({"requirement_name": "nope"})])
        .err()
        .unwrap();
    assert!(e.contains("requirement_name: \"nope\" is not in"), "{e}");
}

#[test]
fn config_errors_name_the_field() {
    let bad_req = json!({"providers": [provider("p", json!({}))],
        "rules": [{"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "q"}}]});
    let e = setup(bad_req, &[]).err().unwrap();
    assert_eq!(
        e,
        "hcm.http_filters[0].rules[0].requires.provider_name: provider \"q\" is not in providers"
    );
    let mut p = provider("p", json!({}));
    p["jwks"] = json!({"local": "{\"keys\": 5}"});
    let e = setup(json!({"providers": [p]}), &[]).err().unwrap();
    assert_eq!(
        e,
        "hcm.http_filters[0].providers[p].local_jwks: [keys] is not an array"
    );
    let mut p = provider("p", json!({}));
    p["jwks"] = json!({"remote": {"key": "k", "uri": "http://x/", "cluster": "nope",
                                  "timeout_ms": 1000, "cache_duration_ms": 1000}});
    let e = setup(json!({"providers": [p]}), &[]).err().unwrap();
    assert!(
        e.ends_with("remote_jwks.http_uri.cluster: unknown cluster \"nope\""),
        "{e}"
    );
}

#[test]
fn remote_keys_fail_until_set_then_verify() {
    let mut p = provider("p", json!({}));
    p["jwks"] = json!({"remote": {"key": "unit-test-source", "uri": "http://x/",
                                  "cluster": "jwks", "timeout_ms": 1000,
                                  "cache_duration_ms": 1000}});
    let s = setup(
        json!({"providers": [p],
               "rules": [{"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "p"}}]}),
        &[],
    )
    .unwrap();
    let t = sign(Algorithm::RS256, Some("rsa"), claims());
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(
        (o.status, o.body.as_str()),
        (Some(401), "Jwks remote fetch is failed")
    );
    assert!(jwks::set("unit-test-source", b"{}").is_err());
    assert!(matches!(
        jwks::set("no-such-source", jwks_all().to_string().as_bytes()),
        Err(jwks::SetError::UnknownKey)
    ));
    jwks::set("unit-test-source", jwks_all().to_string().as_bytes()).unwrap();
    let o = run(&s, "/", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.status, None, "{}", o.body);
}

#[test]
fn token_cache_skips_the_signature_but_not_the_claims() {
    let s = one_provider(json!({"jwt_cache_size": 2, "audiences": ["api"]}));
    let t = sign(Algorithm::RS256, Some("rsa"), claims());
    for _ in 0..3 {
        assert_eq!(
            run(&s, "/", &[("authorization", &bearer(&t))], None).status,
            None
        );
    }
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.jwt_cache_miss"), 1);
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.jwt_cache_hit"), 2);
    // A changed signature is another token: checked, and refused.
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[0] ^= 1;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw));
    let o = run(&s, "/", &[("authorization", &bearer(&forged))], None);
    assert_eq!(o.body, "Jwt verification fails");
    // Only good tokens are kept; a full cache drops its oldest.
    for i in 0..3 {
        let mut c = claims();
        c["n"] = json!(i);
        let t = sign(Algorithm::EdDSA, None, c);
        assert_eq!(
            run(&s, "/", &[("authorization", &bearer(&t))], None).status,
            None
        );
    }
    assert_eq!(
        run(&s, "/", &[("authorization", &bearer(&t))], None).status,
        None
    );
    assert_eq!(
        stat(&s.reg, "http.in.jwt_authn.jwt_cache_hit"),
        2,
        "evicted"
    );

    // Cached tokens still have their audiences checked against the requirement's.
    let filter = json!({"providers": [provider("p", json!({"jwt_cache_size": 0}))],
        "rules": [{"match": {"path": {"prefix": "/b"}}, "requires":
                      {"provider_and_audiences": {"provider_name": "p", "audiences": ["b"]}}},
                  {"match": {"path": {"prefix": "/"}}, "requires": {"provider_name": "p"}}]});
    let s = setup(filter, &[]).unwrap();
    assert_eq!(
        run(&s, "/", &[("authorization", &bearer(&t))], None).status,
        None
    );
    let o = run(&s, "/b", &[("authorization", &bearer(&t))], None);
    assert_eq!(o.status, Some(403));
    assert_eq!(stat(&s.reg, "http.in.jwt_authn.jwt_cache_hit"), 1);
}
