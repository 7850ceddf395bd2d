//! RBAC stats with Envoy's names: `allowed` / `denied` under the rules prefix and
//! `shadow_allowed` / `shadow_denied` under the shadow prefix, joined as Envoy's
//! `statPrefixJoin` does.
use std::sync::Arc;

use crate::stats::{Registry, Scope, stat_set};

stat_set! { rbac_both, prefix_codes: None,
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

stat_set! { rbac_enforced, prefix_codes: None,
    counters {
        Allowed => "allowed",
        Denied => "denied",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}

stat_set! { rbac_shadow, prefix_codes: None,
    counters {
        ShadowAllowed => "shadow_allowed",
        ShadowDenied => "shadow_denied",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}

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

/// The four counters of one RBAC filter.
pub struct RbacStats {
    enforced: (Arc<Scope>, usize, usize),
    shadow: (Arc<Scope>, usize, usize),
}

impl RbacStats {
    /// `base` is the filter's namespace (`http.<hcm>.rbac.`, `<stat_prefix>.rbac.`).
    pub(super) fn new(registry: &Registry, enforced: &str, shadow: &str) -> RbacStats {
        let (e, s) = (scope_name(enforced), scope_name(shadow));
        if e == s {
            let both = registry.scope(e, &rbac_both::LAYOUT);
            use rbac_both::Counter as C;
            return RbacStats {
                enforced: (both.clone(), C::Allowed as usize, C::Denied as usize),
                shadow: (both, C::ShadowAllowed as usize, C::ShadowDenied as usize),
            };
        }
        use rbac_enforced::Counter as E;
        use rbac_shadow::Counter as S;
        RbacStats {
            enforced: (
                registry.scope(e, &rbac_enforced::LAYOUT),
                E::Allowed as usize,
                E::Denied as usize,
            ),
            shadow: (
                registry.scope(s, &rbac_shadow::LAYOUT),
                S::ShadowAllowed as usize,
                S::ShadowDenied as usize,
            ),
        }
    }

    pub(super) fn enforced(&self, w: usize, allowed: bool) {
        let (scope, a, d) = &self.enforced;
        scope.add(w, if allowed { *a } else { *d }, 1);
    }

    pub(super) fn shadow(&self, w: usize, allowed: bool) {
        let (scope, a, d) = &self.shadow;
        scope.add(w, if allowed { *a } else { *d }, 1);
    }
}
