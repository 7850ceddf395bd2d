//! Envoy's client address logic for one request: what x-forwarded-for gets appended, and which
//! address is trusted as the client's (`use_remote_address`, `xff_num_trusted_hops`).
//!
//! Checked against Envoy 1.40: with `use_remote_address`, a loopback peer appends the node's
//! own address (`local_info`), any other peer its own IP; the trusted client address is the
//! peer (not the appended address), or the XFF entry `xff_num_trusted_hops - 1` from the
//! right when that is set and valid. Envoy 1.40 considers no address internal by default
//! (an empty `internal_address_config`), so every request is external: with
//! `use_remote_address` it is an edge request.
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// An IP address in text form, on the stack (IPv6 without brackets, as Envoy writes it).
#[derive(Clone, Copy)]
pub struct IpText {
    buf: [u8; 45],
    len: usize,
}

impl IpText {
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 45];
        let mut w: &mut [u8] = &mut buf;
        // 45 bytes hold the longest IPv6 text form, so this cannot fail.
        let _ = write!(w, "{ip}");
        let len = 45 - w.len();
        IpText { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The peer's address as Envoy sees it: IPv4-mapped IPv6 peers (dual-stack listeners) are
/// IPv4.
pub fn peer_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// What `use_remote_address` appends to x-forwarded-for for `peer`: `local_address` for a
/// loopback peer (Envoy's `local_info` quirk), else the peer's IP.
pub fn appended_address<'a>(
    peer: &'a IpText,
    peer_ip: IpAddr,
    local_address: &'a [u8],
) -> &'a [u8] {
    if peer_ip.is_loopback() {
        local_address
    } else {
        peer.as_bytes()
    }
}

/// Envoy's `getLastAddressFromXFF`: the address `skip` entries from the right of the
/// x-forwarded-for value (several lines count as one value joined by `,`), trimmed. `None`
/// when there are not enough entries or the entry is not an IP address.
pub fn address_from_xff<'a>(
    lines: impl DoubleEndedIterator<Item = &'a [u8]>,
    skip: usize,
) -> Option<IpAddr> {
    let entry = lines
        .rev()
        .flat_map(|v| v.rsplit(|&b| b == b','))
        .nth(skip)?;
    std::str::from_utf8(entry.trim_ascii()).ok()?.parse().ok()
}

/// The trusted client address of an edge request (`use_remote_address`): the XFF entry
/// `hops - 1` from the right (before meshcore appends) when `hops > 0` and it is valid, else
/// the peer.
pub fn trusted_client<'a>(
    xff_lines: impl DoubleEndedIterator<Item = &'a [u8]>,
    hops: u32,
    peer_ip: IpAddr,
) -> IpAddr {
    if hops == 0 {
        return peer_ip;
    }
    address_from_xff(xff_lines, hops as usize - 1).unwrap_or(peer_ip)
}

/// Envoy's downstream remote address of a request (RBAC `remote_ip`, `%DOWNSTREAM_REMOTE_ADDRESS%`):
/// with `use_remote_address` the trusted client (`trusted_client`); without it, Envoy's
/// default XFF original-IP detection: the entry `hops` from the right when valid, else the
/// peer.
pub fn remote_address<'a>(
    xff_lines: impl DoubleEndedIterator<Item = &'a [u8]>,
    use_remote_address: bool,
    hops: u32,
    peer_ip: IpAddr,
) -> IpAddr {
    if use_remote_address {
        trusted_client(xff_lines, hops, peer_ip)
    } else {
        address_from_xff(xff_lines, hops as usize).unwrap_or(peer_ip)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remote_address_follows_use_remote_address() {
        let peer = ip("127.0.0.1");
        let lines: [&[u8]; 1] = [b"203.0.113.7, 10.0.0.1"];
        let at = |use_remote: bool, hops: u32| {
            remote_address(lines.iter().copied(), use_remote, hops, peer)
        };
        assert_eq!(at(true, 0), peer);
        assert_eq!(at(true, 1), ip("10.0.0.1"));
        assert_eq!(at(false, 0), ip("10.0.0.1"));
        assert_eq!(at(false, 1), ip("203.0.113.7"));
        assert_eq!(at(false, 2), peer);
        assert_eq!(remote_address(std::iter::empty(), false, 0, peer), peer);
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_text_has_no_brackets() {
        assert_eq!(IpText::new(ip("10.0.0.1")).as_bytes(), b"10.0.0.1");
        assert_eq!(IpText::new(ip("::1")).as_bytes(), b"::1");
        let long = ip("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
        assert_eq!(IpText::new(long).as_bytes(), long.to_string().as_bytes());
    }

    #[test]
    fn loopback_peers_append_the_local_address() {
        let local = b"192.0.2.2";
        let lo = ip("127.0.0.1");
        assert_eq!(appended_address(&IpText::new(lo), lo, local), b"192.0.2.2");
        let v6 = peer_ip("[::ffff:127.0.0.1]:5".parse().unwrap());
        assert_eq!(v6, ip("127.0.0.1"));
        assert_eq!(appended_address(&IpText::new(v6), v6, local), b"192.0.2.2");
        let remote = ip("203.0.113.9");
        assert_eq!(
            appended_address(&IpText::new(remote), remote, local),
            b"203.0.113.9"
        );
    }

    #[test]
    fn xff_entries_are_counted_from_the_right_across_lines() {
        let lines: [&[u8]; 2] = [b"203.0.113.7, 10.0.0.1", b" 1.2.3.4 "];
        assert_eq!(
            address_from_xff(lines.iter().copied(), 0),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            address_from_xff(lines.iter().copied(), 1),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            address_from_xff(lines.iter().copied(), 2),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(address_from_xff(lines.iter().copied(), 3), None);
        let bad: [&[u8]; 1] = [b"1.2.3.4,"];
        assert_eq!(address_from_xff(bad.iter().copied(), 0), None);
        let name: [&[u8]; 1] = [b"unknown"];
        assert_eq!(address_from_xff(name.iter().copied(), 0), None);
    }

    #[test]
    fn trusted_client_follows_xff_num_trusted_hops() {
        let peer = ip("127.0.0.1");
        let lines: [&[u8]; 2] = [b"203.0.113.7, 10.0.0.1", b"1.2.3.4"];
        assert_eq!(trusted_client(lines.iter().copied(), 0, peer), peer);
        assert_eq!(
            trusted_client(lines.iter().copied(), 1, peer),
            ip("1.2.3.4")
        );
        assert_eq!(
            trusted_client(lines.iter().copied(), 2, peer),
            ip("10.0.0.1")
        );
        assert_eq!(trusted_client(lines.iter().copied(), 9, peer), peer);
        assert_eq!(trusted_client(std::iter::empty(), 1, peer), peer);
    }
}
