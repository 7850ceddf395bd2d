"""The `grpc_stats` HTTP filter into the snapshot (the allowlist), and what meshcore does
not count refused with its path: `stats_for_all_methods: true`, `emit_filter_state`,
`enable_upstream_stats`."""

from __future__ import annotations

from typing import Any

from .builders import ROUTER_TYPE, base, hcm, load, problems

GRPC_STATS = "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
FILTER = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]"


def _with(**config: Any) -> dict[str, Any]:
    b = base()
    hcm(b)["http_filters"] = [
        {"name": "envoy.filters.http.grpc_stats", "typed_config": {"@type": GRPC_STATS, **config}},
        {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
    ]
    return b


def _filters(b: dict[str, Any]) -> list[dict[str, Any]]:
    listener = load(b).snapshot["listeners"][0]
    filters: list[dict[str, Any]] = listener["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]["http_filters"]
    return filters


def test_the_allowlist_is_translated() -> None:
    allowlist = {"services": [{"name": "pkg.Svc", "method_names": ["A", "B"]}]}
    b = _with(individual_method_stats_allowlist=allowlist, replace_dots_in_grpc_service_name=True)
    assert _filters(b) == [
        {
            "name": "envoy.filters.http.grpc_stats",
            "config": {
                "grpc_stats": {"allowlist": [{"name": "pkg.Svc", "method_names": ["A", "B"]}]}
            },
        }
    ]


def test_no_allowlist_and_all_methods_false_count_without_methods() -> None:
    for b in (_with(), _with(stats_for_all_methods=False)):
        assert _filters(b)[0]["config"] == {"grpc_stats": {"allowlist": []}}


def test_what_meshcore_does_not_count_is_refused() -> None:
    found = problems(_with(stats_for_all_methods=True))
    assert any(
        p.startswith(f"{FILTER}.typed_config.stats_for_all_methods: true is not supported yet")
        for p in found
    ), found
    for field in ("emit_filter_state", "enable_upstream_stats"):
        found = problems(_with(**{field: True}))
        assert any(p.startswith(f"{FILTER}.typed_config.{field}") for p in found), found
