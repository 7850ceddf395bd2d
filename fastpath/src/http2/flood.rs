//! Envoy's HTTP/2 flood limits (`max_outbound_frames`, `max_outbound_control_frames`,
//! `max_consecutive_inbound_frames_with_empty_payload`, `max_inbound_priority_frames_per_stream`,
//! `max_inbound_window_update_frames_per_data_frame_sent`): a frame-accounting I/O layer between
//! a connection's socket and the `h2` crate.
//!
//! Hand-written because the `h2` crate has no frame-level hooks: the layer follows the 9-byte
//! frame headers as the bytes pass (a frame may straddle reads and writes; payload bytes are
//! skipped, not looked at, except a padded frame's pad-length byte) and counts what Envoy's
//! `ProtocolConstraints` counts. Writes go straight to the socket when it takes them; only what
//! the socket refused is kept, and the frames with bytes in that buffer are the outbound queue
//! Envoy limits (its output buffer; the `outbound_frames_active` and
//! `outbound_control_frames_active` gauges count them, so they move only while a socket refuses
//! bytes). Crossing a limit does what Envoy does: the counter (`http2.outbound_flood`...) goes
//! up and the connection closes without a GOAWAY (the layer fails the I/O, `h2` ends the
//! connection, the caller drops it). The same layer guards downstream connections (server
//! side) and upstream ones (client side, counted under `cluster.<name>.http2.*`).
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::config::snapshot::Http2Options;
use crate::stats::Http2CodecStats;
use crate::stats::sets::http2_codec::{Counter, Gauge};

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const PADDED: u8 = 0x8;
/// The client connection preface, ahead of the first frame a server reads.
pub const CLIENT_PREFACE_LEN: u32 = 24;
/// Turns of the worker a read waits, after frames that came ahead of a flooding one, before
/// it fails: the streams those frames completed (a response head) take them first, as they
/// do in Envoy, whose codec handles them before it checks the next frame's header.
const FLOOD_READ_TURNS: u8 = 1;
/// Most bytes kept for a socket that does not take them; past this, writes wait (as Envoy's
/// write buffer high watermark, `per_connection_buffer_limit_bytes`, stops its streams).
const MAX_PENDING: usize = 1024 * 1024;

/// Which end of the connection the guard is on: a server reads the client preface and counts
/// the streams the peer opens; a client writes the preface and counts the streams it opens
/// (as Envoy 1.40's client codec, whose allowances grow with its own open streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// What a guarded connection's owner and its guard share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Streams the owner has finished (they no longer add to the allowances).
    pub closed: Cell<u64>,
    /// The connection crossed a limit (its streams fail as a protocol error).
    pub flooded: Cell<bool>,
}

/// The five limits (Envoy's `Http2ProtocolOptions`, defaults 10000, 1000, 1, 100, 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub outbound_frames: u64,
    pub outbound_control_frames: u64,
    pub consecutive_empty: u64,
    pub priority_per_stream: u64,
    pub window_update_per_data_frame: u64,
}

impl Limits {
    pub fn from_options(o: &Http2Options) -> Limits {
        Limits {
            outbound_frames: o.max_outbound_frames.into(),
            outbound_control_frames: o.max_outbound_control_frames.into(),
            consecutive_empty: o.max_consecutive_inbound_frames_with_empty_payload.into(),
            priority_per_stream: o.max_inbound_priority_frames_per_stream.into(),
            window_update_per_data_frame: o
                .max_inbound_window_update_frames_per_data_frame_sent
                .into(),
        }
    }
}

/// Which limit a connection crossed, and its counter (`http2.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flood {
    Outbound,
    OutboundControl,
    InboundEmptyFrames,
    InboundPriority,
    InboundWindowUpdate,
}

impl Flood {
    fn counter(self) -> Counter {
        match self {
            Flood::Outbound => Counter::OutboundFlood,
            Flood::OutboundControl => Counter::OutboundControlFlood,
            Flood::InboundEmptyFrames => Counter::InboundEmptyFramesFlood,
            Flood::InboundPriority => Counter::InboundPriorityFramesFlood,
            Flood::InboundWindowUpdate => Counter::InboundWindowUpdateFramesFlood,
        }
    }
}

/// A frame header, as the parser hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    /// Padding bytes, the pad-length byte included (0 unless PADDED; only when the parser
    /// reads pad lengths).
    pub pad: u32,
}

/// Where the parser is in the byte stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Bytes to pass over before the next frame header: the client preface, or what is left
    /// of the current frame's payload.
    Skip(u32),
    /// `have` bytes of the next 9-byte header are in `hdr`.
    Header { have: u8 },
    /// The header is complete and PADDED: the next byte is the pad length.
    PadLength(Head),
}

/// The frame-header state machine: fed every byte of one direction, it calls back once per
/// frame with the header (and where in the fed slice the header ended).
#[derive(Debug, Clone)]
pub struct Frames {
    state: State,
    hdr: [u8; 9],
    /// Read a padded DATA or HEADERS frame's pad length before calling back.
    pad_lengths: bool,
}

impl Frames {
    pub fn new(skip: u32, pad_lengths: bool) -> Frames {
        Frames {
            state: after(skip),
            hdr: [0; 9],
            pad_lengths,
        }
    }

    /// Feeds `bytes`; `on_frame(head, at)` for each frame whose header (and pad length) ends
    /// in them, `at` the index just past it. Stops early when `on_frame` returns `false`.
    pub fn feed(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Head, usize) -> bool) {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Skip(n) => {
                    let take = (n as usize).min(bytes.len() - i);
                    i += take;
                    self.state = after(n - take as u32);
                }
                State::Header { have } => {
                    let have = have as usize;
                    let take = (9 - have).min(bytes.len() - i);
                    self.hdr[have..have + take].copy_from_slice(&bytes[i..i + take]);
                    i += take;
                    if have + take < 9 {
                        self.state = State::Header {
                            have: (have + take) as u8,
                        };
                        continue;
                    }
                    let h = &self.hdr;
                    let head = Head {
                        len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                        pad: 0,
                    };
                    let padded = self.pad_lengths
                        && head.len > 0
                        && head.flags & PADDED != 0
                        && matches!(head.kind, DATA | HEADERS);
                    if padded {
                        self.state = State::PadLength(head);
                        continue;
                    }
                    self.state = after(head.len);
                    if !on_frame(head, i) {
                        return;
                    }
                }
                State::PadLength(mut head) => {
                    head.pad = u32::from(bytes[i]) + 1;
                    i += 1;
                    self.state = after(head.len - 1);
                    if !on_frame(head, i) {
                        return;
                    }
                }
            }
        }
    }
}

/// The state with `skip` bytes to pass over before the next frame header.
fn after(skip: u32) -> State {
    if skip == 0 {
        State::Header { have: 0 }
    } else {
        State::Skip(skip)
    }
}

/// Envoy's counts for one connection (`ProtocolConstraints`) and the checks on them.
#[derive(Debug, Clone)]
pub struct Counts {
    limits: Limits,
    side: Side,
    consecutive_empty: u64,
    priority_frames: u64,
    window_update_frames: u64,
    /// Streams opened (HEADERS on a new stream id: received on a server, sent on a client);
    /// minus the ones closed, the active streams Envoy 1.40 scales the PRIORITY and
    /// WINDOW_UPDATE allowances by.
    opened_streams: u64,
    /// Highest stream id a HEADERS frame opened (a higher one opens a new stream).
    last_opened: u32,
    outbound_data_frames: u64,
    /// Frames in the outbound queue, and the control frames among them.
    queued: u64,
    queued_control: u64,
}

impl Counts {
    pub fn new(limits: Limits, side: Side) -> Counts {
        Counts {
            limits,
            side,
            consecutive_empty: 0,
            priority_frames: 0,
            window_update_frames: 0,
            opened_streams: 0,
            last_opened: 0,
            outbound_data_frames: 0,
            queued: 0,
            queued_control: 0,
        }
    }

    /// One frame received (Envoy's `trackInboundFrames`); `closed`: streams closed so far.
    pub fn inbound(&mut self, h: Head, closed: u64) -> Result<(), Flood> {
        match h.kind {
            DATA | HEADERS | CONTINUATION => {
                if h.kind == HEADERS && self.side == Side::Server {
                    self.opened(h.stream);
                }
                let end_stream = h.kind != CONTINUATION && h.flags & END_STREAM != 0;
                if h.len.saturating_sub(h.pad) == 0 && !end_stream {
                    self.consecutive_empty += 1;
                } else {
                    self.consecutive_empty = 0;
                }
            }
            PRIORITY => self.priority_frames += 1,
            WINDOW_UPDATE => self.window_update_frames += 1,
            _ => {}
        }
        let l = &self.limits;
        let active = self.opened_streams.saturating_sub(closed);
        if self.consecutive_empty > l.consecutive_empty {
            return Err(Flood::InboundEmptyFrames);
        }
        if self.priority_frames > l.priority_per_stream * (1 + active) {
            return Err(Flood::InboundPriority);
        }
        let window_updates =
            5 + 2 * (active + l.window_update_per_data_frame * self.outbound_data_frames);
        if self.window_update_frames > window_updates {
            return Err(Flood::InboundWindowUpdate);
        }
        Ok(())
    }

    /// A HEADERS frame on `stream`: a new stream if its id is higher than any before.
    fn opened(&mut self, stream: u32) {
        if stream > self.last_opened {
            self.last_opened = stream;
            self.opened_streams += 1;
        }
    }

    /// One frame sent (DATA frames count toward the WINDOW_UPDATE allowance; a client's
    /// HEADERS open its streams).
    pub fn sent(&mut self, h: Head) {
        match h.kind {
            DATA => self.outbound_data_frames += 1,
            HEADERS if self.side == Side::Client => self.opened(h.stream),
            _ => {}
        }
    }

    /// One frame entered the outbound queue; returns whether it is a control frame.
    pub fn queue(&mut self, h: Head) -> bool {
        let control =
            matches!(h.kind, PING | SETTINGS if h.flags & ACK != 0) || h.kind == RST_STREAM;
        self.queued += 1;
        self.queued_control += u64::from(control);
        control
    }

    /// One queued frame reached the socket.
    pub fn release(&mut self, control: bool) {
        self.queued -= 1;
        self.queued_control -= u64::from(control);
    }

    /// Envoy's `checkOutboundFrameLimits`.
    pub fn check_outbound(&self) -> Result<(), Flood> {
        if self.queued > self.limits.outbound_frames {
            return Err(Flood::Outbound);
        }
        if self.queued_control > self.limits.outbound_control_frames {
            return Err(Flood::OutboundControl);
        }
        Ok(())
    }

    /// Frames in the outbound queue, and the control frames among them.
    pub fn queued_now(&self) -> (u64, u64) {
        (self.queued, self.queued_control)
    }

    #[cfg(test)]
    pub fn queued(&self) -> (u64, u64) {
        self.queued_now()
    }
}

/// The I/O layer: `io` with both directions' frames counted and the limits enforced.
pub struct FloodGuard<S> {
    io: S,
    counts: Counts,
    inbound: Frames,
    outbound: Frames,
    /// Bytes `h2` wrote that the socket has not taken yet.
    pending: BytesMut,
    /// Stream offsets: bytes accepted from `h2`, bytes the socket took.
    accepted: u64,
    written: u64,
    /// Frames with bytes in `pending`: where each ends (a stream offset), control or not.
    queue: VecDeque<(u64, bool)>,
    flooded: Option<Flood>,
    /// A flood found behind frames that went up to `h2`: reads fail after the turns left.
    deferred: Option<(Flood, u8)>,
    /// Streams finished (the connection's owner counts them) and whether it flooded.
    shared: Rc<Shared>,
    /// `http2.*` (downstream) or `cluster.<name>.http2.*` (upstream); `None` counts nothing.
    stats: Option<Http2CodecStats>,
    worker: usize,
}

impl<S> FloodGuard<S> {
    /// `side`: a server reads the client preface ahead of the first frame, a client writes
    /// it; `shared`: where the owner counts the streams it finished and learns of a flood.
    pub fn new(
        io: S,
        limits: Limits,
        side: Side,
        shared: Rc<Shared>,
        stats: Option<Http2CodecStats>,
        worker: usize,
    ) -> Self {
        let (read_skip, write_skip) = match side {
            Side::Server => (CLIENT_PREFACE_LEN, 0),
            Side::Client => (0, CLIENT_PREFACE_LEN),
        };
        FloodGuard {
            io,
            counts: Counts::new(limits, side),
            inbound: Frames::new(read_skip, true),
            outbound: Frames::new(write_skip, false),
            pending: BytesMut::new(),
            accepted: 0,
            written: 0,
            queue: VecDeque::new(),
            flooded: None,
            deferred: None,
            shared,
            stats,
            worker,
        }
    }

    /// Counts a flood once (the counter, and the owner learns of it).
    fn count(&mut self, f: Flood) {
        if self.flooded.is_none() && self.deferred.is_none() {
            self.shared.flooded.set(true);
            if let Some(stats) = &self.stats {
                stats.inc(self.worker, f.counter());
            }
        }
    }

    /// Counts a flood and fails the connection's I/O from now on.
    fn flood(&mut self, f: Flood) -> io::Error {
        self.count(f);
        self.flooded = Some(f);
        flood_error(f)
    }

    /// Moves the `*_frames_active` gauges by `frames` and `control` (only while the socket
    /// refuses bytes: frames the socket takes at once never enter the queue).
    fn gauges(&self, frames: i64, control: i64) {
        if let Some(stats) = &self.stats {
            let w = self.worker;
            stats
                .0
                .gauge_add(w, Gauge::OutboundFramesActive as usize, frames);
            if control != 0 {
                stats
                    .0
                    .gauge_add(w, Gauge::OutboundControlFramesActive as usize, control);
            }
        }
    }

    /// Counts `n` more bytes on the socket and releases the frames that are now all out.
    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        let (mut frames, mut control) = (0, 0);
        while let Some(&(end, is_control)) = self.queue.front() {
            if end > self.written {
                break;
            }
            self.queue.pop_front();
            self.counts.release(is_control);
            frames += 1;
            control += i64::from(is_control);
        }
        if frames > 0 {
            self.gauges(-frames, -control);
        }
    }

    /// Takes `bufs` (the socket took the first `n` bytes): counts the frames, keeps the rest.
    fn accept(&mut self, bufs: &[IoSlice<'_>], n: usize) -> io::Result<()> {
        let Self {
            counts,
            outbound,
            queue,
            accepted,
            written,
            pending,
            ..
        } = self;
        let mut offset = *accepted;
        // What the socket holds once these `n` bytes count (`pending` was empty if n > 0).
        let out = *written + n as u64;
        let mut left = n;
        let (mut frames, mut control) = (0, 0);
        for buf in bufs {
            let base = offset;
            outbound.feed(buf, |head, at| {
                counts.sent(head);
                let end = base + at as u64 + u64::from(head.len);
                if end > out {
                    let is_control = counts.queue(head);
                    queue.push_back((end, is_control));
                    frames += 1;
                    control += i64::from(is_control);
                }
                true
            });
            let direct = left.min(buf.len());
            left -= direct;
            pending.extend_from_slice(&buf[direct..]);
            offset += buf.len() as u64;
        }
        *accepted = offset;
        if frames > 0 {
            self.gauges(frames, control);
        }
        if let Err(f) = self.counts.check_outbound() {
            return Err(self.flood(f));
        }
        Ok(())
    }
}

fn flood_error(f: Flood) -> io::Error {
    io::Error::other(format!("http2 flood: {f:?}"))
}

impl<S: AsyncWrite + Unpin> FloodGuard<S> {
    /// Writes `pending` until the socket stops taking it; `Ready` once it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
            self.wrote(n);
        }
        Poll::Ready(Ok(()))
    }

    fn write_slices(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(f) = self.flooded {
            return Poll::Ready(Err(flood_error(f)));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let drained = self.poll_drain(cx)?.is_ready();
        let n = if drained {
            let io = Pin::new(&mut self.io);
            match io.poll_write_vectored(cx, bufs) {
                Poll::Ready(r) => r?,
                Poll::Pending => 0,
            }
        } else if self.pending.len() >= MAX_PENDING {
            return Poll::Pending;
        } else {
            0
        };
        self.accept(bufs, n)?;
        self.wrote(n);
        Poll::Ready(Ok(total))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FloodGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if let Some(f) = me.flooded {
            return Poll::Ready(Err(flood_error(f)));
        }
        if let Some((f, turns)) = me.deferred {
            if turns == 0 {
                return Poll::Ready(Err(me.flood(f)));
            }
            me.deferred = Some((f, turns - 1));
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut me.io).poll_read(cx, buf))?;
        let mut crossed = None;
        let counts = &mut me.counts;
        let closed = me.shared.closed.get();
        me.inbound.feed(&buf.filled()[before..], |head, at| {
            crossed = counts.inbound(head, closed).err().map(|f| {
                // Where the frame's header (and pad length) began in this read.
                let header = 9 + usize::from(head.pad > 0);
                (f, at.saturating_sub(header))
            });
            crossed.is_none()
        });
        match crossed {
            None => Poll::Ready(Ok(())),
            // The frames before the flooding one reach `h2` (as Envoy's codec has handled
            // them when it checks the next frame's header); a later read fails.
            Some((f, cut)) if cut > 0 => {
                me.count(f);
                me.deferred = Some((f, FLOOD_READ_TURNS));
                buf.set_filled(before + cut);
                Poll::Ready(Ok(()))
            }
            Some((f, _)) => Poll::Ready(Err(me.flood(f))),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FloodGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<S> Drop for FloodGuard<S> {
    /// The frames still queued leave the gauges with the connection (as Envoy's output buffer
    /// releases its frames when the connection goes).
    fn drop(&mut self) {
        let (frames, control) = self.counts.queued_now();
        if frames > 0 {
            self.gauges(-(frames as i64), -(control as i64));
        }
    }
}

#[cfg(test)]
#[path = "flood_tests.rs"]
mod tests;
