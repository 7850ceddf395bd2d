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
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

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
use crate::stream::Stream;

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

/// How a tunnel ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Both sides closed (or one reset): the downstream closed first when `down_first`.
    Closed {
        down_first: bool,
    },
    Idle,
}

impl Conn {
    /// After the upstream's 101: sends the 101 head (and any bytes the upstream sent behind
    /// it), then relays both ways until both sides closed, an error, or `idle` without a
    /// byte. The upstream connection is not reused.
    pub(super) async fn tunnel(
        &mut self,
        hcm: &Hcm,
        up: UpConn,
        ubuf: &[u8],
        resp_out: &[u8],
        resp: &RespInfo,
        idle: Option<Duration>,
    ) -> Flow {
        let w = self.worker.index;
        hcm.stats.inc(w, http::Counter::DownstreamCxUpgradesTotal);
        hcm.stats
            .gauge_inc(w, http::Gauge::DownstreamCxUpgradesActive);
        let end = self.relay(hcm, up, ubuf, resp_out, resp, idle).await;
        hcm.stats
            .gauge_dec(w, http::Gauge::DownstreamCxUpgradesActive);
        match end {
            Ok(End::Closed { down_first: true }) | Err(_) => {
                self.record
                    .flag(ResponseFlag::DownstreamConnectionTermination);
                self.record.details("downstream_remote_disconnect");
            }
            Ok(End::Idle) => {
                hcm.stats.inc(w, http::Counter::DownstreamRqIdleTimeout);
                self.record.flag(ResponseFlag::StreamIdleTimeout);
            }
            Ok(End::Closed { down_first: false }) => {}
        }
        Flow::Close
    }

    async fn relay(
        &mut self,
        hcm: &Hcm,
        mut up: UpConn,
        ubuf: &[u8],
        resp_out: &[u8],
        resp: &RespInfo,
        idle: Option<Duration>,
    ) -> std::io::Result<End> {
        let w = self.worker.index;
        let early = ubuf.get(resp.head_len..).unwrap_or_default();
        let n = write_all_vectored(&mut self.down.stream, &[resp_out, early])
            .await
            .map_err(|f| f.error)?;
        self.record.local_sent(resp_out, early.len());
        hcm.stats
            .add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
        // What the client sent behind its head goes up only now.
        let pending = self.down.buffered().len();
        if pending > 0 {
            let n = write_all_vectored(&mut up.stream, &[self.down.buffered()])
                .await
                .map_err(|f| f.error)?;
            up.tx(n);
            self.down.consume(pending);
        }
        let mut down_buf = self.worker.buffers.get();
        let mut up_buf = self.worker.buffers.get();
        let (mut down_eof, mut up_eof) = (false, false);
        let mut down_first = None;
        let idle = idle.unwrap_or(Duration::MAX);
        let result = loop {
            if down_eof && up_eof {
                break Ok(End::Closed {
                    down_first: down_first.unwrap_or(false),
                });
            }
            let deadline = Instant::now().checked_add(idle);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.down.stream.readable(), if !down_eof => {
                    r?;
                    match move_bytes(&self.down.stream, &mut up.stream, &mut down_buf).await? {
                        None => continue,
                        Some(0) => {
                            down_eof = true;
                            down_first.get_or_insert(true);
                            let _ = up.stream.shutdown().await;
                        }
                        Some(n) => {
                            up.tx(n);
                            hcm.stats.add(w, http::Counter::DownstreamCxRxBytesTotal, n as u64);
                        }
                    }
                }
                r = up.stream.readable(), if !up_eof => {
                    r?;
                    match move_bytes(&up.stream, &mut self.down.stream, &mut up_buf).await? {
                        None => continue,
                        Some(0) => {
                            up_eof = true;
                            up.remote_closed = true;
                            down_first.get_or_insert(false);
                            let _ = self.down.stream.shutdown().await;
                        }
                        Some(n) => {
                            up.rx(n);
                            hcm.stats.add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
                        }
                    }
                }
                _ = sleep => break Ok(End::Idle),
            }
        };
        self.worker.buffers.put(down_buf);
        self.worker.buffers.put(up_buf);
        let s = &up.cluster.stats;
        s.inc(w, cluster::Counter::UpstreamRqCompleted);
        up.in_flight = false;
        result
    }
}

/// Reads what `src` has now and writes all of it to `dst`: `Some(0)` at EOF, `None` when
/// the readiness was stale (`WouldBlock` clears it; the caller waits on both sides again,
/// never on one alone).
async fn move_bytes(
    src: &Stream,
    dst: &mut Stream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    match src.try_read_buf(buf) {
        Ok(0) => Ok(Some(0)),
        Ok(n) => {
            write_all_vectored(dst, &[&buf[..n]])
                .await
                .map_err(|f| f.error)?;
            Ok(Some(n))
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}
