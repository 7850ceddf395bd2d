//! `JwtRequirement` trees and their evaluation (Envoy's verifiers): a provider (with its
//! audiences or others), any / all of a list, and the `allow_missing` /
//! `allow_missing_or_failed` checks that take the token of any provider.
use std::collections::HashMap;
use std::sync::Arc;

use super::extract::{self, Location};
use super::status::Status;
use super::token::Jwt;
use super::{Effects, Shared};
use crate::config::jwt as cfg;
use crate::router::RequestView;

pub enum Requirement {
    Provider {
        provider: usize,
        audiences: Option<Box<[Box<str>]>>,
    },
    Any(Box<[Requirement]>),
    All(Box<[Requirement]>),
    AllowMissingOrFailed,
    AllowMissing,
}

impl Requirement {
    pub fn compile(
        r: &cfg::JwtRequirement,
        providers: &HashMap<&str, usize>,
        at: &str,
    ) -> Result<Requirement, String> {
        let find = |name: &str, at: &str| {
            providers
                .get(name)
                .copied()
                .ok_or_else(|| format!("{at}: provider {name:?} is not in providers"))
        };
        let list = |items: &[cfg::JwtRequirement], field: &str| {
            if items.len() < 2 {
                return Err(format!("{at}.{field}.requirements: needs at least 2 items"));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Requirement::compile(c, providers, &format!("{at}.{field}.requirements[{i}]"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match r {
            cfg::JwtRequirement::ProviderName(n) => Requirement::Provider {
                provider: find(n, &format!("{at}.provider_name"))?,
                audiences: None,
            },
            cfg::JwtRequirement::ProviderAndAudiences {
                provider_name,
                audiences,
            } => Requirement::Provider {
                provider: find(
                    provider_name,
                    &format!("{at}.provider_and_audiences.provider_name"),
                )?,
                audiences: Some(audiences.iter().map(|a| a.as_str().into()).collect()),
            },
            cfg::JwtRequirement::RequiresAny(items) => {
                Requirement::Any(list(items, "requires_any")?.into_boxed_slice())
            }
            cfg::JwtRequirement::RequiresAll(items) => {
                Requirement::All(list(items, "requires_all")?.into_boxed_slice())
            }
            cfg::JwtRequirement::AllowMissingOrFailed => Requirement::AllowMissingOrFailed,
            cfg::JwtRequirement::AllowMissing => Requirement::AllowMissing,
        })
    }
}

/// One request's check.
pub struct Check<'s, 'r> {
    pub shared: &'s Shared,
    pub req: &'s RequestView<'r>,
    pub now: u64,
    pub effects: Effects,
    /// Tokens checked by a named provider (hits and misses of its token cache).
    pub tokens_checked: u64,
    pub cache_hits: u64,
    /// The worker (its token cache).
    pub w: usize,
}

impl Check<'_, '_> {
    pub fn run(&mut self, r: &Requirement) -> Status {
        match r {
            Requirement::Provider {
                provider,
                audiences,
            } => self.provider(*provider, audiences.as_deref()),
            Requirement::All(children) => {
                for c in children.iter() {
                    let s = self.run(c);
                    if s != Status::Ok {
                        return s;
                    }
                }
                Status::Ok
            }
            Requirement::Any(children) => {
                // Envoy's AnyVerifier: the first success wins; otherwise the last failure
                // that is not "missing" or "other issuer" (a token at a shared location
                // that belongs to another provider), else "other issuer", else "missing".
                let (mut failure, mut foreign) = (None, false);
                for c in children.iter() {
                    match self.run(c) {
                        Status::Ok => return Status::Ok,
                        Status::JwtMissed => {}
                        Status::JwtUnknownIssuer => foreign = true,
                        s => failure = Some(s),
                    }
                }
                failure.unwrap_or(if foreign {
                    Status::JwtUnknownIssuer
                } else {
                    Status::JwtMissed
                })
            }
            Requirement::AllowMissingOrFailed => {
                self.any_provider(false);
                Status::Ok
            }
            Requirement::AllowMissing => match self.any_provider(true) {
                Status::JwtMissed => Status::Ok,
                s => s,
            },
        }
    }

    /// A provider's tokens: all must be good.
    fn provider(&mut self, p: usize, audiences: Option<&[Box<str>]>) -> Status {
        let provider = &self.shared.providers[p];
        let found = extract::extract(&provider.locations, self.req);
        if found.is_empty() {
            return Status::JwtMissed;
        }
        // Envoy checks the last token found first.
        for f in found.iter().rev() {
            self.tokens_checked += 1;
            let loc = &provider.locations[f.at];
            let cache = provider.cache.as_ref();
            let (jwt, cached) = match cache.and_then(|c| c.get(self.w, &f.token)) {
                Some(jwt) => {
                    self.cache_hits += 1;
                    (jwt, true)
                }
                None => match Jwt::parse(&f.token) {
                    Ok(jwt) => (Arc::new(jwt), false),
                    Err(s) => return s,
                },
            };
            let s = if !issuer_allowed(std::slice::from_ref(&provider.issuer), &jwt.iss) {
                Status::JwtUnknownIssuer
            } else {
                let effects = &mut self.effects;
                provider.verify(&jwt, &f.token, loc, audiences, self.now, effects, cached)
            };
            if let Some(c) = cache
                && s == Status::Ok
                && !cached
            {
                c.put(self.w, &f.token, jwt);
            }
            if s != Status::Ok {
                return s;
            }
        }
        Status::Ok
    }

    /// Tokens at any provider's locations, each checked by the provider of its issuer. The
    /// status of the last one checked (Envoy's allow-missing authenticator).
    fn any_provider(&mut self, _allow_missing: bool) -> Status {
        let s = self.shared;
        let found = extract::extract(&s.all_locations, self.req);
        let mut last = Status::JwtMissed;
        for f in found.iter().rev() {
            last = match Jwt::parse(&f.token) {
                Err(st) => st,
                Ok(jwt) if !issuer_allowed(&s.location_issuers[f.at], &jwt.iss) => {
                    Status::JwtUnknownIssuer
                }
                Ok(jwt) => match by_issuer(s, &jwt.iss) {
                    None => Status::JwtUnknownIssuer,
                    Some(p) => {
                        let loc: &Location = &s.all_locations[f.at];
                        s.providers[p].verify(
                            &jwt,
                            &f.token,
                            loc,
                            None,
                            self.now,
                            &mut self.effects,
                            false,
                        )
                    }
                },
            };
        }
        last
    }
}

/// A location's issuer check: an empty issuer (a provider without `issuer`) allows any.
fn issuer_allowed(issuers: &[Box<str>], iss: &str) -> bool {
    issuers.iter().any(|i| i.is_empty() || **i == *iss)
}

/// The first provider with this issuer, else the first without one.
fn by_issuer(s: &Shared, iss: &str) -> Option<usize> {
    s.providers
        .iter()
        .position(|p| *p.issuer == *iss)
        .or_else(|| s.providers.iter().position(|p| p.issuer.is_empty()))
}
