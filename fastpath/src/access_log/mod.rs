//! Access logs of the HTTP connection manager (`access_log` with Envoy's file, stdout and
//! stderr loggers): formats and filters compiled once per config, a line rendered on the
//! worker when a request ends, written by a per-destination writer thread.
pub mod extra;
pub mod fields;
pub mod filter;
pub mod format;
pub mod head;
pub mod time;
pub mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_operators;

use std::sync::Arc;

use crate::config::access_log::AccessLog as AccessLogCfg;
use crate::stats::{Layout, Registry, Scope};

pub use fields::{ClusterNames, Entry, Fields, LogType, MINOR_HTTP2};
use filter::Filter;
use format::{Format, Needs};
use writer::Sink;

/// `access_log.*`: lines dropped because a writer fell behind.
static LAYOUT: Layout = Layout {
    counters: &["dropped"],
    gauges: &[],
    histograms: &[],
    globals: &[],
    control_counters: &[],
    status_codes: None,
    order: std::sync::OnceLock::new(),
};

struct Compiled {
    format: Format,
    filter: Option<Filter>,
    sink: Arc<Sink>,
}

/// A connection manager's access logs.
pub struct AccessLogs {
    logs: Box<[Compiled]>,
    needs: Needs,
    stats: Arc<Scope>,
}

impl AccessLogs {
    /// `None` when `cfg` is empty (nothing is kept per request then). Errors name
    /// `path.access_log[i]...`.
    pub fn compile(
        cfg: &[AccessLogCfg],
        registry: &Registry,
        path: &str,
    ) -> Result<Option<Box<AccessLogs>>, String> {
        if cfg.is_empty() {
            return Ok(None);
        }
        let mut logs = Vec::with_capacity(cfg.len());
        let mut needs = Needs::default();
        for (i, c) in cfg.iter().enumerate() {
            let at = format!("{path}.access_log[{i}]");
            let format = Format::compile(&c.format).map_err(|e| format!("{at}.format: {e}"))?;
            let n = format.needs();
            needs.req_head |= n.req_head;
            needs.resp_head |= n.resp_head;
            needs.upstream_local |= n.upstream_local;
            needs.remote |= n.remote;
            needs.stream_id |= n.stream_id;
            let filter = match &c.filter {
                Some(f) => Some(Filter::compile(f).map_err(|e| format!("{at}.filter: {e}"))?),
                None => None,
            };
            let sink = writer::sink(&c.sink).map_err(|e| format!("{at}.sink: {e}"))?;
            logs.push(Compiled {
                format,
                filter,
                sink,
            });
        }
        Ok(Some(Box::new(AccessLogs {
            logs: logs.into(),
            needs,
            stats: registry.scope("access_log", &LAYOUT),
        })))
    }

    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Renders and queues the line of every log whose filter passes (on worker `w`).
    pub fn log(&self, e: &Entry<'_>, w: usize) {
        for l in self.logs.iter() {
            if l.filter.as_ref().is_some_and(|f| !f.matches(e)) {
                continue;
            }
            if !l.sink.append(w, |buf| l.format.render(e, buf)) {
                self.stats.add(w, 0, 1);
            }
        }
    }
}
