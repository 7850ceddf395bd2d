//! A kernel pipe for zero-copy relaying: socket → pipe → socket with splice(2), through
//! nix's safe wrappers (no `unsafe` here).
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};

/// Pipe capacity asked for (the kernel default is 64 KiB; a larger pipe halves the
/// syscalls of a bulk transfer). When refused (`/proc/sys/fs/pipe-max-size`, or the
/// per-user pipe quota) the default is kept.
const WANTED_CAPACITY: i32 = 256 * 1024;

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

/// One direction's pipe and how many bytes sit in it.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes moved in and not yet moved out.
    pub held: usize,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe.
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let capacity = fcntl(&write, FcntlArg::F_SETPIPE_SZ(WANTED_CAPACITY))
            .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))
            .map_or(64 * 1024, |n| n.max(4096) as usize);
        Ok(Pipe {
            read,
            write,
            capacity,
            held: 0,
        })
    }

    /// Moves what `src` has (up to the pipe's free room) into the pipe: `Ok(0)` is EOF,
    /// `WouldBlock` means `src` has nothing now.
    pub fn fill(&mut self, src: impl AsFd) -> io::Result<usize> {
        let room = self.capacity - self.held;
        debug_assert!(room > 0, "fill called on a full pipe");
        let n = splice(src, None, &self.write, None, room, FLAGS)?;
        self.held += n;
        Ok(n)
    }

    /// Moves bytes from the pipe into `dst`: `WouldBlock` means `dst`'s send buffer is full.
    /// splice(2) has no MSG_NOSIGNAL: a peer that reset makes it raise SIGPIPE, which the
    /// host process ignores (CPython sets SIGPIPE to SIG_IGN at start, as does Rust's
    /// runtime for the test binaries), so it is the EPIPE error here.
    pub fn drain(&mut self, dst: impl AsFd) -> io::Result<usize> {
        let n = splice(&self.read, None, dst, None, self.held, FLAGS)?;
        self.held -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn moves_bytes_between_sockets_and_reports_eof() {
        let (mut a_out, a_in) = pair();
        let (b_in, mut b_out) = pair();
        let mut pipe = Pipe::new().unwrap();
        assert!(pipe.capacity >= 4096);
        a_out.write_all(b"hello through a pipe").unwrap();
        let n = pipe.fill(&a_in).unwrap();
        assert_eq!(n, 20);
        assert_eq!(pipe.held, 20);
        assert_eq!(pipe.drain(&b_in).unwrap(), 20);
        assert_eq!(pipe.held, 0);
        let mut got = [0u8; 20];
        b_out.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello through a pipe");
        drop(a_out);
        assert_eq!(pipe.fill(&a_in).unwrap(), 0);
    }

    #[test]
    fn empty_nonblocking_source_would_block() {
        let (_a_out, a_in) = pair();
        a_in.set_nonblocking(true).unwrap();
        let mut pipe = Pipe::new().unwrap();
        let e = pipe.fill(&a_in).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
