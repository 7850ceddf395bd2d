//! A downstream connection on a listener that terminates TLS: the handshake (`accept`, inside
//! the connection's own task, never in the accept loop), then the listener's terminal filter
//! (HTTP connection manager or tcp_proxy) over the TLS stream.
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::compiled::{ListenerHandle, ListenerView};
use crate::conn_info::ConnInfo;
use crate::worker::{ConnGuard, Worker};

/// Serves `tcp` (accepted on `handle`, whose view `view`, with TLS, was current at accept).
pub async fn serve(
    worker: Rc<Worker>,
    handle: Arc<ListenerHandle>,
    view: Arc<ListenerView>,
    tcp: TcpStream,
    mut info: ConnInfo,
    idle: Rc<Cell<bool>>,
    guard: ConnGuard,
) {
    let _ = tcp.set_nodelay(true);
    let w = worker.index;
    let Some(tls) = view.tls.clone() else {
        return crate::proxy::serve(worker, handle, tcp.into(), info, idle, guard).await;
    };
    match super::accept(&tls, tcp, &mut info, w).await {
        Ok(stream) => {
            if view.network.tcp_proxy.is_some() {
                let peer: SocketAddr = info.peer;
                crate::tcp::serve(worker, view, stream, peer, guard).await;
            } else {
                crate::proxy::serve(worker, handle, stream, info, idle, guard).await;
            }
        }
        // As in Envoy, the listener and its terminal filter counted the connection (it
        // existed before the handshake failed); the `ssl.*` stats say why.
        Err(_) => crate::tcp::refuse(&view, w),
    }
}
