"""HTTP/2 settings for the engine snapshot: a connection manager's `codec_type` and
`http2_protocol_options`, and a cluster's HTTP/2 upstream options (the deprecated
`http2_protocol_options` or `HttpProtocolOptions.explicit_http_config`, and the
`auto_config` and `use_downstream_protocol_config` choices between HTTP/1.1 and HTTP/2)."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import protocol_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from .supported import UPSTREAM_HTTP_OPTIONS
from .type_urls import type_name, unpack
from .values import enum_name, wrapped

# Envoy's defaults (`Http2ProtocolOptions`).
DEFAULT_MAX_CONCURRENT_STREAMS = 2147483647
DEFAULT_WINDOW = 268435456
# Envoy's flood limits and their defaults (enforced on downstream and upstream connections).
FLOOD_LIMITS = {
    "max_outbound_frames": 10000,
    "max_outbound_control_frames": 1000,
    "max_consecutive_inbound_frames_with_empty_payload": 1,
    "max_inbound_priority_frames_per_stream": 100,
    "max_inbound_window_update_frames_per_data_frame_sent": 10,
}


def options(msg: protocol_pb2.Http2ProtocolOptions) -> dict[str, Any]:
    """The snapshot's `Http2Options`: the fields the `h2` crate honours and the flood limits
    (left out at Envoy's defaults; the supported-field table refuses the other fields)."""
    flood = {name: wrapped(msg, name, None) for name in FLOOD_LIMITS if msg.HasField(name)}
    return {
        "max_concurrent_streams": wrapped(
            msg, "max_concurrent_streams", DEFAULT_MAX_CONCURRENT_STREAMS
        ),
        "initial_stream_window_size": wrapped(msg, "initial_stream_window_size", DEFAULT_WINDOW),
        "initial_connection_window_size": wrapped(
            msg, "initial_connection_window_size", DEFAULT_WINDOW
        ),
        **({"allow_connect": True} if msg.allow_connect else {}),
        **flood,
    }


def downstream(manager: hcm_pb2.HttpConnectionManager) -> dict[str, Any]:
    """`codec_type` and `http2` of a connection manager's snapshot (left out at Envoy's
    defaults)."""
    out: dict[str, Any] = {}
    codec = enum_name(manager, "codec_type").lower()
    if codec != "auto":
        out["codec_type"] = codec
    if manager.HasField("http2_protocol_options"):
        out["http2"] = options(manager.http2_protocol_options)
    return out


def upstream(config: cluster_pb2.Cluster) -> protocol_pb2.Http2ProtocolOptions | None:
    """A cluster's HTTP/2 upstream options, if it speaks HTTP/2 upstream."""
    if config.HasField("http2_protocol_options"):
        return config.http2_protocol_options
    packed = config.typed_extension_protocol_options.get(UPSTREAM_HTTP_OPTIONS)
    if packed is None or type_name(packed.type_url) != UPSTREAM_HTTP_OPTIONS:
        return None
    unpacked = unpack(packed)
    if unpacked is None:
        return None
    kind = unpacked.WhichOneof("upstream_protocol_options")
    if kind not in ("explicit_http_config", "use_downstream_protocol_config", "auto_config"):
        return None
    chosen = getattr(unpacked, kind)
    # auto_config may speak HTTP/2 whatever it sets (Envoy's defaults when unset).
    if kind != "auto_config" and not chosen.HasField("http2_protocol_options"):
        return None
    result: protocol_pb2.Http2ProtocolOptions = chosen.http2_protocol_options
    return result


def negotiates(config: cluster_pb2.Cluster) -> bool:
    """`auto_config`: the codec is what the upstream chose in ALPN (`h2`, else HTTP/1.1)."""
    packed = config.typed_extension_protocol_options.get(UPSTREAM_HTTP_OPTIONS)
    if packed is None or type_name(packed.type_url) != UPSTREAM_HTTP_OPTIONS:
        return False
    unpacked = unpack(packed)
    return (
        unpacked is not None and unpacked.WhichOneof("upstream_protocol_options") == "auto_config"
    )


def follows_downstream(config: cluster_pb2.Cluster) -> bool:
    """`use_downstream_protocol_config` with HTTP/2 options: a request that came over HTTP/2
    goes upstream over HTTP/2, one that came over HTTP/1.1 over HTTP/1.1."""
    packed = config.typed_extension_protocol_options.get(UPSTREAM_HTTP_OPTIONS)
    if packed is None or type_name(packed.type_url) != UPSTREAM_HTTP_OPTIONS:
        return False
    unpacked = unpack(packed)
    return (
        unpacked is not None
        and unpacked.WhichOneof("upstream_protocol_options") == "use_downstream_protocol_config"
        and unpacked.use_downstream_protocol_config.HasField("http2_protocol_options")
    )
