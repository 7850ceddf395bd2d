"""Certificates for TLS tests, made with `cryptography`: a CA, a server certificate (DNS and
IP SANs), client certificates with SPIFFE URI SANs, and a second CA nobody trusts."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WEB_ID = "spiffe://cluster.local/ns/default/sa/web"
OTHER_ID = "spiffe://cluster.local/ns/default/sa/other"
PROXY_ID = "spiffe://cluster.local/ns/default/sa/proxy"


@dataclass
class Pair:
    """A certificate and its key, as files."""

    cert: Path
    key: Path
    der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshcore test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


class Authority:
    """A CA that issues certificates into `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.path = directory / f"{name}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        file: str,
        cn: str,
        dns: tuple[str, ...] = (),
        uris: tuple[str, ...] = (),
        ip: bool = False,
    ) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.UniformResourceIdentifier(u) for u in uris]
        if ip:
            import ipaddress

            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = self.directory / f"{file}.crt"
        key_path = self.directory / f"{file}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Pair(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER))


@dataclass
class Pki:
    ca: Authority
    rogue_ca: Authority
    server: Pair
    """DNS `localhost` and `backend.test`, IP 127.0.0.1, URI `PROXY_ID`."""
    web: Pair
    """Client with `WEB_ID`."""
    other: Pair
    """Client with `OTHER_ID`."""
    rogue: Pair
    """Client with `WEB_ID`, issued by the rogue CA."""


def make_pki(directory: Path) -> Pki:
    ca = Authority(directory, "ca")
    rogue_ca = Authority(directory, "rogue-ca")
    return Pki(
        ca=ca,
        rogue_ca=rogue_ca,
        server=ca.issue("server", "proxy", ("localhost", "backend.test"), (PROXY_ID,), ip=True),
        web=ca.issue("web", "web", ("web.default.svc",), (WEB_ID,)),
        other=ca.issue("other", "other", (), (OTHER_ID,)),
        rogue=rogue_ca.issue("rogue", "web", (), (WEB_ID,)),
    )


def tls_socket(
    pki: Pki,
    *,
    require_client_certificate: bool = False,
    validate: bool = False,
    sans: tuple[tuple[str, str], ...] = (),
    alpn: tuple[str, ...] = (),
    tls_params: dict[str, object] | None = None,
) -> dict[str, object]:
    """A filter chain's `transport_socket` with a DownstreamTlsContext."""
    common: dict[str, object] = {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": str(pki.server.cert)},
                "private_key": {"filename": str(pki.server.key)},
            }
        ],
    }
    if require_client_certificate or validate or sans:
        common["validation_context"] = {
            "trusted_ca": {"filename": str(pki.ca.path)},
            "match_typed_subject_alt_names": [
                {"san_type": kind, "matcher": {"exact": value}} for kind, value in sans
            ],
        }
    if alpn:
        common["alpn_protocols"] = list(alpn)
    if tls_params:
        common["tls_params"] = tls_params
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/"
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": common,
            "require_client_certificate": require_client_certificate,
        },
    }


def upstream_tls_socket(
    pki: Pki,
    *,
    sni: str = "",
    client: Pair | None = None,
    sans: tuple[tuple[str, str], ...] = (),
) -> dict[str, object]:
    """A cluster's `transport_socket` with an UpstreamTlsContext verifying against the CA."""
    common: dict[str, object] = {
        "validation_context": {
            "trusted_ca": {"filename": str(pki.ca.path)},
            "match_typed_subject_alt_names": [
                {"san_type": kind, "matcher": {"exact": value}} for kind, value in sans
            ],
        }
    }
    if client is not None:
        common["tls_certificates"] = [
            {
                "certificate_chain": {"filename": str(client.cert)},
                "private_key": {"filename": str(client.key)},
            }
        ]
    typed: dict[str, object] = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    }
    if sni:
        typed["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": typed}
