"""The `SecretsConfigDump` of `/config_dump` for SDS secrets: `dynamic_active_secrets` (the
secrets that arrived) and `dynamic_warming_secrets` (names subscribed to that have not),
with private keys redacted as Envoy does (`[redacted]`)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from meshcore.admin.config_dump import timestamp
from meshcore.admin.secrets_view import redact_secret
from meshcore.config.xds_resources import SECRET

from .resources import ResourceStore


def secrets_dump(store: ResourceStore) -> dict[str, Any]:
    out: dict[str, Any] = {}
    active = []
    for name, entry in store.accepted[SECRET].items():
        body = json_format.MessageToDict(entry.message, preserving_proto_field_name=True)
        active.append(
            {
                "name": name,
                "version_info": entry.version,
                "last_updated": timestamp(entry.last_updated),
                "secret": {"@type": SECRET, **redact_secret(body)},
            }
        )
    if active:
        out["dynamic_active_secrets"] = active
    arrived = set(store.accepted[SECRET])
    warming = sorted({ref.name for ref in store.secret_refs() if ref.source != "static"} - arrived)
    if warming:
        out["dynamic_warming_secrets"] = [{"name": name} for name in warming]
    return out
