"""`request_mirror_policies` into the snapshot's `MirrorPolicy` list."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.type.v3 import percent_pb2

from . import paths
from .errors import Problems

_PER_MILLION = {
    percent_pb2.FractionalPercent.HUNDRED: 10_000,
    percent_pb2.FractionalPercent.TEN_THOUSAND: 100,
    percent_pb2.FractionalPercent.MILLION: 1,
}


def mirror_policies(
    action: rc.RouteAction | rc.VirtualHost,
    path: str,
    problems: Problems,
    add_ref: Any,
) -> list[dict[str, Any]]:
    """One entry per policy: the cluster (checked like route clusters through `add_ref`)
    and the sampled share in parts per million (`runtime_fraction.default_value`, default
    100%; runtime overrides are not supported)."""
    out: list[dict[str, Any]] = []
    policies_path = paths.field(path, "request_mirror_policies")
    for i, policy in enumerate(action.request_mirror_policies):
        at = paths.item(policies_path, i)
        add_ref(paths.field(at, "cluster"), policy.cluster)
        ppm = 1_000_000
        if policy.HasField("runtime_fraction"):
            value = policy.runtime_fraction.default_value
            ppm = min(1_000_000, value.numerator * _PER_MILLION.get(value.denominator, 1))
        out.append({"cluster": policy.cluster, "fraction_ppm": ppm})
    return out
