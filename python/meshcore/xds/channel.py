"""The gRPC channel to a management server (ADS, SDS): plain text, or TLS as the static
cluster's `UpstreamTlsContext` says (`config/grpc_tls.py`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshcore.config.grpc_tls import GrpcTls

# 10,000 clusters in one state-of-the-world response pass gRPC's default 4 MiB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

ChannelFactory = Callable[[str, GrpcTls | None], Any]


def grpc_channel(target: str, tls: GrpcTls | None = None) -> Any:
    """A gRPC channel to a management server: plain text, or TLS as the cluster's
    `UpstreamTlsContext` says (`config/grpc_tls.py`)."""
    import grpc

    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    if tls is None:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates.encode(),
        private_key=tls.private_key.encode() if tls.private_key else None,
        certificate_chain=tls.certificate_chain.encode() if tls.certificate_chain else None,
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, credentials, options=options)
