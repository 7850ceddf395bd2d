"""TLS to a gRPC management server (the ADS and SDS streams): a static cluster's translated
`UpstreamTlsContext` as the credentials grpcio takes, and what of it grpcio cannot do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import paths
from .errors import Problems
from .translate_tls import SDS_KEY

_WHY = "on the cluster of an xDS stream (grpcio's TLS)"


@dataclass(frozen=True)
class GrpcTls:
    """What `grpc.ssl_channel_credentials` and the channel's options need."""

    root_certificates: str
    """`validation_context.trusted_ca` (PEM)."""
    private_key: str | None = None
    certificate_chain: str | None = None
    server_name: str | None = None
    """The name sent as SNI and checked against the server's certificate
    (`grpc.ssl_target_name_override`): `sni`, else the one exact DNS or IP SAN matcher;
    None: the address dialled (the IP, or the DNS cluster's host name)."""


def static_cluster_tls(
    clusters: Sequence[Mapping[str, Any]], name: str, problems: Problems
) -> GrpcTls | None:
    """`grpc_tls` of the static cluster `name` among the translated static `clusters` (in
    `static_resources.clusters` order); None when it has no TLS or is not there."""
    for index, cluster in enumerate(clusters):
        if cluster["name"] == name:
            return grpc_tls(cluster, paths.item("static_resources.clusters", index), problems)
    return None


def grpc_tls(cluster: Mapping[str, Any], path: str, problems: Problems) -> GrpcTls | None:
    """The TLS of translated static `cluster` (at `path`, e.g. `static_resources.clusters[0]`)
    for a gRPC channel; None without a transport socket. Problems name the field grpcio
    cannot honour (other TLS problems were reported when the cluster was translated)."""
    socket = cluster.get("transport_socket")
    if not socket:
        return None
    typed = paths.field(paths.field(path, "transport_socket"), "typed_config")
    common_path = paths.field(typed, "common_tls_context")
    common: Mapping[str, Any] = socket.get("common", {})
    validation = common.get("validation") or {}
    if SDS_KEY in validation:
        problems.add(
            paths.field(common_path, "validation_context"),
            f"an SDS secret is not supported {_WHY}: give validation_context inline",
        )
        return None
    if not validation:
        problems.add(
            paths.field(common_path, "validation_context"),
            f"is required {_WHY}: meshcore verifies the management server against trusted_ca",
        )
        return None
    certificates = common.get("tls_certificates", [])
    if any(SDS_KEY in cert for cert in certificates):
        problems.add(
            paths.field(common_path, "tls_certificate_sds_secret_configs"),
            f"an SDS secret is not supported {_WHY}: give tls_certificates inline",
        )
        return None
    params = common.get("tls_params", {})
    if params.get("cipher_suites") or "minimum" in params or "maximum" in params:
        problems.add(
            paths.field(common_path, "tls_params"),
            f"is not supported {_WHY}: grpcio negotiates TLS 1.2 or 1.3 with its own ciphers",
        )
    if any(p != "h2" for p in common.get("alpn_protocols", [])):
        problems.add(
            paths.field(common_path, "alpn_protocols"),
            f"only h2 is supported {_WHY} (gRPC runs over HTTP/2)",
        )
    name = _server_name(
        socket.get("sni", ""),
        validation.get("match_typed_subject_alt_names", []),
        paths.field(common_path, "validation_context"),
        problems,
    )
    cert = certificates[0] if certificates else None
    return GrpcTls(
        root_certificates=validation.get("trusted_ca", ""),
        private_key=cert["private_key"] if cert else None,
        certificate_chain=cert["certificate_chain"] if cert else None,
        server_name=name,
    )


def _server_name(
    sni: str, matchers: list[Mapping[str, Any]], path: str, problems: Problems
) -> str | None:
    """grpcio checks one name against the server's certificate (and sends it as SNI)."""
    if not matchers:
        return sni or None
    at = paths.field(path, "match_typed_subject_alt_names")
    matcher = matchers[0].get("matcher", {})
    exact = matcher.get("pattern", {}).get("exact")
    kind = matchers[0].get("san_type")
    if (
        len(matchers) > 1
        or kind not in ("dns", "ip_address")
        or not exact
        or matcher.get("ignore_case")
    ):
        problems.add(
            at,
            f"only one exact DNS or IP_ADDRESS matcher is supported {_WHY}: grpcio checks "
            "one name (sni, or this matcher's) against the server's certificate",
        )
        return None
    if sni and sni != exact:
        problems.add(
            at,
            f"the matcher's {exact!r} differs from sni {sni!r}: {_WHY} the name checked is "
            "the name sent",
        )
    return str(exact)
