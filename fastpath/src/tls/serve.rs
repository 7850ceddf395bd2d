//! A downstream connection on a filter chain that terminates TLS: the handshake (`accept`,
//! inside the connection's own task, never in the accept loop), then the chain's terminal
//! filter (HTTP connection manager or tcp_proxy) over the TLS stream.
use std::cell::Cell;
use std::rc::Rc;

use tokio::net::TcpStream;

use crate::compiled::Chosen;
use crate::conn_info::ConnInfo;
use crate::worker::{ConnGuard, Worker};

/// Serves `tcp`, accepted on `chosen`'s filter chain, whose view has TLS.
pub async fn serve(
    worker: Rc<Worker>,
    chosen: Chosen,
    tcp: TcpStream,
    mut info: ConnInfo,
    idle: Rc<Cell<bool>>,
    guard: ConnGuard,
) {
    let _ = tcp.set_nodelay(true);
    let w = worker.index;
    let Some(tls) = chosen.view.tls.clone() else {
        return crate::proxy::serve(worker, chosen, tcp.into(), info, idle, guard).await;
    };
    let started = crate::tcp::refusal_start(&chosen.view);
    match super::accept(&tls, tcp, &mut info, w).await {
        Ok(stream) => {
            if chosen.view.network.tcp_proxy.is_some() {
                crate::tcp::serve(worker, chosen.view, stream, info, guard).await;
            } else {
                crate::proxy::serve(worker, chosen, stream, info, idle, guard).await;
            }
        }
        // As in Envoy, the listener and its terminal filter counted the connection (it
        // existed before the handshake failed); the `ssl.*` stats say why.
        Err(failed) => {
            crate::tcp::refuse(&chosen.view, w);
            if let Some(started) = started {
                // Envoy logs the version negotiated before the failure (BoringSSL reports
                // TLSv1.2 before one is) and BoringSSL's reason.
                let t = info.tls.get_or_insert_with(Default::default);
                t.version = Some(failed.version.unwrap_or("TLSv1.2"));
                let why = crate::tcp::Refusal {
                    transport_failure: &failed.reason,
                    picked: true,
                    ..Default::default()
                };
                let inspected = chosen.listener.filters.tls_inspector.is_some();
                crate::tcp::log_refused(&chosen.view, &info, inspected, &started, &why, w);
            }
        }
    }
}
