//! HTTP/1.1 upgrades (`upgrade_configs`, e.g. WebSocket): which requests are upgrades, whether
//! the route proxies them, and the byte tunnel after the upstream's `101 Switching Protocols`.
//!
//! As Envoy 1.40: an upgrade nobody enables is answered 403 and the connection closes
//! (`upgrade_failed`); an enabled one is forwarded with `connection: Upgrade` and its
//! `upgrade` line; a 101 is passed on with the upstream's upgrade headers and the connection
//! becomes a tunnel both ways (the stream idle timeout applies); a 2xx instead ends the
//! exchange with that status, no body and a close (`websocket_handshake_unsuccessful`), and
//! any other status is passed on with its body and `connection: close`. Bytes
//! move only after the upstream's 101: nothing the client sent behind the head reaches the
//! upstream before then, and nothing is read as a second request.
use std::cell::Cell;
use std::time::Duration;

use super::io::write_all_vectored;
use super::response::RespInfo;
use super::{Conn, Flow};
use crate::compiled::Hcm;
use crate::config::snapshot::UpgradeConfig;
use crate::http1::{Kind, RequestHead};
use crate::local_reply::ResponseFlag;
use crate::pool::UpConn;
use crate::router::Action;
use crate::stats::sets::{cluster, http};
use crate::tcp::copy::relay;
use crate::tcp::relay::{Counts, End, Seen};

/// The `upgrade` value when the request asks for one: a `connection` header naming the
/// `upgrade` token and an `upgrade` header.
pub fn requested<'b>(head: &RequestHead<'_, 'b>) -> Option<&'b str> {
    let kinds = &head.kinds[..head.headers.len()];
    let asks = head.headers.iter().zip(kinds).any(|(h, k)| {
        *k == Kind::Connection
            && h.value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    if !asks {
        return None;
    }
    head.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("upgrade"))
        .and_then(|h| std::str::from_utf8(h.value.trim_ascii()).ok())
        .filter(|v| !v.is_empty())
}

/// Whether an upgrade of `kind` is proxied: the route's `upgrade_configs` entry for it, else
/// the connection manager's (absent: not enabled).
pub fn enabled(hcm: &[UpgradeConfig], action: &Action<'_>, kind: &str) -> bool {
    let hcm_default = hcm
        .iter()
        .find(|u| u.upgrade_type.eq_ignore_ascii_case(kind))
        .is_some_and(|u| u.enabled);
    match action {
        Action::Forward(route) => route.upgrade_enabled(&kind.to_ascii_lowercase(), hcm_default),
        _ => hcm_default,
    }
}

/// Byte counts of a tunnel: the connection manager's downstream counters and the upstream
/// connection's.
struct TunnelCounts<'a> {
    hcm: &'a Hcm,
    up: &'a UpConn,
    w: usize,
    /// Tunnel bytes from and to the client, for `%BYTES_RECEIVED%` / `%BYTES_SENT%` (the
    /// periodic line's counters when it has one).
    received: &'a Cell<u64>,
    sent: &'a Cell<u64>,
}

impl Counts for TunnelCounts<'_> {
    fn read(&self, downstream: bool, n: usize) {
        if downstream {
            self.received.set(self.received.get() + n as u64);
            self.hcm
                .stats
                .add(self.w, http::Counter::DownstreamCxRxBytesTotal, n as u64);
        } else {
            self.up.rx(n);
        }
    }

    fn written(&self, downstream: bool, n: usize) {
        if downstream {
            self.sent.set(self.sent.get() + n as u64);
            self.hcm
                .stats
                .add(self.w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        } else {
            self.up.tx(n);
        }
    }
}

impl Conn {
    /// After the upstream's 101: sends the 101 head (and any bytes the upstream sent behind
    /// it) and what the client sent behind its head, then relays both ways with the
    /// `tcp_proxy` copy relay (half-close, idle timeout) until both sides closed, an error,
    /// or `idle` without a byte. The upstream connection is not reused.
    pub(super) async fn tunnel(
        &mut self,
        hcm: &Hcm,
        mut up: UpConn,
        ubuf: &[u8],
        resp_out: &[u8],
        resp: &RespInfo,
        idle: Option<Duration>,
    ) -> Flow {
        let w = self.worker.index;
        hcm.stats.inc(w, http::Counter::DownstreamCxUpgradesTotal);
        hcm.stats
            .gauge_inc(w, http::Gauge::DownstreamCxUpgradesActive);
        let seen = Seen::default();
        let end = match self.switch(hcm, &mut up, ubuf, resp_out, resp).await {
            Ok(()) => {
                if hcm.cfg.flush_log_on_tunnel_successfully_established {
                    use crate::access_log::LogType::DownstreamTunnelSuccessfullyEstablished as Up;
                    self.flush_access_log(Up);
                }
                let own = (Cell::new(0), Cell::new(0));
                let periodic = self.periodic.clone();
                let (received, sent) = match periodic.as_deref() {
                    Some(p) => self.periodic_tunnel(p),
                    None => (&own.0, &own.1),
                };
                let counts = TunnelCounts {
                    hcm,
                    up: &up,
                    w,
                    received,
                    sent,
                };
                let end = relay(&self.down.stream, &up.stream, idle, &counts, &seen).await;
                self.cx.rx(counts.received.get() as usize);
                self.cx.tx(counts.sent.get() as usize);
                // As Envoy, the access log counts the tunnel's bytes.
                if let Some(l) = self.record.log.as_deref_mut() {
                    l.bytes_received += counts.received.get();
                    l.bytes_sent += counts.sent.get();
                }
                end
            }
            Err(_) => End::Error,
        };
        up.remote_closed = seen.upstream_closed.get();
        up.cluster
            .stats
            .inc(w, cluster::Counter::UpstreamRqCompleted);
        up.in_flight = false;
        hcm.stats
            .gauge_dec(w, http::Gauge::DownstreamCxUpgradesActive);
        match end {
            End::Error => self.client_gone(),
            End::Closed if seen.downstream_first.get() => self.client_gone(),
            End::IdleTimeout => {
                hcm.stats.inc(w, http::Counter::DownstreamRqIdleTimeout);
                self.record.flag(ResponseFlag::StreamIdleTimeout);
            }
            End::Closed => {}
        }
        Flow::Close
    }

    /// Writes the 101 head with the upstream's early bytes downstream, and the client's bytes
    /// behind its head upstream (they go up only now).
    async fn switch(
        &mut self,
        hcm: &Hcm,
        up: &mut UpConn,
        ubuf: &[u8],
        resp_out: &[u8],
        resp: &RespInfo,
    ) -> std::io::Result<()> {
        let w = self.worker.index;
        let early = ubuf.get(resp.head_len..).unwrap_or_default();
        if let Some(l) = self.record.log.as_deref_mut() {
            // As Envoy logs a tunnel: its response (the upstream's 101, or the connect of a
            // CONNECT) came from upstream now, and its request never completes.
            l.first_byte.get_or_insert_with(std::time::Instant::now);
            if l.details.is_empty() {
                l.details = "via_upstream";
            }
            l.tunneled = true;
            l.req_done = None;
        }
        let n = write_all_vectored(&mut self.down.stream, &[resp_out, early])
            .await
            .map_err(|f| f.error)?;
        self.record.local_sent(resp_out, early.len());
        self.cx.tx(n);
        hcm.stats
            .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        let pending = self.down.buffered().len();
        if pending > 0 {
            let n = write_all_vectored(&mut up.stream, &[self.down.buffered()])
                .await
                .map_err(|f| f.error)?;
            up.tx(n);
            self.down.consume(pending);
            if let Some(l) = self.record.log.as_deref_mut() {
                l.bytes_received += pending as u64;
            }
        }
        Ok(())
    }

    /// The client closed its side first, or the tunnel broke (Envoy: `DC`).
    fn client_gone(&mut self) {
        self.record
            .flag(ResponseFlag::DownstreamConnectionTermination);
        self.record.details("downstream_remote_disconnect");
    }
}
