//! The spans waiting for the control layer: one buffer per worker shard (behind an
//! uncontended mutex), one JSON object per line. A worker appends a span without allocating
//! once its buffer has grown; `take` swaps every buffer out. A buffer holding `CAP` bytes
//! refuses new spans (the caller counts `tracing.spans_dropped`): a worker never waits.
use std::sync::Mutex;

const SHARDS: usize = 64;
/// A shard this full drops spans until the control layer takes it (~4000 spans).
pub const CAP: usize = 4 * 1024 * 1024;

static BUFS: [Mutex<Vec<u8>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];

/// Appends one span rendered by `render` to worker `w`'s buffer; false when it is full.
pub fn push(w: usize, render: impl FnOnce(&mut Vec<u8>)) -> bool {
    let mut b = BUFS[w % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
    if b.len() >= CAP {
        return false;
    }
    render(&mut b);
    true
}

/// Every queued span (newline-separated JSON objects), leaving the buffers empty.
pub fn take() -> Vec<u8> {
    let mut out = Vec::new();
    for buf in BUFS.iter() {
        let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
        if b.is_empty() {
            continue;
        }
        if out.is_empty() {
            std::mem::swap(&mut out, &mut *b);
            // The worker's next spans start a fresh, small buffer.
        } else {
            out.extend_from_slice(&b);
            b.clear();
        }
    }
    out
}
