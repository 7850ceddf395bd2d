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
    let mut c = Counts::new(DEFAULTS);
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
    let mut c = Counts::new(DEFAULTS);
    assert_eq!(c.inbound(head(DATA, END_STREAM, 1, 0), 0), Ok(()));
    assert_eq!(c.inbound(head(DATA, END_STREAM, 1, 0), 0), Ok(()));
    let padding_only = Head {
        pad: 4,
        ..head(DATA, PADDED, 1, 4)
    };
    assert_eq!(c.inbound(padding_only, 0), Ok(()));
    assert_eq!(c.inbound(padding_only, 0), Err(Flood::InboundEmptyFrames));
    // A limit of 0: the first empty frame is a flood.
    let mut c = Counts::new(Limits {
        consecutive_empty: 0,
        ..DEFAULTS
    });
    assert_eq!(
        c.inbound(head(DATA, 0, 1, 0), 0),
        Err(Flood::InboundEmptyFrames)
    );
}

#[test]
fn priority_frames_per_opened_stream() {
    let mut c = Counts::new(DEFAULTS);
    for _ in 0..100 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 3, 5), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 3, 5), 0),
        Err(Flood::InboundPriority)
    );
    // 100 * (1 + opened streams); trailers on an open stream open nothing.
    let mut c = Counts::new(DEFAULTS);
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
    let mut c = Counts::new(DEFAULTS);
    c.inbound(head(HEADERS, END_STREAM, 1, 3), 0).unwrap();
    for _ in 0..100 {
        assert_eq!(c.inbound(head(PRIORITY, 0, 3, 5), 1), Ok(()));
    }
    assert_eq!(
        c.inbound(head(PRIORITY, 0, 3, 5), 1),
        Err(Flood::InboundPriority)
    );
    let mut c = Counts::new(DEFAULTS);
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
    let mut c = Counts::new(DEFAULTS);
    for _ in 0..5 {
        assert_eq!(c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0), Ok(()));
    }
    assert_eq!(
        c.inbound(head(WINDOW_UPDATE, 0, 0, 4), 0),
        Err(Flood::InboundWindowUpdate)
    );
    // 5 + 2 * (opened streams + 10 * DATA frames sent) = 5 + 2 * (1 + 10) = 27.
    let mut c = Counts::new(DEFAULTS);
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
    let mut c = Counts::new(Limits {
        outbound_frames: 3,
        outbound_control_frames: 2,
        ..DEFAULTS
    });
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

/// A socket that takes `room` more bytes, then refuses (`Pending`).
struct Socket {
    room: usize,
    out: Vec<u8>,
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
    let registry = crate::stats::Registry::new(1);
    let stats = Http2CodecStats::new(&registry, "http2");
    let socket = Socket {
        room,
        out: Vec::new(),
    };
    FloodGuard::new(socket, limits, 0, Rc::new(Cell::new(0)), stats, 0)
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
    let mut counted = None;
    g.stats.0.export(&mut |_, name, value| {
        if name == "http2.outbound_control_flood" {
            counted = value.as_u64();
        }
    });
    assert_eq!(counted, Some(1));
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
