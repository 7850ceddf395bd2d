//! Upstream response head → downstream response head (synchronous): parse, decide framing
//! and connection handling, apply Envoy's response decoration and the route's mutations.
use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::config::snapshot::ServerHeaderTransformation;
use crate::http1::write::{push_header, push_kept_lines, push_status_line};
use crate::http1::{Framing, HeadError, Kind, MAX_HEADERS, date, parse_response};
use crate::router::{HeaderList, Selection};

/// Largest upstream response head accepted (Envoy's `max_response_headers_kb` default 60).
pub const MAX_RESPONSE_HEAD: usize = 60 * 1024;

/// How the downstream body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownMode {
    None,
    Length(u64),
    /// Chunked both ways: validated chunk bytes are forwarded as they are.
    ChunkedPass,
    /// Chunked upstream, HTTP/1.0 client: data only, then close.
    Dechunk,
    /// Close-delimited upstream, HTTP/1.1 client: each read becomes one chunk.
    Rechunk,
    /// Close-delimited both ways.
    Raw,
    /// `101 Switching Protocols` to an upgrade request: bytes both ways until either side
    /// closes (`proxy/upgrade.rs`).
    Tunnel,
}

pub struct RespCtx<'a, 'v> {
    pub server: &'a [u8],
    pub transformation: ServerHeaderTransformation,
    pub is_head: bool,
    pub client_minor: u8,
    /// The client may keep the connection (its wish, drain, a fully read request body).
    pub client_keep_alive: bool,
    pub service_time_ms: u64,
    pub sel: &'a Selection<'v>,
    pub choice: usize,
    /// Header lines the HTTP filters add (`name: value\r\n`, e.g. `x-ratelimit-*`).
    pub filter_lines: &'a [u8],
    /// The request asked for an upgrade this route proxies: a 101 is the tunnel's start.
    pub upgrade: bool,
    /// A CONNECT forwarded upstream: a 2xx is the tunnel's start.
    pub connect: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct RespInfo {
    pub code: u16,
    pub head_len: usize,
    pub up_keep_alive: bool,
    pub mode: DownMode,
    pub close_down: bool,
}

pub enum Parsed {
    /// A 1xx (not 101) head of this length: dropped (Envoy does not proxy 100-continue).
    Informational(usize),
    Final(RespInfo),
}

/// Parses the response head in `buf` and writes the downstream head into `out`.
pub fn build(
    buf: &[u8],
    out: &mut Vec<u8>,
    ctx: &RespCtx<'_, '_>,
) -> Result<Option<Parsed>, HeadError> {
    let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let Some(head) = parse_response(buf, &mut storage, MAX_RESPONSE_HEAD, ctx.is_head)? else {
        return Ok(None);
    };
    let tunnel = if ctx.connect {
        (200..300).contains(&head.code)
    } else {
        head.code == 101 && ctx.upgrade
    };
    if (100..200).contains(&head.code) && !tunnel {
        if head.code == 101 {
            return Err(HeadError::Malformed("unexpected 101 Switching Protocols"));
        }
        return Ok(Some(Parsed::Informational(head.head_len)));
    }
    let mut close = !ctx.client_keep_alive && !tunnel;
    let mode = match head.framing {
        _ if tunnel => DownMode::Tunnel,
        Framing::None => DownMode::None,
        Framing::Length(n) => DownMode::Length(n),
        Framing::Chunked if ctx.client_minor == 1 => DownMode::ChunkedPass,
        Framing::Chunked => {
            close = true;
            DownMode::Dechunk
        }
        Framing::UntilClose if ctx.client_minor == 1 => DownMode::Rechunk,
        Framing::UntilClose => {
            close = true;
            DownMode::Raw
        }
    };
    let has_server = head.kinds[..head.headers.len()].contains(&Kind::Server);
    let has_date = head.kinds[..head.headers.len()].contains(&Kind::Date);
    let keep_server = ctx.transformation != ServerHeaderTransformation::Overwrite;
    let keep = |k: Kind| match k {
        Kind::Server => keep_server,
        // A tunnel's 101 keeps `connection: upgrade` and `upgrade` (as Envoy).
        Kind::HopByHop | Kind::Connection if tunnel && head.code == 101 => true,
        Kind::HopByHop | Kind::Connection | Kind::TransferEncoding => false,
        Kind::XEnvoyUpstreamServiceTime => false,
        _ => true,
    };
    let add_server = match ctx.transformation {
        ServerHeaderTransformation::Overwrite => true,
        ServerHeaderTransformation::AppendIfAbsent => !has_server,
        ServerHeaderTransformation::PassThrough => false,
    };
    let mut st = itoa::Buffer::new();
    let date_now = (!has_date).then(date::now);
    let mut extra: [(&str, &[u8]); 5] = [("", b""); 5];
    let mut n = 0;
    if add_server && !ctx.server.is_empty() {
        extra[n] = ("server", ctx.server);
        n += 1;
    }
    if let Some(d) = &date_now {
        extra[n] = ("date", d);
        n += 1;
    }
    if !tunnel {
        extra[n] = (
            "x-envoy-upstream-service-time",
            st.format(ctx.service_time_ms).as_bytes(),
        );
        n += 1;
    }
    if matches!(mode, DownMode::ChunkedPass | DownMode::Rechunk) {
        extra[n] = ("transfer-encoding", b"chunked");
        n += 1;
    }
    if close {
        extra[n] = ("connection", b"close");
        n += 1;
    } else if ctx.client_minor == 0 && !tunnel {
        extra[n] = ("connection", b"keep-alive");
        n += 1;
    }
    let extra = &extra[..n];

    out.clear();
    push_status_line(out, ctx.client_minor, head.code);
    if !ctx.sel.has_response_mutations(ctx.choice) {
        push_kept_lines(out, buf, head.headers, &head.kinds, keep);
        for (k, v) in extra {
            push_header(out, k.as_bytes(), v);
        }
    } else {
        let mut list: HeaderList<'_> = head
            .headers
            .iter()
            .zip(&head.kinds)
            .filter(|(_, k)| keep(**k))
            .map(|(h, _)| (Cow::Borrowed(h.name), Cow::Borrowed(h.value)))
            .collect();
        list.extend(
            extra
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v))),
        );
        ctx.sel.mutate_response_headers(ctx.choice, &mut list);
        for (k, v) in &list {
            push_header(out, k.as_bytes(), v);
        }
    }
    out.extend_from_slice(ctx.filter_lines);
    out.extend_from_slice(b"\r\n");
    Ok(Some(Parsed::Final(RespInfo {
        code: head.code,
        head_len: head.head_len,
        up_keep_alive: head.keep_alive,
        mode,
        close_down: close,
    })))
}
