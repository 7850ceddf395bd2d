//! CONNECT streams of the HTTP/2 server, bridged to the core as HTTP/1.1: a plain CONNECT
//! goes in as `CONNECT host:port`, an extended CONNECT (RFC 8441, `:protocol websocket`,
//! allowed by `allow_connect`) as a `GET` upgrade, as Envoy turns it into one. When the core
//! answers with the tunnel's start (a 2xx to CONNECT, a 101 to the upgrade: sent as `200`,
//! without the upgrade headers) the stream's DATA frames become tunnel bytes both ways: the
//! client's END_STREAM is a half-close of the pair, the core's close ends the stream. Any
//! other answer goes out as a normal response.
use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::body::{self, BodyError};
use super::grpc_reply;
use super::headers::{self, Framing};
use crate::mem_pipe::MemEnd;

/// Most bytes of response head read from the core.
const MAX_RESPONSE_HEAD: usize = 256 * 1024;

/// Serves one CONNECT stream over the pair `ours` (the core serves the other end).
pub async fn bridge(
    ours: MemEnd,
    parts: http::request::Parts,
    body: RecvStream,
    mut respond: SendResponse<Bytes>,
) {
    let protocol = parts
        .extensions
        .get::<h2::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let mut head = Vec::with_capacity(512);
    if headers::tunnel_request_head(&parts, protocol.as_deref(), &mut head).is_err() {
        respond.send_reset(Reason::PROTOCOL_ERROR);
        return;
    }
    let (mut rd, mut wr) = ours.split();
    if wr.write_all(&head).await.is_err() {
        respond.send_reset(Reason::INTERNAL_ERROR);
        return;
    }
    // The core reads nothing behind the head until the tunnel starts, so the client's DATA
    // wait (flow control holds the client back) until the answer is known.
    let mut buf = BytesMut::with_capacity(4096);
    let (mut resp, framing) = match read_head(&mut rd, &mut buf, &mut respond).await {
        Ok(r) => r,
        Err(_) => return,
    };
    resp.headers_mut().remove(grpc_reply::LOCAL_REPLY_HEADER);
    let code = resp.status().as_u16();
    let tunnel = match protocol {
        None => (200..300).contains(&code),
        Some(_) => code == 101,
    };
    if !tunnel {
        let end = framing == Framing::None;
        let Ok(mut send) = respond.send_response(resp, end) else {
            return;
        };
        if !end
            && body::h1_to_h2(&mut rd, buf, framing, &mut send)
                .await
                .is_err()
        {
            send.send_reset(Reason::INTERNAL_ERROR);
        }
        return;
    }
    // As Envoy: the upgrade's 101 is a 200 on HTTP/2 (its connection headers are already
    // gone: HTTP/2 carries none).
    *resp.status_mut() = StatusCode::OK;
    let Ok(mut send) = respond.send_response(resp, false) else {
        return;
    };
    let up = upload(body, &mut wr);
    let down = body::h1_to_h2(&mut rd, buf, Framing::UntilClose, &mut send);
    body::pump(up, down).await;
}

/// The core's response head (1xx other than 101 skipped).
async fn read_head<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    respond: &mut SendResponse<Bytes>,
) -> Result<(http::Response<()>, Framing), BodyError> {
    loop {
        match headers::parse_response(buf, false) {
            Ok(Some((resp, framing, len))) => {
                buf.advance(len);
                if resp.status().is_informational()
                    && resp.status() != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok((resp, framing));
            }
            Ok(None) if buf.len() < MAX_RESPONSE_HEAD => {}
            _ => {
                respond.send_reset(Reason::INTERNAL_ERROR);
                return Err(BodyError::Framing);
            }
        }
        buf.reserve(4096);
        let n = tokio::select! {
            r = rd.read_buf(buf) => r?,
            _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return Err(BodyError::Reset),
        };
        if n == 0 {
            respond.send_reset(Reason::INTERNAL_ERROR);
            return Err(BodyError::Io);
        }
    }
}

/// Client DATA into the pair as raw bytes; END_STREAM half-closes the pair. Window is given
/// back only once the bytes are written, so a slow upstream slows the client down.
async fn upload<W: tokio::io::AsyncWrite + Unpin>(
    mut body: RecvStream,
    wr: &mut W,
) -> Result<(), BodyError> {
    while let Some(data) = body.data().await {
        let data: Bytes = data?;
        let n = data.len();
        wr.write_all(&data).await?;
        let _ = body.flow_control().release_capacity(n);
    }
    wr.shutdown().await?;
    Ok(())
}
