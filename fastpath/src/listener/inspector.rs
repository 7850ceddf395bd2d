//! The listener filters: `envoy.filters.listener.tls_inspector` peeks (MSG_PEEK: the bytes
//! stay in the socket for the chain) at a connection's first bytes for a ClientHello, within
//! `listener_filters_timeout`. Stats as Envoy's: `tls_inspector.*` and the listener's
//! `downstream_pre_cx_*`.
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, recv};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::config::snapshot;
use crate::stats::{Registry, Scope, stat_set};
use crate::tls::client_hello::{self, ClientHello, Peek};

stat_set! { tls_inspector, prefix_codes: None,
    counters {
        ClientHelloTooLarge => "client_hello_too_large",
        TlsFound => "tls_found",
        TlsNotFound => "tls_not_found",
        AlpnFound => "alpn_found",
        AlpnNotFound => "alpn_not_found",
        SniFound => "sni_found",
        SniNotFound => "sni_not_found",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}

use tls_inspector::Counter;

/// A listener's listener filters and their timeout.
pub struct ListenerFilters {
    pub tls_inspector: Option<TlsInspector>,
    /// `listener_filters_timeout` (None: 0, no limit).
    pub timeout: Option<Duration>,
    /// `continue_on_listener_filters_timeout`.
    pub continue_on_timeout: bool,
}

/// A compiled `tls_inspector`.
pub struct TlsInspector {
    /// `max_client_hello_size`: also the most bytes peeked.
    max: usize,
    stats: Arc<Scope>,
}

/// What the listener filters found.
pub enum Inspected {
    /// A ClientHello.
    Tls(ClientHello),
    /// Not TLS.
    Plain,
    /// The connection is to be closed (peer closed, error, ClientHello too large).
    Close,
}

/// Envoy's upper bound for `max_client_hello_size`.
const MAX_CLIENT_HELLO_LIMIT: u32 = 64 * 1024;

impl TlsInspector {
    pub fn compile(
        t: &snapshot::TlsInspector,
        registry: &Registry,
        path: &str,
    ) -> Result<TlsInspector, String> {
        if t.max_client_hello_size == 0 || t.max_client_hello_size > MAX_CLIENT_HELLO_LIMIT {
            return Err(format!(
                "{path}.tls_inspector.max_client_hello_size: must be 1..{MAX_CLIENT_HELLO_LIMIT}"
            ));
        }
        Ok(TlsInspector {
            max: t.max_client_hello_size as usize,
            // Envoy roots these at `tls_inspector.`, shared by every listener.
            stats: registry.scope("tls_inspector", &tls_inspector::LAYOUT),
        })
    }

    fn count(&self, w: usize, c: Counter) {
        self.stats.add(w, c as usize, 1);
    }

    /// Peeks until the first bytes decide (ClientHello, not TLS, too large) and counts the
    /// outcome.
    pub async fn inspect(&self, w: usize, stream: &TcpStream) -> Inspected {
        let mut buf = vec![0u8; self.max];
        let mut seen = 0;
        loop {
            let n = match peek_more(stream, &mut buf, seen).await {
                Ok(0) | Err(_) => return Inspected::Close,
                Ok(n) => n,
            };
            seen = n;
            match client_hello::inspect(&buf[..n], self.max) {
                Peek::NeedMore if n < buf.len() => continue,
                Peek::NeedMore | Peek::TooLarge => {
                    self.count(w, Counter::ClientHelloTooLarge);
                    return Inspected::Close;
                }
                Peek::NotTls => {
                    self.count(w, Counter::TlsNotFound);
                    return Inspected::Plain;
                }
                Peek::Hello(h) => {
                    self.count(w, Counter::TlsFound);
                    self.count(
                        w,
                        if h.sni.is_some() {
                            Counter::SniFound
                        } else {
                            Counter::SniNotFound
                        },
                    );
                    self.count(
                        w,
                        if h.alpn.is_empty() {
                            Counter::AlpnNotFound
                        } else {
                            Counter::AlpnFound
                        },
                    );
                    return Inspected::Tls(h);
                }
            }
        }
    }
}

/// Peeks into `buf` once more than `seen` bytes are waiting (0: the peer closed first).
/// A peek that finds no new bytes reports `WouldBlock` to tokio, which clears the socket's
/// readiness, so the next wait is for new bytes rather than a busy loop over the same ones;
/// a peer that half-closed before sending enough ends the wait (`UnexpectedEof`).
async fn peek_more(stream: &TcpStream, buf: &mut [u8], seen: usize) -> io::Result<usize> {
    loop {
        let ready = stream.ready(Interest::READABLE).await?;
        let fd = stream.as_raw_fd();
        let peeked = stream.try_io(Interest::READABLE, || {
            match recv(fd, buf, MsgFlags::MSG_PEEK) {
                Ok(n) if n > seen || n == 0 => Ok(n),
                Ok(_) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(io::Error::from(e)),
            }
        });
        match peeked {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if ready.is_read_closed() {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            other => return other,
        }
    }
}
