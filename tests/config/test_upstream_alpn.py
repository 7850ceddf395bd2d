"""Config of the upstream codec chosen by TLS ALPN: `auto_config` (TLS clusters only, as
Envoy; no HTTP/3) and `use_downstream_protocol_config` with HTTP/2 to a TLS cluster."""

from __future__ import annotations

from typing import Any

from .builders import CLUSTER, UPSTREAM_OPTIONS, base, cluster, problems, snapshot_cluster

OPTIONS_PATH = f"{CLUSTER}.typed_extension_protocol_options[{UPSTREAM_OPTIONS}]"
TLS = {
    "name": "envoy.transport_sockets.tls",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    },
}


def _options(b: dict[str, Any], **fields: Any) -> None:
    cluster(b)["typed_extension_protocol_options"] = {
        UPSTREAM_OPTIONS: {"@type": f"type.googleapis.com/{UPSTREAM_OPTIONS}", **fields}
    }


def test_auto_config_on_a_tls_cluster_negotiates() -> None:
    b = base()
    cluster(b)["transport_socket"] = TLS
    _options(
        b,
        auto_config={
            "http_protocol_options": {},
            "http2_protocol_options": {"max_concurrent_streams": 9},
        },
    )
    assert problems(b) == []
    out = snapshot_cluster(b)
    assert out["http_auto"] is True
    assert out["http2"]["max_concurrent_streams"] == 9
    assert "http2_follows_downstream" not in out


def test_auto_config_without_http2_options_uses_envoys_defaults() -> None:
    b = base()
    cluster(b)["transport_socket"] = TLS
    _options(b, auto_config={})
    out = snapshot_cluster(b)
    assert out["http_auto"] is True
    assert out["http2"]["max_concurrent_streams"] == 2147483647


def test_auto_config_needs_tls_as_envoy_says() -> None:
    b = base()
    _options(b, auto_config={"http_protocol_options": {}, "http2_protocol_options": {}})
    assert problems(b) == [
        f"{OPTIONS_PATH}.auto_config: ALPN configured for cluster backend which has a "
        "non-ALPN transport socket (auto_config chooses the protocol by TLS ALPN: set a TLS "
        "transport_socket)"
    ]


def test_auto_config_http3_is_refused_with_its_path() -> None:
    b = base()
    cluster(b)["transport_socket"] = TLS
    _options(
        b,
        auto_config={
            "http_protocol_options": {},
            "http2_protocol_options": {},
            "http3_protocol_options": {},
        },
    )
    assert problems(b) == [
        f"{OPTIONS_PATH}.auto_config.http3_protocol_options: http3_protocol_options is not "
        "supported yet"
    ]


def test_other_clusters_do_not_negotiate() -> None:
    b = base()
    cluster(b)["transport_socket"] = TLS
    _options(b, explicit_http_config={"http2_protocol_options": {}})
    assert "http_auto" not in snapshot_cluster(b)


def test_follow_downstream_to_a_tls_cluster() -> None:
    b = base()
    cluster(b)["transport_socket"] = TLS
    _options(
        b,
        use_downstream_protocol_config={"http_protocol_options": {}, "http2_protocol_options": {}},
    )
    assert problems(b) == []
    out = snapshot_cluster(b)
    assert out["http2_follows_downstream"] is True
    assert "http_auto" not in out
