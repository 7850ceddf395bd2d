//! Moving a body across the bridge, both ways, with backpressure: HTTP/2 DATA (and trailers)
//! into an HTTP/1.1 body on the pipe pair, and an HTTP/1.1 body read from the pair into
//! DATA frames sent only as the peer's flow-control window allows. Nothing is buffered beyond
//! one read (`READ_CHUNK`) per direction.
use bytes::{Buf, Bytes, BytesMut};
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue};
use std::future::poll_fn;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::headers::{self, Framing};
use crate::filters::grpc_frames::MessageCounter;
use crate::filters::grpc_stats::Direction;
use crate::http1::ChunkedDecoder;
use crate::proxy::GrpcSlot;

/// Most bytes read from the pipe pair at once (and so at most in flight per direction).
pub const READ_CHUNK: usize = 64 * 1024;

/// Why a body could not be carried over.
#[derive(Debug)]
pub enum BodyError {
    /// The HTTP/2 side failed (reset, GOAWAY, connection error).
    H2,
    /// The pipe pair failed or closed early.
    Io,
    /// The body disagreed with its `content-length`, or its framing was malformed.
    Framing,
    /// The peer reset the stream while meshcore waited for the other side.
    Reset,
}

impl From<h2::Error> for BodyError {
    fn from(_: h2::Error) -> Self {
        BodyError::H2
    }
}

impl From<std::io::Error> for BodyError {
    fn from(_: std::io::Error) -> Self {
        BodyError::Io
    }
}

/// Runs a stream's two directions over its pipe pair at once: `up` (the client's DATA into
/// the pair) to its end, and `down` (the core's answer out as the stream); returns when `down`
/// ends or `up` fails (the client reset the stream or broke its framing: dropping the pair
/// makes the core see its peer go away, and dropping an unfinished stream resets it).
pub async fn pump<U, D>(up: U, down: D)
where
    U: Future<Output = Result<(), BodyError>>,
    D: Future,
{
    tokio::pin!(up, down);
    let mut uploaded = false;
    loop {
        tokio::select! {
            r = &mut up, if !uploaded => {
                uploaded = true;
                if r.is_err() {
                    return;
                }
            }
            _ = &mut down => return,
        }
    }
}

/// Writes an HTTP/2 body (DATA frames, then trailers) as the HTTP/1.1 body `framing` says:
/// raw for `Length` (checked against the length), chunked with a trailer section for
/// `Chunked`. Window capacity is released only once the bytes are written, so a slow reader
/// on the other side slows the HTTP/2 peer down.
pub async fn h2_to_h1<W: AsyncWrite + Unpin>(
    mut body: RecvStream,
    framing: Framing,
    out: &mut W,
) -> Result<(), BodyError> {
    let mut seen: u64 = 0;
    let mut frame_head = Vec::with_capacity(16);
    while let Some(data) = body.data().await {
        let data = data?;
        let n = data.len();
        seen += n as u64;
        match framing {
            Framing::Length(len) if seen > len => return Err(BodyError::Framing),
            Framing::None | Framing::UntilClose if n > 0 => return Err(BodyError::Framing),
            _ => {}
        }
        if n > 0 {
            if framing == Framing::Chunked {
                frame_head.clear();
                frame_head.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                out.write_all(&frame_head).await?;
                out.write_all(&data).await?;
                out.write_all(b"\r\n").await?;
            } else {
                out.write_all(&data).await?;
            }
        }
        let _ = body.flow_control().release_capacity(n);
    }
    if let Framing::Length(len) = framing
        && seen != len
    {
        return Err(BodyError::Framing);
    }
    let trailers = body.trailers().await?;
    if framing == Framing::Chunked {
        let mut end = Vec::with_capacity(64);
        headers::chunked_trailers(trailers.as_ref(), &mut end);
        out.write_all(&end).await?;
    }
    out.flush().await?;
    Ok(())
}

/// Sends `data` on `send`, waiting for window capacity as the peer grants it.
async fn send_all(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), BodyError> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(r) => r?,
            None => return Err(BodyError::Io),
        };
        if granted == 0 {
            continue;
        }
        let part = data.split_to(granted.min(data.len()));
        send.send_data(part, end && data.is_empty())?;
    }
    Ok(())
}

/// Reads more of the HTTP/1.1 side into `buf`; false at EOF. A reset of the HTTP/2 stream
/// meanwhile ends the wait (the bridge then drops its end of the pair, which the core sees
/// as the peer going away).
async fn fill<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    send: &mut SendStream<Bytes>,
) -> Result<bool, BodyError> {
    buf.reserve(READ_CHUNK);
    tokio::select! {
        r = rd.read_buf(buf) => Ok(r? > 0),
        _ = poll_fn(|cx| send.poll_reset(cx)) => Err(BodyError::Reset),
    }
}

/// Sends the HTTP/1.1 body that follows a head (its first bytes already in `buf`) as DATA
/// frames and, for a chunked body, its trailers; ends the stream.
/// Returns the trailers' `grpc-status`, if any.
pub async fn h1_to_h2<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: BytesMut,
    framing: Framing,
    send: &mut SendStream<Bytes>,
) -> Result<Option<HeaderValue>, BodyError> {
    h1_to_h2_seen(rd, buf, framing, send, &mut |_| {}).await
}

/// `h1_to_h2`, showing `seen` each run of body bytes before it is sent (`grpc_stats`' response
/// message count).
pub async fn h1_to_h2_seen<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut buf: BytesMut,
    framing: Framing,
    send: &mut SendStream<Bytes>,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<Option<HeaderValue>, BodyError> {
    match framing {
        Framing::None => {
            send.send_data(Bytes::new(), true)?;
            Ok(None)
        }
        Framing::Length(mut left) => loop {
            if buf.is_empty() && !fill(rd, &mut buf, send).await? {
                return Err(BodyError::Framing);
            }
            let take = (buf.len() as u64).min(left) as usize;
            left -= take as u64;
            let part = buf.split_to(take).freeze();
            seen(&part);
            send_all(send, part, left == 0).await?;
            if left == 0 {
                return Ok(None);
            }
        },
        Framing::UntilClose => loop {
            if buf.is_empty() && !fill(rd, &mut buf, send).await? {
                send.send_data(Bytes::new(), true)?;
                return Ok(None);
            }
            let part = buf.split().freeze();
            seen(&part);
            send_all(send, part, false).await?;
        },
        Framing::Chunked => chunked_to_h2(rd, buf, send, seen).await,
    }
}

async fn chunked_to_h2<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut buf: BytesMut,
    send: &mut SendStream<Bytes>,
    seen: &mut dyn FnMut(&[u8]),
) -> Result<Option<HeaderValue>, BodyError> {
    let mut decoder = ChunkedDecoder::new();
    // The framing bytes since the last data run: at the end, the last-chunk line and the
    // trailer section.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        if buf.is_empty() && !fill(rd, &mut buf, send).await? {
            return Err(BodyError::Framing);
        }
        let step = decoder.decode(&buf).map_err(|_| BodyError::Framing)?;
        if step.data.is_empty() {
            tail.extend_from_slice(&buf[..step.consumed]);
            buf.advance(step.consumed);
        } else {
            tail.clear();
            buf.advance(step.data.start);
            let data = buf.split_to(step.data.len()).freeze();
            seen(&data);
            send_all(send, data, false).await?;
        }
        if step.done {
            let trailers: Option<HeaderMap> =
                headers::parse_trailers(&tail).map_err(|_| BodyError::Framing)?;
            let status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status").cloned());
            match trailers {
                Some(t) => send.send_trailers(t)?,
                None => send.send_data(Bytes::new(), true)?,
            }
            return Ok(status);
        }
    }
}

/// Pipes an HTTP/2 request body (DATA, then trailers) into another HTTP/2 stream, window by
/// window: capacity on the downstream side is released only once the bytes are handed to the
/// upstream side. A body of at most `handoff::REPLAY_LIMIT` bytes is parked again under
/// `token` once sent, for a retry.
/// The request messages count in `grpc`'s call, if the core left one (`grpc_stats`).
pub async fn h2_to_h2(
    mut recv: RecvStream,
    send: &mut SendStream<Bytes>,
    token: u128,
    grpc: &GrpcSlot,
) -> Result<(), BodyError> {
    let mut kept: Option<(Vec<Bytes>, usize)> = Some((Vec::new(), 0));
    // Looked at once: a call that is not counted costs nothing per frame.
    let mut messages = grpc.borrow().is_some().then(MessageCounter::default);
    loop {
        let next = tokio::select! {
            d = recv.data() => d,
            _ = poll_fn(|cx| send.poll_reset(cx)) => return Err(BodyError::Reset),
        };
        let Some(data) = next else { break };
        let data = data?;
        let n = data.len();
        if let Some((chunks, total)) = &mut kept {
            *total += n;
            if *total <= super::handoff::REPLAY_LIMIT {
                chunks.push(data.clone());
            } else {
                kept = None;
            }
        }
        if let Some(counter) = &mut messages {
            count_messages(counter, &data, grpc, Direction::Request);
        }
        if n > 0 {
            send_all(send, data, false).await?;
        }
        let _ = recv.flow_control().release_capacity(n);
    }
    let trailers = recv.trailers().await?;
    if let Some((chunks, _)) = kept {
        super::handoff::park_replay(token, chunks, trailers.clone());
    }
    match trailers {
        Some(t) => send.send_trailers(t)?,
        None => send.send_data(Bytes::new(), true)?,
    }
    Ok(())
}

/// Sends a body kept for a retry, and parks it again for the next one.
pub async fn replay(
    chunks: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    send: &mut SendStream<Bytes>,
    token: u128,
) -> Result<(), BodyError> {
    super::handoff::park_replay(token, chunks.clone(), trailers.clone());
    for c in chunks {
        send_all(send, c, false).await?;
    }
    match trailers {
        Some(t) => send.send_trailers(t)?,
        None => send.send_data(Bytes::new(), true)?,
    }
    Ok(())
}

/// Counts the gRPC messages that start in `data` in the slot's call (if it is still open).
pub fn count_messages(counter: &mut MessageCounter, data: &[u8], grpc: &GrpcSlot, dir: Direction) {
    let n = counter.inspect(data);
    if n > 0
        && let Some(call) = grpc.borrow().as_ref()
    {
        call.messages(dir, n);
    }
}
