"""`max_stream_duration` config: the connection manager's
`common_http_protocol_options.max_stream_duration`, the route's `max_stream_duration` message
(`max_stream_duration`, `grpc_timeout_header_max`, `grpc_timeout_header_offset`), and a
cluster's, which is refused."""

from __future__ import annotations

from typing import Any

from .builders import (
    CLUSTER,
    UPSTREAM_OPTIONS,
    base,
    cluster,
    hcm,
    load,
    problems,
    route,
    snapshot_route,
)


def _manager(b: dict[str, Any]) -> dict[str, Any]:
    listener = load(b).snapshot["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filter"]["http_connection_manager"]
    return manager


def test_the_connection_managers_max_stream_duration() -> None:
    b = base()
    hcm(b)["common_http_protocol_options"] = {"max_stream_duration": "0.8s"}
    assert _manager(b)["stream_timeouts"] == {
        "stream_idle_timeout_ms": 300_000,
        "request_timeout_ms": 0,
        "max_stream_duration_ms": 800,
    }


def test_the_routes_message_keeps_only_the_fields_set() -> None:
    b = base()
    assert "max_stream_duration" not in snapshot_route(b)["action"]["route"]
    route(b)["route"]["max_stream_duration"] = {}
    assert snapshot_route(b)["action"]["route"]["max_stream_duration"] == {}
    route(b)["route"]["max_stream_duration"] = {
        "max_stream_duration": "0s",
        "grpc_timeout_header_max": "0.3s",
        "grpc_timeout_header_offset": "0.05s",
    }
    assert snapshot_route(b)["action"]["route"]["max_stream_duration"] == {
        "max_stream_duration_ms": 0,
        "grpc_timeout_header_max_ms": 300,
        "grpc_timeout_header_offset_ms": 50,
    }


def test_a_clusters_max_stream_duration_is_refused() -> None:
    b = base()
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {
            "@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}",
            "explicit_http_config": {"http_protocol_options": {}},
            "common_http_protocol_options": {"max_stream_duration": "1s"},
        }
    }
    found = problems(b)
    at = (
        f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}]"
        ".common_http_protocol_options.max_stream_duration"
    )
    assert any(p.startswith(f"{at}: not supported yet on a cluster") for p in found), found
