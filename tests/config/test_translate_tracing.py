"""`tracing` on the connection manager into the snapshot: sampling in hundredths of a
percent, provider and propagation options, custom tags, the exporter numbered and given the
node; unsupported parts are problems naming their field."""

from __future__ import annotations

from typing import Any

from .builders import base, hcm, load, problems

ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
OTEL = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
HCM_PATH = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"


def _zipkin(**extra: Any) -> dict[str, Any]:
    return {
        "name": "envoy.tracers.zipkin",
        "typed_config": {
            "@type": ZIPKIN,
            "collector_cluster": "c",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
            **extra,
        },
    }


def _with(tracing: dict[str, Any]) -> dict[str, Any]:
    b = base()
    hcm(b)["tracing"] = tracing
    b["node"] = {"id": "n1", "cluster": "svc", "locality": {"zone": "z"}}
    return b


def _tracing(b: dict[str, Any]) -> Any:
    listener = load(b).snapshot["listeners"][0]
    return listener["filter_chains"][0]["filter"]["http_connection_manager"].get("tracing")


def test_no_tracing_adds_nothing() -> None:
    assert _tracing(base()) is None


def test_zipkin_options_sampling_tags_and_node() -> None:
    b = _with(
        {
            "random_sampling": {"value": 12.5},
            "overall_sampling": {"value": 50},
            "max_path_tag_length": 64,
            "custom_tags": [
                {"tag": "l", "literal": {"value": "v"}},
                {"tag": "h", "request_header": {"name": "X-Tenant", "default_value": "d"}},
            ],
            "provider": _zipkin(trace_id_128bit=True, shared_span_context=False),
        }
    )
    b["static_resources"]["listeners"][0]["traffic_direction"] = "OUTBOUND"
    t = _tracing(b)
    assert t == {
        "tracer": 0,
        "provider": "zipkin",
        "random_sampling": 1250,
        "client_sampling": 10_000,
        "overall_sampling": 5000,
        "max_path_tag_length": 64,
        "custom_tags": [
            {"tag": "l", "value": {"literal": "v"}},
            {"tag": "h", "value": {"request_header": {"name": "x-tenant", "default_value": "d"}}},
        ],
        "export": {
            "kind": "zipkin",
            "cluster": "c",
            "path": "/api/v2/spans",
            "service_cluster": "svc",
        },
        "trace_id_128bit": True,
        "shared_span_context": False,
        "egress": True,
        "node_id": "n1",
        "zone": "z",
    }


def test_opentelemetry_http_service() -> None:
    t = _tracing(
        _with(
            {
                "provider": {
                    "name": "envoy.tracers.opentelemetry",
                    "typed_config": {
                        "@type": OTEL,
                        "service_name": "s",
                        "http_service": {
                            "http_uri": {
                                "uri": "http://otel:4318/v1/traces",
                                "cluster": "c",
                                "timeout": "2s",
                            }
                        },
                    },
                }
            }
        )
    )
    assert t["provider"] == "opentelemetry" and t["random_sampling"] == 10_000
    assert t["export"]["path"] == "/v1/traces" and t["export"]["authority"] == "otel:4318"
    assert (t["export"]["service_name"], t["export"]["timeout_ms"]) == ("s", 2000)
    assert t["egress"] is False


def test_opentelemetry_grpc_service() -> None:
    grpc = {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": OTEL,
            "grpc_service": {"envoy_grpc": {"cluster_name": "c"}, "timeout": "3s"},
        },
    }
    t = _tracing(_with({"provider": grpc}))
    assert t["export"]["kind"] == "opentelemetry_grpc" and t["export"]["cluster"] == "c"
    assert t["export"]["timeout_ms"] == 3000
    assert t["export"]["service_name"] == "unknown_service:envoy"


def test_unsupported_parts_name_their_field() -> None:
    empty = {"name": "envoy.tracers.opentelemetry", "typed_config": {"@type": OTEL}}
    found = problems(_with({"provider": empty}))
    assert any(p.startswith(f"{HCM_PATH}.tracing.provider.typed_config") for p in found), found
    found = problems(_with({"spawn_upstream_span": True, "provider": _zipkin()}))
    assert any(p.startswith(f"{HCM_PATH}.tracing.spawn_upstream_span") for p in found), found
    found = problems(_with({"provider": _zipkin(collector_endpoint_version="HTTP_PROTO")}))
    assert any("collector_endpoint_version" in p for p in found), found
    env = {"tag": "e", "environment": {"name": "HOME"}}
    found = problems(_with({"custom_tags": [env], "provider": _zipkin()}))
    assert any(p.startswith(f"{HCM_PATH}.tracing.custom_tags[0].environment") for p in found), found


def test_a_manager_without_provider_uses_the_bootstrap_tracing() -> None:
    b = _with({"random_sampling": {"value": 50}})
    b["tracing"] = {"http": _zipkin(trace_id_128bit=True)}
    t = _tracing(b)
    assert (t["provider"], t["random_sampling"], t["trace_id_128bit"]) == ("zipkin", 5000, True)
    assert t["export"]["kind"] == "zipkin" and t["export"]["path"] == "/api/v2/spans"
    assert (t["node_id"], t["export"]["service_cluster"]) == ("n1", "svc")
    assert "provider_from_bootstrap" not in t


def test_the_managers_own_provider_wins_over_the_bootstrap() -> None:
    b = _with({"provider": _zipkin()})
    b["tracing"] = {
        "http": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": OTEL,
                "grpc_service": {"envoy_grpc": {"cluster_name": "c"}},
            },
        }
    }
    assert _tracing(b)["provider"] == "zipkin"


def test_no_provider_anywhere_is_an_error() -> None:
    found = problems(_with({}))
    assert (
        f"{HCM_PATH}.tracing.provider: a tracing provider is required (here or in the "
        "bootstrap's `tracing.http`)" in found
    ), found


def test_a_bad_bootstrap_provider_names_its_field() -> None:
    b = _with({})
    b["tracing"] = {"http": {"name": "x", "typed_config": {"@type": OTEL}}}
    found = problems(b)
    assert any(p.startswith("tracing.http.typed_config") for p in found), found
