//! The connection manager's per-request timers, as Envoy's: the stream idle timeout (HCM
//! `stream_idle_timeout`, replaced by the route's `idle_timeout`) and the request timeout
//! (`request_timeout`), the stream duration limit (`max_stream_duration`, see
//! `stream_duration.rs`), and the local reply when one fires before the response started.
use std::time::Duration;

use tokio::time::Instant;

use super::prepare::ReqInfo;
use super::{Conn, Flow, LocalBody, ReqBody, RqActive};
use crate::compiled::Hcm;
use crate::config::snapshot::StreamTimeouts;
use crate::local_reply::ResponseFlag;
use crate::router::Selection;
use crate::stats::sets::http;

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    /// No bytes flowed either way for the idle timeout (`stream timeout`, flag SI).
    Idle,
    /// The request was not received in full within `request_timeout` (`request timeout`).
    Request,
    /// The stream lasted its `max_stream_duration` (or `grpc-timeout`): `downstream duration
    /// timeout`, no flag, details `max_duration_timeout`.
    Duration,
}

/// The timers of one request. Envoy restarts the idle timer when the head is decoded, on
/// every read of request body and every write of response bytes; head bytes trickling in do
/// not restart it. The request timer runs from the first byte until the request is complete
/// or the response starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct StreamTimers {
    idle: Option<Duration>,
    idle_at: Option<Instant>,
    request_at: Option<Instant>,
    /// When the stream's first byte arrived (the duration limit counts from it).
    start: Instant,
    duration_at: Option<Instant>,
    /// The request is gRPC (a duration reply carries `grpc-status: 4`).
    grpc: bool,
}

fn ms(v: u64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v))
}

impl StreamTimers {
    /// The timers of a request whose first byte arrived at `start`.
    pub fn start(cfg: &StreamTimeouts, start: Instant) -> StreamTimers {
        let idle = ms(cfg.stream_idle_timeout_ms);
        StreamTimers {
            idle,
            idle_at: idle.map(|d| start + d),
            request_at: ms(cfg.request_timeout_ms).map(|d| start + d),
            start,
            duration_at: ms(cfg.max_stream_duration_ms).map(|d| start + d),
            grpc: false,
        }
    }

    /// The route set the stream duration limit (`None`: none), counted from the first byte;
    /// `grpc`: the request is gRPC.
    pub fn duration(&mut self, limit: Option<Duration>, grpc: bool) {
        self.duration_at = limit.map(|d| self.start + d);
        self.grpc = grpc;
    }

    /// When the stream duration limit ends the stream.
    pub fn duration_at(&self) -> Option<Instant> {
        self.duration_at
    }

    /// The request is gRPC (as the route's duration limit saw it).
    pub fn grpc(&self) -> bool {
        self.grpc
    }

    /// The head was routed (`now`): the route's `idle_timeout`, when set, replaces the
    /// connection manager's (`Some(None)` disables it), and the idle timer restarts.
    pub fn route(&mut self, route_idle: Option<Option<Duration>>, now: Instant) {
        if let Some(idle) = route_idle {
            self.idle = idle;
        }
        self.touch(now);
    }

    /// Bytes flowed at `now`: the idle timer restarts.
    pub fn touch(&mut self, now: Instant) {
        self.idle_at = self.idle.map(|d| now + d);
    }

    /// The request was received in full (or the response started): the request timer stops.
    pub fn request_done(&mut self) {
        self.request_at = None;
    }

    /// The idle timeout in force (each read of a streamed body is bounded by it).
    pub fn idle(&self) -> Option<Duration> {
        self.idle
    }

    /// The next timer to fire.
    pub fn next(&self) -> Option<(Instant, Expired)> {
        let first = match (self.idle_at, self.request_at) {
            (Some(i), Some(r)) if r < i => Some((r, Expired::Request)),
            (None, Some(r)) => Some((r, Expired::Request)),
            (i, _) => i.map(|i| (i, Expired::Idle)),
        };
        match (first, self.duration_at) {
            (Some(f), Some(d)) if f.0 <= d => Some(f),
            (_, Some(d)) => Some((d, Expired::Duration)),
            (f, None) => f,
        }
    }

    /// Waits for the next timer (forever when none is armed).
    pub async fn expired(&self) -> Expired {
        match self.next() {
            Some((at, which)) => {
                tokio::time::sleep_until(at).await;
                which
            }
            None => std::future::pending().await,
        }
    }
}

/// Envoy's reply to a stream timer: status (`stream timeout` and `downstream duration
/// timeout` are 504 once the request was received in full, else 408; `request timeout` is
/// 408) and body.
pub(super) fn reply_for(e: Expired, request_complete: bool) -> (u16, &'static [u8]) {
    match e {
        Expired::Idle if request_complete => (504, b"stream timeout"),
        Expired::Idle => (408, b"stream timeout"),
        Expired::Request => (408, b"request timeout"),
        Expired::Duration if request_complete => (504, b"downstream duration timeout"),
        Expired::Duration => (408, b"downstream duration timeout"),
    }
}

impl Conn {
    /// Counts a fired stream timer (`downstream_rq_idle_timeout` with flag SI, or
    /// `downstream_rq_timeout`) and, for an unfinished request, its reset.
    fn count_stream_timeout(&mut self, hcm: &Hcm, e: Expired, request_complete: bool) {
        let w = self.worker.index;
        match e {
            Expired::Idle => {
                hcm.stats.inc(w, http::Counter::DownstreamRqIdleTimeout);
                self.record.flag(ResponseFlag::StreamIdleTimeout);
            }
            Expired::Request => hcm.stats.inc(w, http::Counter::DownstreamRqTimeout),
            Expired::Duration => {
                hcm.stats
                    .inc(w, http::Counter::DownstreamRqMaxDurationReached);
                self.record.details("max_duration_timeout");
            }
        }
        if !request_complete {
            hcm.stats.inc(w, http::Counter::DownstreamRqRxReset);
        }
    }

    /// A stream timer fired while the head was still arriving: 408, then close (with a
    /// delay, the client may still be sending).
    pub(super) async fn head_timeout_reply(&mut self, hcm: &Hcm, e: Expired) -> Flow {
        let started = Instant::now();
        let _active = RqActive::start(
            &hcm.stats,
            self.worker.index,
            self.cx.proto.get() != super::Proto::Bridged,
        );
        self.count_stream_timeout(hcm, e, false);
        let (status, body) = reply_for(e, false);
        self.record.status = status;
        let n = self.closing_reply(hcm, status, body, 1).await;
        self.end_local_reply(hcm, status, n, started);
        Flow::Close
    }

    /// A stream timer fired after routing, before the response started: the local reply
    /// (with the route's response mutations). An unfinished request closes the connection.
    /// `grpc`: the request is gRPC over HTTP/2 (a duration reply is DEADLINE_EXCEEDED).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stream_timeout_reply(
        &mut self,
        hcm: &Hcm,
        info: &ReqInfo,
        e: Expired,
        request_complete: bool,
        started: Instant,
        mutations: Option<(Selection<'_>, usize)>,
        grpc: bool,
    ) -> Flow {
        self.count_stream_timeout(hcm, e, request_complete);
        let (status, body) = reply_for(e, request_complete);
        if e == Expired::Duration && grpc && self.cx.proto.get() == super::Proto::Bridged {
            // Envoy answers a gRPC request with DEADLINE_EXCEEDED, not the HTTP mapping.
            self.reply_extra.extend_from_slice(b"grpc-status: 4\r\n");
        }
        let reply = LocalBody {
            status,
            body,
            location: None,
        };
        let state = if request_complete {
            ReqBody::Consumed
        } else {
            ReqBody::Unfinished
        };
        self.local_reply(hcm, info, reply, mutations, started, state)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(idle: u64, request: u64) -> StreamTimeouts {
        StreamTimeouts {
            stream_idle_timeout_ms: idle,
            request_timeout_ms: request,
            max_stream_duration_ms: 0,
        }
    }

    #[test]
    fn the_duration_limit_counts_from_the_first_byte() {
        let t0 = Instant::now();
        let mut c = cfg(300, 0);
        c.max_stream_duration_ms = 200;
        let mut t = StreamTimers::start(&c, t0);
        assert_eq!(t.next(), Some((t0 + d(200), Expired::Duration)));
        t.duration(Some(d(1000)), true);
        assert_eq!(t.next(), Some((t0 + d(300), Expired::Idle)));
        t.touch(t0 + d(900));
        assert_eq!(t.next(), Some((t0 + d(1000), Expired::Duration)));
        assert!(t.grpc());
        t.duration(None, false);
        assert_eq!(t.duration_at(), None);
        assert_eq!(t.next(), Some((t0 + d(1200), Expired::Idle)));
        assert_eq!(
            reply_for(Expired::Duration, true),
            (504, &b"downstream duration timeout"[..])
        );
        assert_eq!(reply_for(Expired::Duration, false).0, 408);
    }

    fn d(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_earliest_timer_is_next() {
        let t0 = Instant::now();
        let t = StreamTimers::start(&cfg(300, 100), t0);
        assert_eq!(t.next(), Some((t0 + d(100), Expired::Request)));
        let t = StreamTimers::start(&cfg(300, 0), t0);
        assert_eq!(t.next(), Some((t0 + d(300), Expired::Idle)));
        let t = StreamTimers::start(&cfg(0, 0), t0);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn bytes_restart_the_idle_timer_only() {
        let t0 = Instant::now();
        let mut t = StreamTimers::start(&cfg(300, 500), t0);
        t.touch(t0 + d(250));
        assert_eq!(t.next(), Some((t0 + d(500), Expired::Request)));
        t.request_done();
        assert_eq!(t.next(), Some((t0 + d(550), Expired::Idle)));
    }

    #[test]
    fn the_route_idle_timeout_replaces_or_disables_the_managers() {
        let t0 = Instant::now();
        let mut t = StreamTimers::start(&cfg(300_000, 0), t0);
        t.route(Some(Some(d(200))), t0 + d(10));
        assert_eq!(t.next(), Some((t0 + d(210), Expired::Idle)));
        assert_eq!(t.idle(), Some(d(200)));
        let mut off = StreamTimers::start(&cfg(300, 0), t0);
        off.route(Some(None), t0);
        assert_eq!(off.next(), None);
        let mut kept = StreamTimers::start(&cfg(300, 0), t0);
        kept.route(None, t0 + d(100));
        assert_eq!(kept.next(), Some((t0 + d(400), Expired::Idle)));
    }

    #[test]
    fn the_flag_renders_as_envoys() {
        let mut flags = crate::local_reply::ResponseFlags::default();
        flags.insert(ResponseFlag::StreamIdleTimeout);
        assert_eq!(flags.to_string(), "SI");
        flags.insert(ResponseFlag::UpstreamRequestTimeout);
        assert_eq!(flags.to_string(), "UT,SI");
    }

    #[test]
    fn replies_match_envoy() {
        assert_eq!(
            reply_for(Expired::Idle, true),
            (504, &b"stream timeout"[..])
        );
        assert_eq!(
            reply_for(Expired::Idle, false),
            (408, &b"stream timeout"[..])
        );
        assert_eq!(
            reply_for(Expired::Request, false),
            (408, &b"request timeout"[..])
        );
    }
}
