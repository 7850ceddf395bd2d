//! A new connection on a listener with listener filters: run them (the TLS inspector,
//! bounded by `listener_filters_timeout`), then hand the connection to
//! `Worker::start_connection` with what they found.
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::{Inspected, MatchInputs};
use crate::compiled::{CompiledListener, ListenerHandle};
use crate::conn_info::{ConnInfo, TlsInfo};
use crate::stats::sets::listener;
use crate::worker::{ConnGuard, Worker};

/// A connection registered with its worker while its listener filters run.
pub struct Pending {
    pub id: u64,
    pub idle: Rc<Cell<bool>>,
    pub guard: ConnGuard,
}

/// Runs the listener filters on `stream`, then starts the connection on its chain (or
/// closes it: the peer closed, a too-large ClientHello, the timeout without
/// `continue_on_listener_filters_timeout`).
#[allow(clippy::too_many_arguments)]
pub async fn inspect_then_start(
    worker: Rc<Worker>,
    handle: Arc<ListenerHandle>,
    compiled: Arc<CompiledListener>,
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    pending: Pending,
) {
    let w = worker.index;
    let filters = &compiled.filters;
    let mut inputs = MatchInputs::plain(peer, local);
    let mut info = ConnInfo::plain(peer, local);
    if let Some(inspector) = &filters.tls_inspector {
        let stats = &compiled.stats;
        stats.gauge_inc(w, listener::Gauge::DownstreamPreCxActive);
        let found = match filters.timeout {
            Some(t) => tokio::time::timeout(t, inspector.inspect(w, &stream))
                .await
                .ok(),
            None => Some(inspector.inspect(w, &stream).await),
        };
        stats.gauge_dec(w, listener::Gauge::DownstreamPreCxActive);
        match found {
            None => {
                stats.inc(w, listener::Counter::DownstreamPreCxTimeout);
                if !filters.continue_on_timeout {
                    return;
                }
            }
            Some(Inspected::Close) => return,
            Some(Inspected::Plain) => {}
            Some(Inspected::Tls(hello)) => {
                info.tls = Some(Box::new(TlsInfo {
                    sni: hello.sni.as_deref().map(Into::into),
                    alpn: hello.alpn.first().map(|p| p.as_slice().into()),
                    terminated: false,
                    inspected: true,
                    ..Default::default()
                }));
                inputs.tls = true;
                inputs.server_name = hello.sni.map(Into::into);
                inputs.alpn = hello.alpn.into_iter().map(Into::into).collect();
            }
        }
    }
    worker.start_connection(handle, compiled, inputs, stream, info, Some(pending));
}
