//! `envoy.filters.network.rbac`: decided once per connection, when it is accepted (after the
//! TLS handshake when the chain terminates TLS): the shadow engine is counted, and a denial
//! by the enforcing engine closes the connection. Envoy decides on the connection's first
//! bytes; the result is the same for the rules meshcore supports (they read only the
//! connection), but meshcore never connects upstream for a denied `tcp_proxy` connection.
//! `ONE_TIME_ON_FIRST_BYTE` and `CONTINUOUS` behave alike: nothing a network rule reads
//! changes after the connection is accepted.
use super::stats::{RbacStats, join};
use super::{Engine, Input};
use crate::config::rbac::NetworkRbac as Config;
use crate::conn_info::ConnInfo;
use crate::stats::Registry;

pub struct NetworkRbac {
    engine: Option<Engine>,
    shadow: Option<Engine>,
    stats: RbacStats,
}

impl NetworkRbac {
    /// Stats are `<stat_prefix>.rbac.{allowed,denied}` and
    /// `<stat_prefix>.rbac.<shadow_rules_stat_prefix>.shadow_{allowed,denied}`.
    pub fn compile(c: &Config, registry: &Registry, at: &str) -> Result<NetworkRbac, String> {
        if c.stat_prefix.is_empty() {
            return Err(format!("{at}.stat_prefix: must not be empty"));
        }
        let base = join(&c.stat_prefix, "rbac.");
        let engine = |r: &Option<_>, field: &str| {
            r.as_ref()
                .map(|r| Engine::compile(r, true, &format!("{at}.{field}")))
                .transpose()
        };
        Ok(NetworkRbac {
            engine: engine(&c.rules, "rules")?,
            shadow: engine(&c.shadow_rules, "shadow_rules")?,
            stats: RbacStats::new(registry, &base, &join(&base, &c.shadow_rules_stat_prefix)),
        })
    }

    /// Evaluates the connection (worker `w`): false closes it.
    pub fn allows(&self, conn: &ConnInfo, w: usize) -> bool {
        self.decide(conn, w).is_ok()
    }

    /// Evaluates the connection (worker `w`): `Err` closes it, with Envoy's connection
    /// termination details (`rbac_access_denied_matched_policy[<policy>|none]`).
    pub fn decide(&self, conn: &ConnInfo, w: usize) -> Result<(), &str> {
        let input = Input {
            conn,
            http: None,
            metadata: &[],
        };
        if let Some(e) = &self.shadow {
            self.stats.shadow(w, e.evaluate(&input).allowed);
        }
        match &self.engine {
            Some(e) => {
                let d = e.evaluate(&input);
                self.stats.enforced(w, d.allowed);
                if d.allowed { Ok(()) } else { Err(d.details()) }
            }
            None => Ok(()),
        }
    }
}
