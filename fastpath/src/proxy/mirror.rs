//! Request mirroring (`request_mirror_policies`): a copy of the request goes to another
//! cluster, fire-and-forget, with `-shadow` added to its host; the response is discarded.
//!
//! Bodies: a request is mirrored with its body only when the whole body was already buffered
//! (always for body-less requests; with a retry policy, for bodies within the buffer limit).
//! A body still streaming is not copied, since meshcore does not buffer it: such requests
//! are not mirrored (Envoy buffers them; meshcore would have to hold the whole body).
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::io::write_all_vectored;
use crate::cluster::ClusterState;
use crate::http1::{MAX_HEADERS, parse_response};
use crate::pool::connect;
use crate::router::Mirror;
use crate::stats::sets::{cluster, cluster_class};

/// Starts one shadow request per mirror policy that samples this request. `body` is `None`
/// when the body is not fully buffered (then nothing is mirrored).
pub(super) fn shadow(
    clusters: &[Arc<ClusterState>],
    mirrors: &[Mirror],
    req_out: &[u8],
    body: Option<&[u8]>,
    timeout: Option<Duration>,
    w: usize,
) {
    let Some(body) = body else {
        return;
    };
    for m in mirrors {
        if m.fraction_ppm < 1_000_000 && fastrand::u32(..1_000_000) >= m.fraction_ppm {
            continue;
        }
        let Some(cluster) = clusters.get(m.cluster).cloned() else {
            continue;
        };
        let mut head = shadow_head(req_out);
        head.extend_from_slice(body);
        tokio::task::spawn_local(send(cluster, head, timeout, w));
    }
}

/// The request head with `-shadow` added to its host (before the port, as Envoy does).
fn shadow_head(req_out: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(req_out.len() + 8);
    let mut lines = req_out.split_inclusive(|b| *b == b'\n');
    let mut first = true;
    for line in lines.by_ref() {
        let is_host = !first && line.len() > 5 && line[..5].eq_ignore_ascii_case(b"host:");
        first = false;
        if !is_host {
            out.extend_from_slice(line);
            continue;
        }
        let value = line[5..].trim_ascii();
        let (name, port) = match value.iter().rposition(|b| *b == b':') {
            Some(i) if value[i + 1..].iter().all(u8::is_ascii_digit) && !value.ends_with(b"]") => {
                value.split_at(i)
            }
            _ => (value, &b""[..]),
        };
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(name);
        out.extend_from_slice(b"-shadow");
        out.extend_from_slice(port);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends one shadow request and reads (then drops) its response head.
async fn send(cluster: Arc<ClusterState>, request: Vec<u8>, timeout: Option<Duration>, w: usize) {
    let picked = {
        let set = cluster.hosts.load();
        set.balancer
            .pick(fastrand::u64(..), &|_| 0)
            .and_then(|i| set.hosts.get(i))
            .map(|h| (h.counters.clone(), h.addr))
    };
    let Some((host, addr)) = picked else {
        cluster
            .stats
            .inc(w, cluster::Counter::UpstreamCxNoneHealthy);
        return;
    };
    let s = &cluster.stats;
    s.inc(w, cluster::Counter::UpstreamRqTotal);
    host.rq_total.fetch_add(1, Ordering::Relaxed);
    let work = async {
        // The shadow copy is an HTTP/1.1 request: `use_downstream_protocol_config` sends it
        // upstream as HTTP/1.1.
        let mut up = connect(w, &cluster, &host, addr, false).await.ok()?;
        up.in_flight = true;
        let n = write_all_vectored(&mut up.stream, &[&request]).await.ok()?;
        up.tx(n);
        let mut buf = Vec::with_capacity(4096);
        loop {
            let n = up.stream.read_buf(&mut buf).await.ok()?;
            if n == 0 {
                up.remote_closed = true;
                return None;
            }
            up.rx(n);
            let mut storage = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            match parse_response(&buf, &mut storage, 64 * 1024, false) {
                Ok(Some(h)) if h.code >= 200 => return Some(h.code),
                Ok(Some(h)) => {
                    let len = h.head_len;
                    buf.drain(..len);
                }
                Ok(None) => {}
                Err(_) => return None,
            }
        }
    };
    let limit = timeout.unwrap_or(Duration::from_secs(3600));
    if let Ok(Some(code)) = tokio::time::timeout(limit, work).await {
        s.inc(w, cluster_class(code));
        s.status_code(w, code);
        s.inc(w, cluster::Counter::UpstreamRqCompleted);
    }
}

#[cfg(test)]
mod tests {
    use super::shadow_head;

    #[test]
    fn host_gets_shadow_suffix_before_the_port() {
        let h = shadow_head(b"GET / HTTP/1.1\r\nHost: a.com:8080\r\nx: y\r\n\r\n");
        assert_eq!(
            h,
            b"GET / HTTP/1.1\r\nhost: a.com-shadow:8080\r\nx: y\r\n\r\n"
        );
        let h = shadow_head(b"GET / HTTP/1.1\r\nhost: a.com\r\n\r\n");
        assert_eq!(h, b"GET / HTTP/1.1\r\nhost: a.com-shadow\r\n\r\n");
        let h = shadow_head(b"GET /host: HTTP/1.1\r\nx-host: a\r\n\r\n");
        assert_eq!(h, b"GET /host: HTTP/1.1\r\nx-host: a\r\n\r\n");
    }
}
