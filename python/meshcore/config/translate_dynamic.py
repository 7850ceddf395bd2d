"""`dynamic_resources` (ADS over gRPC; LDS and CDS over ADS or from watched files) into a
`DynamicConfig`, plus the checks that tie it to the static clusters."""

from __future__ import annotations

from dataclasses import replace

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import config_source_pb2

from . import paths
from .errors import Problems
from .grpc_tls import static_cluster_tls
from .model import AdsConfig, DynamicConfig, XdsSource
from .secrets import grpc_target
from .translate_clusters import Clusters
from .translate_listeners import connection_manager_of, rds_path
from .values import duration_field_s, enum_name

DEFAULT_INITIAL_FETCH_TIMEOUT_S = 15.0
_PATH = "dynamic_resources"


def dynamic_resources(
    bootstrap: bootstrap_pb2.Bootstrap, clusters: Clusters, problems: Problems
) -> DynamicConfig | None:
    """The `DynamicConfig` of `bootstrap` (None without `dynamic_resources`); `clusters` are
    the translated static clusters."""
    if not bootstrap.HasField("dynamic_resources"):
        return None
    dynamic = bootstrap.dynamic_resources
    ads = None
    if dynamic.HasField("ads_config"):
        ads = _ads(dynamic.ads_config, paths.field(_PATH, "ads_config"), clusters, problems)
        if ads is not None:
            ads = replace(ads, tls=static_cluster_tls(clusters.snapshot, ads.cluster, problems))
    return DynamicConfig(
        ads=ads,
        lds=_source(dynamic, "lds_config", dynamic.HasField("ads_config"), problems),
        cds=_source(dynamic, "cds_config", dynamic.HasField("ads_config"), problems),
        node=bootstrap.node.SerializeToString(),
    )


def _ads(
    api: config_source_pb2.ApiConfigSource, path: str, clusters: Clusters, problems: Problems
) -> AdsConfig | None:
    api_type = enum_name(api, "api_type")
    if api.api_type == 0:
        problems.add(paths.field(path, "api_type"), "is required (GRPC or DELTA_GRPC)")
    services_path = paths.field(path, "grpc_services")
    if len(api.grpc_services) != 1:
        problems.add(
            services_path, f"exactly one gRPC service is supported, found {len(api.grpc_services)}"
        )
        return None
    service = api.grpc_services[0]
    if not service.HasField("envoy_grpc"):
        return None  # google_grpc: the table; none: PGV
    name = service.envoy_grpc.cluster_name
    name_path = paths.field(paths.field(paths.item(services_path, 0), "envoy_grpc"), "cluster_name")
    target = _target(name, name_path, clusters, problems)
    if target is None:
        return None
    return AdsConfig(
        cluster=name,
        target=target,
        delta=api_type == "DELTA_GRPC",
        node_on_first_message_only=api.set_node_on_first_message_only,
        initial_metadata=tuple((h.key.lower(), h.value) for h in service.initial_metadata),
        http2=name in clusters.http2,
    )


def _target(name: str, path: str, clusters: Clusters, problems: Problems) -> str | None:
    """A gRPC target for the static cluster `name`: its STATIC endpoints, or the first
    host of a DNS cluster (gRPC resolves it)."""
    if name not in clusters.names:
        problems.add(path, f"unknown cluster {name!r} (the xDS cluster must be static)")
        return None
    if name in clusters.eds:
        problems.add(path, f"cluster {name!r} is an EDS cluster; the xDS cluster must be static")
        return None
    target = grpc_target(clusters.snapshot, clusters.dns, name)
    if target is None:
        problems.add(path, f"cluster {name!r} has no endpoints to reach the xDS server on")
    return target


def _source(
    dynamic: bootstrap_pb2.Bootstrap.DynamicResources,
    field: str,
    has_ads: bool,
    problems: Problems,
) -> XdsSource | None:
    if not dynamic.HasField(field):
        return None
    path = paths.field(_PATH, field)
    source: config_source_pb2.ConfigSource = getattr(dynamic, field)
    kind = source.WhichOneof("config_source_specifier")
    timeout = duration_field_s(source, "initial_fetch_timeout", DEFAULT_INITIAL_FETCH_TIMEOUT_S)
    if kind == "ads":
        if not has_ads:
            problems.add(paths.field(path, "ads"), "needs dynamic_resources.ads_config")
        return XdsSource(path, None, None, timeout)
    if kind == "path_config_source":
        files = source.path_config_source
        watched = files.watched_directory.path if files.HasField("watched_directory") else None
        return XdsSource(path, files.path, watched, timeout)
    if kind == "api_config_source":
        problems.add(
            paths.field(path, "api_config_source"),
            "is supported for SDS (sds_config) only yet; use ads",
        )
    return None  # other kinds: the table; none: PGV


def check_static_resources(
    static: bootstrap_pb2.Bootstrap.StaticResources, clusters: Clusters, problems: Problems
) -> None:
    """RDS listeners and EDS clusters are supported in xDS resources only (a static one
    would have to hold the whole server back until ADS delivers its part)."""
    for i, listener in enumerate(static.listeners):
        manager = connection_manager_of(listener)
        if manager is not None and manager.HasField("rds"):
            problems.add(
                paths.field(paths.item("static_resources.listeners", i), rds_path(listener)),
                "rds is supported only in listeners from LDS (dynamic_resources) yet",
            )
    for i, cluster in enumerate(static.clusters):
        if cluster.name in clusters.eds:
            problems.add(
                paths.field(paths.item("static_resources.clusters", i), "type"),
                "EDS is supported only in clusters from CDS (dynamic_resources) yet",
            )
