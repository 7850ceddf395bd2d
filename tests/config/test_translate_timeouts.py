"""Issue 4 timeouts config: the HCM's `stream_idle_timeout` and `request_timeout`, route
`idle_timeout`, retry `per_try_idle_timeout`, upstream `max_connection_duration` and the
HTTP/1.1 parts of `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`; per-connection
local rate limits."""

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
    snapshot_cluster,
    snapshot_route,
)

OPTIONS_PATH = f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}]"


def _manager(b: dict[str, Any]) -> dict[str, Any]:
    listener = load(b).snapshot["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filter"]["http_connection_manager"]
    return manager


def _options(b: dict[str, Any], **fields: Any) -> None:
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {"@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}", **fields}
    }


def test_stream_timeouts_are_left_out_at_their_defaults() -> None:
    assert "stream_timeouts" not in _manager(base())


def test_stream_idle_and_request_timeouts() -> None:
    b = base()
    hcm(b)["stream_idle_timeout"] = "0.25s"
    hcm(b)["request_timeout"] = "2s"
    assert _manager(b)["stream_timeouts"] == {
        "stream_idle_timeout_ms": 250,
        "request_timeout_ms": 2000,
        "max_stream_duration_ms": 0,
    }
    b = base()
    hcm(b)["stream_idle_timeout"] = "0s"
    assert _manager(b)["stream_timeouts"] == {
        "stream_idle_timeout_ms": 0,
        "request_timeout_ms": 0,
        "max_stream_duration_ms": 0,
    }


def test_route_idle_timeout_zero_is_kept() -> None:
    b = base()
    assert "idle_timeout_ms" not in snapshot_route(b)["action"]["route"]
    route(b)["route"]["idle_timeout"] = "0s"
    assert snapshot_route(b)["action"]["route"]["idle_timeout_ms"] == 0
    route(b)["route"]["idle_timeout"] = "0.3s"
    assert snapshot_route(b)["action"]["route"]["idle_timeout_ms"] == 300


def test_per_try_idle_timeout() -> None:
    b = base()
    route(b)["route"]["retry_policy"] = {"retry_on": "5xx", "per_try_idle_timeout": "0.2s"}
    assert snapshot_route(b)["action"]["route"]["retry_policy"]["per_try_idle_timeout_ms"] == 200


def test_upstream_connection_limits() -> None:
    b = base()
    _options(
        b,
        common_http_protocol_options={
            "idle_timeout": "30s",
            "max_connection_duration": "1.5s",
            "max_requests_per_connection": 7,
        },
        explicit_http_config={"http_protocol_options": {}},
    )
    out = snapshot_cluster(b)
    assert (out["idle_timeout_ms"], out["max_connection_duration_ms"]) == (30_000, 1500)
    assert out["max_requests_per_connection"] == 7


def test_the_deprecated_cluster_max_requests_still_applies() -> None:
    b = base()
    cluster(b)["max_requests_per_connection"] = 3
    out = snapshot_cluster(b)
    assert out["max_requests_per_connection"] == 3
    assert "max_connection_duration_ms" not in out


def test_use_downstream_protocol_config_for_http1() -> None:
    b = base()
    _options(b, use_downstream_protocol_config={"http_protocol_options": {}})
    assert problems(b) == []


def test_use_downstream_protocol_config_with_http2_follows_the_downstream() -> None:
    b = base()
    _options(b, use_downstream_protocol_config={"http2_protocol_options": {}})
    out = snapshot_cluster(b)
    assert out["http2_follows_downstream"] is True and "http2" in out
    cluster(b)["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "UpstreamTlsContext"
        },
    }
    # Over TLS too: ALPN offers the request's protocol (tests/config/test_upstream_alpn.py).
    assert problems(b) == []


def test_http2_upstream_options_are_rejected_with_their_path() -> None:
    b = base()
    _options(
        b,
        explicit_http_config={
            "http2_protocol_options": {"max_concurrent_streams": 7, "hpack_table_size": 5}
        },
    )
    assert problems(b) == [
        f"{OPTIONS_PATH}.explicit_http_config.http2_protocol_options.hpack_table_size: "
        "hpack_table_size is not supported yet"
    ]


def test_explicit_http2_upstream_options_reach_the_snapshot() -> None:
    b = base()
    _options(b, explicit_http_config={"http2_protocol_options": {"max_concurrent_streams": 7}})
    assert problems(b) == []
    assert snapshot_cluster(b)["http2"] == {
        "max_concurrent_streams": 7,
        "initial_stream_window_size": 268435456,
        "initial_connection_window_size": 268435456,
    }
    assert "http2" not in snapshot_cluster(base())


def test_downstream_codec_type_and_http2_options() -> None:
    b = base()
    hcm(b)["codec_type"] = "HTTP2"
    hcm(b)["http2_protocol_options"] = {"initial_stream_window_size": 65535}
    manager = _manager(b)
    assert manager["codec_type"] == "http2"
    assert manager["http2"]["initial_stream_window_size"] == 65535
    assert manager["http2"]["max_concurrent_streams"] == 2147483647
    assert "codec_type" not in _manager(base())
    assert "http2" not in _manager(base())
    hcm(b)["http2_protocol_options"] = {"hpack_table_size": 10}
    assert [p.split(": ", 1)[1] for p in problems(b)] == ["hpack_table_size is not supported yet"]


def test_per_connection_local_rate_limit() -> None:
    b = base()
    hcm(b)["http_filters"].insert(
        0,
        {
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/"
                "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "rl",
                "token_bucket": {"max_tokens": 2, "fill_interval": "1s"},
                "local_rate_limit_per_downstream_connection": True,
            },
        },
    )
    (entry,) = _manager(b)["http_filters"]
    assert entry["config"]["local_ratelimit"]["per_downstream_connection"] is True
