"""SDS secrets as `/config_dump` shows them: private keys (and their passwords) redacted as
Envoy redacts its `sensitive` fields, each value replaced by `[redacted]` (bytes: the
base64 of it, as protobuf's JSON prints bytes)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
_REDACTED_BYTES = base64.b64encode(REDACTED.encode()).decode()
_SENSITIVE = ("private_key", "password")
_SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def _redact_source(source: Any) -> Any:
    if not isinstance(source, Mapping):
        return REDACTED
    return {
        key: _REDACTED_BYTES if key in ("inline_bytes", "inlineBytes") else REDACTED
        for key in source
    }


def redact_secret(secret: Mapping[str, Any]) -> dict[str, Any]:
    """A Secret (JSON, proto or camelCase field names) with its sensitive values redacted."""
    out = dict(secret)
    for key in ("tls_certificate", "tlsCertificate"):
        cert = out.get(key)
        if isinstance(cert, Mapping):
            out[key] = {
                k: _redact_source(v) if k in _SENSITIVE or k == "privateKey" else v
                for k, v in cert.items()
            }
    return out


def redact_bootstrap(bootstrap: Mapping[str, Any]) -> Mapping[str, Any]:
    """The bootstrap with the keys of `static_resources.secrets` redacted."""
    key = "static_resources" if "static_resources" in bootstrap else "staticResources"
    static = bootstrap.get(key)
    if not isinstance(static, Mapping) or not static.get("secrets"):
        return bootstrap
    secrets = [redact_secret(s) for s in static["secrets"]]
    return {**bootstrap, key: {**static, "secrets": secrets}}


def static_secrets(bootstrap: Mapping[str, Any], updated: str) -> list[dict[str, Any]]:
    """`SecretsConfigDump.static_secrets`."""
    static = bootstrap.get("static_resources") or bootstrap.get("staticResources") or {}
    return [
        {
            "name": secret.get("name", ""),
            "last_updated": updated,
            "secret": {"@type": _SECRET, **redact_secret(secret)},
        }
        for secret in static.get("secrets") or []
    ]
