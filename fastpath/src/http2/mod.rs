//! HTTP/2 at both edges, bridged to the HTTP/1.1 core: a downstream `h2` server whose streams
//! are served by the core's connection loop over in-memory pipe pairs (`server.rs`,
//! `mem_pipe.rs`), an upstream `h2` client whose streams carry the core's requests from such
//! pairs (`client.rs`), the translation between the two protocols (`headers.rs`,
//! `body.rs`), CONNECT streams as byte tunnels (`tunnel.rs`), and Envoy's flood limits on
//! downstream connections (`flood.rs`). See docs/http2.md.
mod body;
pub mod client;
mod coalesce;
mod flood;
mod grpc_reply;
mod handoff;
pub mod headers;
mod rewind;
mod server;
mod tunnel;

pub use grpc_reply::LOCAL_REPLY_LINE;
pub use rewind::Rewind;
pub use server::serve;

/// The start of the HTTP/2 connection preface that parses as an HTTP/1.1 head
/// (`PRI * HTTP/2.0\r\n\r\n`; `SM\r\n\r\n` follows).
pub const PREFACE_HEAD: &[u8] = b"PRI * HTTP/2.0\r\n\r\n";
