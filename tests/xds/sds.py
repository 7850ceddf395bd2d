"""SDS for the xDS tests: Secret protos from test certificates, listeners whose TLS
certificate is an SDS secret, SDS files, and a blocking TLS client that reports which
certificate a proxy served and keeps a connection open across pushes."""

from __future__ import annotations

import hashlib
import socket
import ssl
from pathlib import Path
from typing import Any

import yaml
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2  # noqa: F401 - @type
from google.protobuf import json_format

from tests.support import bootstrap as b
from tests.support.certs import Authority, Pair

from .builders import listener_json, parse, xds_cluster

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)
Json = dict[str, Any]


def secret_json(name: str, pair: Pair) -> Json:
    return {
        "name": name,
        "tls_certificate": {
            "certificate_chain": {"inline_string": pair.cert.read_text()},
            "private_key": {"inline_string": pair.key.read_text()},
        },
    }


def secret(name: str, pair: Pair) -> Any:
    return parse(secret_pb2.Secret, secret_json(name, pair))


def mismatched_secret(name: str, cert: Pair, key: Pair) -> Any:
    """A secret whose key is not the certificate's."""
    data = secret_json(name, cert)
    data["tls_certificate"]["private_key"] = {"inline_string": key.key.read_text()}
    return parse(secret_pb2.Secret, data)


def tls_listener_json(name: str, port: int, cluster: str, secret_name: str, sds: Json) -> Json:
    """A listener terminating TLS with SDS secret `secret_name` (`sds`: its sds_config, or
    {} for a static secret), routing everything to `cluster`."""
    routes = b.route_config(
        [b.virtual_host("all", ["*"], [b.route({"prefix": "/"}, cluster=cluster)])], name="r"
    )
    data = listener_json(name, port, routes=routes)
    config: Json = {"name": secret_name}
    if sds:
        config["sds_config"] = sds
    data["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": {"tls_certificate_sds_secret_configs": [config]},
        },
    }
    return data


def tls_listener(name: str, port: int, cluster: str, secret_name: str, sds: Json) -> Any:
    return parse(listener_pb2.Listener, tls_listener_json(name, port, cluster, secret_name, sds))


def write_sds_file(path: Path, version: str, secrets: list[Any]) -> None:
    """A DiscoveryResponse with `secrets`, moved into place (as a secret mount swaps it)."""
    data = {
        "version_info": version,
        "resources": [
            {"@type": SECRET, **json_format.MessageToDict(s, preserving_proto_field_name=True)}
            for s in secrets
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(path)


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _context(ca: Authority) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.path))
    context.check_hostname = False
    return context


def served_certificate(port: int, ca: Authority, timeout: float = 5.0) -> str:
    """The SHA-256 of the certificate a new handshake with 127.0.0.1:`port` gets ("" when
    the connection or handshake fails)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            _context(ca).wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            return fingerprint(der) if der else ""
    except (OSError, ssl.SSLError):
        return ""


class OpenTls:
    """One keep-alive HTTPS connection (blocking), reused across pushes."""

    def __init__(self, port: int, ca: Authority) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        self.sock = _context(ca).wrap_socket(raw)
        der = self.sock.getpeercert(binary_form=True)
        self.certificate = fingerprint(der) if der else ""

    def get(self) -> tuple[int, str]:
        """GET / on this connection: (status, x-upstream)."""
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed in the body")
            body += chunk
        return int(lines[0].split()[1]), headers.get("x-upstream", "")

    def close(self) -> None:
        self.sock.close()


def sds_cluster(port: int) -> dict[str, Any]:
    """The static cluster of a separate SDS server (HTTP/2 options, as the xDS cluster)."""
    cluster = xds_cluster(port)
    cluster["name"] = "sds_cluster"
    return cluster


def api_source(delta: bool) -> dict[str, Any]:
    return {
        "api_config_source": {
            "api_type": "DELTA_GRPC" if delta else "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "sds_cluster"}}],
        },
        "resource_api_version": "V3",
    }
