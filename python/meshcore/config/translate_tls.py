"""TLS transport sockets (`envoy.transport_sockets.tls`): a filter chain's
`DownstreamTlsContext` and a cluster's `UpstreamTlsContext` into the snapshot's TLS contexts
(`fastpath/src/config/tls.rs`), with certificates, keys and CAs read as PEM text here.

An SDS secret reference (`tls_certificate_sds_secret_configs`,
`validation_context_sds_secret_config`, `combined_validation_context`) becomes a `{"$sds":
...}` placeholder that `meshcore.config.secrets` replaces with the secret's PEM before the
snapshot reaches the engine.

Fields the table does not list (OCSP, session ticket keys, private key providers...) are
reported by it with their paths; this module checks what the table cannot (the right
context type in the right place, readable PEM sources)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2

from . import paths
from .data_source import data_source_text
from .errors import Problems
from .translate_routes import string_matcher
from .type_urls import type_name, unpack
from .values import duration_field_s, duration_ms, enum_name

SDS_KEY = "$sds"
# As Envoy: an SDS subscription's `initial_fetch_timeout` when it sets none.
SDS_INITIAL_FETCH_TIMEOUT_S = 15.0
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
    common_ctx = ctx.common_tls_context
    if not common_ctx.tls_certificates and not common_ctx.tls_certificate_sds_secret_configs:
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


def certificate(cert: common_pb2.TlsCertificate, at: str, problems: Problems) -> dict[str, Any]:
    """A `TlsCertificate` (at `at`) as the snapshot's certificate chain and key."""
    return {
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


def sds_ref(
    config: secret_pb2.SdsSecretConfig, path: str, kind: str, problems: Problems
) -> dict[str, Any]:
    """The placeholder for SDS secret `config` (at `path`) of `kind` (`tls_certificate`,
    `validation_context`): where the secret comes from (`static`, `ads`, `file`)."""
    if not config.name:
        problems.add(paths.field(path, "name"), "is required (it names the secret)")
    ref: dict[str, Any] = {"name": config.name, "kind": kind, "path": path, "source": "static"}
    if config.HasField("sds_config"):
        source = config.sds_config
        ref["initial_fetch_timeout_s"] = duration_field_s(
            source, "initial_fetch_timeout", SDS_INITIAL_FETCH_TIMEOUT_S
        )
        specifier = source.WhichOneof("config_source_specifier")
        if specifier == "ads":
            ref["source"] = "ads"
        elif specifier == "path_config_source":
            files = source.path_config_source
            ref["source"] = "file"
            ref["file"] = files.path
            if files.HasField("watched_directory"):
                ref["watched_directory"] = files.watched_directory.path
        elif specifier == "api_config_source":
            _api_source(source.api_config_source, paths.field(path, "sds_config"), ref, problems)
        else:  # the deprecated `path`: reported by the table
            ref["source"] = "unsupported"
    return {SDS_KEY: ref}


def _api_source(
    api: config_source_pb2.ApiConfigSource, path: str, ref: dict[str, Any], problems: Problems
) -> None:
    """`sds_config.api_config_source`: a separate SDS stream (`StreamSecrets`, or
    `DeltaSecrets` with DELTA_GRPC) to a static cluster (checked by the xDS client, which
    knows the static clusters)."""
    api_path = paths.field(path, "api_config_source")
    ref["source"] = "unsupported"  # until it proves usable
    if len(api.grpc_services) != 1:
        problems.add(
            paths.field(api_path, "grpc_services"),
            f"exactly one gRPC service is supported, found {len(api.grpc_services)}",
        )
        return
    api_type = enum_name(api, "api_type")
    if api_type not in ("GRPC", "DELTA_GRPC") or not api.grpc_services[0].HasField("envoy_grpc"):
        return  # reported by the table (or PGV)
    ref["source"] = "api"
    ref["cluster"] = api.grpc_services[0].envoy_grpc.cluster_name
    ref["delta"] = api_type == "DELTA_GRPC"
    ref["cluster_path"] = paths.field(
        paths.field(paths.item(paths.field(api_path, "grpc_services"), 0), "envoy_grpc"),
        "cluster_name",
    )


def _common(ctx: common_pb2.CommonTlsContext, path: str, problems: Problems) -> dict[str, Any]:
    certs_path = paths.field(path, "tls_certificates")
    certificates = [
        certificate(cert, paths.item(certs_path, i), problems)
        for i, cert in enumerate(ctx.tls_certificates)
    ]
    sds_path = paths.field(path, "tls_certificate_sds_secret_configs")
    for i, config in enumerate(ctx.tls_certificate_sds_secret_configs):
        certificates.append(sds_ref(config, paths.item(sds_path, i), "tls_certificate", problems))
    if len(certificates) > 1:
        problems.add(
            certs_path if ctx.tls_certificates else sds_path,
            "more than one certificate (tls_certificates and "
            "tls_certificate_sds_secret_configs together) is not supported yet",
        )
    out: dict[str, Any] = {
        "tls_certificates": certificates,
        "alpn_protocols": list(ctx.alpn_protocols),
        "tls_params": _params(ctx.tls_params),
    }
    if ctx.HasField("validation_context"):
        out["validation"] = validation(
            ctx.validation_context, paths.field(path, "validation_context"), problems
        )
    elif ctx.HasField("validation_context_sds_secret_config"):
        out["validation"] = sds_ref(
            ctx.validation_context_sds_secret_config,
            paths.field(path, "validation_context_sds_secret_config"),
            "validation_context",
            problems,
        )
    elif ctx.HasField("combined_validation_context"):
        combined = ctx.combined_validation_context
        combined_path = paths.field(path, "combined_validation_context")
        ref = sds_ref(
            combined.validation_context_sds_secret_config,
            paths.field(combined_path, "validation_context_sds_secret_config"),
            "validation_context",
            problems,
        )
        ref[SDS_KEY]["default"] = validation(
            combined.default_validation_context,
            paths.field(combined_path, "default_validation_context"),
            problems,
            require_ca=False,
        )
        out["validation"] = ref
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


def validation(
    ctx: common_pb2.CertificateValidationContext,
    path: str,
    problems: Problems,
    *,
    require_ca: bool = True,
) -> dict[str, Any]:
    """A `CertificateValidationContext` as the snapshot's; `require_ca` False: the default
    context of a combined one (the SDS secret may bring the CA)."""
    ca_path = paths.field(path, "trusted_ca")
    if not ctx.HasField("trusted_ca"):
        if require_ca:
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
