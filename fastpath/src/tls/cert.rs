//! What meshcore reads from an X.509 certificate (x509-parser): SANs by type, the subject in
//! RFC 2253 form as BoringSSL prints it (Envoy's `Subject`), the SHA-256 of the DER, and the
//! URL-encoded PEM of XFCC's `Cert`/`Chain`.
use std::fmt::Write as _;
use std::net::IpAddr;

use data_encoding::{BASE64, HEXLOWER};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::conn_info::PeerCert;

/// The SANs of a certificate, by type.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sans {
    pub dns: Vec<String>,
    pub uri: Vec<String>,
    pub email: Vec<String>,
    /// Text form (`10.0.0.1`, `::1`).
    pub ip: Vec<String>,
}

/// Parses `der`'s SANs; None when it is not a certificate x509-parser can read.
pub fn sans(der: &[u8]) -> Option<Sans> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(sans_of(&cert))
}

fn sans_of(cert: &X509Certificate<'_>) -> Sans {
    let mut out = Sans::default();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns.push((*d).to_string()),
                GeneralName::URI(u) => out.uri.push((*u).to_string()),
                GeneralName::RFC822Name(e) => out.email.push((*e).to_string()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        out.ip.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The identity of a verified peer certificate (`ConnInfo.tls.peer_cert`).
pub fn peer_cert(der: &[u8]) -> PeerCert {
    let sha256_hex = HEXLOWER.encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let s = sans_of(&cert);
            PeerCert {
                uri_sans: s.uri,
                dns_sans: s.dns,
                subject: subject_rfc2253(&cert),
                sha256_hex,
                chain_der: Vec::new(),
                details: Default::default(),
            }
        }
        Err(_) => PeerCert {
            sha256_hex,
            ..PeerCert::default()
        },
    }
}

/// OpenSSL's short names (`XN_FLAG_FN_SN`) of the usual attribute types.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.46" => "dnQualifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// The subject as `X509_NAME_print_ex(XN_FLAG_RFC2253)` prints it: RDNs last to first,
/// joined by `,` (multi-valued ones by `+`), values escaped per RFC 2253 (and bytes outside
/// printable ASCII as `\XX`).
pub fn subject_rfc2253(cert: &X509Certificate<'_>) -> String {
    name_rfc2253(cert.subject())
}

/// The access log's details of a peer certificate (`conn_info::CertDetails`).
pub fn details(der: &[u8]) -> Option<crate::conn_info::CertDetails> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let serial = cert.raw_serial();
    // DER integers carry a leading zero byte when the high bit is set; OpenSSL's hex has none.
    let serial = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    };
    let time = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        if secs >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
        } else {
            std::time::UNIX_EPOCH
        }
    };
    Some(crate::conn_info::CertDetails {
        issuer: name_rfc2253(cert.issuer()),
        serial: HEXLOWER.encode(serial),
        sha1_hex: HEXLOWER
            .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
    })
}

/// A distinguished name in RFC 2253 form, as BoringSSL prints it.
fn name_rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().collect::<Vec<_>>().iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            match short_name(&oid) {
                Some(n) => out.push_str(n),
                None => out.push_str(&oid),
            }
            out.push('=');
            match atv.as_str() {
                Ok(v) => escape_2253(&mut out, v.as_bytes()),
                // Not a string type: OpenSSL dumps the DER as #hex.
                Err(_) => {
                    out.push('#');
                    out.push_str(&HEXLOWER.encode(atv.attr_value().data));
                }
            }
        }
    }
    out
}

fn escape_2253(out: &mut String, v: &[u8]) {
    let last = v.len().saturating_sub(1);
    for (i, &b) in v.iter().enumerate() {
        let special = matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';')
            || (i == 0 && (b == b'#' || b == b' '))
            || (i == last && b == b' ');
        if special {
            out.push('\\');
            out.push(b as char);
        } else if !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\{b:02X}");
        } else {
            out.push(b as char);
        }
    }
}

/// The PEM text of `der`, URL-encoded as Envoy's XFCC `Cert` (`%XX` for every byte other
/// than `A-Za-z0-9-._~`).
pub fn url_encoded_pem(der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let mut out = String::with_capacity(pem.len() * 5 / 4);
    for b in pem.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_escapes_specials_and_non_ascii() {
        let mut s = String::new();
        escape_2253(&mut s, b" a,b+c\"d\\e<f>g;h ");
        assert_eq!(s, r#"\ a\,b\+c\"d\\e\<f\>g\;h\ "#);
        let mut s = String::new();
        escape_2253(&mut s, "#é".as_bytes());
        assert_eq!(s, r"\#\C3\A9");
    }

    #[test]
    fn a_certificate_yields_its_identity() {
        let ca = crate::tls::test_certs::Ca::generate();
        let leaf = ca.leaf(
            "web",
            &["web.default.svc"],
            &["spiffe://cluster.local/ns/default/sa/web"],
        );
        let der = leaf.der();
        let p = peer_cert(&der);
        assert_eq!(p.uri_sans, ["spiffe://cluster.local/ns/default/sa/web"]);
        assert_eq!(p.dns_sans, ["web.default.svc"]);
        assert_eq!(p.subject, "CN=web,O=meshcore test");
        assert_eq!(p.sha256_hex.len(), 64);
        assert!(
            p.sha256_hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let enc = url_encoded_pem(&der);
        assert!(enc.starts_with("-----BEGIN%20CERTIFICATE-----%0A"), "{enc}");
        assert!(enc.ends_with("-----END%20CERTIFICATE-----%0A"), "{enc}");
        assert!(!enc.contains('/') && !enc.contains('+') && !enc.contains('='));
    }
}
