//! Listening sockets (one SO_REUSEPORT socket per listener per worker, and the accept loop),
//! listener filters (the TLS inspector) and filter chain selection (`filter_chain_match`).
mod accept;
mod chain_match;
mod compile;
mod connection;
pub mod inspector;

pub use accept::accept_loop;
pub use chain_match::{ChainMatcher, Cidr, MatchInputs};
pub use compile::{ListenerParts, compile_listener};
pub use connection::{Pending, inspect_then_start};
pub use inspector::{Inspected, ListenerFilters, TlsInspector};
use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

const BACKLOG: i32 = 1024;

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // As Envoy without `ipv4_compat`: an IPv6 listener takes IPv6 only.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds `count` sockets on `addr`: the first with the requested port (0 lets the kernel
/// choose), the others on the port the first one got. All or nothing.
pub fn bind_all(addr: SocketAddr, count: usize) -> io::Result<(u16, Vec<std::net::TcpListener>)> {
    let first = bind_one(addr)?;
    let port = first.local_addr()?.port();
    let mut all = vec![first];
    for _ in 1..count.max(1) {
        all.push(bind_one(SocketAddr::new(addr.ip(), port))?);
    }
    Ok((port, all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_binds_every_socket_to_one_port() {
        let (port, socks) = bind_all("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_ne!(port, 0);
        assert_eq!(socks.len(), 3);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn taken_port_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(bind_all(addr, 2).is_err());
    }
}
