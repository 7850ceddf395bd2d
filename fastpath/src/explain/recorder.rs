//! The router `Observer` explain uses: records the virtual host choice and every condition
//! of every route checked (exhaustively, to name all the conditions that failed).
use crate::router::observe::{Condition, DomainMatch, Observer};

/// How the virtual host was chosen: the kind of domain and its pattern (lower case).
#[derive(Debug)]
pub struct DomainChoice {
    pub index: usize,
    pub kind: &'static str,
    pub pattern: String,
}

/// One route checked, with each condition's result in the router's order.
#[derive(Debug)]
pub struct RouteTrace {
    pub index: usize,
    pub conditions: Vec<(Condition, bool)>,
}

impl RouteTrace {
    pub fn matched(&self) -> bool {
        self.conditions.iter().all(|(_, m)| *m)
    }
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub vhost: Option<DomainChoice>,
    pub routes: Vec<RouteTrace>,
}

impl Observer for Recorder {
    const EXHAUSTIVE: bool = true;

    fn virtual_host(&mut self, index: usize, by: DomainMatch<'_>) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (kind, pattern) = match by {
            DomainMatch::Exact(h) => ("exact", text(h)),
            DomainMatch::Suffix(f) => ("suffix wildcard", format!("*{}", text(f))),
            DomainMatch::Prefix(f) => ("prefix wildcard", format!("{}*", text(f))),
            DomainMatch::Any => ("catch-all", "*".to_string()),
        };
        self.vhost = Some(DomainChoice {
            index,
            kind,
            pattern,
        });
    }

    fn route(&mut self, index: usize) {
        self.routes.push(RouteTrace {
            index,
            conditions: Vec::new(),
        });
    }

    fn condition(&mut self, condition: Condition, matched: bool) {
        if let Some(r) = self.routes.last_mut() {
            r.conditions.push((condition, matched));
        }
    }
}
