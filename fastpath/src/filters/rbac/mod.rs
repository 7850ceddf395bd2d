//! Envoy's RBAC (`envoy.filters.http.rbac`, `envoy.filters.network.rbac`): the policy engine
//! (compiled once per apply, evaluated without allocating), the HTTP filter and the network
//! filter. See `docs/rbac.md`.
//!
//! An engine holds `rules`: an action (ALLOW, DENY, LOG) and policies, checked in name order
//! as Envoy's `std::map` does; a policy matches when any permission and any principal match.
//! ALLOW allows a request some policy matches, DENY denies it, LOG allows every request
//! (and says whether one matched). `shadow_rules` are evaluated and counted, never enforced.
mod http;
mod matcher;
mod metadata;
mod network;
pub mod stats;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::net::IpAddr;

pub use http::{Rbac, Shared};
pub use network::NetworkRbac;

use crate::config::rbac::{RbacAction, RbacRules};
use crate::conn_info::ConnInfo;
use crate::filters::Metadata;
use crate::proxy::forwarded;
use crate::router::RequestView;
use matcher::Matcher;

/// What the policies are evaluated on.
pub struct Input<'a> {
    pub conn: &'a ConnInfo,
    /// The request (HTTP RBAC); `None` for the network filter, where header and path rules
    /// never match.
    pub http: Option<HttpInput<'a>>,
    /// Dynamic metadata set by earlier filters (`filter_metadata[namespace][key]`).
    pub metadata: &'a [Metadata],
}

/// The request side of an `Input`.
pub struct HttpInput<'a> {
    pub view: &'a RequestView<'a>,
    /// The connection manager's `use_remote_address` and `xff_num_trusted_hops`, for
    /// `remote_ip`.
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    /// The remote address, computed on first use.
    remote: OnceCell<IpAddr>,
}

impl<'a> HttpInput<'a> {
    pub fn new(view: &'a RequestView<'a>, use_remote_address: bool, hops: u32) -> HttpInput<'a> {
        HttpInput {
            view,
            use_remote_address,
            xff_num_trusted_hops: hops,
            remote: OnceCell::new(),
        }
    }
}

impl Input<'_> {
    /// Envoy's downstream remote address: the trusted client after x-forwarded-for processing
    /// (HTTP), else the peer.
    fn remote_ip(&self) -> IpAddr {
        let peer = forwarded::peer_ip(self.conn.peer);
        match &self.http {
            None => peer,
            Some(h) => *h.remote.get_or_init(|| {
                let xff = h
                    .view
                    .headers
                    .iter()
                    .filter(|l| l.name.eq_ignore_ascii_case("x-forwarded-for"))
                    .map(|l| l.value);
                forwarded::remote_address(xff, h.use_remote_address, h.xff_num_trusted_hops, peer)
            }),
        }
    }
}

/// One compiled `RBAC` message (`rules` or `shadow_rules`).
pub struct Engine {
    action: RbacAction,
    /// Sorted by name (Envoy keeps them in a `std::map`): the first match is the effective
    /// policy.
    policies: Box<[Policy]>,
}

pub struct Policy {
    pub name: Box<str>,
    /// `rbac_access_denied_matched_policy[<name>]` (whitespace as `_`), made once.
    details: Box<str>,
    permissions: Box<[Matcher]>,
    principals: Box<[Matcher]>,
}

/// `%RESPONSE_CODE_DETAILS%` of a denial no policy matched (an ALLOW engine's).
const DENIED_NONE: &str = "rbac_access_denied_matched_policy[none]";

/// An engine's answer for one request or connection.
pub struct Decision<'e> {
    pub allowed: bool,
    /// The effective policy: the first (by name) that matched.
    pub policy: Option<&'e Policy>,
}

impl<'e> Decision<'e> {
    /// Envoy's response code details of a denial.
    pub fn details(&self) -> &'e str {
        self.policy.map_or(DENIED_NONE, |p| &p.details)
    }
}

impl Engine {
    /// `network`: the engine of a network RBAC, where Envoy rejects `header` rules.
    pub fn compile(cfg: &RbacRules, network: bool, at: &str) -> Result<Engine, String> {
        let mut policies = Vec::with_capacity(cfg.policies.len());
        for (i, p) in cfg.policies.iter().enumerate() {
            let at = format!("{at}.policies[{i}]");
            if p.permissions.is_empty() {
                return Err(format!("{at}.permissions: must not be empty"));
            }
            if p.principals.is_empty() {
                return Err(format!("{at}.principals: must not be empty"));
            }
            let permissions = p
                .permissions
                .iter()
                .enumerate()
                .map(|(k, m)| Matcher::permission(m, network, &format!("{at}.permissions[{k}]")))
                .collect::<Result<_, _>>()?;
            let principals = p
                .principals
                .iter()
                .enumerate()
                .map(|(k, m)| Matcher::principal(m, network, &format!("{at}.principals[{k}]")))
                .collect::<Result<_, _>>()?;
            let sanitized: String = p
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_whitespace() || c == '\x0b' {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            policies.push(Policy {
                name: p.name.as_str().into(),
                details: format!("rbac_access_denied_matched_policy[{sanitized}]").into(),
                permissions,
                principals,
            });
        }
        policies.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        if let Some(w) = policies.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(format!("{at}.policies: duplicate policy {:?}", w[0].name));
        }
        Ok(Engine {
            action: cfg.action,
            policies: policies.into_boxed_slice(),
        })
    }

    pub fn action(&self) -> RbacAction {
        self.action
    }

    /// The first policy (by name) matching `input`.
    fn matched(&self, input: &Input<'_>) -> Option<&Policy> {
        self.policies.iter().find(|p| {
            p.permissions.iter().any(|m| m.matches(input))
                && p.principals.iter().any(|m| m.matches(input))
        })
    }

    /// Envoy's `handleAction`.
    pub fn evaluate(&self, input: &Input<'_>) -> Decision<'_> {
        let policy = self.matched(input);
        let allowed = match self.action {
            RbacAction::Allow => policy.is_some(),
            RbacAction::Deny => policy.is_none(),
            RbacAction::Log => true,
        };
        Decision { allowed, policy }
    }
}
