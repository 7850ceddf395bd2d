"""`Cluster.health_checks` into `MeshConfig.health_checks`: Envoy's defaults, every supported
field, and problems naming the field's path."""

from __future__ import annotations

from typing import Any

import pytest
from meshcore.health.spec import (
    ClusterHealthCheck,
    GrpcCheck,
    HeaderToAdd,
    HttpCheck,
    TcpCheck,
)

from tests.config.builders import CLUSTER, base, cluster, load, problems

HC = f"{CLUSTER}.health_checks[0]"


def with_check(**fields: Any) -> dict[str, Any]:
    b = base()
    check = {
        "timeout": "1s",
        "interval": "5s",
        "unhealthy_threshold": 3,
        "healthy_threshold": 2,
        **fields,
    }
    cluster(b)["health_checks"] = [check]
    return b


def test_http_check_with_envoy_defaults() -> None:
    config = load(with_check(http_health_check={"path": "/healthz"}))
    assert config.health_checks == (
        ClusterHealthCheck(
            cluster="backend",
            timeout_ms=1000,
            interval_ms=5000,
            unhealthy_threshold=3,
            healthy_threshold=2,
            http=HttpCheck(path="/healthz"),
            connect_timeout_ms=250,
        ),
    )
    (check,) = config.health_checks
    assert check.http is not None and check.http.expected_statuses == ((200, 201),)
    assert (check.no_traffic_interval_ms, check.no_traffic_healthy_interval_ms) == (60_000, 60_000)
    assert (check.unhealthy_interval_ms, check.unhealthy_edge_interval_ms) == (5000, 5000)
    assert check.healthy_edge_interval_ms == 5000 and check.reuse_connection
    # Health reaches the engine as host flags, not as snapshot fields.
    assert "health_checks" not in config.snapshot["clusters"][0]


def http2(b: dict[str, Any]) -> dict[str, Any]:
    cluster(b)["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    return b


def test_grpc_check_fields() -> None:
    config = load(
        http2(
            with_check(
                grpc_health_check={
                    "service_name": "pkg.Svc",
                    "authority": "health.local",
                    "initial_metadata": [{"header": {"key": "x-token", "value": "t"}}],
                }
            )
        )
    )
    (check,) = config.health_checks
    assert check.grpc == GrpcCheck(
        service_name="pkg.Svc",
        authority="health.local",
        initial_metadata=(HeaderToAdd("x-token", "t"),),
    )
    assert check.http is None and check.tcp is None
    # An empty service_name asks about the whole server (the field is "not set").
    metadata = {"initial_metadata": [{"header": {"key": ":path", "value": "/"}}]}
    found = problems(http2(with_check(grpc_health_check=metadata)))
    assert (
        f"{HC}.grpc_health_check.initial_metadata[0].header.key: :-prefixed or host headers "
        "may not be modified" in found
    ), found
    (bare,) = load(http2(with_check(grpc_health_check={}))).health_checks
    assert bare.grpc == GrpcCheck()


def test_a_grpc_check_needs_an_http2_cluster() -> None:
    found = problems(with_check(grpc_health_check={}))
    assert f"{HC}.grpc_health_check: grpc cluster must support HTTP/2 for gRPC healthchecking" in (
        found
    ), found


def test_a_tls_cluster_cannot_be_health_checked_yet() -> None:
    b = with_check(http_health_check={"path": "/"})
    cluster(b)["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "UpstreamTlsContext",
            "sni": "x",
        },
    }
    found = problems(b)
    assert any(
        p.startswith(f"{HC}: health checks of a TLS cluster are not supported yet") for p in found
    ), found


def test_every_supported_field() -> None:
    config = load(
        with_check(
            initial_jitter="0.2s",
            interval_jitter="0.5s",
            interval_jitter_percent=10,
            no_traffic_interval="30s",
            no_traffic_healthy_interval="90s",
            unhealthy_interval="10s",
            unhealthy_edge_interval="2s",
            healthy_edge_interval="1s",
            reuse_connection=False,
            always_log_health_check_failures=True,
            http_health_check={
                "host": "health.internal",
                "path": "/status",
                "method": "HEAD",
                "expected_statuses": [{"start": 200, "end": 300}, {"start": 404, "end": 405}],
                "retriable_statuses": [{"start": 429, "end": 430}],
                "receive": [{"text": "6f6b"}, {"binary": "IQ=="}],
                "response_buffer_size": 64,
                "request_headers_to_add": [
                    {"header": {"key": "X-Probe", "value": "1"}},
                    {
                        "header": {"key": "user-agent", "value": "me"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    },
                ],
                "request_headers_to_remove": ["X-Trace"],
                "codec_client_type": "HTTP1",
            },
        )
    )
    (check,) = config.health_checks
    assert (check.initial_jitter_ms, check.interval_jitter_ms) == (200, 500)
    assert check.interval_jitter_percent == 10
    assert (check.no_traffic_interval_ms, check.no_traffic_healthy_interval_ms) == (30_000, 90_000)
    assert (check.unhealthy_interval_ms, check.unhealthy_edge_interval_ms) == (10_000, 2000)
    assert check.healthy_edge_interval_ms == 1000
    assert not check.reuse_connection and check.always_log_health_check_failures
    assert check.http == HttpCheck(
        path="/status",
        host="health.internal",
        method="HEAD",
        expected_statuses=((200, 300), (404, 405)),
        retriable_statuses=((429, 430),),
        receive=(b"ok", b"!"),
        response_buffer_size=64,
        headers_to_add=(
            HeaderToAdd("x-probe", "1"),
            HeaderToAdd("user-agent", "me", "overwrite_if_exists_or_add"),
        ),
        headers_to_remove=("x-trace",),
    )


def test_tcp_check_payloads() -> None:
    config = load(
        with_check(
            tcp_health_check={"send": {"text": "50494E47"}, "receive": [{"binary": "UE9ORw=="}]}
        )
    )
    assert config.health_checks[0].tcp == TcpCheck(send=b"PING", receive=(b"PONG",))
    config = load(with_check(tcp_health_check={}))
    assert config.health_checks[0].tcp == TcpCheck()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"http_health_check": {"path": "/", "expected_statuses": [{"start": 200, "end": 200}]}},
            f"{HC}.http_health_check.expected_statuses[0]: invalid http expected status range: "
            "expecting start < end, but found start=200 and end=200",
        ),
        (
            {"http_health_check": {"path": "/", "expected_statuses": [{"start": 99, "end": 200}]}},
            f"{HC}.http_health_check.expected_statuses[0]: invalid http expected status range: "
            "expecting start >= 100, but found start=99",
        ),
        (
            {
                "http_health_check": {
                    "path": "/",
                    "retriable_statuses": [{"start": 500, "end": 601}],
                }
            },
            f"{HC}.http_health_check.retriable_statuses[0]: invalid http retriable status range: "
            "expecting end <= 600, but found end=601",
        ),
        (
            {"tcp_health_check": {"send": {"text": "zz"}}},
            f"{HC}.tcp_health_check.send.text: invalid hex string 'zz'",
        ),
        (
            {"tcp_health_check": {"receive": [{"text": "abc"}]}},
            f"{HC}.tcp_health_check.receive[0].text: invalid hex string 'abc'",
        ),
        (
            {
                "http_health_check": {
                    "path": "/",
                    "receive": [{"text": "6f6b6f6b"}],
                    "response_buffer_size": 3,
                }
            },
            f"{HC}.http_health_check.receive: the expected response length '4' is over the "
            "response buffer size '3'",
        ),
        (
            {"http_health_check": {"path": "/", "request_headers_to_remove": ["host"]}},
            f"{HC}.http_health_check.request_headers_to_remove[0]: :-prefixed or host headers "
            "may not be removed",
        ),
        (
            {"http_health_check": {"path": "/", "codec_client_type": "HTTP2"}},
            f"{HC}.http_health_check.codec_client_type: HTTP2 is not supported yet",
        ),
        (
            {"http_health_check": {"path": "/", "service_name_matcher": {"exact": "x"}}},
            f"{HC}.http_health_check.service_name_matcher: service_name_matcher is not "
            "supported yet",
        ),
        (
            {"http_health_check": {"path": "/"}, "event_log_path": "/tmp/hc.log"},
            f"{HC}.event_log_path: event_log_path is not supported yet",
        ),
        (
            {"tcp_health_check": {"proxy_protocol_config": {}}},
            f"{HC}.tcp_health_check.proxy_protocol_config: proxy_protocol_config is not "
            "supported yet",
        ),
        (
            {"http_health_check": {"path": "/", "method": "CONNECT"}},
            f"{HC}.http_health_check.method: CONNECT is not supported",
        ),
    ],
)
def test_problems_name_the_field(fields: dict[str, Any], expected: str) -> None:
    found = problems(with_check(**fields))
    assert expected in found, found


def test_pgv_rules_apply() -> None:
    b = with_check(http_health_check={"path": ""})
    del cluster(b)["health_checks"][0]["timeout"]
    found = problems(b)
    assert f"{HC}.timeout: is required" in found
    assert any(p.startswith(f"{HC}.http_health_check.path: ") for p in found), found
    b = base()
    cluster(b)["health_checks"] = [
        {"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1}
    ]
    assert any(p.startswith(f"{HC}: one of ") for p in problems(b)), problems(b)


def test_one_health_check_per_cluster() -> None:
    b = with_check(tcp_health_check={})
    cluster(b)["health_checks"].append(dict(cluster(b)["health_checks"][0]))
    assert problems(b) == [f"{CLUSTER}.health_checks[1]: multiple health checks are not supported"]
