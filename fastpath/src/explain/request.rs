//! The request `explain` is asked about, and the downstream connection facts it arrives with
//! (JSON from Python; unknown fields are an error).
use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    /// The Host header value (`host` or `host:port`).
    pub authority: String,
    /// Origin-form target, query included.
    pub path: String,
    /// Extra request headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Pick the listener by name.
    #[serde(default)]
    pub listener: Option<String>,
    /// Pick the listener by its configured port.
    #[serde(default)]
    pub port: Option<u16>,
    /// The ClientHello's server name.
    #[serde(default)]
    pub sni: Option<String>,
    /// The ALPN protocols the client offers, in its order.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// The connection starts with a TLS ClientHello (implied by `sni` / `alpn`).
    #[serde(default)]
    pub tls: bool,
    /// The peer's address (default `127.0.0.1:0`: loopback, no particular port).
    #[serde(default)]
    pub source: Option<String>,
    /// A random value for the weighted cluster choice (the data path draws one per request).
    #[serde(default)]
    pub random: Option<u64>,
}

impl Request {
    /// Errors name the field: `request.path: must start with '/'`.
    pub fn check(&self) -> Result<(), String> {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if !token(&self.method) {
            return Err(format!(
                "request.method: {:?} is not an HTTP method token",
                self.method
            ));
        }
        if !self.path.starts_with('/') {
            return Err(format!(
                "request.path: {:?} must start with '/' (origin form)",
                self.path
            ));
        }
        if self.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "request.path: {:?} contains a space or control character",
                self.path
            ));
        }
        if self.authority.is_empty() || self.authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "request.authority: {:?} is not a host",
                self.authority
            ));
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if !token(name) {
                return Err(format!(
                    "request.headers[{i}]: {name:?} is not a header name"
                ));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(format!(
                    "request.headers[{i}]: the value of {name:?} contains CR, LF or NUL"
                ));
            }
        }
        if self.sni.as_deref().is_some_and(str::is_empty) {
            return Err("request.sni: must not be empty".into());
        }
        self.source_addr().map(|_| ())
    }

    pub fn source_addr(&self) -> Result<SocketAddr, String> {
        match &self.source {
            None => Ok(SocketAddr::from(([127, 0, 0, 1], 0))),
            Some(s) => s.parse().map_err(|_| {
                format!("request.source: {s:?} is not IP:PORT (e.g. 10.0.0.7:5000 or [::1]:5000)")
            }),
        }
    }

    /// The connection is TLS: said so, or an SNI / ALPN was given.
    pub fn is_tls(&self) -> bool {
        self.tls || self.sni.is_some() || !self.alpn.is_empty()
    }
}
