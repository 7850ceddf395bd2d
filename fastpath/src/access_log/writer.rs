//! Access log writers: one thread per destination (file path, stdout, stderr) shared by every
//! connection manager and worker that logs there, fed by a bounded queue. Workers never block:
//! a full queue drops the line (counted as `access_log.dropped` by the caller). Each batch is
//! written through a buffer and flushed whole, so lines never interleave. `reopen_all` makes
//! every file writer reopen its path before its next batch (log rotation on SIGUSR1).
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, Weak};

use crate::config::access_log::AccessLogSink;

/// Lines a writer may have queued before workers start dropping.
pub const QUEUE_LINES: usize = 16 * 1024;
const BUFFER_BYTES: usize = 64 * 1024;

static WRITERS: Mutex<Option<HashMap<String, Weak<Sink>>>> = Mutex::new(None);
/// Bumped by `reopen_all`; each file writer compares it with the generation it opened.
static REOPEN: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    File(String),
    Stdout,
    Stderr,
}

/// A destination's queue; the writer thread ends when the last `Sink` is dropped.
pub struct Sink {
    tx: SyncSender<Vec<u8>>,
}

impl Sink {
    /// Queues one line; false (the line is dropped) when the writer is behind.
    pub fn send(&self, line: Vec<u8>) -> bool {
        match self.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
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
    let (tx, rx) = sync_channel(QUEUE_LINES);
    std::thread::Builder::new()
        .name("meshcore-accesslog".into())
        .spawn(move || run(rx, target, file))
        .map_err(|e| format!("cannot start the access log writer: {e}"))?;
    let s = Arc::new(Sink { tx });
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

fn run(rx: Receiver<Vec<u8>>, target: Target, file: Option<File>) {
    let mut generation = REOPEN.load(Ordering::SeqCst);
    let mut out = BufWriter::with_capacity(BUFFER_BYTES, out_for(&target, file));
    while let Ok(line) = rx.recv() {
        let now = REOPEN.load(Ordering::SeqCst);
        if now != generation {
            generation = now;
            if let Target::File(p) = &target
                && let Ok(f) = open(p)
            {
                let _ = out.flush();
                out = BufWriter::with_capacity(BUFFER_BYTES, Box::new(f));
            }
        }
        let _ = out.write_all(&line);
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(&line);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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
        assert!(s.send(b"one\n".to_vec()));
        assert_eq!(wait_for(&path, "one\n"), "one\n");
        let rotated = dir.join("a.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        reopen_all();
        assert!(s.send(b"two\n".to_vec()));
        assert_eq!(wait_for(&path, "two\n"), "two\n");
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\n");
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_path_is_an_error() {
        let cfg = AccessLogSink::File("/nonexistent-dir/x/y.log".into());
        assert!(sink(&cfg).err().unwrap().contains("cannot open"));
    }
}
