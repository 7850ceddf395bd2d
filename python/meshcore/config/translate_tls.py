"""TLS transport sockets (`envoy.transport_sockets.tls`): a filter chain's
`DownstreamTlsContext` and a cluster's `UpstreamTlsContext` into the snapshot's TLS contexts
(`fastpath/src/config/tls.rs`), with certificates, keys and CAs read as PEM text here.

Fields the table does not list (SDS secrets, OCSP, session ticket keys, private key
providers...) are reported by it with their paths; this module checks what the table cannot
(the right context type in the right place, readable PEM sources)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2

from . import paths
from .data_source import data_source_text
from .errors import Problems
from .translate_routes import string_matcher
from .type_urls import type_name, unpack
from .values import duration_ms, enum_name

DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)
_SAN_TYPES = {"DNS": "dns", "URI": "uri", "EMAIL": "email", "IP_ADDRESS": "ip_address"}


def _context(
    socket: base_pb2.TransportSocket, want: str, path: str, problems: Problems
) -> Any | None:
    """The unpacked typed config of `socket` when it is a `want` (else a problem or None)."""
    typed_path = paths.field(path, "typed_config")
    if not socket.HasField("typed_config"):
        problems.add(typed_path, "is required (a TLS context)")
        return None
    kind = type_name(socket.typed_config.type_url)
    if kind not in (DOWNSTREAM_TLS, UPSTREAM_TLS):
        return None  # reported by the table
    if kind != want:
        problems.add(typed_path, f"must be a {want.rsplit('.', 1)[-1]} here")
        return None
    return unpack(socket.typed_config)


def downstream(
    chain: listener_components_pb2.FilterChain, path: str, problems: Problems
) -> dict[str, Any]:
    """`{"transport_socket": DownstreamTls}` for a filter chain (at `path`) with TLS (else
    `{}`)."""
    if not chain.HasField("transport_socket"):
        return {}
    socket_path = paths.field(path, "transport_socket")
    ctx = _context(chain.transport_socket, DOWNSTREAM_TLS, socket_path, problems)
    if not isinstance(ctx, tls_pb2.DownstreamTlsContext):
        return {}
    typed_path = paths.field(socket_path, "typed_config")
    out: dict[str, Any] = {
        "common": _common(
            ctx.common_tls_context, paths.field(typed_path, "common_tls_context"), problems
        ),
        "require_client_certificate": ctx.require_client_certificate.value,
    }
    if chain.HasField("transport_socket_connect_timeout"):
        out["handshake_timeout_ms"] = duration_ms(chain.transport_socket_connect_timeout)
    if not ctx.common_tls_context.tls_certificates:
        problems.add(
            paths.field(paths.field(typed_path, "common_tls_context"), "tls_certificates"),
            "a listener needs a certificate",
        )
    return {"transport_socket": out}


def upstream(config: cluster_pb2.Cluster, path: str, problems: Problems) -> dict[str, Any]:
    """`{"transport_socket": UpstreamTls}` for a cluster with TLS (else `{}`)."""
    if not config.HasField("transport_socket"):
        return {}
    socket_path = paths.field(path, "transport_socket")
    ctx = _context(config.transport_socket, UPSTREAM_TLS, socket_path, problems)
    if not isinstance(ctx, tls_pb2.UpstreamTlsContext):
        return {}
    typed_path = paths.field(socket_path, "typed_config")
    common_path = paths.field(typed_path, "common_tls_context")
    common = _common(ctx.common_tls_context, common_path, problems)
    return {"transport_socket": {"common": common, "sni": ctx.sni}}


def _pem(source: base_pb2.DataSource, path: str, problems: Problems, what: str) -> str:
    text = data_source_text(source, path, problems, what)
    if text is None:
        return ""
    if "-----BEGIN" not in text:
        problems.add(path, f"{what} is not PEM (no -----BEGIN line)")
        return text
    for block in _PEM_BLOCK.finditer(text):
        try:
            base64.b64decode("".join(block.group(2).split()), validate=True)
        except binascii.Error:
            problems.add(path, f"{what}: the {block.group(1)} block is not valid base64")
    return text


def _common(ctx: common_pb2.CommonTlsContext, path: str, problems: Problems) -> dict[str, Any]:
    certs_path = paths.field(path, "tls_certificates")
    certificates = []
    for i, cert in enumerate(ctx.tls_certificates):
        at = paths.item(certs_path, i)
        certificates.append(
            {
                "certificate_chain": _pem(
                    cert.certificate_chain,
                    paths.field(at, "certificate_chain"),
                    problems,
                    "a certificate chain",
                ),
                "private_key": _pem(
                    cert.private_key, paths.field(at, "private_key"), problems, "a private key"
                ),
            }
        )
    out: dict[str, Any] = {
        "tls_certificates": certificates,
        "alpn_protocols": list(ctx.alpn_protocols),
        "tls_params": _params(ctx.tls_params),
    }
    if ctx.HasField("validation_context"):
        out["validation"] = _validation(
            ctx.validation_context, paths.field(path, "validation_context"), problems
        )
    return out


def _params(params: common_pb2.TlsParameters) -> dict[str, Any]:
    out: dict[str, Any] = {"cipher_suites": list(params.cipher_suites)}
    for field, key in (
        ("tls_minimum_protocol_version", "minimum"),
        ("tls_maximum_protocol_version", "maximum"),
    ):
        name = enum_name(params, field)
        if name != "TLS_AUTO":
            out[key] = name
    return out


def _validation(
    ctx: common_pb2.CertificateValidationContext, path: str, problems: Problems
) -> dict[str, Any]:
    ca_path = paths.field(path, "trusted_ca")
    if not ctx.HasField("trusted_ca"):
        problems.add(ca_path, "is required (meshcore verifies peers against a trusted CA)")
        trusted = ""
    else:
        trusted = _pem(ctx.trusted_ca, ca_path, problems, "a trusted CA")
    sans_path = paths.field(path, "match_typed_subject_alt_names")
    sans = []
    for i, m in enumerate(ctx.match_typed_subject_alt_names):
        at = paths.item(sans_path, i)
        san_type = _SAN_TYPES.get(enum_name(m, "san_type"))
        if san_type is None:
            continue  # reported by the table
        matcher = string_matcher(m.matcher, paths.field(at, "matcher"), problems)
        sans.append({"san_type": san_type, "matcher": matcher})
    return {"trusted_ca": trusted, "match_typed_subject_alt_names": sans}
