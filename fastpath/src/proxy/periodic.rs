//! The connection manager's `access_log_options.access_log_flush_interval`: a
//! `DownstreamPeriodic` line every interval while a request is in progress.
//!
//! The request future borrows the connection (and its request record) mutably for the whole
//! request, so the timer cannot read the record. Instead the interval runs next to the
//! request future in the connection's task (`drive`: one `select!`), and reads a copy of the
//! record that the request code publishes at its state changes (routed, sent upstream,
//! response head sent, tunnel up) plus body byte counters the relays add to. All of it
//! exists only on a connection whose connection manager has the option: without it the
//! connection holds `None` and every hook is one branch on it (no timer, no allocation).
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::access_log::request_entry;
use super::record::RequestRecord;
use super::{Conn, Flow};
use crate::access_log::LogType;
use crate::compiled::ListenerView;
use crate::conn_info::ConnInfo;

/// One connection's periodic line state (shared by the connection and its timer).
pub(super) struct Periodic {
    every: Duration,
    /// The connection, as the line shows it.
    info: ConnInfo,
    /// The request's record as of its last published state change.
    snap: RefCell<RequestRecord>,
    /// Body bytes read from the client so far, on top of `received_base`.
    received: Cell<u64>,
    received_base: Cell<u64>,
    /// Bytes written to the client so far, on top of `sent_base`, less `sent_skip` (the
    /// response head, which the relay counts with the body).
    sent: Cell<u64>,
    sent_base: Cell<u64>,
    sent_skip: Cell<u64>,
}

impl Periodic {
    pub(super) fn new(every: Duration, info: ConnInfo) -> Periodic {
        Periodic {
            every,
            info,
            snap: RefCell::new(RequestRecord::default()),
            received: Cell::new(0),
            received_base: Cell::new(0),
            sent: Cell::new(0),
            sent_base: Cell::new(0),
            sent_skip: Cell::new(0),
        }
    }

    pub(super) fn every(&self) -> Duration {
        self.every
    }

    /// A new request: nothing to show until the request code publishes its head.
    fn reset(&self) {
        let mut s = self.snap.borrow_mut();
        s.status = 0;
        if let Some(l) = s.log.as_deref_mut() {
            l.ready = false;
        }
        for c in [
            &self.received,
            &self.received_base,
            &self.sent,
            &self.sent_base,
            &self.sent_skip,
        ] {
            c.set(0);
        }
    }

    /// Copies the record (the request's state changed).
    fn publish(&self, record: &RequestRecord) {
        self.snap.borrow_mut().clone_from(record);
    }

    /// Runs `request` to its end, writing a `DownstreamPeriodic` line every interval from its
    /// start (as Envoy's stream timer) while it has a published head.
    pub(super) async fn drive(
        &self,
        request: impl Future<Output = Flow>,
        view: &ListenerView,
        w: usize,
    ) -> Flow {
        self.reset();
        let mut request = std::pin::pin!(request);
        let mut tick = tokio::time::interval_at(Instant::now() + self.every, self.every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                flow = &mut request => return flow,
                _ = tick.tick() => self.write(view, w),
            }
        }
    }

    /// The line of the request as it stands, with the byte counts so far.
    fn write(&self, view: &ListenerView, w: usize) {
        let Some(logs) = view.hcm.access_log.as_deref() else {
            return;
        };
        let mut snap = self.snap.borrow_mut();
        let (status, flags) = (snap.status, snap.flags);
        let Some(l) = snap.log.as_deref_mut().filter(|l| l.ready) else {
            return;
        };
        l.bytes_received = self.received_base.get() + self.received.get();
        l.bytes_sent =
            (self.sent_base.get() + self.sent.get()).saturating_sub(self.sent_skip.get());
        let end = Instant::now().into_std();
        let entry = request_entry(
            l,
            view,
            &self.info,
            (status, flags),
            end,
            LogType::DownstreamPeriodic,
        );
        logs.log(&entry, w);
    }
}

impl Conn {
    /// Sets up (or drops, after a config update) the connection's periodic line state for
    /// the next request.
    pub(super) fn periodic_for(&mut self, view: &ListenerView) {
        let ms = view.hcm.cfg.access_log_flush_interval_ms;
        if ms == 0 || view.hcm.access_log.is_none() {
            self.periodic = None;
            return;
        }
        let every = Duration::from_millis(ms);
        if self.periodic.as_ref().is_none_or(|p| p.every() != every) {
            let info = ConnInfo::clone(&self.down.info);
            self.periodic = Some(std::rc::Rc::new(Periodic::new(every, info)));
        }
    }

    /// Serves one request with its periodic lines (the connection has `periodic`); what it
    /// holds lives in the request's boxed future, not in the idle connection's.
    pub(super) async fn serve_periodic(&mut self) -> Flow {
        let Some(p) = self.periodic.clone() else {
            return self.serve_request().await;
        };
        let (view, w) = (self.view.clone(), self.worker.index);
        p.drive(self.serve_request(), &view, w).await
    }

    /// The request's state changed: the periodic line shows it from now on.
    #[inline]
    pub(super) fn publish(&self) {
        if let Some(p) = self.periodic.as_deref() {
            p.publish(&self.record);
        }
    }
}

impl Conn {
    /// An attempt's request head and the `prefix` body bytes behind it went upstream on `up`:
    /// the line shows the upstream connection from now on.
    pub(super) fn periodic_sent_upstream(&mut self, up: &crate::pool::UpConn, prefix: usize) {
        let Some(p) = self.periodic.clone() else {
            return;
        };
        if let Some(l) = self.record.log.as_deref_mut()
            && l.needs.upstream_local
        {
            l.upstream_local = up.stream.socket().and_then(|s| s.local_addr().ok());
        }
        p.received.set(prefix as u64);
        p.publish(&self.record);
    }

    /// Body bytes of the request forwarded upstream.
    #[inline]
    pub(super) fn periodic_received(&self, n: usize) {
        if let Some(p) = self.periodic.as_deref() {
            p.received.set(p.received.get() + n as u64);
        }
    }
}

impl Conn {
    /// The response head went downstream: the line shows the response's bytes so far, which
    /// the relay counts into the returned counter (head included: `head_len` is skipped).
    pub(super) fn periodic_response<'p>(&self, p: &'p Periodic, head_len: usize) -> &'p Cell<u64> {
        p.sent_base.set(0);
        p.sent_skip.set(head_len as u64);
        p.publish(&self.record);
        &p.sent
    }

    /// The tunnel is up: the line shows its bytes so far (counted into `p`'s counters on top
    /// of what the record has).
    pub(super) fn periodic_tunnel<'p>(&self, p: &'p Periodic) -> (&'p Cell<u64>, &'p Cell<u64>) {
        let (r, s) = self
            .record
            .log
            .as_deref()
            .map_or((0, 0), |l| (l.bytes_received, l.bytes_sent));
        p.received_base.set(r);
        p.sent_base.set(s);
        p.received.set(0);
        p.sent.set(0);
        p.sent_skip.set(0);
        p.publish(&self.record);
        (&p.received, &p.sent)
    }
}
