"""Certificates for the SNI passthrough tests, made with `cryptography`: a CA and server
certificates for given DNS names, written as PEM files, plus a TLS backend server (Python
`ssl`) that presents one of them and answers with a banner."""

from __future__ import annotations

import datetime
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.threaded_server import ThreadedServer


@dataclass(frozen=True)
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    pem_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=1)
    )


def make_ca(directory: Path) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("meshcore test CA"))
        .issuer_name(_name("meshcore test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    cert = _validity(builder).sign(key, hashes.SHA256())
    path = directory / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Ca(key, cert, path)


def make_server_cert(ca: Ca, directory: Path, name: str) -> tuple[Path, Path]:
    """(cert, key) PEM files for DNS name `name`, signed by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    )
    cert = _validity(builder).sign(ca.key, hashes.SHA256())
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsBackend(ThreadedServer):
    """A TLS server on 127.0.0.1 (a thread per connection) presenting `cert`: after the
    handshake it reads one line and answers `<banner> <SNI it saw> <line>` and closes."""

    def __init__(self, cert: Path, key: Path, banner: str) -> None:
        self.banner = banner
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["h2", "http/1.1"])
        self.seen_sni: list[str | None] = []
        self.context.sni_callback = self._sni
        super().__init__()

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.seen_sni.append(name)

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                line = tls.recv(1024)
                sni = self.seen_sni[-1] if self.seen_sni else None
                tls.sendall(f"{self.banner} {sni} ".encode() + line)
        except (OSError, ssl.SSLError):
            conn.close()
