"""Zipkin v2 JSON reports (`collector_endpoint_version: HTTP_JSON`) of the engine's spans, as
Envoy's Zipkin tracer writes them: the span's fields, the proxy's `localEndpoint` and its
`ss`/`cr` annotation."""

from __future__ import annotations

from typing import Any

import orjson


def span(raw: dict[str, Any], service: str, address: str) -> dict[str, Any]:
    """One engine span as a Zipkin v2 span."""
    out = {k: v for k, v in raw.items() if k != "tracer"}
    end = raw["timestamp"] + raw["duration"]
    out["annotations"] = [{"timestamp": end, "value": "cr" if raw["kind"] == "CLIENT" else "ss"}]
    out["localEndpoint"] = {"serviceName": service, "ipv4": address, "port": 0}
    return out


def report(spans: list[dict[str, Any]], service: str, address: str) -> bytes:
    """The body of one POST to the collector."""
    return orjson.dumps([span(s, service, address) for s in spans])
