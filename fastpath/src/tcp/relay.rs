//! Relaying bytes both ways between two connected sockets until both directions end:
//! splice(2) through a pipe per direction (a copy loop where a pipe cannot be had or the
//! kernel refuses to splice), half-close passed on (FIN from one side shuts down the
//! other's write side while the other direction keeps flowing), and an idle timeout.
use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::pipe::Pipe;

/// Buffer of the copy fallback.
const COPY_BUF: usize = 64 * 1024;

/// How a relay ended.
#[derive(Debug)]
pub enum End {
    /// Both directions reached EOF.
    Closed,
    /// Nothing moved either way for the idle timeout.
    IdleTimeout,
    /// A read or write failed (a reset): both sides are closed.
    Error,
}

/// Byte counters of one relay, called as bytes move (`read` on the source, `written` on the
/// destination).
pub trait Counts {
    fn read(&self, downstream: bool, n: usize);
    fn written(&self, downstream: bool, n: usize);
}

/// What each direction saw, for the connection's close accounting.
#[derive(Default)]
pub struct Seen {
    /// The upstream sent FIN.
    pub upstream_closed: Cell<bool>,
    /// The downstream's side ended (EOF) while the upstream's was still open.
    pub downstream_first: Cell<bool>,
}

/// Relays between `down` and `up` until both directions end, an error, or `idle` passes
/// without a byte moving (None: no idle timeout).
pub async fn relay(
    down: &TcpStream,
    up: &TcpStream,
    idle: Option<Duration>,
    counts: &dyn Counts,
    seen: &Seen,
) -> End {
    let last = Cell::new(Instant::now());
    drive(
        one_way(down, up, true, counts, &last),
        one_way(up, down, false, counts, &last),
        &last,
        idle,
        seen,
    )
    .await
}

/// Runs both directions of a relay (`down_up`, `up_down`) until both end, one fails, or
/// `idle` passes since `last` (the time the last byte moved); records whether the upstream
/// closed its side, and which side closed first. Shared by the splice relay, the TLS copy
/// relay (`copy.rs`) and the HTTP upgrade tunnel (`proxy/upgrade.rs`).
pub(super) async fn drive(
    down_up: impl std::future::Future<Output = std::io::Result<()>>,
    up_down: impl std::future::Future<Output = std::io::Result<()>>,
    last: &Cell<Instant>,
    idle: Option<Duration>,
    seen: &Seen,
) -> End {
    let up_done = Cell::new(false);
    let both = async {
        tokio::try_join!(
            async {
                let r = down_up.await;
                if r.is_ok() && !up_done.get() {
                    seen.downstream_first.set(true);
                }
                r
            },
            async {
                let r = up_down.await;
                up_done.set(true);
                seen.upstream_closed.set(r.is_ok());
                r
            }
        )
    };
    let watch = async {
        match idle {
            Some(t) => idle_watch(last, t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = both => match r {
            Ok(_) => End::Closed,
            Err(_) => End::Error,
        },
        _ = watch => End::IdleTimeout,
    }
}

/// Returns once `idle` passed since the last byte moved.
async fn idle_watch(last: &Cell<Instant>, idle: Duration) {
    loop {
        let deadline = last.get() + idle;
        if deadline <= Instant::now() {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// The way bytes move in one direction.
enum Mover {
    Splice(Pipe),
    Copy {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

impl Mover {
    fn new() -> Mover {
        match Pipe::new() {
            Ok(p) => Mover::Splice(p),
            Err(_) => Mover::copy(),
        }
    }

    fn copy() -> Mover {
        Mover::Copy {
            buf: vec![0; COPY_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn held(&self) -> usize {
        match self {
            Mover::Splice(p) => p.held,
            Mover::Copy { start, end, .. } => end - start,
        }
    }

    fn read(&mut self, src: &TcpStream) -> io::Result<usize> {
        match self {
            Mover::Splice(p) => src.try_io(Interest::READABLE, || p.fill(src)),
            Mover::Copy { buf, start, end } => {
                let n = src.try_read(buf)?;
                (*start, *end) = (0, n);
                Ok(n)
            }
        }
    }

    fn write(&mut self, dst: &TcpStream) -> io::Result<usize> {
        match self {
            Mover::Splice(p) => dst.try_io(Interest::WRITABLE, || p.drain(dst)),
            Mover::Copy { buf, start, end } => {
                let n = dst.try_write(&buf[*start..*end])?;
                *start += n;
                Ok(n)
            }
        }
    }
}

/// Moves bytes from `src` to `dst` until `src`'s EOF, then shuts down `dst`'s write side.
/// `downstream`: `src` is the downstream connection.
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    downstream: bool,
    counts: &dyn Counts,
    last: &Cell<Instant>,
) -> io::Result<()> {
    let mut mover = Mover::new();
    loop {
        let n = loop {
            src.readable().await?;
            match mover.read(src) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                // A socket the kernel cannot splice from: copy from now on (the pipe is
                // empty here, so nothing is lost).
                Err(e)
                    if e.raw_os_error() == Some(nix::libc::EINVAL)
                        && matches!(mover, Mover::Splice(_)) =>
                {
                    mover = Mover::copy();
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // Half-close: pass the FIN on; the other direction keeps going.
            return match socket2::SockRef::from(dst).shutdown(Shutdown::Write) {
                Err(e) if e.kind() != ErrorKind::NotConnected => Err(e),
                _ => Ok(()),
            };
        }
        counts.read(downstream, n);
        last.set(Instant::now());
        while mover.held() > 0 {
            dst.writable().await?;
            match mover.write(dst) {
                Ok(m) => {
                    counts.written(!downstream, m);
                    last.set(Instant::now());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
