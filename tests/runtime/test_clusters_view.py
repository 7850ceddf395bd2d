"""`/clusters` rendering of outlier-ejected and prioritised hosts (Envoy's
`/failed_outlier_check` flag and `priority` line)."""

from __future__ import annotations

from typing import Any

import orjson
from meshcore.admin.clusters_view import render_json, render_text


def host(**extra: Any) -> dict[str, Any]:
    return {
        "address": "127.0.0.1",
        "port": 8081,
        "weight": 1,
        "healthy": True,
        "priority": 0,
        "ejected": False,
        "cx_active": 0,
        "cx_total": 0,
        "rq_active": 0,
        "rq_total": 0,
        "rq_error": 0,
        **extra,
    }


def no_name(cluster: str, address: str, port: int) -> str:
    return ""


def test_ejected_host_flags_and_priority_in_text() -> None:
    clusters = [
        {
            "name": "svc",
            "hosts": [
                host(ejected=True, priority=1),
                host(port=8082, ejected=True, healthy=False),
                host(port=8083),
            ],
        }
    ]
    lines = render_text(clusters, {"svc"}, no_name).splitlines()
    assert "svc::127.0.0.1:8081::health_flags::/failed_outlier_check" in lines
    assert "svc::127.0.0.1:8081::priority::1" in lines
    assert "svc::127.0.0.1:8082::health_flags::/failed_eds_health/failed_outlier_check" in lines
    assert "svc::127.0.0.1:8083::health_flags::healthy" in lines
    assert "svc::127.0.0.1:8083::priority::0" in lines


def test_ejected_host_in_json() -> None:
    clusters = [{"name": "svc", "hosts": [host(ejected=True, priority=2), host(port=8083)]}]
    doc = orjson.loads(render_json(clusters, {"svc"}, no_name))
    ejected, healthy = doc["cluster_statuses"][0]["host_statuses"]
    assert ejected["health_status"] == {
        "eds_health_status": "HEALTHY",
        "failed_outlier_check": True,
    }
    assert ejected["priority"] == 2
    assert healthy["health_status"] == {"eds_health_status": "HEALTHY"}
    assert "priority" not in healthy
