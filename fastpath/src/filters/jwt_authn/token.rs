//! A JWS compact token parsed as jwt_verify_lib parses it (three base64url parts, the header's
//! `alg`/`kid`, the registered claims with their type checks), so each malformed token gets
//! Envoy's status. Signatures are checked in `jwks.rs`.
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde_json::{Map, Value};

use super::status::Status;

/// base64url as absl decodes it for Envoy: padding optional, non-zero trailing bits allowed.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64url; ASCII whitespace inside is skipped (as absl's decoder Envoy uses).
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    B64URL.decode(without_spaces(s).as_bytes()).ok()
}

fn without_spaces(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_whitespace()) {
        s.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

/// The algorithms Envoy accepts in a token header.
const ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256",
    "HS384", "HS512", "EdDSA",
];

/// A parsed (not yet verified) token.
#[derive(Debug, Clone)]
pub struct Jwt {
    pub alg: Box<str>,
    pub kid: Option<Box<str>>,
    pub iss: Box<str>,
    pub sub: Box<str>,
    pub audiences: Vec<Box<str>>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// The payload object (for `payload_in_metadata` and `claim_to_headers`).
    pub payload: Map<String, Value>,
    /// The payload part as sent (for `forward_payload_header`).
    pub payload_b64: Box<str>,
    /// `header.payload`: what the signature signs.
    pub signed_len: usize,
    pub signature_b64: Box<str>,
    pub signature_len: usize,
}

/// A registered time claim: absent is 0.
fn time_claim(
    p: &Map<String, Value>,
    name: &str,
    not_int: Status,
    range: Status,
) -> Result<u64, Status> {
    match p.get(name) {
        None => Ok(0),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(v)
            } else if n.is_i64() {
                Err(range)
            } else {
                // A float: jwt_verify_lib takes only integral numbers.
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) => Ok(f as u64),
                    Some(f) if f.fract() == 0.0 => Err(range),
                    _ => Err(not_int),
                }
            }
        }
        Some(_) => Err(not_int),
    }
}

fn string_claim(p: &Map<String, Value>, name: &str, bad: Status) -> Result<Box<str>, Status> {
    match p.get(name) {
        None => Ok("".into()),
        Some(Value::String(s)) => Ok(s.as_str().into()),
        Some(_) => Err(bad),
    }
}

impl Jwt {
    /// Parses `token` (`header.payload.signature`).
    pub fn parse(token: &str) -> Result<Jwt, Status> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Status::JwtBadFormat);
        };
        let header = b64url_decode(h).ok_or(Status::JwtHeaderBadBase64)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header).map_err(|_| Status::JwtHeaderBadJson)?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.as_str(),
            _ => return Err(Status::JwtHeaderBadAlg),
        };
        if !ALGS.contains(&alg) {
            return Err(Status::JwtHeaderNotImplementedAlg);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str().into()),
            Some(_) => return Err(Status::JwtHeaderBadKid),
        };
        let payload = b64url_decode(p).ok_or(Status::JwtPayloadBadBase64)?;
        let payload: Map<String, Value> =
            serde_json::from_slice(&payload).map_err(|_| Status::JwtPayloadBadJson)?;
        let iss = string_claim(&payload, "iss", Status::JwtIssNotString)?;
        let sub = string_claim(&payload, "sub", Status::JwtSubNotString)?;
        let iat = time_claim(
            &payload,
            "iat",
            Status::JwtIatNotInteger,
            Status::JwtIatOutOfRange,
        )?;
        let nbf = time_claim(
            &payload,
            "nbf",
            Status::JwtNbfNotInteger,
            Status::JwtNbfOutOfRange,
        )?;
        let exp = time_claim(
            &payload,
            "exp",
            Status::JwtExpNotInteger,
            Status::JwtExpOutOfRange,
        )?;
        string_claim(&payload, "jti", Status::JwtJtiNotString)?;
        let audiences = match payload.get("aud") {
            None => Vec::new(),
            Some(Value::String(a)) => vec![a.as_str().into()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(Into::into).ok_or(Status::JwtAudNotString))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Status::JwtAudNotString),
        };
        let signature = b64url_decode(s).ok_or(Status::JwtSignatureBadBase64)?;
        if signature.is_empty() {
            return Err(Status::JwtBadFormat);
        }
        Ok(Jwt {
            alg: alg.into(),
            kid,
            iss,
            sub,
            audiences,
            iat,
            nbf,
            exp,
            payload,
            payload_b64: p.into(),
            signed_len: h.len() + 1 + p.len(),
            // Canonical, for jsonwebtoken's strict decoder.
            signature_b64: general_purpose::URL_SAFE_NO_PAD.encode(&signature).into(),
            signature_len: signature.len(),
        })
    }

    /// jwt_verify_lib's `verifyTimeConstraint`: `nbf` and `exp`, each with `skew` seconds.
    pub fn check_time(&self, now: u64, skew: u64) -> Status {
        if now.saturating_add(skew) < self.nbf {
            return Status::JwtNotYetValid;
        }
        if self.exp != 0 && now > self.exp.saturating_add(skew) {
            return Status::JwtExpired;
        }
        Status::Ok
    }
}
