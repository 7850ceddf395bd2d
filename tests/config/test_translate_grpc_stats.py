"""The `grpc_stats` HTTP filter into the snapshot (the allowlist, `stats_for_all_methods`,
`replace_dots_in_grpc_service_name`, `enable_upstream_stats`), and what meshcore does not
build refused with its path: `emit_filter_state`."""

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
                "grpc_stats": {
                    "allowlist": [{"name": "pkg.Svc", "method_names": ["A", "B"]}],
                    "all_methods": False,
                    "replace_dots": True,
                    "upstream_stats": False,
                }
            },
        }
    ]


def test_no_allowlist_and_all_methods_false_count_without_methods() -> None:
    for b in (_with(), _with(stats_for_all_methods=False)):
        assert _filters(b)[0]["config"] == {
            "grpc_stats": {
                "allowlist": [],
                "all_methods": False,
                "replace_dots": False,
                "upstream_stats": False,
            }
        }


def test_all_methods_and_upstream_stats_are_translated() -> None:
    b = _with(
        stats_for_all_methods=True,
        replace_dots_in_grpc_service_name=True,
        enable_upstream_stats=True,
    )
    assert _filters(b)[0]["config"] == {
        "grpc_stats": {
            "allowlist": [],
            "all_methods": True,
            "replace_dots": True,
            "upstream_stats": True,
        }
    }


def test_emit_filter_state_is_refused_with_its_path() -> None:
    found = problems(_with(emit_filter_state=True, stats_for_all_methods=True))
    assert any(
        p.startswith(f"{FILTER}.typed_config.emit_filter_state: true is not supported")
        for p in found
    ), found
    # Only that field is wrong.
    assert len(found) == 1, found


def test_the_allowlist_and_all_methods_exclude_each_other() -> None:
    allowlist = {"services": [{"name": "pkg.Svc", "method_names": ["A"]}]}
    found = problems(_with(individual_method_stats_allowlist=allowlist, stats_for_all_methods=True))
    assert found, "a oneof set twice must be refused"
