//! `x-forwarded-client-cert` as Envoy's `ConnectionManagerUtility::mutateXfccRequestHeader`
//! writes it, per `forward_client_cert_details` and `set_current_client_cert_details`:
//! `By=<our URI SAN>;Hash=<sha256>;Cert="..";Chain="..";Subject="..";URI=..;DNS=..`.
use crate::config::snapshot::{ClientCertDetails, ForwardClientCert};
use crate::conn_info::ConnInfo;

/// What happens to the request's x-forwarded-client-cert.
#[derive(Debug, PartialEq, Eq)]
pub enum Xfcc {
    /// Forwarded as received.
    Keep,
    /// Removed.
    Remove,
    /// Replaced by this value.
    Set(String),
    /// This element appended to the received value (`,`-separated).
    Append(String),
}

impl Xfcc {
    /// Whether received `x-forwarded-client-cert` lines stay as they are in the head.
    pub fn keeps_received(&self) -> bool {
        matches!(self, Xfcc::Keep)
    }
}

/// The action for a request on connection `down`.
pub fn action(mode: ForwardClientCert, details: &ClientCertDetails, down: &ConnInfo) -> Xfcc {
    use ForwardClientCert::*;
    match mode {
        AlwaysForwardOnly => return Xfcc::Keep,
        Sanitize => return Xfcc::Remove,
        _ => {}
    }
    let Some(tls) = down.tls.as_deref().filter(|t| t.terminated) else {
        return Xfcc::Remove;
    };
    let Some(peer) = &tls.peer_cert else {
        return Xfcc::Remove;
    };
    let mut parts: Vec<String> = Vec::new();
    match mode {
        ForwardOnly => return Xfcc::Keep,
        AppendForward | SanitizeSet => {
            parts.extend(tls.local_uri_sans.iter().map(|u| format!("By={u}")));
            if !peer.sha256_hex.is_empty() {
                parts.push(format!("Hash={}", peer.sha256_hex));
            }
            if details.cert
                && let Some(leaf) = peer.chain_der.first()
            {
                parts.push(format!("Cert=\"{}\"", super::cert::url_encoded_pem(leaf)));
            }
            if details.chain && !peer.chain_der.is_empty() {
                let chain: String = peer
                    .chain_der
                    .iter()
                    .map(|c| super::cert::url_encoded_pem(c))
                    .collect();
                parts.push(format!("Chain=\"{chain}\""));
            }
            if details.subject {
                parts.push(format!("Subject=\"{}\"", peer.subject));
            }
            if details.uri {
                if peer.uri_sans.is_empty() {
                    parts.push("URI=".to_string());
                }
                parts.extend(peer.uri_sans.iter().map(|u| format!("URI={u}")));
            }
            if details.dns {
                parts.extend(peer.dns_sans.iter().map(|d| format!("DNS={d}")));
            }
        }
        AlwaysForwardOnly | Sanitize => unreachable!("returned above"),
    }
    let value = parts.join(";");
    if mode == AppendForward {
        Xfcc::Append(value)
    } else {
        Xfcc::Set(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_info::{PeerCert, TlsInfo};

    fn conn(peer_cert: Option<PeerCert>) -> ConnInfo {
        let a = "127.0.0.1:1".parse().unwrap();
        let mut c = ConnInfo::plain(a, a);
        c.tls = Some(Box::new(TlsInfo {
            terminated: true,
            peer_cert,
            local_uri_sans: vec!["spiffe://cluster.local/ns/default/sa/proxy".into()],
            ..TlsInfo::default()
        }));
        c
    }

    fn web() -> PeerCert {
        PeerCert {
            uri_sans: vec!["spiffe://cluster.local/ns/default/sa/web".into()],
            dns_sans: vec!["web.default".into()],
            subject: "CN=web,O=test".into(),
            sha256_hex: "ab12".into(),
            chain_der: vec![],
            details: Default::default(),
        }
    }

    #[test]
    fn modes_follow_envoy() {
        let all = ClientCertDetails {
            subject: true,
            uri: true,
            dns: true,
            cert: false,
            chain: false,
        };
        let m = conn(Some(web()));
        let plain = ConnInfo::plain(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let no_cert = conn(None);
        use ForwardClientCert::*;
        assert_eq!(action(Sanitize, &all, &m), Xfcc::Remove);
        assert_eq!(action(AlwaysForwardOnly, &all, &plain), Xfcc::Keep);
        assert_eq!(action(ForwardOnly, &all, &m), Xfcc::Keep);
        assert_eq!(action(ForwardOnly, &all, &plain), Xfcc::Remove);
        assert_eq!(action(ForwardOnly, &all, &no_cert), Xfcc::Remove);
        assert_eq!(
            action(SanitizeSet, &all, &m),
            Xfcc::Set(
                "By=spiffe://cluster.local/ns/default/sa/proxy;Hash=ab12;Subject=\"CN=web,O=test\";\
                 URI=spiffe://cluster.local/ns/default/sa/web;DNS=web.default"
                    .into()
            )
        );
        assert_eq!(
            action(AppendForward, &ClientCertDetails::default(), &m),
            Xfcc::Append("By=spiffe://cluster.local/ns/default/sa/proxy;Hash=ab12".into())
        );
        let mut no_uri = web();
        no_uri.uri_sans.clear();
        let only_uri = ClientCertDetails {
            uri: true,
            ..ClientCertDetails::default()
        };
        assert_eq!(
            action(SanitizeSet, &only_uri, &conn(Some(no_uri))),
            Xfcc::Set("By=spiffe://cluster.local/ns/default/sa/proxy;Hash=ab12;URI=".into())
        );
    }
}
