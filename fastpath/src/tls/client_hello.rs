//! The TLS inspector's look at a connection's first bytes: is it a TLS ClientHello, and if
//! so its SNI and offered ALPN protocols. The bytes are peeked, never consumed: the chain
//! picked afterwards (a TLS terminator, or a `tcp_proxy` passing TLS through) reads them.
//!
//! The handshake message is parsed by `tls-parser`; this module only reassembles it from
//! its records (a ClientHello may span several) and decides "need more bytes" / "not TLS" /
//! "too large" from the record and handshake headers, with checked bounds everywhere.
use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_client_hello_extensions,
    parse_tls_message_handshake,
};

/// TLS record content type of a handshake record.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;
/// The largest record a peer may send (RFC 8446 §5.1: 2^14 bytes of plaintext).
const MAX_RECORD: usize = 1 << 14;

/// What the first bytes of a connection say.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek {
    /// A complete ClientHello.
    Hello(ClientHello),
    /// A TLS ClientHello so far; more bytes are needed.
    NeedMore,
    /// Not a TLS ClientHello (other bytes, or a malformed hello).
    NotTls,
    /// A ClientHello larger than the inspector's `max_client_hello_size`.
    TooLarge,
}

/// What the TLS inspector learns from a ClientHello.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// The `server_name` extension's host name, lower-cased (None: no SNI).
    pub sni: Option<String>,
    /// The offered ALPN protocols, in the client's order (empty: no ALPN extension).
    pub alpn: Vec<Vec<u8>>,
}

/// Looks at `buf` (a connection's first bytes); a ClientHello of more than `max` bytes
/// (handshake header included) is `TooLarge`.
pub fn inspect(buf: &[u8], max: usize) -> Peek {
    let mut message = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + RECORD_HEADER) else {
            return partial_header(&buf[at.min(buf.len())..]);
        };
        if header[0] != HANDSHAKE || header[1] != 3 {
            return Peek::NotTls;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Peek::NotTls;
        }
        let body_at = at + RECORD_HEADER;
        let available = &buf[body_at.min(buf.len())..buf.len().min(body_at + len)];
        message.extend_from_slice(available);
        match handshake_state(&message, max) {
            Some(done) => return done,
            None if available.len() < len => return Peek::NeedMore,
            None => at = body_at + len,
        }
    }
}

/// The handshake message so far: `Some` once it is decided (complete, not a ClientHello,
/// too large), None when more of it is needed.
fn handshake_state(message: &[u8], max: usize) -> Option<Peek> {
    let kind = *message.first()?;
    if kind != CLIENT_HELLO {
        return Some(Peek::NotTls);
    }
    let len = message.get(1..4)?;
    let total = 4 + (usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]));
    if total > max {
        return Some(Peek::TooLarge);
    }
    let hello = message.get(..total)?;
    Some(parse(hello).map_or(Peek::NotTls, Peek::Hello))
}

/// Fewer than five bytes of a record header: TLS as far as they go?
fn partial_header(head: &[u8]) -> Peek {
    match head {
        [] | [HANDSHAKE] | [HANDSHAKE, 3, ..] => Peek::NeedMore,
        _ => Peek::NotTls,
    }
}

/// A complete ClientHello handshake message (header included); None when malformed.
fn parse(hello: &[u8]) -> Option<ClientHello> {
    let (rest, msg) = parse_tls_message_handshake(hello).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = msg else {
        return None;
    };
    let mut out = ClientHello::default();
    let Some(ext) = ch.ext else {
        return Some(out);
    };
    let (rest, extensions) = parse_tls_client_hello_extensions(ext).ok()?;
    if !rest.is_empty() {
        return None;
    }
    for e in extensions {
        match e {
            TlsExtension::SNI(names) => {
                let host = names.iter().find(|(t, _)| *t == SNIType::HostName);
                if let Some((_, name)) = host {
                    // A host name is ASCII (RFC 6066 §3); anything else is a malformed hello.
                    let name = std::str::from_utf8(name).ok().filter(|n| n.is_ascii())?;
                    out.sni = Some(name.to_ascii_lowercase());
                }
            }
            TlsExtension::ALPN(protocols) => {
                out.alpn = protocols.iter().map(|p| p.to_vec()).collect();
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
