"""Access logs of `tcp_proxy` and of the listener, on real Envoy and meshcore with the same
bootstrap: a relayed connection, a refused upstream (UF,URX), a missing cluster (NC) and a
connection no filter chain matched (NR) give the same fields, in JSON, in Envoy's default
format and through a response-flag filter. `%STREAM_ID%` is a random UUID per connection
(on listener lines of an HTTP listener too) and `%UPSTREAM_REQUEST_ATTEMPT_COUNT%` the
connect attempts made. Times, durations, ports and ids are compared by shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    socket_address,
    static_cluster,
    virtual_host,
)
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import (
    TcpUpstream,
    closed_without_data,
    connect,
    exchange,
    tcp_proxy_filter,
)

ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DEFAULT_LINE = re.compile(
    r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "- - -" 0 (?P<flags>\S+) (?P<rx>\d+) '
    r'(?P<tx>\d+) \d+ - "-" "-" "-" "-" "(?P<host>[^"]*)"$'
)
JSON_FIELDS = {
    "protocol": "%PROTOCOL%",
    "code": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "received": "%BYTES_RECEIVED%",
    "sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local": "%UPSTREAM_LOCAL_ADDRESS%",
    "failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "local": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "path": "%REQ(:PATH)%",
    "route": "%ROUTE_NAME%",
    "stream_id": "%STREAM_ID%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
}
PAYLOAD = b"x" * 100_000


def _listener(name: str, port: int, cluster: str, logs: list[dict[str, Any]], **extra: Any):
    return {
        "name": name,
        "address": socket_address("127.0.0.1", port),
        "filter_chains": [
            {
                "filter_chain_match": {"destination_port": port},
                "filters": [tcp_proxy_filter(name, cluster=cluster, access_log=logs)],
            }
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def echo() -> Iterator[TcpUpstream]:
    up = TcpUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, echo, tmp_path_factory) -> Iterator[Proxy]:
    logs = tmp_path_factory.mktemp(f"tcp-logs-{request.param}")
    per_conn = [
        file_log(logs / "json.log", {"json_format": JSON_FIELDS}),
        file_log(logs / "default.log"),
        file_log(
            logs / "failed.log",
            {"text_format_source": {"inline_string": "%RESPONSE_FLAGS%\n"}},
            filter={"response_flag_filter": {"flags": ["UF", "NC"]}},
        ),
    ]
    listener_log = [file_log(logs / "listener.log", {"json_format": JSON_FIELDS})]
    ports = {name: free_port() for name in ("relay", "refused", "missing", "nochain", "http")}
    # The `nochain` listener's only chain wants another destination port: nothing matches.
    nochain = _listener("nochain", ports["nochain"], "echo", [], access_log=listener_log)
    nochain["filter_chains"][0]["filter_chain_match"]["destination_port"] = 1
    refused = _listener("refused", ports["refused"], "refused", per_conn)
    refused["filter_chains"][0]["filters"][0]["typed_config"]["max_connect_attempts"] = 3
    http = http_listener(
        "http",
        ports["http"],
        route_config(
            [virtual_host("all", ["*"], [route({"prefix": "/"}, direct_response={"status": 200})])]
        ),
    )
    http["access_log"] = listener_log
    config = bootstrap(
        [
            _listener("relay", ports["relay"], "echo", per_conn, access_log=listener_log),
            refused,
            http,
            _listener("missing", ports["missing"], "nowhere", per_conn),
            nochain,
        ],
        [
            static_cluster("echo", [("127.0.0.1", echo.port)]),
            static_cluster("refused", [("127.0.0.1", dead_port())]),
        ],
    )
    flush = ("--file-flush-interval-msec", "100") if request.param == "envoy" else ()
    running = start_proxy(request.param, config, tmp_path_factory, extra_args=flush)
    running.logs = logs  # type: ignore[attr-defined]
    running.ports = ports  # type: ignore[attr-defined]
    yield running
    running.stop()


@pytest.fixture(scope="module")
def logged(proxy: Proxy) -> Path:
    """One connection to each listener, in order: relayed, refused, missing, no chain, then
    one HTTP request."""
    ports = proxy.ports  # type: ignore[attr-defined]
    assert exchange(ports["relay"], PAYLOAD) == PAYLOAD
    assert closed_without_data(ports["refused"])
    assert closed_without_data(ports["missing"])
    assert closed_without_data(ports["nochain"])
    with connect(ports["http"]) as sock:  # no half-close: Envoy's HCM would drop the request
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert sock.makefile("rb").read().startswith(b"HTTP/1.1 200")
    return proxy.logs  # type: ignore[attr-defined]


def test_json_fields_per_connection(logged: Path) -> None:
    relay, refused, missing = (json.loads(line) for line in log_lines(logged / "json.log", 3))
    for entry in (relay, refused, missing):
        # No HTTP here: no protocol, no status, no request, no route.
        assert (entry["protocol"], entry["code"], entry["path"], entry["route"]) == (
            None,
            0,
            None,
            None,
        )
        assert entry["details"] is None
        assert ADDRESS.match(entry["remote"]) and ADDRESS.match(entry["local"])
        assert isinstance(entry["duration"], int)
    assert relay["flags"] == "-"  # Envoy writes the empty flag set as "-", in JSON too
    assert (relay["received"], relay["sent"]) == (len(PAYLOAD), len(PAYLOAD))
    assert relay["upstream_cluster"] == "echo" and ADDRESS.match(relay["upstream_host"])
    assert ADDRESS.match(relay["upstream_local"]) and relay["failure_reason"] is None

    assert refused["flags"] == "UF,URX"
    assert refused["upstream_cluster"] == "refused" and ADDRESS.match(refused["upstream_host"])
    assert refused["failure_reason"] == "delayed_connect_error:_Connection_refused"
    assert (refused["received"], refused["sent"]) == (0, 0)

    assert missing["flags"] == "NC"
    assert missing["upstream_cluster"] is None and missing["upstream_host"] is None

    # A random UUID per connection, and the connects tried (3 with max_connect_attempts: 3).
    assert all(UUID.match(entry["stream_id"]) for entry in (relay, refused, missing))
    assert len({relay["stream_id"], refused["stream_id"], missing["stream_id"]}) == 3
    assert (relay["attempts"], refused["attempts"], missing["attempts"]) == (1, 3, 0)


def test_default_format_and_flag_filter(logged: Path) -> None:
    lines = log_lines(logged / "default.log", 3)
    parsed = [DEFAULT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    relay, refused, missing = parsed
    assert relay and (relay["flags"], relay["rx"], relay["tx"]) == ("-", "100000", "100000")
    assert relay["host"].startswith("127.0.0.1:")
    assert refused and refused["flags"] == "UF,URX" and refused["rx"] == "0"
    assert missing and (missing["flags"], missing["host"]) == ("NC", "-")
    assert log_lines(logged / "failed.log", 2) == ["UF,URX", "NC"]


def test_listener_log_covers_relayed_and_unmatched_connections(logged: Path) -> None:
    lines = [json.loads(line) for line in log_lines(logged / "listener.log", 3)]
    # The HTTP connection's line is written when its (delayed) close ends: found by protocol.
    http = next(entry for entry in lines if entry["protocol"] == "HTTP/1.1")
    relay, nochain = (entry for entry in lines if entry is not http)
    assert relay["upstream_cluster"] == "echo"
    # The tcp_proxy's connection id and connect attempts, as on its own line.
    first = json.loads(log_lines(logged / "json.log", 3)[0])
    assert (relay["stream_id"], relay["attempts"]) == (first["stream_id"], 1)
    # No tcp_proxy: no connection id, no attempts.
    assert (nochain["stream_id"], nochain["attempts"]) == (None, 0)
    assert (http["stream_id"], http["attempts"], http["code"]) == (None, 0, 0)
    assert (relay["received"], relay["sent"]) == (len(PAYLOAD), len(PAYLOAD))
    assert nochain["flags"] == "NR"
    assert nochain["details"] == "filter_chain_not_found"
    assert (nochain["received"], nochain["sent"], nochain["upstream_host"]) == (0, 0, None)
