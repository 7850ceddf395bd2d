//! TLS: the ClientHello peek of the TLS inspector (TLS termination adds modules here).
pub mod client_hello;
