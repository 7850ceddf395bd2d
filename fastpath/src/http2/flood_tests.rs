//! Unit tests of the flood accounting: the frame-header parser (straddled headers, padding,
//! the preface), each of Envoy's counters at exactly its limit, and the write-side queue.
use super::*;

const DEFAULTS: Limits = Limits {
    outbound_frames: 10_000,
    outbound_control_frames: 1_000,
    consecutive_empty: 1,
    priority_per_stream: 100,
    window_update_per_data_frame: 10,
};

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn heads(parser: &mut Frames, bytes: &[u8]) -> Vec<Head> {
    let mut out = Vec::new();
    parser.feed(bytes, |h, _| {
        out.push(h);
        true
    });
    out
}

fn head(kind: u8, flags: u8, stream: u32, len: u32) -> Head {
    Head {
        len,
        kind,
        flags,
        stream,
        pad: 0,
    }
}

#[test]
fn headers_straddling_reads_are_parsed_once() {
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    bytes.extend(frame(DATA, END_STREAM, 0x8000_0001, b"hello"));
    bytes.extend(frame(PING, 0, 0, b"12345678"));
    let whole = heads(&mut Frames::new(CLIENT_PREFACE_LEN, true), &bytes);
    assert_eq!(
        whole,
        vec![
            head(SETTINGS, 0, 0, 6),
            head(DATA, END_STREAM, 1, 5),
            head(PING, 0, 0, 8)
        ]
    );
    // Byte by byte, and in every split of two.
    let mut parser = Frames::new(CLIENT_PREFACE_LEN, true);
    let one: Vec<Head> = bytes
        .chunks(1)
        .flat_map(|b| heads(&mut parser, b))
        .collect();
    assert_eq!(one, whole);
    for cut in 0..bytes.len() {
        let mut parser = Frames::new(CLIENT_PREFACE_LEN, true);
        let mut got = heads(&mut parser, &bytes[..cut]);
        got.extend(heads(&mut parser, &bytes[cut..]));
        assert_eq!(got, whole, "split at {cut}");
    }
}

#[test]
fn the_callback_gets_where_the_header_ends_and_can_stop_the_parse() {
    let mut bytes = frame(DATA, 0, 1, b"abc");
    bytes.extend(frame(DATA, 0, 1, b""));
    let mut at = Vec::new();
    Frames::new(0, false).feed(&bytes, |_, i| {
        at.push(i);
        true
    });
    assert_eq!(at, vec![9, 21]);
    let mut calls = 0;
    Frames::new(0, false).feed(&bytes, |_, _| {
        calls += 1;
        false
    });
    assert_eq!(calls, 1);
}

#[test]
fn a_padded_frame_reports_its_padding() {
    let mut parser = Frames::new(0, true);
    let padded = frame(DATA, PADDED, 1, &[3, 0, 0, 0]);
    let got: Vec<Head> = padded
        .chunks(1)
        .flat_map(|b| heads(&mut parser, b))
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].len, got[0].pad), (4, 4));
    // Padding is not read when not asked for (the write side).
    let got = heads(&mut Frames::new(0, false), &padded);
    assert_eq!(got[0].pad, 0);
}

#[test]
fn consecutive_empty_frames_at_the_limit() {
    let mut c = Counts::new(DEFAULTS, Side::Server);
    assert_eq!(c.inbound(head(HEADERS, 0, 1, 10), 0), Ok(()));
    assert_eq!(c.inbound(head(DATA, 0, 1, 0), 0), Ok(()));
    // A frame with payload resets the run; PING does not.
    assert_eq!(c.inbound(head(DATA, 0, 1, 1), 0), Ok(()));
    assert_eq!(c.inbound(head(DATA, 0, 1, 0), 0), Ok(()));
    assert_eq!(c.inbound(head(PING, 0, 0, 8), 0), Ok(()));
    assert_eq!(
        c.inbound(head(CONTINUATION, 0, 1, 0), 0),
        Err(Flood::InboundEmptyFrames)
    );
    // END_STREAM frames are not empty-payload frames; padding-only ones are.
    let mut c = Counts::new(DEFAULTS, Side::Server);
    assert_eq!(c.inbound(head(DATA, END_STREAM, 1, 0), 0), Ok(()));
    assert_eq!(c.inbound(head(DATA, END_STREAM, 1, 0), 0), Ok(()));
    let padding_only = Head {
        pad: 4,
        ..head(DATA, PADDED, 1, 4)
    };
    assert_eq!(c.inbound(padding_only, 0), Ok(()));
    assert_eq!(c.inbound(padding_only, 0), Err(Flood::InboundEmptyFrames));
    // A limit of 0: the first empty frame is a flood.
    let mut c = Counts::new(
        Limits {
            consecutive_empty: 0,
            ..DEFAULTS
        },
        Side::Server,
    );
    assert_eq!(
        c.inbound(head(DATA, 0, 1, 0), 0),
        Err(Flood::InboundEmptyFrames)
    );
}

#[test]
fn priority_frames_per_opened_stream() {
    let mut c = Counts::new(DEFAULTS, Side::Server);
    for _ in 0..100 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 3, 5), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 3, 5), 0),
        Err(Flood::InboundPriority)
    );
    // 100 * (1 + opened streams); trailers on an open stream open nothing.
    let mut c = Counts::new(DEFAULTS, Side::Server);
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    for _ in 0..200 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 3, 5), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 3, 5), 0),
        Err(Flood::InboundPriority)
    );
}

#[test]
fn the_allowances_scale_with_active_streams_not_opened_ones() {
    // Envoy 1.40: a stream opened and closed no longer adds to the PRIORITY allowance.
    let mut c = Counts::new(DEFAULTS, Side::Server);
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    for _ in 0..100 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 3, 5), 1), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 3, 5), 1),
        Err(Flood::InboundPriority)
    );
    let mut c = Counts::new(DEFAULTS, Side::Server);
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    for _ in 0..5 {
        assert_eq!(c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 1), Ok(()));
    }
    assert_eq!(
        c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 1),
        Err(Flood::InboundWindowUpdate)
    );
}

#[test]
fn window_updates_per_data_frame_sent() {
    let mut c = Counts::new(DEFAULTS, Side::Server);
    for _ in 0..5 {
        assert_eq!(c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0),
        Err(Flood::InboundWindowUpdate)
    );
    // 5 + 2 * (opened streams + 10 * DATA frames sent) = 5 + 2 * (1 + 10) = 27.
    let mut c = Counts::new(DEFAULTS, Side::Server);
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    c.sent(head(DATA, 0, 1, 100));
    c.sent(head(HEADERS, 0, 1, 100));
    for _ in 0..27 {
        assert_eq!(c.inbound(head(WINDOW_UPDATE, 0, 1, 4), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(WINDOW_UPDATE, 0, 1, 4), 0),
        Err(Flood::InboundWindowUpdate)
    );
}

#[test]
fn outbound_queue_limits_at_the_boundary() {
    let mut c = Counts::new(
        Limits {
            outbound_frames: 3,
            outbound_control_frames: 2,
            ..DEFAULTS
        },
        Side::Server,
    );
    assert!(c.queue(head(PING, ACK, 0, 8)));
    assert!(c.queue(head(RST_STREAM, 0, 1, 4)));
    assert!(!c.queue(head(PING, 0, 0, 8)));
    assert_eq!(c.check_outbound(), Ok(()));
    assert!(c.queue(head(SETTINGS, ACK, 0, 0)));
    assert_eq!(c.check_outbound(), Err(Flood::Outbound));
    c.release(false);
    assert_eq!(c.check_outbound(), Err(Flood::OutboundControl));
    c.release(true);
    assert_eq!(c.check_outbound(), Ok(()));
    assert_eq!(c.queued(), (2, 2));
}

/// A socket that takes `room` more bytes, then refuses (`Pending`); reads hand over `input`
/// `read_size` bytes at a time.
struct Socket {
    room: usize,
    out: Vec<u8>,
    input: Vec<u8>,
    read_size: usize,
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.input.len().min(self.read_size).min(buf.remaining());
        buf.put_slice(&self.input[..n]);
        self.input.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.room);
        if n == 0 {
            return Poll::Pending;
        }
        self.room -= n;
        self.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn guard(room: usize, limits: Limits) -> FloodGuard<Socket> {
    guard_on(Side::Server, room, limits)
}

fn guard_on(side: Side, room: usize, limits: Limits) -> FloodGuard<Socket> {
    let registry = crate::stats::Registry::new(1);
    let stats = Http2CodecStats::new(&registry, "cluster.c.http2");
    let socket = Socket {
        room,
        out: Vec::new(),
        input: Vec::new(),
        read_size: usize::MAX,
    };
    FloodGuard::new(socket, limits, side, Rc::default(), Some(stats), 0)
}

/// One stat of the guard's scope, by its name after the prefix.
fn stat(g: &FloodGuard<Socket>, name: &str) -> Option<u64> {
    let stats = g.stats.as_ref().unwrap();
    let mut found = None;
    stats.0.export(&mut |_, n, value| {
        if n == format!("cluster.c.http2.{name}") {
            found = value.as_u64().or_else(|| value.as_i64().map(|v| v as u64));
        }
    });
    found
}

/// Reads once into a fresh buffer: the bytes read or the error (`None`: the guard waits).
fn read(g: &mut FloodGuard<Socket>) -> Option<io::Result<Vec<u8>>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut space = [0u8; 4096];
    let mut buf = ReadBuf::new(&mut space);
    match Pin::new(g).poll_read(&mut cx, &mut buf) {
        Poll::Ready(Ok(())) => Some(Ok(buf.filled().to_vec())),
        Poll::Ready(Err(e)) => Some(Err(e)),
        Poll::Pending => None,
    }
}

fn write(g: &mut FloodGuard<Socket>, bytes: &[u8]) -> Poll<io::Result<usize>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(g).poll_write(&mut cx, bytes)
}

fn flush(g: &mut FloodGuard<Socket>) -> Poll<io::Result<()>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(g).poll_flush(&mut cx)
}

#[test]
fn writes_pass_through_and_only_refused_frames_are_queued() {
    let pong = frame(PING, ACK, 0, b"12345678");
    let mut g = guard(17 + 5, DEFAULTS);
    // The first PONG goes out whole, 5 bytes of the second: one frame queued.
    assert!(matches!(
        write(&mut g, &[pong.clone(), pong.clone()].concat()),
        Poll::Ready(Ok(34))
    ));
    assert_eq!(g.counts.queued(), (1, 1));
    assert_eq!(g.pending.len(), 12);
    // The socket is full: everything is kept, and counted.
    assert!(matches!(write(&mut g, &pong), Poll::Ready(Ok(17))));
    assert_eq!(g.counts.queued(), (2, 2));
    assert!(flush(&mut g).is_pending());
    // Room for the rest of the second PONG only: the third stays queued.
    g.io.room = 12;
    assert!(flush(&mut g).is_pending());
    assert_eq!(g.counts.queued(), (1, 1));
    g.io.room = 100;
    assert!(matches!(flush(&mut g), Poll::Ready(Ok(()))));
    assert_eq!(g.counts.queued(), (0, 0));
    assert_eq!(g.io.out, [pong.clone(), pong.clone(), pong].concat());
}

#[test]
fn an_outbound_control_flood_fails_the_connection_and_counts_once() {
    let pong = frame(PING, ACK, 0, b"12345678");
    let limits = Limits {
        outbound_control_frames: 2,
        ..DEFAULTS
    };
    let mut g = guard(0, limits);
    assert!(matches!(write(&mut g, &pong), Poll::Ready(Ok(_))));
    assert!(matches!(write(&mut g, &pong), Poll::Ready(Ok(_))));
    assert!(matches!(write(&mut g, &pong), Poll::Ready(Err(_))));
    assert_eq!(g.flooded, Some(Flood::OutboundControl));
    assert!(matches!(write(&mut g, &pong), Poll::Ready(Err(_))));
    assert_eq!(stat(&g, "outbound_control_flood"), Some(1));
}

#[test]
fn data_frames_written_count_toward_window_updates() {
    let mut g = guard(1 << 20, DEFAULTS);
    let data = frame(DATA, 0, 1, &[0; 100]);
    // The header and the payload arrive in separate writes.
    assert!(matches!(write(&mut g, &data[..9]), Poll::Ready(Ok(9))));
    assert!(matches!(write(&mut g, &data[9..]), Poll::Ready(Ok(100))));
    assert_eq!(g.counts.outbound_data_frames, 1);
    assert_eq!(g.counts.queued(), (0, 0));
}

#[test]
fn a_client_counts_the_streams_it_opens_not_the_responses() {
    let mut c = Counts::new(DEFAULTS, Side::Client);
    // Response HEADERS on a new stream id open nothing on a client: 100 x (1 + 0).
    assert_eq!(c.inbound(head(HEADERS, 0, 1, 1), 0), Ok(()));
    for _ in 0..100 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 1, 5), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 1, 5), 0),
        Err(Flood::InboundPriority)
    );
    // Its own HEADERS do: 100 x (1 + 1); a finished stream no longer counts.
    let mut c = Counts::new(DEFAULTS, Side::Client);
    c.sent(head(HEADERS, END_STREAM, 1, 10));
    c.sent(head(HEADERS, 0, 1, 10)); // trailers: not a new stream
    for _ in 0..200 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 1, 5), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 1, 5), 1),
        Err(Flood::InboundPriority)
    );
    // WINDOW_UPDATE: 5 + 2 x (1 open + 10 x 0 DATA).
    let mut c = Counts::new(DEFAULTS, Side::Client);
    c.sent(head(HEADERS, END_STREAM, 1, 10));
    for _ in 0..7 {
        assert_eq!(c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0),
        Err(Flood::InboundWindowUpdate)
    );
}

#[test]
fn a_client_guard_passes_over_the_preface_it_writes() {
    let mut g = guard_on(Side::Client, 1 << 20, DEFAULTS);
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    bytes.extend(frame(HEADERS, END_STREAM, 1, b"abc"));
    // Cut inside the preface and inside a frame header.
    assert!(matches!(write(&mut g, &bytes[..10]), Poll::Ready(Ok(10))));
    assert!(matches!(write(&mut g, &bytes[10..40]), Poll::Ready(Ok(30))));
    let rest = bytes.len() - 40;
    assert!(matches!(write(&mut g, &bytes[40..]), Poll::Ready(Ok(n)) if n == rest));
    assert_eq!(g.counts.opened_streams, 1);
    assert_eq!(g.io.out, bytes);
}

#[test]
fn the_frames_before_a_flooding_one_are_read_then_the_read_fails() {
    let mut g = guard_on(Side::Client, 1 << 20, DEFAULTS);
    let head_frame = frame(HEADERS, 0x4, 1, b"\x88");
    let mut input = frame(SETTINGS, 0, 0, &[]);
    input.extend(&head_frame);
    input.extend(frame(DATA, 0, 1, &[]));
    let ok_len = input.len();
    input.extend(frame(DATA, 0, 1, &[]));
    g.io.input = input;
    // One read holds all four frames: the first three pass, the fourth is the flood.
    assert_eq!(read(&mut g).unwrap().unwrap().len(), ok_len);
    assert!(g.shared.flooded.get());
    assert_eq!(stat(&g, "inbound_empty_frames_flood"), Some(1));
    // The next read waits a turn (the streams take those frames first), then fails.
    assert!(read(&mut g).is_none());
    assert!(read(&mut g).unwrap().is_err());
    assert!(matches!(write(&mut g, b"x"), Poll::Ready(Err(_))));
    assert_eq!(stat(&g, "inbound_empty_frames_flood"), Some(1));
}

#[test]
fn a_flooding_frame_first_in_a_read_fails_that_read() {
    let mut g = guard_on(Side::Client, 1 << 20, DEFAULTS);
    let mut input = frame(DATA, 0, 1, &[]);
    input.extend(frame(DATA, 0, 1, &[]));
    g.io.input = input;
    g.io.read_size = 9;
    assert_eq!(read(&mut g).unwrap().unwrap().len(), 9);
    // The second frame's header is all this read holds: nothing passes before it.
    assert!(read(&mut g).unwrap().is_err());
    assert!(g.shared.flooded.get());
}

#[test]
fn the_queue_gauges_follow_the_refused_frames_and_leave_with_the_guard() {
    let registry = crate::stats::Registry::new(1);
    let stats = Http2CodecStats::new(&registry, "cluster.c.http2");
    let socket = Socket {
        room: 0,
        out: Vec::new(),
        input: Vec::new(),
        read_size: usize::MAX,
    };
    let gauge = |name: &str| {
        let mut found = None;
        stats.0.export(&mut |_, n, value| {
            if n == format!("cluster.c.http2.{name}") {
                found = value.as_i64();
            }
        });
        found
    };
    // A server's guard: no preface ahead of what it writes.
    let mut g = FloodGuard::new(
        socket,
        DEFAULTS,
        Side::Server,
        Rc::default(),
        Some(stats.clone()),
        0,
    );
    let pong = frame(PING, ACK, 0, b"12345678");
    let data = frame(DATA, 0, 1, b"abc");
    assert!(matches!(
        write(&mut g, &[pong.clone(), data].concat()),
        Poll::Ready(Ok(_))
    ));
    assert_eq!(gauge("outbound_frames_active"), Some(2));
    assert_eq!(gauge("outbound_control_frames_active"), Some(1));
    // The PONG goes out: one frame left, no control frame.
    g.io.room = pong.len();
    assert!(flush(&mut g).is_pending());
    assert_eq!(gauge("outbound_frames_active"), Some(1));
    assert_eq!(gauge("outbound_control_frames_active"), Some(0));
    drop(g);
    assert_eq!(gauge("outbound_frames_active"), Some(0));
}
