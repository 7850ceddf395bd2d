//! The accept loop of one listener on one worker: each connection becomes a local task.
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::compiled::ListenerHandle;
use crate::worker::Worker;

/// Accepts until the task is aborted (listener removed, drain, stop); dropping the task
/// closes the socket.
pub async fn accept_loop(
    worker: Rc<Worker>,
    handle: Arc<ListenerHandle>,
    listener: std::net::TcpListener,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(_) => return,
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                worker.spawn_connection(handle.clone(), stream, peer);
            }
            // Out of descriptors or a connection reset while queued: back off briefly.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
