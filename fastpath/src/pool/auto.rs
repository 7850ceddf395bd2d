//! `auto_config` clusters: a new TLS connection offers `h2,http/1.1` and becomes an HTTP/2
//! multiplexed connection (`http2/client.rs`) or an HTTP/1.1 pooled one by what the upstream
//! chose. Each worker remembers per host what it chose, as Envoy's mixed pool does: a host
//! that chose HTTP/2 gets its requests as streams on its open connection, one that chose
//! HTTP/1.1 skips that lookup (its idle connections are in the keep-alive pool, which the
//! core looks at first).
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::connect::{ConnectError, UpConn, bridged, http1, open_counted};
use crate::cluster::{ClusterState, HostCounters};
use crate::config::snapshot::Http2Options;
use crate::stats::sets::cluster::Counter;
use crate::stream::Stream;
use crate::tls::alpn_offer::chose_http2;

/// Hosts remembered per worker before the memory starts over (removed hosts' ids are never
/// reused, so without a bound it would grow with endpoint churn).
const MAX_REMEMBERED: usize = 4096;

thread_local! {
    /// What each host chose on this worker's last new connection to it (true: HTTP/2).
    static CHOSE_HTTP2: RefCell<HashMap<u64, bool>> = RefCell::new(HashMap::new());
}

/// A connection (or HTTP/2 stream) to `host` for one request of an `auto_config` cluster.
pub async fn connect(
    w: usize,
    cluster: &Arc<ClusterState>,
    host: &Arc<HostCounters>,
    addr: std::net::SocketAddr,
) -> Result<UpConn, ConnectError> {
    // The snapshot always carries an auto_config cluster's HTTP/2 options (Envoy's defaults
    // if none were set).
    let default;
    let opts = match &cluster.cfg.http2 {
        Some(o) => o,
        None => {
            default = Http2Options::default();
            &default
        }
    };
    let known = CHOSE_HTTP2.with(|m| m.borrow().get(&host.id).copied());
    if known != Some(false)
        && let Some(stream) = crate::http2::client::reuse(w, cluster, host, opts)
    {
        return Ok(bridged(stream, w, cluster, host));
    }
    let stream = open_counted(w, cluster, host, addr).await?;
    let http2 = match &stream {
        Stream::Tls(tls) => chose_http2(tls.session().alpn_protocol()),
        _ => false,
    };
    CHOSE_HTTP2.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MAX_REMEMBERED && !m.contains_key(&host.id) {
            m.clear();
        }
        m.insert(host.id, http2);
    });
    if http2 {
        cluster.stats.inc(w, Counter::UpstreamCxHttp2Total);
        let stream = crate::http2::client::adopt(w, cluster, host, stream, opts).await?;
        Ok(bridged(stream, w, cluster, host))
    } else {
        cluster.stats.inc(w, Counter::UpstreamCxHttp1Total);
        Ok(http1(stream, w, cluster, host))
    }
}
