//! JSON Web Key Sets: parsing the keys (RSA `n`/`e`, EC `crv`/`x`/`y`, OKP Ed25519 `x`, oct
//! `k`) and checking a token's signature with the key its `kid` and `alg` select, as
//! jwt_verify_lib does. The signature math is `jsonwebtoken`'s (ring).
//!
//! Remote key sets live in slots the control layer fills (`Engine.set_jwks`): one slot per
//! source key, shared by every compiled provider naming it and kept while any does, so a
//! config reload keeps the keys already fetched.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use arc_swap::ArcSwapOption;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::status::Status;
use super::token::Jwt;

/// One usable key.
pub struct Jwk {
    kid: Option<Box<str>>,
    alg: Option<Box<str>>,
    kind: KeyKind,
    key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    /// The curve's algorithm: ES256 (P-256), ES384 (P-384), ES512 (P-521).
    Ec(&'static str),
    Ed25519,
    Oct,
}

/// A parsed key set.
pub struct Jwks {
    keys: Vec<Jwk>,
}

fn text<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Result<Option<&'a str>, String> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("[{k}] is not a string")),
    }
}

fn required<'a>(o: &'a serde_json::Map<String, Value>, k: &str) -> Result<&'a str, String> {
    text(o, k)?.ok_or_else(|| format!("[{k}] is missing"))
}

fn parse_key(v: &Value) -> Result<Jwk, String> {
    let o = v.as_object().ok_or("not an object")?;
    let kty = required(o, "kty")?;
    let alg = text(o, "alg")?;
    let kid = text(o, "kid")?.map(Into::into);
    let bad = |what: &str| format!("{kty} key: {what}");
    let (kind, key) = match kty {
        "RSA" => {
            if alg.is_some_and(|a| !a.starts_with("RS") && !a.starts_with("PS")) {
                return Err(bad("[alg] is not RS* or PS*"));
            }
            let (n, e) = (required(o, "n")?, required(o, "e")?);
            let key = DecodingKey::from_rsa_components(n, e).map_err(|e| bad(&e.to_string()))?;
            (KeyKind::Rsa, key)
        }
        "EC" => {
            let curve_alg = match required(o, "crv")? {
                "P-256" => "ES256",
                "P-384" => "ES384",
                "P-521" => "ES512",
                c => return Err(bad(&format!("curve {c:?} is not supported"))),
            };
            if alg.is_some_and(|a| a != curve_alg) {
                return Err(bad("[alg] does not match [crv]"));
            }
            let (x, y) = (required(o, "x")?, required(o, "y")?);
            let key = DecodingKey::from_ec_components(x, y).map_err(|e| bad(&e.to_string()))?;
            (KeyKind::Ec(curve_alg), key)
        }
        "OKP" => {
            if required(o, "crv")? != "Ed25519" {
                return Err(bad("only the Ed25519 curve is supported"));
            }
            if alg.is_some_and(|a| a != "EdDSA") {
                return Err(bad("[alg] is not EdDSA"));
            }
            let key = DecodingKey::from_ed_components(required(o, "x")?)
                .map_err(|e| bad(&e.to_string()))?;
            (KeyKind::Ed25519, key)
        }
        "oct" => {
            if alg.is_some_and(|a| !a.starts_with("HS")) {
                return Err(bad("[alg] is not HS*"));
            }
            let k = super::token::b64url_decode(required(o, "k")?).ok_or_else(|| bad("bad [k]"))?;
            (KeyKind::Oct, DecodingKey::from_secret(&k))
        }
        other => return Err(format!("[kty] {other:?} is not supported")),
    };
    Ok(Jwk {
        kid,
        alg: alg.map(Into::into),
        kind,
        key,
    })
}

impl Jwks {
    /// Parses a JWKS (`{"keys": [...]}`). Keys meshcore cannot use are skipped, as
    /// jwt_verify_lib does; a set with no usable key is an error.
    pub fn parse(text: &[u8]) -> Result<Jwks, String> {
        let v: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let keys = match v.get("keys") {
            Some(Value::Array(k)) => k,
            Some(_) => return Err("[keys] is not an array".into()),
            None => return Err("no [keys] field".into()),
        };
        let mut errors = Vec::new();
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match parse_key(k) {
                Ok(k) => out.push(k),
                Err(e) => errors.push(format!("keys[{i}]: {e}")),
            }
        }
        if out.is_empty() {
            return Err(format!(
                "no valid public key{}{}",
                if errors.is_empty() { "" } else { ": " },
                errors.join("; ")
            ));
        }
        Ok(Jwks { keys: out })
    }

    /// jwt_verify_lib's `verifyJwtWithoutTimeChecking`: tries every key whose `kid` (when
    /// both have one) and `alg` (when the key has one) match the token.
    pub fn verify(&self, jwt: &Jwt, token: &str) -> Status {
        let message = &token.as_bytes()[..jwt.signed_len];
        let mut matched = false;
        for k in &self.keys {
            if let (Some(want), Some(have)) = (&jwt.kid, &k.kid)
                && want != have
            {
                continue;
            }
            if k.alg.as_ref().is_some_and(|a| **a != *jwt.alg) {
                continue;
            }
            matched = true;
            let alg = &*jwt.alg;
            let usable = match k.kind {
                KeyKind::Rsa => alg.starts_with("RS") || alg.starts_with("PS"),
                KeyKind::Ec(curve_alg) => alg == curve_alg,
                KeyKind::Ed25519 => alg == "EdDSA",
                KeyKind::Oct => alg.starts_with("HS"),
            };
            if !usable {
                continue;
            }
            if k.kind == KeyKind::Ed25519 && jwt.signature_len != 64 {
                return Status::JwtEd25519SignatureWrongLength;
            }
            let Some(algorithm) = algorithm(alg) else {
                continue; // ES512: ring has no P-521 verifier
            };
            if jsonwebtoken::crypto::verify(&jwt.signature_b64, message, &k.key, algorithm)
                .unwrap_or(false)
            {
                return Status::Ok;
            }
        }
        if matched {
            Status::JwtVerificationFail
        } else {
            Status::JwksKidAlgMismatch
        }
    }
}

fn algorithm(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Where a provider's remote keys are: empty until the control layer's first fetch.
pub type Slot = ArcSwapOption<Jwks>;

/// Remote key set slots by source key (see the module comment). Process-wide because the
/// compiled filters and `Engine.set_jwks` meet only here; entries are weak, so a slot lives
/// exactly as long as a compiled provider uses it.
static SLOTS: LazyLock<Mutex<HashMap<Box<str>, Weak<Slot>>>> = LazyLock::new(Default::default);

/// The slot for `key`, created empty if no compiled provider holds one.
pub fn slot(key: &str) -> Arc<Slot> {
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = slots.get(key).and_then(Weak::upgrade) {
        return s;
    }
    slots.retain(|_, w| w.strong_count() > 0);
    let s = Arc::new(Slot::empty());
    slots.insert(key.into(), Arc::downgrade(&s));
    s
}

/// Stores a fetched key set for `key` (`Engine.set_jwks`). Errors: no provider uses `key`
/// (KeyError), or the text is not a usable JWKS (the previous keys stay).
pub fn set(key: &str, text: &[u8]) -> Result<(), SetError> {
    let slot = SLOTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .and_then(Weak::upgrade)
        .ok_or(SetError::UnknownKey)?;
    let jwks = Jwks::parse(text).map_err(SetError::Invalid)?;
    slot.store(Some(Arc::new(jwks)));
    Ok(())
}

#[derive(Debug)]
pub enum SetError {
    UnknownKey,
    Invalid(String),
}
