//! RBAC stats with Envoy's names: `allowed` / `denied` under the rules prefix and
//! `shadow_allowed` / `shadow_denied` under the shadow prefix, joined as Envoy's
//! `statPrefixJoin` does.
use std::sync::Arc;

use crate::stats::{Registry, Scope, stat_set};

stat_set! { rbac, prefix_codes: None,
    counters {
        Allowed => "allowed",
        Denied => "denied",
        ShadowAllowed => "shadow_allowed",
        ShadowDenied => "shadow_denied",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}
use rbac::Counter;

/// Envoy's `statPrefixJoin`: `prefix` and `token` with one dot between them.
pub(super) fn join(prefix: &str, token: &str) -> String {
    if prefix.is_empty() {
        token.to_string()
    } else if prefix.ends_with('.') {
        format!("{prefix}{token}")
    } else {
        format!("{prefix}.{token}")
    }
}

/// A scope's name for Envoy's stat prefix (the scope adds the dot before each counter).
fn scope_name(prefix: &str) -> &str {
    prefix.strip_suffix('.').unwrap_or(prefix)
}

/// The counters of one RBAC filter: `allowed` / `denied` in the rules scope,
/// `shadow_allowed` / `shadow_denied` in the shadow scope. Every RBAC scope has all four
/// (the registry keeps one layout per name, and two filters may share a name for different
/// halves), so a prefixed scope also shows the other half's names at 0.
pub struct RbacStats {
    enforced: Arc<Scope>,
    shadow: Arc<Scope>,
}

impl RbacStats {
    /// `enforced` and `shadow` are Envoy's stat prefixes of the two halves.
    pub(super) fn new(registry: &Registry, enforced: &str, shadow: &str) -> RbacStats {
        RbacStats {
            enforced: registry.scope(scope_name(enforced), &rbac::LAYOUT),
            shadow: registry.scope(scope_name(shadow), &rbac::LAYOUT),
        }
    }

    pub(super) fn enforced(&self, w: usize, allowed: bool) {
        let c = if allowed {
            Counter::Allowed
        } else {
            Counter::Denied
        };
        self.enforced.add(w, c as usize, 1);
    }

    pub(super) fn shadow(&self, w: usize, allowed: bool) {
        let c = if allowed {
            Counter::ShadowAllowed
        } else {
            Counter::ShadowDenied
        };
        self.shadow.add(w, c as usize, 1);
    }
}
