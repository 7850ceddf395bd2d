//! Envoy's `jwt_cache_config`: a provider's verified tokens, kept per worker so a token seen
//! again skips parsing and the signature check (its issuer, times and audiences are still
//! checked). Keyed by the token's xxh64 with the whole token compared, so a collision is a
//! miss, never a pass. Oldest entry out first when full (Envoy uses an LRU; for a cache of
//! a few hundred tokens the difference is small). Each worker locks only its own map.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use xxhash_rust::xxh64::xxh64;

use super::token::Jwt;

/// Envoy's `jwt_cache_size` default.
pub const DEFAULT_SIZE: usize = 100;
/// Envoy's `jwt_max_token_size` default: longer tokens are not cached.
pub const MAX_TOKEN: usize = 4096;

pub struct TokenCache {
    workers: Box<[Mutex<Entries>]>,
    size: usize,
    max_token: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<u64, (Box<str>, Arc<Jwt>)>,
    order: VecDeque<u64>,
}

impl TokenCache {
    /// `size` and `max_token` 0: Envoy's defaults.
    pub fn new(workers: usize, size: usize, max_token: usize) -> TokenCache {
        let or = |v: usize, d: usize| if v == 0 { d } else { v };
        TokenCache {
            workers: (0..workers.max(1)).map(|_| Mutex::default()).collect(),
            size: or(size, DEFAULT_SIZE),
            max_token: or(max_token, MAX_TOKEN),
        }
    }

    fn entries(&self, w: usize) -> std::sync::MutexGuard<'_, Entries> {
        self.workers[w % self.workers.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The verified token `token`, if worker `w` has it.
    pub fn get(&self, w: usize, token: &str) -> Option<Arc<Jwt>> {
        if token.len() > self.max_token {
            return None;
        }
        let e = self.entries(w);
        match e.map.get(&xxh64(token.as_bytes(), 0)) {
            Some((t, jwt)) if **t == *token => Some(jwt.clone()),
            _ => None,
        }
    }

    /// Keeps a verified token for worker `w`.
    pub fn put(&self, w: usize, token: &str, jwt: Arc<Jwt>) {
        if token.len() > self.max_token {
            return;
        }
        let key = xxh64(token.as_bytes(), 0);
        let mut e = self.entries(w);
        if e.map.contains_key(&key) {
            return;
        }
        while e.map.len() >= self.size {
            match e.order.pop_front() {
                Some(old) => {
                    e.map.remove(&old);
                }
                None => break,
            }
        }
        e.map.insert(key, (token.into(), jwt));
        e.order.push_back(key);
    }
}
