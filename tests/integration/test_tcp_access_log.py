"""Access logs of `tcp_proxy` and of the listener, on real Envoy and meshcore with the same
bootstrap: a relayed connection, a refused upstream (UF,URX), a missing cluster (NC) and a
connection no filter chain matched (NR) give the same fields, in JSON, in Envoy's default
format and through a response-flag filter. Times, durations and ports are compared by
shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import bootstrap, socket_address, static_cluster
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.tcp import TcpUpstream, closed_without_data, exchange, tcp_proxy_filter

ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")
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
    ports = {name: free_port() for name in ("relay", "refused", "missing", "nochain")}
    # The `nochain` listener's only chain wants another destination port: nothing matches.
    nochain = _listener("nochain", ports["nochain"], "echo", [], access_log=listener_log)
    nochain["filter_chains"][0]["filter_chain_match"]["destination_port"] = 1
    config = bootstrap(
        [
            _listener("relay", ports["relay"], "echo", per_conn, access_log=listener_log),
            _listener("refused", ports["refused"], "refused", per_conn),
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
    """One connection to each listener, in order: relayed, refused, missing, no chain."""
    ports = proxy.ports  # type: ignore[attr-defined]
    assert exchange(ports["relay"], PAYLOAD) == PAYLOAD
    assert closed_without_data(ports["refused"])
    assert closed_without_data(ports["missing"])
    assert closed_without_data(ports["nochain"])
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
    relay, nochain = (json.loads(line) for line in log_lines(logged / "listener.log", 2))
    assert relay["upstream_cluster"] == "echo"
    assert (relay["received"], relay["sent"]) == (len(PAYLOAD), len(PAYLOAD))
    assert nochain["flags"] == "NR"
    assert nochain["details"] == "filter_chain_not_found"
    assert (nochain["received"], nochain["sent"], nochain["upstream_host"]) == (0, 0, None)
