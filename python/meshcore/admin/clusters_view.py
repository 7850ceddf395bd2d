"""`/clusters`: upstream hosts and their counters in Envoy's text (`name::host::stat::value`)
and JSON (`envoy.admin.v3.Clusters`) forms, from `Engine.clusters()`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import orjson

from meshcore.net_address import format_host_port

# (cluster, address, port) -> hostname ("" when the host was not named by DNS).
HostnameLookup = Callable[[str, str, int], str]


class ActiveHealth(Protocol):
    """A health-checked host's flags (`meshcore.health.generation.HostStatus`)."""

    def flags_text(self) -> str: ...
    def health_status_json(self) -> dict[str, Any]: ...


# (cluster, address, port) -> active health, or None when the cluster is not health checked.
HealthLookup = Callable[[str, str, int], ActiveHealth | None]


def no_health(cluster: str, address: str, port: int) -> ActiveHealth | None:
    return None


def _flags_text(host: Mapping[str, Any], active: ActiveHealth | None) -> str:
    if active is not None:
        text = active.flags_text()
    else:
        text = "healthy" if host["healthy"] else "/failed_eds_health"
    if host.get("ejected"):
        # Envoy lists every failed flag; "healthy" only when none is set.
        text = ("" if text == "healthy" else text) + "/failed_outlier_check"
    return text


def _health_status(host: Mapping[str, Any], active: ActiveHealth | None) -> dict[str, Any]:
    if active is not None:
        status = active.health_status_json()
    else:
        status = {"eds_health_status": "HEALTHY" if host["healthy"] else "UNHEALTHY"}
    if host.get("ejected"):
        status = {**status, "failed_outlier_check": True}
    return status


# Per-host stats the engine reports, as Envoy prints them (sorted by name).
_COUNTERS = ("cx_total", "rq_error", "rq_total")
_GAUGES = ("cx_active", "rq_active")


def parse_clusters(raw: bytes, pattern: re.Pattern[str] | None) -> list[Mapping[str, Any]]:
    clusters: list[Mapping[str, Any]] = orjson.loads(raw)
    return [c for c in clusters if pattern is None or pattern.search(c["name"])]


def render_text(
    clusters: Iterable[Mapping[str, Any]],
    static_names: set[str],
    hostname: HostnameLookup,
    health: HealthLookup = no_health,
) -> str:
    lines: list[str] = []
    for cluster in clusters:
        name = cluster["name"]
        lines.append(f"{name}::observability_name::{cluster.get('observability_name', name)}")
        lines.append(f"{name}::added_via_api::{str(name not in static_names).lower()}")
        for host in cluster["hosts"]:
            prefix = f"{name}::{format_host_port(host['address'], host['port'])}"
            lines += [f"{prefix}::{stat}::{host[stat]}" for stat in sorted(_COUNTERS + _GAUGES)]
            flags = _flags_text(host, health(name, host["address"], host["port"]))
            lines += [
                f"{prefix}::hostname::{hostname(name, host['address'], host['port'])}",
                f"{prefix}::health_flags::{flags}",
                f"{prefix}::weight::{host['weight']}",
                f"{prefix}::region::",
                f"{prefix}::zone::",
                f"{prefix}::sub_zone::",
                f"{prefix}::canary::false",
                f"{prefix}::priority::{host.get('priority', 0)}",
            ]
    return "".join(line + "\n" for line in lines)


def _host_json(
    cluster: str, host: Mapping[str, Any], hostname: HostnameLookup, health: HealthLookup
) -> dict[str, Any]:
    # Proto3 JSON, as Envoy prints it: uint64 as strings, zero values and COUNTER omitted.
    stats: list[dict[str, Any]] = []
    for kind, names in (("COUNTER", _COUNTERS), ("GAUGE", _GAUGES)):
        for stat in names:
            entry: dict[str, Any] = {"name": stat}
            if kind != "COUNTER":
                entry["type"] = kind
            if host[stat]:
                entry["value"] = str(host[stat])
            stats.append(entry)
    out: dict[str, Any] = {
        "address": {"socket_address": {"address": host["address"], "port_value": host["port"]}},
        "stats": stats,
        "health_status": _health_status(host, health(cluster, host["address"], host["port"])),
        "weight": host["weight"],
        "locality": {},
    }
    if host.get("priority"):
        out["priority"] = host["priority"]
    name = hostname(cluster, host["address"], host["port"])
    if name:
        out["hostname"] = name
    return out


def render_json(
    clusters: Iterable[Mapping[str, Any]],
    static_names: set[str],
    hostname: HostnameLookup,
    health: HealthLookup = no_health,
) -> bytes:
    statuses = []
    for cluster in clusters:
        status: dict[str, Any] = {"name": cluster["name"]}
        if cluster["name"] not in static_names:
            status["added_via_api"] = True
        status["host_statuses"] = [
            _host_json(cluster["name"], h, hostname, health) for h in cluster["hosts"]
        ]
        status["observability_name"] = cluster.get("observability_name", cluster["name"])
        statuses.append(status)
    return orjson.dumps({"cluster_statuses": statuses}, option=orjson.OPT_INDENT_2)
