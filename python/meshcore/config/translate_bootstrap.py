"""A checked `Bootstrap` into a `MeshConfig`: the snapshot, admin, DNS clusters and node."""

from __future__ import annotations

from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format

from .errors import Problems
from .grpc_tls import static_cluster_tls
from .local_info import local_address
from .model import AdminConfig, DynamicConfig, MeshConfig
from .secrets import resolve_static, sds_target, secret_refs, static_secrets
from .translate_clusters import clusters
from .translate_dynamic import check_static_resources, dynamic_resources
from .translate_listeners import listeners
from .translate_overload import global_connection_limit
from .translate_routes import ClusterRefs
from .translate_stats_sinks import flush_interval_s, stats_sinks
from .translate_tracing import inherit_provider, link_tracers
from .values import is_ip


def _admin(bootstrap: bootstrap_pb2.Bootstrap, problems: Problems) -> AdminConfig | None:
    if not bootstrap.admin.address.HasField("socket_address"):
        return None  # no admin server (another address kind is reported by the table)
    socket = bootstrap.admin.address.socket_address
    if not is_ip(socket.address):
        problems.add(
            "admin.address.socket_address.address", f"malformed IP address: {socket.address!r}"
        )
    return AdminConfig(address=socket.address, port=socket.port_value)


def translate(bootstrap: bootstrap_pb2.Bootstrap, problems: Problems) -> MeshConfig:
    """The `MeshConfig` for `bootstrap`; meaningful only if no problem was reported."""
    static = bootstrap.static_resources
    refs = ClusterRefs()
    listener_list = listeners(static.listeners, "static_resources.listeners", problems, refs)
    inherit_provider(
        listener_list, bootstrap.tracing if bootstrap.HasField("tracing") else None, problems
    )
    translated = clusters(static.clusters, "static_resources.clusters", problems)
    for path, name in refs.refs:
        if name and name not in translated.names:
            problems.add(path, f"unknown cluster {name!r} (not in static_resources.clusters)")
    check_static_resources(static, translated, problems)
    secrets = static_secrets(static.secrets, "static_resources.secrets", problems)
    listener_list = resolve_static(
        listener_list, secrets, problems, "static listeners", dynamic_ok=True
    )
    translated.snapshot = resolve_static(translated.snapshot, secrets, problems, "static clusters")
    sds_listeners = tuple(lst for lst in listener_list if secret_refs(lst))
    listener_list = [lst for lst in listener_list if not secret_refs(lst)]
    snapshot: dict[str, Any] = {
        "listeners": listener_list,
        "clusters": translated.snapshot,
        "local_address": local_address(),
    }
    link_tracers(
        listener_list, bootstrap.node.id, bootstrap.node.cluster, bootstrap.node.locality.zone
    )
    limit = global_connection_limit(bootstrap, problems)
    if limit is not None:
        snapshot["global_downstream_max_connections"] = limit
    dynamic = dynamic_resources(bootstrap, translated, problems)
    if sds_listeners and dynamic is None:  # the xDS client brings their secrets
        dynamic = DynamicConfig(None, None, None, bootstrap.node.SerializeToString())
    config = MeshConfig(
        snapshot=snapshot,
        admin=_admin(bootstrap, problems),
        dns_clusters=tuple(translated.dns),
        node_id=bootstrap.node.id,
        node_cluster=bootstrap.node.cluster,
        bootstrap=json_format.MessageToDict(bootstrap, preserving_proto_field_name=True),
        health_checks=tuple(translated.health),
        dynamic=dynamic,
        secrets=secrets,
        sds_listeners=sds_listeners,
        stats_sinks=stats_sinks(bootstrap, problems),
        stats_flush_interval_s=flush_interval_s(bootstrap),
        tracing=bootstrap.tracing.SerializeToString(),
    )
    _check_sds_sources(config, bootstrap, problems)
    return config


def _check_sds_sources(
    config: MeshConfig, bootstrap: bootstrap_pb2.Bootstrap, problems: Problems
) -> None:
    """Static listeners' ADS secrets need the ADS stream; stream secrets a static cluster."""
    for ref in secret_refs(list(config.sds_listeners)):
        if ref.source == "ads" and not bootstrap.dynamic_resources.HasField("ads_config"):
            problems.add(f"{ref.path}.sds_config.ads", "needs dynamic_resources.ads_config")
        elif ref.source == "api" and sds_target(config, ref.cluster or "") is None:
            problems.add(
                ref.cluster_path,
                f"unknown cluster {ref.cluster!r} (the SDS cluster must be a static cluster "
                "with an address)",
            )
        elif ref.source == "api":
            static_cluster_tls(config.snapshot.get("clusters", ()), ref.cluster or "", problems)
