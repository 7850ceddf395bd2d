//! The relay for connections that cannot splice (either side TLS, terminated or originated
//! by meshcore): a copy loop over the streams' readiness API, with the same half-close,
//! idle timeout, counts and end reasons as the splice relay (`relay.rs`).
use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::time::Duration;

use tokio::time::Instant;

use super::relay::{Counts, End, Seen};
use crate::stream::Stream;

/// Buffer per direction.
const COPY_BUF: usize = 16 * 1024;

/// Relays between `down` and `up` until both directions end, an error, or `idle` passes
/// without a byte moving.
pub async fn relay(
    down: &Stream,
    up: &Stream,
    idle: Option<Duration>,
    counts: &dyn Counts,
    seen: &Seen,
) -> End {
    let last = Cell::new(Instant::now());
    super::relay::drive(
        one_way(down, up, true, counts, &last),
        one_way(up, down, false, counts, &last),
        &last,
        idle,
        seen,
    )
    .await
}

async fn one_way(
    src: &Stream,
    dst: &Stream,
    downstream: bool,
    counts: &dyn Counts,
    last: &Cell<Instant>,
) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = loop {
            src.readable().await?;
            match src.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // Half-close: pass the end on (close_notify + FIN on TLS).
            return match dst.close_write().await {
                Err(e) if e.kind() != ErrorKind::NotConnected => Err(e),
                _ => Ok(()),
            };
        }
        counts.read(downstream, n);
        last.set(Instant::now());
        let mut off = 0;
        while off < n {
            match dst.try_write(&buf[off..n]) {
                Ok(m) => {
                    off += m;
                    counts.written(!downstream, m);
                    last.set(Instant::now());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        }
        // TLS may still hold the tail: push it before waiting for more input.
        dst.writable().await?;
    }
}
