//! Histogram samples for the statsd sink: when capture is on, each recorded sample is kept as
//! a `name:ms|ms` line (Envoy's statsd timer) in its worker's buffer until the control layer
//! takes them. Off by default: recording then costs one relaxed load.
//!
//! One buffer per worker shard behind an uncontended mutex (only `take` ever competes); a
//! shard holding `CAP` samples drops further ones and counts them, so a worker never waits.
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const SHARDS: usize = 64;
/// Samples one worker keeps per flush interval; more are dropped (and counted).
pub const CAP: usize = 65_536;

static ON: AtomicBool = AtomicBool::new(false);

struct Buf {
    /// `name:ms|ms\n` lines.
    lines: Vec<u8>,
    count: usize,
    dropped: u64,
}

static BUFS: [Mutex<Buf>; SHARDS] = [const {
    Mutex::new(Buf {
        lines: Vec::new(),
        count: 0,
        dropped: 0,
    })
}; SHARDS];

/// Whether samples are captured (checked on every histogram record).
#[inline]
pub fn enabled() -> bool {
    ON.load(Relaxed)
}

/// Turns capture on or off (process-wide); turning it off discards what was buffered.
pub fn set_enabled(on: bool) {
    ON.store(on, Relaxed);
    if !on {
        take();
    }
}

/// Appends one sample of the histogram named `key` + `name` (`key` ends with a dot) to
/// worker `w`'s buffer, or counts it dropped when the buffer is full.
#[cold]
pub fn push(w: usize, key: &str, name: &str, ms: u64) {
    let mut b = BUFS[w % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
    if b.count >= CAP {
        b.dropped += 1;
        return;
    }
    b.count += 1;
    // Writing into a Vec cannot fail.
    let _ = writeln!(b.lines, "{key}{name}:{ms}|ms");
}

/// Every buffered sample line (`name:ms|ms\n`) and the number of samples dropped since the
/// previous call, leaving the buffers empty.
pub fn take() -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut dropped = 0;
    for buf in BUFS.iter() {
        let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
        dropped += std::mem::take(&mut b.dropped);
        b.count = 0;
        if b.lines.is_empty() {
            continue;
        }
        if out.is_empty() {
            std::mem::swap(&mut out, &mut b.lines);
        } else {
            out.extend_from_slice(&b.lines);
            b.lines.clear();
        }
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test's lines: other stats tests may record (on other workers' shards) while
    /// capture is on, as it is process-wide.
    fn mine(lines: &[u8]) -> Vec<String> {
        let mut v: Vec<String> = std::str::from_utf8(lines)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("http.samples_test."))
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn capture_off_cap_and_drop_count() {
        // Worker indexes 62 and 63: shards no other test writes.
        let s = crate::stats::Scope::new(
            "http.samples_test".into(),
            &crate::stats::sets::http::LAYOUT,
            SHARDS,
        );
        // Off: recording keeps nothing.
        s.record_us(63, 0, 5_000);
        assert!(mine(&take().0).is_empty());

        set_enabled(true);
        s.record_us(62, 0, 12_999);
        s.record_us(63, 1, 250);
        let (lines, dropped) = take();
        assert_eq!(
            mine(&lines),
            [
                "http.samples_test.downstream_cx_length_ms:0|ms",
                "http.samples_test.downstream_rq_time:12|ms"
            ]
        );
        assert_eq!(dropped, 0);

        // One worker's cap: the rest is counted, other workers still capture.
        for _ in 0..CAP + 3 {
            s.record_us(63, 0, 1_000);
        }
        s.record_us(62, 0, 2_000);
        let (lines, dropped) = take();
        assert_eq!(dropped, 3);
        let got = mine(&lines);
        assert_eq!(got.len(), CAP + 1);
        assert!(got.contains(&"http.samples_test.downstream_rq_time:2|ms".to_string()));
        // Taken: the next interval starts empty, with room again.
        let (lines, dropped) = take();
        assert!(mine(&lines).is_empty());
        assert_eq!(dropped, 0);
        s.record_us(63, 0, 1_000);
        assert_eq!(
            mine(&take().0),
            ["http.samples_test.downstream_rq_time:1|ms"]
        );

        set_enabled(false);
        s.record_us(63, 0, 1_000);
        assert!(mine(&take().0).is_empty());
    }
}
