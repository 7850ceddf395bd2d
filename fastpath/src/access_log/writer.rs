//! Access log writers: one thread per destination (file path, stdout, stderr) shared by every
//! connection manager and worker that logs there. A worker renders its line straight into its
//! own buffer (one of `SHARDS`, behind an uncontended mutex): no allocation, no syscall and no
//! wake-up per line. The writer thread takes the buffers whole every `SWEEP` (or at once when
//! one passes `WAKE_AT` bytes) and writes them, so lines never interleave. A buffer already
//! holding `CAP` bytes (the writer fell behind) drops the line: the caller counts
//! `access_log.dropped`; a worker never waits for the disk. `reopen_all` makes every file
//! writer reopen its path before its next write (log rotation on SIGUSR1).
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::config::access_log::AccessLogSink;

/// Worker buffers per destination (worker `w` uses `w % SHARDS`).
const SHARDS: usize = 64;
/// A buffer this full wakes the writer at once.
const WAKE_AT: usize = 64 * 1024;
/// A buffer this full drops new lines until the writer has taken it.
pub const CAP: usize = 4 * 1024 * 1024;
/// How often the writer takes the buffers when none is full.
const SWEEP: Duration = Duration::from_millis(100);

static WRITERS: Mutex<Option<HashMap<String, Weak<Sink>>>> = Mutex::new(None);
/// Bumped by `reopen_all`; each file writer compares it with the generation it opened.
static REOPEN: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    File(String),
    Stdout,
    Stderr,
}

/// The buffers shared by the workers and the writer thread.
struct Shards {
    bufs: Box<[Mutex<Vec<u8>>]>,
    /// A wake-up is queued (at most one at a time).
    woken: AtomicBool,
}

/// A destination; dropping the last `Sink` makes the writer write what is left and end, and
/// waits for it (so lines logged before a reload or a stop reach the file).
pub struct Sink {
    shards: Arc<Shards>,
    /// `None` only while dropping.
    wake: Option<SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Disconnecting wakes the writer for its last sweep.
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Sink {
    /// Appends one line, rendered by `render` into worker `w`'s buffer; false (nothing
    /// appended) when the buffer is full because the writer is behind.
    pub fn append(&self, w: usize, render: impl FnOnce(&mut Vec<u8>)) -> bool {
        let mut buf = self.shards.bufs[w % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if buf.len() >= CAP {
            return false;
        }
        render(&mut buf);
        if buf.len() >= WAKE_AT
            && !self.shards.woken.swap(true, Ordering::AcqRel)
            && let Some(wake) = &self.wake
        {
            let _ = wake.try_send(());
        }
        true
    }
}

/// The shared writer for `cfg`, started (and the file opened, so a bad path is a config
/// error) on first use.
pub fn sink(cfg: &AccessLogSink) -> Result<Arc<Sink>, String> {
    let target = match cfg {
        AccessLogSink::File(p) if p == "/dev/stdout" => Target::Stdout,
        AccessLogSink::File(p) if p == "/dev/stderr" => Target::Stderr,
        AccessLogSink::File(p) => Target::File(p.clone()),
        AccessLogSink::Stdout => Target::Stdout,
        AccessLogSink::Stderr => Target::Stderr,
    };
    let key = match &target {
        Target::File(p) => p.clone(),
        Target::Stdout => "/dev/stdout".into(),
        Target::Stderr => "/dev/stderr".into(),
    };
    let mut guard = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(s) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(s);
    }
    let file = match &target {
        Target::File(p) => Some(open(p).map_err(|e| format!("cannot open {p:?}: {e}"))?),
        _ => None,
    };
    let shards = Arc::new(Shards {
        bufs: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
        woken: AtomicBool::new(false),
    });
    let (wake, rx) = sync_channel(1);
    let theirs = shards.clone();
    let thread = std::thread::Builder::new()
        .name("meshcore-accesslog".into())
        .spawn(move || run(rx, &theirs, target, file))
        .map_err(|e| format!("cannot start the access log writer: {e}"))?;
    let s = Arc::new(Sink {
        shards,
        wake: Some(wake),
        thread: Some(thread),
    });
    map.insert(key, Arc::downgrade(&s));
    Ok(s)
}

/// Every file writer reopens its path before writing its next lines.
pub fn reopen_all() {
    REOPEN.fetch_add(1, Ordering::SeqCst);
}

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

fn out_for(target: &Target, file: Option<File>) -> Box<dyn Write + Send> {
    match (target, file) {
        (_, Some(f)) => Box::new(f),
        (Target::Stderr, None) => Box::new(io::stderr()),
        _ => Box::new(io::stdout()),
    }
}

fn run(rx: Receiver<()>, shards: &Shards, target: Target, file: Option<File>) {
    let mut generation = REOPEN.load(Ordering::SeqCst);
    let mut out = out_for(&target, file);
    let mut spare = Vec::new();
    loop {
        let last = matches!(rx.recv_timeout(SWEEP), Err(RecvTimeoutError::Disconnected));
        shards.woken.store(false, Ordering::Release);
        let now = REOPEN.load(Ordering::SeqCst);
        if now != generation {
            generation = now;
            if let Target::File(p) = &target
                && let Ok(f) = open(p)
            {
                out = Box::new(f);
            }
        }
        for buf in shards.bufs.iter() {
            {
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                if b.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *b, &mut spare);
            }
            let _ = out.write_all(&spare);
            spare.clear();
            if spare.capacity() > 2 * WAKE_AT {
                spare.shrink_to(WAKE_AT);
            }
        }
        let _ = out.flush();
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_for(path: &std::path::Path, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = std::fs::read_to_string(path).unwrap_or_default();
            if got == want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn lines_reach_the_file_and_reopen_follows_a_rename() {
        let dir = std::env::temp_dir().join(format!("meshcore-al-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let cfg = AccessLogSink::File(path.to_str().unwrap().into());
        let s = sink(&cfg).unwrap();
        // The same path shares one writer.
        assert!(Arc::ptr_eq(&s, &sink(&cfg).unwrap()));
        assert!(s.append(0, |b| b.extend_from_slice(b"one\n")));
        assert_eq!(wait_for(&path, "one\n"), "one\n");
        let rotated = dir.join("a.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        reopen_all();
        assert!(s.append(3, |b| b.extend_from_slice(b"two\n")));
        assert_eq!(wait_for(&path, "two\n"), "two\n");
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\n");
        // The last lines are written when the last user goes.
        assert!(s.append(1, |b| b.extend_from_slice(b"three\n")));
        drop(s);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\nthree\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A sink without its writer thread: the test plays the writer.
    fn detached() -> (Sink, Receiver<()>) {
        let shards = Arc::new(Shards {
            bufs: (0..SHARDS).map(|_| Mutex::new(Vec::new())).collect(),
            woken: AtomicBool::new(false),
        });
        let (wake, rx) = sync_channel(1);
        let sink = Sink {
            shards,
            wake: Some(wake),
            thread: None,
        };
        (sink, rx)
    }

    #[test]
    fn a_full_buffer_drops_lines_and_a_big_one_wakes_the_writer() {
        let (s, rx) = detached();
        assert!(s.append(5, |b| b.extend_from_slice(b"small\n")));
        assert!(rx.try_recv().is_err(), "no wake-up per line");
        assert!(s.append(5, |b| b.resize(WAKE_AT, b'x')));
        assert!(rx.try_recv().is_ok(), "a big buffer wakes the writer");
        s.shards.bufs[5].lock().unwrap().resize(CAP, b'x');
        assert!(
            !s.append(5, |b| b.push(b'y')),
            "a full buffer refuses the line"
        );
        assert!(s.append(6, |b| b.push(b'z')), "other workers go on");
        // The writer takes the buffer: room again.
        s.shards.bufs[5].lock().unwrap().clear();
        assert!(s.append(5 + SHARDS, |b| b.push(b'w')));
        assert_eq!(*s.shards.bufs[5].lock().unwrap(), b"w");
    }

    #[test]
    fn an_unopenable_path_is_an_error() {
        let cfg = AccessLogSink::File("/nonexistent-dir/x/y.log".into());
        assert!(sink(&cfg).err().unwrap().contains("cannot open"));
    }
}
