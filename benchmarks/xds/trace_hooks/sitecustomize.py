"""Time stamps of each ADS response's way through a meshcore process, for
`benchmarks/xds/traced.py` (which puts this directory on the proxy's PYTHONPATH and names
the output file in `XDS_TRACE`). Wraps, in the process only: `ads_stream`'s response
deserializer and hand-off to trio, the ACK leaving through grpcio's request iterator,
`XdsClient`'s steps, the config layer's checks and `Server`'s apply; one JSON line per
ACKed response, keyed by nonce, `time.monotonic()` (the test server's clock too)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any


def _install(path: str) -> None:
    from meshcore import app
    from meshcore.auth import jwks
    from meshcore.config import pgv, rds_reuse, xds_resources
    from meshcore.tracing import export
    from meshcore.xds import ads_stream, client, delta, resources, sotw, stats

    now = time.monotonic
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    records: dict[str, dict[str, float]] = {}
    current = [""]  # the nonce of the response the xDS task works on

    def mark(name: str) -> None:
        record = records.get(current[0])
        if record is not None:
            record[name] = now()

    def span(owner: Any, name: str, label: str) -> None:
        """Adds the time of each call of `owner.name` to the current record's `label`."""
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = now()
            try:
                return inner(*args, **kwargs)
            finally:
                record = records.get(current[0])
                if record is not None:
                    record[label] = record.get(label, 0.0) + now() - start
                    record["n" + label[1:]] = record.get("n" + label[1:], 0) + 1

        setattr(owner, name, timed)

    def async_span(owner: Any, name: str, first: str, last: str) -> None:
        inner = getattr(owner, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            mark(first)
            try:
                return await inner(*args, **kwargs)
            finally:
                mark(last)

        setattr(owner, name, timed)

    def delivering(deserialize: Any, send: Any, token: Any) -> Callable[[bytes], Any]:
        def deliver(raw: bytes) -> Any:
            start = now()
            response = deserialize(raw)
            record = records[response.nonce] = {"poll_start": start, "parsed": now()}
            token.run_sync_soon(handed, send, response)
            # Not `records[nonce]`: trio may have ACKed it (and the sender popped the
            # record) before this thread runs again; the line then lacks "posted".
            record["posted"] = now()
            return response

        return deliver

    original_deliver = ads_stream._deliver

    def handed(send: Any, response: Any) -> None:
        record = records.get(response.nonce)
        if record is not None:
            record["trio_cb"] = now()
        original_deliver(send, response)

    original_requests = ads_stream._requests

    def requests(source: Any) -> Iterator[Any]:
        for item in original_requests(source):
            record = records.pop(getattr(item, "response_nonce", ""), None)
            if record is not None:
                record["sender_has"] = now()
                line = {"nonce": item.response_nonce, **record}
                os.write(out, (json.dumps(line) + "\n").encode())
            yield item

    ads_stream._delivering = delivering
    ads_stream._requests = requests

    xds_client = client.XdsClient
    original_handle = xds_client._handle

    async def handle(self: Any, response: Any, link: Any) -> None:
        current[0] = response.nonce
        mark("task")
        await original_handle(self, response, link)

    xds_client._handle = handle
    original_send = xds_client._send

    def send(self: Any, request: Any) -> None:
        acking = request is not None and request.response_nonce == current[0]
        if acking:
            mark("ack_queued_start")
        original_send(self, request)
        if acking:
            mark("ack_queued")

    xds_client._send = send
    original_commit = xds_client._commit

    def commit(self: Any, staged: Any, scopes: Any) -> None:
        mark("commit_start")
        original_commit(self, staged, scopes)
        mark("commit_end")

    xds_client._commit = commit
    original_stage = resources.ResourceStore.stage

    def stage(self: Any, update: Any, now_trio: float | None = None) -> Any:
        mark("stage_start")
        try:
            return original_stage(self, update, now_trio)
        finally:
            mark("stage_end")

    resources.ResourceStore.stage = stage
    async_span(app.Server, "apply_xds", "apply_start", "apply_end")
    async_span(app.Server, "update_xds_endpoints", "apply_start", "apply_end")
    span(pgv, "check", "d_pgv")
    span(xds_resources, "_rules", "d_pgv_and_unsupported")
    span(xds_resources, "route_config", "d_translate_route_config")
    span(rds_reuse, "translate", "d_rds_reuse")  # a route config against its last version
    span(resources.ResourceStore, "_check", "d_check")
    span(resources.ResourceStore, "_cross_check", "d_cross_check")
    span(resources, "rebuild_listeners", "d_rebuild_listeners")
    span(resources.ResourceStore, "_plan_listeners", "d_plan_listeners")
    span(resources, "check_addresses", "d_check_addresses")
    span(app, "listeners_snapshot", "d_listeners_snapshot")
    span(export.SpanExporter, "configure", "d_spans_configure")
    span(delta.DeltaProtocol, "decode", "d_decode")
    span(sotw.SotwProtocol, "decode", "d_decode")
    span(stats.XdsStats, "scopes", "d_stats_scopes")
    span(stats.XdsStats, "success", "d_stats_success")
    span(xds_client, "_resubscribe", "d_resubscribe")
    original_restart = jwks.JwksFetcher.restart

    async def restart(self: Any, nursery: Any, snapshot: Any) -> None:
        start = now()
        await original_restart(self, nursery, snapshot)
        record = records.get(current[0])
        if record is not None:
            record["d_jwks_restart"] = now() - start

    jwks.JwksFetcher.restart = restart


if os.environ.get("XDS_TRACE"):
    _install(os.environ["XDS_TRACE"])
