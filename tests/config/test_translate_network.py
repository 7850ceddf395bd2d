"""The tcp_proxy and network local_ratelimit filters into the snapshot's `TcpProxy` and
`ConnectionRateLimit`, and the problems of filter chains meshcore cannot run."""

from __future__ import annotations

from typing import Any

from .builders import base, listener, load, problems

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
NETWORK_RL = (
    "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"
)
CHAIN = "static_resources.listeners[0].filter_chains[0].filters"


def _rate_limit(max_tokens: int = 5, fill_interval: str = "1s") -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.local_ratelimit",
        "typed_config": {
            "@type": NETWORK_RL,
            "stat_prefix": "conns",
            "token_bucket": {"max_tokens": max_tokens, "fill_interval": fill_interval},
        },
    }


def _tcp(*before: dict[str, Any], **fields: Any) -> dict[str, Any]:
    b = base()
    proxy = {"@type": TCP_PROXY, "stat_prefix": "relay", **fields}
    listener(b)["filter_chains"][0]["filters"] = [
        *before,
        {"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy},
    ]
    return b


def test_tcp_proxy_with_envoy_defaults() -> None:
    (translated,) = load(_tcp(cluster="backend")).snapshot["listeners"]
    assert translated["filter_chains"][0]["filter"] == {
        "tcp_proxy": {
            "stat_prefix": "relay",
            "clusters": [{"name": "backend", "weight": 1}],
            "idle_timeout_ms": 3_600_000,
            "max_connect_attempts": 1,
            "hash_source_ip": False,
        }
    }
    assert "connection_rate_limits" not in translated["filter_chains"][0]


def test_tcp_proxy_settings() -> None:
    b = _tcp(
        weighted_clusters={
            "clusters": [{"name": "backend", "weight": 3}, {"name": "other", "weight": 1}]
        },
        idle_timeout="0s",
        max_connect_attempts=4,
        hash_policy=[{"source_ip": {}}],
    )
    proxy = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"]["tcp_proxy"]
    assert proxy["clusters"] == [{"name": "backend", "weight": 3}, {"name": "other", "weight": 1}]
    assert proxy["idle_timeout_ms"] == 0
    assert proxy["max_connect_attempts"] == 4
    assert proxy["hash_source_ip"] is True


def test_missing_cluster_is_not_a_config_error() -> None:
    # Envoy accepts it and counts `downstream_cx_no_route` per connection.
    proxy = load(_tcp(cluster="nowhere")).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "tcp_proxy"
    ]
    assert proxy["clusters"] == [{"name": "nowhere", "weight": 1}]


def test_rate_limits_before_tcp_proxy_in_order() -> None:
    b = _tcp(_rate_limit(5), _rate_limit(7, "0.25s"), cluster="backend")
    (translated,) = load(b).snapshot["listeners"]
    assert translated["filter_chains"][0]["connection_rate_limits"] == [
        {
            "stat_prefix": "conns",
            "token_bucket": {"max_tokens": 5, "tokens_per_fill": 1, "fill_interval_ms": 1000},
        },
        {
            "stat_prefix": "conns",
            "token_bucket": {"max_tokens": 7, "tokens_per_fill": 1, "fill_interval_ms": 250},
        },
    ]


def test_unsupported_tcp_proxy_fields_name_their_path() -> None:
    b = _tcp(
        cluster="backend",
        tunneling_config={"hostname": "example.com:443"},
        max_downstream_connection_duration="10s",
        hash_policy=[{"filter_state": {"key": "k"}}],
    )
    found = problems(b)
    typed = f"{CHAIN}[0].typed_config"
    for field in ("tunneling_config", "max_downstream_connection_duration"):
        assert f"{typed}.{field}: {field} is not supported yet" in found
    assert f"{typed}.hash_policy[0].filter_state: filter_state is not supported yet" in found


def test_filter_chain_shapes_that_cannot_run() -> None:
    b = _tcp(cluster="backend")
    chain = listener(b)["filter_chains"][0]["filters"]
    chain.append(_rate_limit())
    found = problems(b)
    assert f"{CHAIN}[0]: TcpProxy must be the last filter" in found
    assert any(
        p.startswith(f"{CHAIN}[1]: local_ratelimit cannot be the last filter") for p in found
    )


def test_rate_limit_fill_interval_below_50ms() -> None:
    found = problems(_tcp(_rate_limit(fill_interval="0.01s"), cluster="backend"))
    assert f"{CHAIN}[0].typed_config.token_bucket.fill_interval: must be at least 50ms" in found


def test_network_rate_limit_runtime_enabled_is_not_supported_yet() -> None:
    limit = _rate_limit()
    limit["typed_config"]["runtime_enabled"] = {
        "default_value": False,
        "runtime_key": "conns_enabled",
    }
    found = problems(_tcp(limit, cluster="backend"))
    assert f"{CHAIN}[0].typed_config.runtime_enabled: runtime_enabled is not supported yet" in found


FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"


def _file_log(path: str, **config: Any) -> dict[str, Any]:
    return {"name": "log", "typed_config": {"@type": FILE_LOG, "path": path, **config}}


def test_tcp_proxy_and_listener_access_logs() -> None:
    fmt = {"text_format_source": {"inline_string": "%RESPONSE_FLAGS% %BYTES_SENT%\n"}}
    b = _tcp(cluster="backend", access_log=[_file_log("/tmp/tcp.log", log_format=fmt)])
    listener(b)["access_log"] = [_file_log("/tmp/listener.log")]
    (translated,) = load(b).snapshot["listeners"]
    (tcp_log,) = translated["filter_chains"][0]["filter"]["tcp_proxy"]["access_log"]
    assert tcp_log["sink"] == {"file": "/tmp/tcp.log"}
    (listener_log,) = translated["access_log"]
    assert listener_log["sink"] == {"file": "/tmp/listener.log"}


def test_tcp_proxy_access_log_problems_name_the_field() -> None:
    fmt = {"text_format_source": {"inline_string": "%NOT_AN_OPERATOR%"}}
    found = problems(_tcp(cluster="backend", access_log=[_file_log("/tmp/x", log_format=fmt)]))
    where = f"{CHAIN}[0].typed_config.access_log[0].typed_config.log_format"
    assert any(p.startswith(where) for p in found), found


def test_listener_access_log_on_an_http_listener() -> None:
    b = base()
    listener(b)["access_log"] = [_file_log("/tmp/listener.log")]
    (translated,) = load(b).snapshot["listeners"]
    assert "http_connection_manager" in translated["filter_chains"][0]["filter"]
    (listener_log,) = translated["access_log"]
    assert listener_log["sink"] == {"file": "/tmp/listener.log"}


def test_listener_access_log_problems_name_the_field() -> None:
    b = base()
    fmt = {"text_format_source": {"inline_string": "%NOT_AN_OPERATOR%"}}
    listener(b)["access_log"] = [_file_log("/tmp/x", log_format=fmt)]
    found = problems(b)
    where = "static_resources.listeners[0].access_log[0].typed_config.log_format"
    assert any(p.startswith(where) for p in found), found


def _tcp_snapshot(b: dict[str, Any]) -> dict[str, Any]:
    (translated,) = load(b).snapshot["listeners"]
    proxy: dict[str, Any] = translated["filter_chains"][0]["filter"]["tcp_proxy"]
    return proxy


def test_tcp_proxy_access_log_options() -> None:
    options = {"access_log_flush_interval": "0.25s", "flush_access_log_on_connected": True}
    proxy = _tcp_snapshot(_tcp(cluster="backend", access_log_options=options))
    assert proxy["access_log_flush_interval_ms"] == 250
    assert proxy["flush_access_log_on_connected"] is True
    # The deprecated top-level field (Envoy 1.40 still takes it, with a warning).
    old = _tcp_snapshot(_tcp(cluster="backend", access_log_flush_interval="2s"))
    assert old["access_log_flush_interval_ms"] == 2000
    assert "flush_access_log_on_connected" not in old
    plain = _tcp_snapshot(_tcp(cluster="backend"))
    assert "access_log_flush_interval_ms" not in plain


def test_tcp_proxy_access_log_option_problems() -> None:
    at = f"{CHAIN}[0].typed_config"
    both = _tcp(
        cluster="backend",
        access_log_flush_interval="2s",
        access_log_options={"flush_access_log_on_connected": True},
    )
    assert problems(both) == [
        f"{at}.access_log_flush_interval: not allowed together with access_log_options"
    ]
    zero = _tcp(cluster="backend", access_log_options={"access_log_flush_interval": "0s"})
    assert problems(zero) == [
        f"{at}.access_log_options.access_log_flush_interval: 0s must be at least 0.001s"
    ]
    old_zero = _tcp(cluster="backend", access_log_flush_interval="0s")
    assert problems(old_zero) == [f"{at}.access_log_flush_interval: 0s must be at least 0.001s"]
