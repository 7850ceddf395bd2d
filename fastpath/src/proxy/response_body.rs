//! Streaming a response body to the client in the mode `response::build` chose (relay,
//! validate chunks, de-chunk, re-chunk), one capped read at a time, under the route deadline
//! and the stream and per-try idle timeouts.
use std::cell::Cell;
use std::pin::pin;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::{Instant, Sleep};

use super::Conn;
use super::forward::BodyStop;
use super::io::write_all_vectored;
use super::response::{DownMode, RespInfo};
use crate::compiled::Hcm;
use crate::http1::ChunkedDecoder;
use crate::pool::UpConn;
use crate::stats::sets::http;

/// The idle timeouts bounding each read of a response body: the stream idle timeout (each
/// read is followed by a write to the client, which restarts it) and the per-try idle
/// timeout.
#[derive(Clone, Copy)]
pub(super) struct BodyIdle {
    pub stream: Option<Duration>,
    pub per_try: Option<Duration>,
}

impl BodyIdle {
    /// The shorter timeout and whether it is the stream's.
    fn first(self) -> Option<(Duration, bool)> {
        match (self.stream, self.per_try) {
            (Some(s), Some(p)) if p < s => Some((p, false)),
            (None, Some(p)) => Some((p, false)),
            (s, _) => s.map(|s| (s, true)),
        }
    }
}

/// Reads at most the cluster's `read_cap` bytes into `buf` (after its content), with the
/// route deadline and the idle timeouts, counting `upstream_cx_rx_bytes_total`.
async fn read_up(
    up: &mut UpConn,
    buf: &mut Vec<u8>,
    sleep: &mut std::pin::Pin<&mut Sleep>,
    timed: bool,
    idle: BodyIdle,
) -> Result<usize, BodyStop> {
    let cap = up.cluster.read_cap;
    if buf.capacity() - buf.len() < cap {
        buf.reserve(cap);
    }
    let mut capped = (&mut up.stream).take(cap as u64);
    let idle = idle.first();
    // The idle timer is made only when the read has to wait (the async block builds it on
    // its first poll, after the read was polled): a read that is ready at once costs no
    // timer.
    let idle_sleep = async {
        tokio::time::sleep(idle.map_or(Duration::ZERO, |i| i.0)).await;
    };
    let r = tokio::select! {
        biased;
        r = capped.read_buf(buf) => r.map_err(|_| BodyStop::Upstream),
        _ = sleep.as_mut(), if timed => Err(BodyStop::Timeout),
        _ = idle_sleep, if idle.is_some() => Err(BodyStop::Idle(idle.is_some_and(|i| i.1))),
    };
    if let Ok(n) = r {
        up.rx(n);
    }
    r
}

impl Conn {
    /// Writes the response head and streams the body; `Ok(clean)` where `clean` says the
    /// upstream connection ended exactly at the end of the response. With an access log,
    /// records the response's start and the body bytes sent.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stream_response(
        &mut self,
        up: &mut UpConn,
        ubuf: &mut Vec<u8>,
        head: &[u8],
        resp: &RespInfo,
        hcm: &Hcm,
        deadline: Option<Instant>,
        idle: BodyIdle,
    ) -> Result<bool, BodyStop> {
        let Some(l) = self.record.log.as_deref_mut() else {
            let sent = Cell::new(0);
            return self
                .relay_response(up, ubuf, head, resp, hcm, deadline, idle, &sent)
                .await;
        };
        let local = if l.needs.upstream_local {
            up.stream.socket().and_then(|s| s.local_addr().ok())
        } else {
            None
        };
        super::record::response_started(l, head, local);
        let own = Cell::new(0);
        // With periodic lines the relay counts into the line's counter.
        let periodic = self.periodic.clone();
        let sent = match periodic.as_deref() {
            Some(p) => self.periodic_response(p, head.len()),
            None => &own,
        };
        let r = self
            .relay_response(up, ubuf, head, resp, hcm, deadline, idle, sent)
            .await;
        if let Some(l) = self.record.log.as_deref_mut() {
            l.bytes_sent = sent.get().saturating_sub(head.len() as u64);
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    async fn relay_response(
        &mut self,
        up: &mut UpConn,
        ubuf: &mut Vec<u8>,
        head: &[u8],
        resp: &RespInfo,
        hcm: &Hcm,
        deadline: Option<Instant>,
        idle: BodyIdle,
        sent: &Cell<u64>,
    ) -> Result<bool, BodyStop> {
        let w = self.worker.index;
        let timed = deadline.is_some();
        let mut sleep = pin!(tokio::time::sleep_until(
            deadline.unwrap_or_else(Instant::now)
        ));
        let stats = &hcm.stats;
        let cx_sent = &self.cx.sent;
        let tx = |n: usize| {
            cx_sent.set(cx_sent.get() + n as u64);
            stats.add(w, http::Counter::DownstreamCxTxBytesTotal, n as u64);
            sent.set(sent.get() + n as u64);
        };
        let body_start = resp.head_len;
        match resp.mode {
            // Handled by `forward` before any body is relayed (`proxy/upgrade.rs`).
            DownMode::Tunnel => Err(BodyStop::Malformed),
            DownMode::None => {
                send_down(&mut self.down.stream, &[head], &tx).await?;
                Ok(ubuf.len() == body_start)
            }
            DownMode::Length(total) => {
                let avail = (ubuf.len() - body_start) as u64;
                let take = avail.min(total) as usize;
                let mut clean = avail <= total;
                send_down(
                    &mut self.down.stream,
                    &[head, &ubuf[body_start..body_start + take]],
                    &tx,
                )
                .await?;
                let mut left = total - take as u64;
                while left > 0 {
                    ubuf.clear();
                    let n = read_up(up, ubuf, &mut sleep, timed, idle).await?;
                    if n == 0 {
                        return Err(BodyStop::Upstream);
                    }
                    let take = (n as u64).min(left) as usize;
                    clean = n as u64 <= left;
                    left -= take as u64;
                    send_down(&mut self.down.stream, &[&ubuf[..take]], &tx).await?;
                }
                Ok(clean)
            }
            DownMode::ChunkedPass => {
                let mut dec = ChunkedDecoder::new();
                let (c, mut done) = dec
                    .validate(&ubuf[body_start..])
                    .map_err(|_| BodyStop::Malformed)?;
                let mut clean = body_start + c == ubuf.len();
                send_down(
                    &mut self.down.stream,
                    &[head, &ubuf[body_start..body_start + c]],
                    &tx,
                )
                .await?;
                while !done {
                    ubuf.clear();
                    if read_up(up, ubuf, &mut sleep, timed, idle).await? == 0 {
                        return Err(BodyStop::Upstream);
                    }
                    let (c, d) = dec.validate(ubuf).map_err(|_| BodyStop::Malformed)?;
                    done = d;
                    clean = c == ubuf.len();
                    send_down(&mut self.down.stream, &[&ubuf[..c]], &tx).await?;
                }
                Ok(clean)
            }
            DownMode::Dechunk => {
                let mut dec = ChunkedDecoder::new();
                send_down(&mut self.down.stream, &[head], &tx).await?;
                let mut pos = body_start;
                loop {
                    while pos < ubuf.len() && !dec.is_done() {
                        let step = dec.decode(&ubuf[pos..]).map_err(|_| BodyStop::Malformed)?;
                        let data = &ubuf[pos + step.data.start..pos + step.data.end];
                        if !data.is_empty() {
                            send_down(&mut self.down.stream, &[data], &tx).await?;
                        }
                        pos += step.consumed;
                    }
                    if dec.is_done() {
                        return Ok(false);
                    }
                    ubuf.clear();
                    pos = 0;
                    if read_up(up, ubuf, &mut sleep, timed, idle).await? == 0 {
                        return Err(BodyStop::Upstream);
                    }
                }
            }
            DownMode::Rechunk | DownMode::Raw => {
                let chunked = resp.mode == DownMode::Rechunk;
                let mut first = Some(head);
                let mut start = body_start;
                loop {
                    let data = &ubuf[start..];
                    let mut size = itoa_hex(data.len());
                    let size_line: &[u8] = if chunked && !data.is_empty() {
                        size.line()
                    } else {
                        b""
                    };
                    let crlf: &[u8] = if chunked && !data.is_empty() {
                        b"\r\n"
                    } else {
                        b""
                    };
                    send_down(
                        &mut self.down.stream,
                        &[first.take().unwrap_or(b""), size_line, data, crlf],
                        &tx,
                    )
                    .await?;
                    ubuf.clear();
                    start = 0;
                    let n = read_up(up, ubuf, &mut sleep, timed, idle).await?;
                    if n == 0 {
                        if chunked {
                            send_down(&mut self.down.stream, &[b"0\r\n\r\n"], &tx).await?;
                        }
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// Writes `parts` to the client, counting `downstream_cx_tx_bytes_total` with `tx` (also
/// for a write cut short).
async fn send_down(
    stream: &mut crate::stream::Stream,
    parts: &[&[u8]],
    tx: &impl Fn(usize),
) -> Result<(), BodyStop> {
    match write_all_vectored(stream, parts).await {
        Ok(n) => {
            tx(n);
            Ok(())
        }
        Err(f) => {
            tx(f.written);
            Err(BodyStop::Downstream)
        }
    }
}

/// A chunk-size line (`<hex>\r\n`) on the stack.
struct HexLine {
    buf: [u8; 18],
    start: usize,
}

impl HexLine {
    fn line(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_hex(mut n: usize) -> HexLine {
    let mut buf = [0u8; 18];
    buf[16] = b'\r';
    buf[17] = b'\n';
    let mut i = 16;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    HexLine { buf, start: i }
}
