//! The connection manager's Host normalisation: `strip_any_host_port` /
//! `strip_matching_host_port` (Envoy's `HeaderUtility::stripPortFromHost`).
use crate::config::snapshot::StripPortMode;

/// `host` without its port when `mode` says so: `Any` strips any numeric port, `Matching`
/// only the listener's own port. CONNECT keeps its port (RFC 9110 requires one), and so does
/// a host whose port is not a number (`a.com:x`, `a.com:`).
pub fn strip_port<'a>(
    host: &'a str,
    method: &str,
    mode: StripPortMode,
    listener_port: u16,
) -> &'a str {
    if mode == StripPortMode::None || method == "CONNECT" {
        return host;
    }
    let Some(colon) = port_start(host.as_bytes()) else {
        return host;
    };
    let Ok(port) = host[colon + 1..].parse::<u32>() else {
        return host;
    };
    if mode == StripPortMode::Matching && port != u32::from(listener_port) {
        return host;
    }
    &host[..colon]
}

/// Envoy's `HeaderUtility::getPortStart`: the last ':' unless it is inside an IPv6 literal
/// (`[::1]` has no port, `[::1]:80` does).
fn port_start(host: &[u8]) -> Option<usize> {
    let colon = host.iter().rposition(|b| *b == b':')?;
    match host.iter().rposition(|b| *b == b']') {
        Some(bracket) if bracket > colon => None,
        _ => Some(colon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StripPortMode::{Any, Matching, None};

    #[test]
    fn none_keeps_the_host() {
        assert_eq!(strip_port("a.com:80", "GET", None, 80), "a.com:80");
    }

    #[test]
    fn any_strips_a_numeric_port() {
        assert_eq!(strip_port("a.com:80", "GET", Any, 10000), "a.com");
        assert_eq!(strip_port("A.COM:9", "GET", Any, 10000), "A.COM");
        assert_eq!(strip_port("[::1]:443", "GET", Any, 1), "[::1]");
        assert_eq!(strip_port("[::1]", "GET", Any, 1), "[::1]");
        assert_eq!(strip_port("a.com", "GET", Any, 1), "a.com");
        assert_eq!(strip_port("a.com:", "GET", Any, 1), "a.com:");
        assert_eq!(strip_port("a.com:x", "GET", Any, 1), "a.com:x");
        assert_eq!(strip_port("a.com:443", "CONNECT", Any, 1), "a.com:443");
    }

    #[test]
    fn matching_strips_only_the_listener_port() {
        assert_eq!(strip_port("a.com:10000", "GET", Matching, 10000), "a.com");
        assert_eq!(strip_port("a.com:9", "GET", Matching, 10000), "a.com:9");
        assert_eq!(strip_port("[::1]:10000", "GET", Matching, 10000), "[::1]");
        assert_eq!(strip_port("[::1]:9", "GET", Matching, 10000), "[::1]:9");
    }

    #[test]
    fn port_start_handles_ipv6_literals() {
        assert_eq!(port_start(b"a.com:80"), Some(5));
        assert_eq!(port_start(b"a.com"), Option::None);
        assert_eq!(port_start(b"[::1]"), Option::None);
        assert_eq!(port_start(b"[::1]:443"), Some(5));
    }
}
