//! Per-worker upstream keep-alive pool, keyed by host: idle connections up to the cluster's
//! `max_idle_per_host`, closed after `idle_timeout_ms`, at `max_connection_duration_ms` or
//! when the upstream closes them.
mod auto;
mod buffers;
mod connect;

pub use buffers::{BUF_SIZE, BufferPool};
pub use connect::{ConnectError, UpConn, connect, connect_tcp, open_counted, uncount};

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::stream::Stream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest sleep of the sweeper; also how soon an upstream's close of an idle connection is
/// noticed at the latest (it is always noticed before reuse).
const MAX_SWEEP: Duration = Duration::from_secs(1);

struct Idle {
    conn: UpConn,
    since: Instant,
}

#[derive(Default)]
pub struct UpstreamPool {
    idle: RefCell<HashMap<u64, Vec<Idle>>>,
    /// When the sweeper will next run; `put` wakes it when a deadline comes earlier.
    next_sweep: Cell<Option<Instant>>,
    wake: Notify,
    closed: Cell<bool>,
}

impl UpstreamPool {
    /// The most recently used live idle connection to `host_id`.
    pub fn take(&self, host_id: u64) -> Option<UpConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&host_id)?;
        while let Some(mut e) = list.pop() {
            let now = Instant::now();
            if e.conn.past_max_duration(|| now) {
                continue;
            }
            if expired(&e, now) {
                e.conn.note_idle_timeout();
                continue;
            }
            if alive(&e.conn.stream) {
                e.conn.reused = true;
                return Some(e.conn);
            }
            e.conn.remote_closed = true;
        }
        None
    }

    /// Keeps `conn` for reuse if its cluster allows another idle connection to its host.
    pub fn put(&self, conn: UpConn) {
        if conn.bridged
            || self.closed.get()
            || conn.cluster.removed.load(Ordering::Relaxed)
            || conn.host.removed.load(Ordering::Relaxed)
        {
            return;
        }
        let max = conn.cluster.max_idle_per_host;
        let timeout = conn.cluster.idle_timeout;
        let now = Instant::now();
        if conn.past_max_duration(|| now) {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.host.id).or_default();
        if list.len() >= max {
            return;
        }
        let aged_at = conn.max_duration_at();
        list.push(Idle { conn, since: now });
        let deadline = [timeout.map(|t| now + t), aged_at]
            .into_iter()
            .flatten()
            .min();
        if let Some(deadline) = deadline
            && self.next_sweep.get().is_none_or(|n| deadline < n)
        {
            self.next_sweep.set(Some(deadline));
            self.wake.notify_one();
        }
    }

    /// Closes expired, dead and retired connections; returns the next expiry.
    pub fn sweep(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain_mut(|e| {
                if e.conn.cluster.removed.load(Ordering::Relaxed)
                    || e.conn.host.removed.load(Ordering::Relaxed)
                {
                    return false;
                }
                if e.conn.past_max_duration(|| now) {
                    return false;
                }
                if expired(e, now) {
                    e.conn.note_idle_timeout();
                    return false;
                }
                if !alive(&e.conn.stream) {
                    e.conn.remote_closed = true;
                    return false;
                }
                let idle_at = e.conn.cluster.idle_timeout.map(|t| e.since + t);
                for d in [idle_at, e.conn.max_duration_at()].into_iter().flatten() {
                    next = Some(next.map_or(d, |n: Instant| n.min(d)));
                }
                true
            });
            !list.is_empty()
        });
        next
    }

    /// Closes all idle connections; with `forever`, keeps none from now on (drain).
    pub fn clear(&self, forever: bool) {
        if forever {
            self.closed.set(true);
        }
        self.idle.borrow_mut().clear();
        // HTTP/2 connections: no new streams; each closes once its streams are done.
        crate::http2::client::clear();
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// The per-worker task that closes idle connections on time, without polling faster
    /// than the earliest deadline (at most every `MAX_SWEEP`).
    pub async fn run_sweeper(self: Rc<Self>) {
        loop {
            let next = self.sweep();
            let at = next.map_or(Instant::now() + MAX_SWEEP, |n| {
                n.min(Instant::now() + MAX_SWEEP)
            });
            self.next_sweep.set(Some(at));
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

fn expired(e: &Idle, now: Instant) -> bool {
    e.conn
        .cluster
        .idle_timeout
        .is_some_and(|t| now >= e.since + t)
}

/// An idle connection is alive if it is not readable (a readable idle connection has either
/// been closed by the upstream or sent bytes nobody asked for). Uses the reactor's cached
/// readiness, so the common case costs no syscall.
fn alive(stream: &Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match stream.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}
