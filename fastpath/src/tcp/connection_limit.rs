//! `envoy.filters.network.connection_limit`: at most `max_connections` open connections on a
//! filter chain, counted across every worker. A connection over the limit is closed, after
//! `delay` when one is set (the socket is held that long, as Envoy does, so a client that
//! reconnects at once is slowed down). Stats `connection_limit.<stat_prefix>.*`.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::stats::connection_limit;
use crate::config::snapshot;
use crate::stats::{Registry, Scope};

pub struct ConnectionLimit {
    max: u64,
    delay: Option<Duration>,
    shared: Arc<Shared>,
}

struct Shared {
    active: AtomicU64,
    stats: Arc<Scope>,
}

/// One admitted connection's place under a limit; dropping it (when the connection ends)
/// frees the place.
pub struct LimitSlot {
    shared: Arc<Shared>,
    w: usize,
}

impl Drop for LimitSlot {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
        self.shared.stats.gauge_add(
            self.w,
            connection_limit::Gauge::ActiveConnections as usize,
            -1,
        );
    }
}

impl ConnectionLimit {
    pub fn compile(
        c: &snapshot::ConnectionLimit,
        registry: &Registry,
        path: &str,
    ) -> Result<ConnectionLimit, String> {
        if c.stat_prefix.is_empty() {
            return Err(format!("{path}.stat_prefix: must not be empty"));
        }
        if c.max_connections == 0 {
            return Err(format!("{path}.max_connections: must be at least 1"));
        }
        Ok(ConnectionLimit {
            max: c.max_connections,
            delay: (c.delay_ms > 0).then(|| Duration::from_millis(c.delay_ms)),
            shared: Arc::new(Shared {
                active: AtomicU64::new(0),
                stats: registry.scope(
                    &format!("connection_limit.{}", c.stat_prefix),
                    &connection_limit::LAYOUT,
                ),
            }),
        })
    }

    /// A place for a new connection on worker `w`, or None (counted `limited_connections`)
    /// when `max_connections` are open.
    pub fn acquire(&self, w: usize) -> Option<LimitSlot> {
        let s = &self.shared;
        let before = s.active.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            s.active.fetch_sub(1, Ordering::AcqRel);
            s.stats
                .add(w, connection_limit::Counter::LimitedConnections as usize, 1);
            return None;
        }
        s.stats
            .gauge_add(w, connection_limit::Gauge::ActiveConnections as usize, 1);
        Some(LimitSlot {
            shared: s.clone(),
            w,
        })
    }

    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }
}

/// Closes a refused connection, after `delay` if there is one (a local task holds it).
/// `closed` runs once the socket is closed (the refused connection's access log lines).
pub fn close_after(
    stream: tokio::net::TcpStream,
    delay: Option<Duration>,
    closed: Option<impl FnOnce() + 'static>,
) {
    if let Some(d) = delay {
        tokio::task::spawn_local(async move {
            tokio::time::sleep(d).await;
            drop(stream);
            if let Some(f) = closed {
                f();
            }
        });
    } else {
        drop(stream);
        if let Some(f) = closed {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: u64) -> (ConnectionLimit, Registry) {
        let reg = Registry::new(2);
        let c = snapshot::ConnectionLimit {
            stat_prefix: "cl".into(),
            max_connections: max,
            delay_ms: 0,
        };
        (ConnectionLimit::compile(&c, &reg, "f").unwrap(), reg)
    }

    #[test]
    fn places_are_shared_by_workers_and_freed_on_drop() {
        let (l, _reg) = limit(2);
        let a = l.acquire(0).unwrap();
        let _b = l.acquire(1).unwrap();
        assert!(l.acquire(0).is_none());
        assert!(l.acquire(1).is_none());
        drop(a);
        assert!(l.acquire(1).is_some());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let reg = Registry::new(1);
        let mut c = snapshot::ConnectionLimit {
            stat_prefix: String::new(),
            max_connections: 1,
            delay_ms: 0,
        };
        let e = ConnectionLimit::compile(&c, &reg, "x").err().unwrap();
        assert!(e.starts_with("x.stat_prefix"), "{e}");
        c.stat_prefix = "p".into();
        c.max_connections = 0;
        let e = ConnectionLimit::compile(&c, &reg, "x").err().unwrap();
        assert!(e.starts_with("x.max_connections"), "{e}");
    }
}
