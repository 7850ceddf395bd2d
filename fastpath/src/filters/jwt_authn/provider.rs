//! One `JwtProvider` compiled, and the check of one token against it (Envoy's
//! authenticator: parse, issuer, time, audiences, subject, signature, then the good token's
//! effects).
use std::sync::Arc;

use super::cache::TokenCache;
use super::extract::Location;
use super::jwks::{self, Jwks, Slot};
use super::status::Status;
use super::token::Jwt;
use super::{Ctx, Effects};
use crate::config::jwt as cfg;
use crate::filters::push_line;
use crate::router::StringMatcher;

pub enum Keys {
    Local(Arc<Jwks>),
    Remote(Arc<Slot>),
}

pub struct Provider {
    pub issuer: Box<str>,
    audiences: Box<[Box<str>]>,
    subjects: Option<StringMatcher>,
    keys: Keys,
    pub locations: Vec<Location>,
    forward: bool,
    payload_header: Option<Box<str>>,
    pad_payload: bool,
    payload_in_metadata: Option<Box<str>>,
    space_delimited: Box<[Box<str>]>,
    claim_to_headers: Box<[(Box<str>, Box<str>)]>,
    skew: u64,
    require_expiration: bool,
    max_lifetime: Option<u64>,
    /// `jwt_cache_config`: verified tokens per worker.
    pub cache: Option<TokenCache>,
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b'(' | b')' | b',' | b';'))
}

impl Provider {
    pub fn compile(p: &cfg::JwtProvider, ctx: &Ctx<'_>, at: &str) -> Result<Provider, String> {
        let keys = match &p.jwks {
            cfg::JwksSource::Local(text) => Keys::Local(Arc::new(
                Jwks::parse(text.as_bytes()).map_err(|e| format!("{at}.local_jwks: {e}"))?,
            )),
            cfg::JwksSource::Remote(r) => {
                if (ctx.cluster_index)(&r.cluster).is_none() {
                    return Err(format!(
                        "{at}.remote_jwks.http_uri.cluster: unknown cluster {:?}",
                        r.cluster
                    ));
                }
                Keys::Remote(jwks::slot(&r.key))
            }
        };
        let header = |name: &str, field: &str| -> Result<Box<str>, String> {
            if valid_header_name(name) {
                Ok(name.to_ascii_lowercase().into())
            } else {
                Err(format!("{at}.{field}: invalid header name {name:?}"))
            }
        };
        for (i, h) in p.from_headers.iter().enumerate() {
            header(&h.name, &format!("from_headers[{i}].name"))?;
        }
        let payload_header = match p.forward_payload_header.as_str() {
            "" => None,
            n => Some(header(n, "forward_payload_header")?),
        };
        let claim_to_headers = p
            .claim_to_headers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let h = header(
                    &c.header_name,
                    &format!("claim_to_headers[{i}].header_name"),
                )?;
                Ok((h, c.claim_name.as_str().into()))
            })
            .collect::<Result<_, String>>()?;
        let subjects = p
            .subjects
            .as_ref()
            .map(|m| StringMatcher::compile(m, &format!("{at}.subjects")))
            .transpose()?;
        Ok(Provider {
            issuer: p.issuer.as_str().into(),
            audiences: p
                .audiences
                .iter()
                .map(|a| normalize_audience(a).into())
                .collect(),
            subjects,
            keys,
            locations: super::extract::locations(p),
            forward: p.forward,
            payload_header,
            pad_payload: p.pad_forward_payload_header,
            payload_in_metadata: (!p.payload_in_metadata.is_empty())
                .then(|| p.payload_in_metadata.as_str().into()),
            space_delimited: p
                .space_delimited_claims
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
            claim_to_headers,
            // Envoy: 0 means the default.
            skew: if p.clock_skew_seconds == 0 {
                60
            } else {
                p.clock_skew_seconds
            },
            require_expiration: p.require_expiration,
            max_lifetime: p.max_lifetime_s,
            cache: p.jwt_cache_size.map(|size| {
                TokenCache::new(
                    ctx.registry.workers(),
                    size as usize,
                    p.jwt_max_token_size as usize,
                )
            }),
        })
    }

    /// Checks a parsed token (issuer already checked against its location); on success adds
    /// its effects. `audiences` overrides the provider's (`provider_and_audiences`). A token
    /// from the cache (`verified`) skips the signature, as Envoy's cache hits do.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        jwt: &Jwt,
        token: &str,
        location: &Location,
        audiences: Option<&[Box<str>]>,
        now: u64,
        effects: &mut Effects,
        verified: bool,
    ) -> Status {
        let s = jwt.check_time(now, self.skew);
        if s != Status::Ok {
            return s;
        }
        // Envoy 1.40 reports a missing `exp` as a verification failure.
        if self.require_expiration && jwt.exp == 0 {
            return Status::JwtVerificationFail;
        }
        // Envoy 1.40: a lifetime (`exp - iat`, both present) over `max_lifetime` fails as a
        // verification failure.
        if let Some(max) = self.max_lifetime
            && jwt.exp != 0
            && jwt.iat != 0
            && jwt.exp.saturating_sub(jwt.iat) > max
        {
            return Status::JwtVerificationFail;
        }
        let allowed = audiences.unwrap_or(&self.audiences);
        if !allowed.is_empty()
            && !jwt
                .audiences
                .iter()
                .any(|a| allowed.iter().any(|x| **x == *normalize_audience(a)))
        {
            return Status::JwtAudienceNotAllowed;
        }
        if let Some(m) = &self.subjects
            && !m.matches(jwt.sub.as_bytes())
        {
            return Status::JwtVerificationFail;
        }
        let s = match &self.keys {
            _ if verified => Status::Ok,
            Keys::Local(k) => k.verify(jwt, token),
            Keys::Remote(slot) => match &*slot.load() {
                Some(k) => k.verify(jwt, token),
                None => Status::JwksFetchFail,
            },
        };
        if s == Status::Ok {
            self.good(jwt, location, effects);
        }
        s
    }

    /// Envoy's `handleGoodJwt`.
    fn good(&self, jwt: &Jwt, location: &Location, e: &mut Effects) {
        if let Some(h) = &self.payload_header {
            let mut v = jwt.payload_b64.to_string();
            if self.pad_payload {
                while !v.len().is_multiple_of(4) {
                    v.push('=');
                }
            }
            // Replaces any value the client sent (as Envoy 1.40 does).
            e.remove.push(h.clone());
            push_line(&mut e.lines, h, v.as_bytes());
        }
        for (h, claim) in self.claim_to_headers.iter() {
            if let Some(v) = claim_text(&jwt.payload, claim) {
                e.remove.push(h.clone());
                push_line(&mut e.lines, h, v.as_bytes());
            }
        }
        if !self.forward
            && let Location::Header { name, .. } = location
        {
            e.remove.push(name.clone());
        }
        if let Some(key) = &self.payload_in_metadata {
            let mut payload = jwt.payload.clone();
            for claim in self.space_delimited.iter() {
                if let Some(serde_json::Value::String(s)) = payload.get(&**claim) {
                    let list = s
                        .split(' ')
                        .filter(|p| !p.is_empty())
                        .map(|p| serde_json::Value::String(p.into()))
                        .collect();
                    payload.insert(claim.to_string(), serde_json::Value::Array(list));
                }
            }
            e.metadata
                .push((key.clone(), serde_json::Value::Object(payload)));
        }
    }
}

/// jwt_verify_lib's `CheckAudience` sanitizing: no `http://`/`https://`, no trailing `/`.
fn normalize_audience(a: &str) -> &str {
    let a = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .unwrap_or(a);
    a.strip_suffix('/').unwrap_or(a)
}

/// A claim (nested with `.`) as header text: strings as they are, integral numbers without a
/// fraction, booleans; anything else is not copied (as Envoy).
fn claim_text(payload: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    let mut parts = name.split('.');
    let mut v = payload.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u.to_string(),
            (None, Some(f)) => format!("{f:.6}"),
            _ => return None,
        },
        _ => return None,
    };
    (!text.is_empty() && !text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)).then_some(text)
}
