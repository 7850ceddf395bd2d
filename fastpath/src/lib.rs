//! meshcore's data path: crate map. pyo3 bindings live only in `py/` (feature `python`).
pub mod access_log;
pub mod breaker;
pub mod cluster;
pub mod compiled;
pub mod config;
pub mod conn_info;
pub mod engine;
pub mod error;
pub mod explain;
pub mod filters;
pub mod http1;
pub mod http2;
pub mod lb;
pub mod listener;
pub mod local_reply;
pub mod mem_pipe;
pub mod pool;
pub mod proxy;
#[cfg(feature = "python")]
mod py;
pub mod router;
pub mod stats;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod tracing;
pub mod worker;
