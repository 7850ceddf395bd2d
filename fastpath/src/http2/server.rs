//! The downstream HTTP/2 server: an `h2` connection whose streams are each bridged to the
//! HTTP/1.1 core. Every stream gets a pipe pair; one end is served by the core's connection
//! loop (`proxy::serve_bridged`: routing, filters, retries, timeouts, access logs, stats as
//! for HTTP/1.1), the other end carries the stream translated to HTTP/1.1 and back.
use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ::http::{HeaderValue, Method, Request};
use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::body::{self, BodyError};
use super::grpc_reply;
use super::handoff;
use super::headers::{self, Framing};
use crate::compiled::Chosen;
use crate::conn_info::ConnInfo;
use crate::filters::grpc_frames::MessageCounter;
use crate::filters::grpc_stats::Direction;
use crate::mem_pipe::{self, MemEnd};
use crate::stats::sets::http;
use crate::stream::Stream;
use crate::worker::Worker;

/// How often a connection checks for drain, listener removal and its idle timeout.
const TICK: Duration = Duration::from_millis(250);
/// Most bytes of response head read from the core.
const MAX_RESPONSE_HEAD: usize = 256 * 1024;

/// Serves one HTTP/2 connection (cleartext after the preface, or TLS with ALPN `h2`) until it
/// closes. `io` is any byte stream; the connection's own stats are counted by the caller
/// (`proxy::serve`).
pub async fn serve<S>(worker: Rc<Worker>, chosen: Chosen, io: S, info: ConnInfo)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let view = chosen.view.clone();
    let hcm = &view.hcm;
    let opts = &hcm.cfg.http2;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(opts.max_concurrent_streams)
        .initial_window_size(opts.initial_stream_window_size)
        .initial_connection_window_size(opts.initial_connection_window_size)
        .max_header_list_size(hcm.max_head.min(u32::MAX as usize) as u32)
        .max_send_buffer_size(body::READ_CHUNK);
    if opts.allow_connect {
        // SETTINGS_ENABLE_CONNECT_PROTOCOL: extended CONNECT (WebSocket over HTTP/2).
        builder.enable_connect_protocol();
    }
    let idle_timeout = hcm.idle_timeout;
    let drain_ms = hcm.cfg.drain_timeout_ms;
    let stats = hcm.stats.clone();
    let flood = (
        super::flood::Limits::from_options(opts),
        hcm.h2_codec_stats.clone(),
    );
    drop(view);
    let w = worker.index;
    // Envoy's flood limits: frames counted as they pass between the socket and `h2`;
    // above them, writes coalesced per worker turn (the flood layer counts what the socket
    // refuses, not the bytes of one turn).
    let shared = Rc::new(super::flood::Shared::default());
    let side = super::flood::Side::Server;
    let io = super::flood::FloodGuard::new(io, flood.0, side, shared.clone(), Some(flood.1), w);
    let io = super::coalesce::Coalesce::new(io);
    let handshake = builder.handshake::<_, Bytes>(io);
    let mut conn = match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(c)) => c,
        _ => {
            stats.inc(w, http::Counter::DownstreamCxProtocolError);
            return;
        }
    };
    let info = Rc::new(info);
    let chosen = Rc::new(chosen);
    let active = Rc::new(Cell::new(0usize));
    let mut last_active = Instant::now();
    let mut shutdown_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    stats.inc(w, http::Counter::DownstreamRqHttp2Total);
                    active.set(active.get() + 1);
                    // Boxed: the stream's future is ~4 KB, and a task copies its future's
                    // whole slot when it finishes (and when its output is taken).
                    let task = Box::pin(stream(worker.clone(), chosen.clone(), info.clone(), req, respond));
                    let (active, shared) = (active.clone(), shared.clone());
                    tokio::task::spawn_local(async move {
                        task.await;
                        active.set(active.get() - 1);
                        shared.closed.set(shared.closed.get() + 1);
                    });
                }
                Some(Err(e)) => {
                    if e.is_go_away() || e.reason() == Some(Reason::PROTOCOL_ERROR) {
                        stats.inc(w, http::Counter::DownstreamCxProtocolError);
                    }
                    break;
                }
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                if active.get() > 0 {
                    last_active = now;
                }
                if let Some(at) = shutdown_at {
                    if now >= at {
                        conn.abrupt_shutdown(Reason::NO_ERROR);
                    }
                    continue;
                }
                let draining = worker.draining.get() || chosen.handle.closing.load(Ordering::Relaxed);
                let idle = idle_timeout.is_some_and(|t| active.get() == 0 && now - last_active >= t);
                if draining || idle {
                    // GOAWAY with the last stream id: streams in flight finish, new ones are
                    // refused; after `drain_timeout` the connection closes anyway.
                    if draining {
                        stats.inc(w, http::Counter::DownstreamCxDrainClose);
                    } else {
                        stats.inc(w, http::Counter::DownstreamCxIdleTimeout);
                    }
                    conn.graceful_shutdown();
                    shutdown_at = Some(now + Duration::from_millis(drain_ms));
                }
            }
        }
    }
}

/// One HTTP/2 stream: an in-memory pipe pair, the core on one end, the translation on the
/// other.
async fn stream(
    worker: Rc<Worker>,
    chosen: Rc<Chosen>,
    info: Rc<ConnInfo>,
    req: Request<RecvStream>,
    respond: SendResponse<Bytes>,
) {
    let (ours, core) = mem_pipe::pair();
    let slot = Rc::new(crate::proxy::GrpcSlot::default());
    let grpc = GrpcCount { slot: slot.clone() };
    let core = crate::proxy::serve_bridged(
        worker,
        (*chosen).clone(),
        Stream::Mem(core),
        (*info).clone(),
        slot,
    );
    tokio::join!(core, bridge(ours, req, respond, grpc));
}

/// Where a call counts (`grpc_stats`): the call the core left in the slot.
struct GrpcCount {
    slot: Rc<crate::proxy::GrpcSlot>,
}

impl GrpcCount {
    /// Ends the call with its `grpc-status`; `from_upstream`: not a local reply.
    fn charge(&self, status: Option<&HeaderValue>, from_upstream: bool) {
        let call = self.slot.borrow_mut().take();
        if let Some(call) = call {
            call.finish(status.map(|s| s.as_bytes()), from_upstream);
        }
    }
}

/// Writes the request into the pair as HTTP/1.1 and sends what comes back as the HTTP/2
/// response; both directions run at once (gRPC bidi streams). Returning drops the pair end,
/// which ends the core's side.
async fn bridge(
    ours: MemEnd,
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    grpc_count: GrpcCount,
) {
    let (parts, body) = req.into_parts();
    if parts.method == Method::CONNECT {
        return super::tunnel::bridge(ours, parts, body, respond).await;
    }
    let mut head = Vec::with_capacity(512);
    // A streaming gRPC body bypasses the half-duplex core (`handoff.rs`).
    let handoff = !body.is_end_stream()
        && handoff::is_grpc(&parts.headers)
        && !parts.headers.contains_key(::http::header::CONTENT_LENGTH);
    let framing = match headers::request_head(&parts, handoff || body.is_end_stream(), &mut head) {
        Ok(f) => f,
        Err(_) => {
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return;
        }
    };
    if handoff {
        let token = handoff::park(body, grpc_count.slot.clone());
        head.truncate(head.len() - 2);
        head.extend_from_slice(
            format!("{}: {token:032x}\r\n\r\n", handoff::BODY_HEADER).as_bytes(),
        );
        let (mut rd, mut wr) = ours.split();
        if wr.write_all(&head).await.is_ok() {
            let _ = respond_from_core(&mut rd, &mut respond, false, true, &grpc_count).await;
        }
        handoff::discard(token);
        return;
    }
    let head_request = parts.method == Method::HEAD;
    let grpc = handoff::is_grpc(&parts.headers);
    let (mut rd, mut wr) = ours.split();
    let upload = async {
        wr.write_all(&head).await?;
        if framing != Framing::None {
            body::h2_to_h1(body, framing, &mut wr).await?;
        }
        Ok::<(), BodyError>(())
    };
    let download = respond_from_core(&mut rd, &mut respond, head_request, grpc, &grpc_count);
    body::pump(upload, download).await;
}

/// Reads the core's HTTP/1.1 response (skipping 1xx heads) and sends it as HEADERS, DATA and
/// trailers.
/// `grpc`: the request was gRPC, so a local reply of the core goes out in gRPC form.
async fn respond_from_core<R: AsyncRead + Unpin>(
    rd: &mut R,
    respond: &mut SendResponse<Bytes>,
    head_request: bool,
    grpc: bool,
    grpc_count: &GrpcCount,
) -> Result<(), BodyError> {
    let mut buf = BytesMut::with_capacity(4096);
    let (resp, framing) = loop {
        match headers::parse_response(&buf, head_request) {
            Ok(Some((resp, framing, len))) => {
                buf.advance(len);
                if resp.status().is_informational() {
                    continue;
                }
                break (resp, framing);
            }
            Ok(None) if buf.len() < MAX_RESPONSE_HEAD => {}
            _ => {
                respond.send_reset(Reason::INTERNAL_ERROR);
                return Err(BodyError::Framing);
            }
        }
        buf.reserve(4096);
        let n = tokio::select! {
            r = rd.read_buf(&mut buf) => r?,
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return Err(BodyError::Reset),
        };
        if n == 0 {
            respond.send_reset(Reason::INTERNAL_ERROR);
            return Err(BodyError::Io);
        }
    };
    let mut resp = resp;
    if resp
        .headers_mut()
        .remove(grpc_reply::LOCAL_REPLY_HEADER)
        .is_some()
        && grpc
    {
        let body = local_reply_body(rd, &mut buf, framing).await?;
        let reply = grpc_reply::to_grpc(resp, &body);
        grpc_count.charge(reply.headers().get("grpc-status"), false);
        respond.send_response(reply, true)?;
        return Ok(());
    }
    let end = framing == Framing::None;
    if end {
        // A trailers-only response.
        grpc_count.charge(resp.headers().get("grpc-status"), true);
    }
    // Envoy counts response messages only in a gRPC response (`content-type`).
    let mut messages = (grpc_count.slot.borrow().is_some() && handoff::is_grpc(resp.headers()))
        .then(MessageCounter::default);
    let mut send = respond.send_response(resp, end)?;
    if end {
        return Ok(());
    }
    let result = match &mut messages {
        None => body::h1_to_h2(rd, buf, framing, &mut send).await,
        Some(counter) => {
            let mut seen = |data: &[u8]| {
                body::count_messages(counter, data, &grpc_count.slot, Direction::Response)
            };
            body::h1_to_h2_seen(rd, buf, framing, &mut send, &mut seen).await
        }
    };
    match result {
        Ok(status) => {
            // Envoy times the call upstream when trailers end it (not a bare end of DATA).
            grpc_count.charge(status.as_ref(), status.is_some());
            Ok(())
        }
        Err(e) => {
            send.send_reset(Reason::INTERNAL_ERROR);
            Err(e)
        }
    }
}

/// The body of a local reply (always sized, and small).
async fn local_reply_body<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    framing: Framing,
) -> Result<Bytes, BodyError> {
    let len = match framing {
        Framing::Length(n) if n <= MAX_RESPONSE_HEAD as u64 => n as usize,
        Framing::None => 0,
        _ => return Err(BodyError::Framing),
    };
    while buf.len() < len {
        if rd.read_buf(buf).await? == 0 {
            return Err(BodyError::Io);
        }
    }
    Ok(buf.split_to(len).freeze())
}
