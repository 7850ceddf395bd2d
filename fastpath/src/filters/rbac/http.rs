//! `envoy.filters.http.rbac`: the shadow engine, then the enforcing one, on each routed
//! request; a denial is Envoy's 403 `RBAC: access denied` with the response code details
//! `rbac_access_denied_matched_policy[<policy>|none]` (no response flag, as Envoy 1.40).
//! `RBACPerRoute` replaces the engines for a route (no `rbac`: the filter is off there); the
//! stats are the filter's.
use std::sync::Arc;

use serde_json::Value;

use super::stats::{RbacStats, join};
use super::{Engine, HttpInput, Input};
use crate::config::rbac::{HttpRbac, RbacAction, RbacPerRoute};
use crate::config::snapshot;
use crate::filters::{Ctx, FilterReply, FilterRequest, Metadata, Verdict};

const BODY: &[u8] = b"RBAC: access denied";
const NAMESPACE: &str = "envoy.filters.http.rbac";
const COMMON: &str = "envoy.common";

/// What every config of one RBAC filter shares: its stats and the connection manager's
/// client address settings.
pub struct Shared {
    stats: RbacStats,
    use_remote_address: bool,
    xff_num_trusted_hops: u32,
    /// A later filter can read this one's dynamic metadata (only RBAC filters read it in
    /// meshcore): otherwise none is written, so a request allocates nothing here.
    emit_metadata: bool,
}

impl Shared {
    /// `cfg` is the filter-level config, `hcm` the connection manager, `later` the filters
    /// after this one.
    pub fn new(
        cfg: &HttpRbac,
        ctx: &Ctx<'_>,
        hcm: &snapshot::HttpConnectionManager,
        later: &[snapshot::HttpFilter],
    ) -> Arc<Shared> {
        let base = format!("http.{}.rbac.", ctx.hcm_prefix);
        Arc::new(Shared {
            stats: RbacStats::new(
                ctx.registry,
                &join(&base, &cfg.rules_stat_prefix),
                &join(&base, &cfg.shadow_rules_stat_prefix),
            ),
            use_remote_address: hcm.use_remote_address,
            xff_num_trusted_hops: hcm.xff_num_trusted_hops,
            emit_metadata: later
                .iter()
                .any(|f| matches!(f.config, snapshot::HttpFilterConfig::Rbac(_))),
        })
    }
}

/// One config of the filter (filter level or a route's `RBACPerRoute`).
pub struct Rbac {
    engine: Option<Engine>,
    shadow: Option<Engine>,
    shared: Arc<Shared>,
    /// Dynamic metadata keys: `<rules_stat_prefix>enforced_engine_result`, ... (Envoy 1.40).
    keys: Keys,
}

struct Keys {
    enforced_result: Box<str>,
    enforced_policy: Box<str>,
    shadow_result: Box<str>,
    shadow_policy: Box<str>,
}

impl Rbac {
    /// `at` names the config in errors.
    pub fn compile(cfg: &RbacPerRoute, shared: &Arc<Shared>, at: &str) -> Result<Rbac, String> {
        let empty = HttpRbac::default();
        let c = cfg.rbac.as_ref().unwrap_or(&empty);
        let engine = |r: &Option<_>, field: &str| {
            r.as_ref()
                .map(|r| Engine::compile(r, false, &format!("{at}.{field}")))
                .transpose()
        };
        let (rp, sp) = (&c.rules_stat_prefix, &c.shadow_rules_stat_prefix);
        Ok(Rbac {
            engine: engine(&c.rules, "rules")?,
            shadow: engine(&c.shadow_rules, "shadow_rules")?,
            shared: shared.clone(),
            keys: Keys {
                enforced_result: format!("{rp}enforced_engine_result").into(),
                enforced_policy: format!("{rp}enforced_effective_policy_id").into(),
                shadow_result: format!("{sp}shadow_engine_result").into(),
                shadow_policy: format!("{sp}shadow_effective_policy_id").into(),
            },
        })
    }

    /// Envoy's `RoleBasedAccessControlFilter::decodeHeaders`; true when the request is denied
    /// (the chain stops with the 403).
    pub fn on_request<'v>(
        &'v self,
        req: &FilterRequest<'_>,
        w: usize,
        verdict: &mut Verdict<'v>,
    ) -> bool {
        if self.engine.is_none() && self.shadow.is_none() {
            return false;
        }
        let sh = &*self.shared;
        let (shadow, enforced) = {
            let input = Input {
                conn: req.downstream,
                http: Some(HttpInput::new(
                    req.view,
                    sh.use_remote_address,
                    sh.xff_num_trusted_hops,
                )),
                metadata: &verdict.metadata,
            };
            let shadow = self.shadow.as_ref().map(|e| e.evaluate(&input));
            let enforced = self
                .engine
                .as_ref()
                .map(|e| (e.action(), e.evaluate(&input)));
            (shadow, enforced)
        };
        if let Some(d) = &shadow {
            sh.stats.shadow(w, d.allowed);
            if sh.emit_metadata {
                let k = &self.keys;
                push(
                    verdict,
                    NAMESPACE,
                    &k.shadow_policy,
                    d.policy.map(|p| &*p.name),
                );
                push(
                    verdict,
                    NAMESPACE,
                    &k.shadow_result,
                    Some(result(d.allowed)),
                );
            }
        }
        let Some((action, d)) = enforced else {
            return false;
        };
        if sh.emit_metadata {
            let k = &self.keys;
            push(
                verdict,
                NAMESPACE,
                &k.enforced_policy,
                d.policy.map(|p| &*p.name),
            );
            push(
                verdict,
                NAMESPACE,
                &k.enforced_result,
                Some(result(d.allowed)),
            );
            if action == RbacAction::Log {
                verdict.metadata.push(Metadata {
                    namespace: COMMON,
                    key: "access_log_hint".into(),
                    value: Value::Bool(d.policy.is_some()),
                });
            }
        }
        sh.stats.enforced(w, d.allowed);
        if d.allowed {
            return false;
        }
        verdict.reply = Some(FilterReply {
            status: 403,
            body: BODY,
            headers: Vec::new(),
        });
        verdict.details = d.details();
        true
    }
}

fn result(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

fn push(verdict: &mut Verdict<'_>, namespace: &'static str, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        verdict.metadata.push(Metadata {
            namespace,
            key: key.into(),
            value: Value::String(v.to_string()),
        });
    }
}
