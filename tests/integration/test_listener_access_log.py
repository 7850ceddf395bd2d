"""The listener's `access_log` on an `http_connection_manager` listener, on real Envoy and
meshcore with the same bootstrap: one line per downstream connection when it closes
(HTTP/1.1 with two requests, HTTP/2 cleartext, HTTP/1.1 and HTTP/2 over TLS, a connection
closed unused, a malformed request) with the same fields on both; times, durations and ports
are compared by shape, and HTTP/2 byte counts (each proxy's own SETTINGS and HPACK) by
range."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import bootstrap, http_listener, route, route_config, virtual_host
from tests.support.certs import Pki, make_pki, tls_socket
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy

OPERATORS = (
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "BYTES_RECEIVED",
    "BYTES_SENT",
    "DURATION",
    "RESPONSE_FLAGS",
    "REQUESTED_SERVER_NAME",
    "PROTOCOL",
    "RESPONSE_CODE",
    "RESPONSE_CODE_DETAILS",
    "UPSTREAM_HOST",
    "UPSTREAM_CLUSTER",
    "ROUTE_NAME",
    "DOWNSTREAM_TLS_VERSION",
    "REQUEST_DURATION",
    "RESPONSE_DURATION",
    "DOWNSTREAM_PEER_URI_SAN",
)
FIELDS = {op.lower(): f"%{op}%" for op in OPERATORS} | {
    "path": "%REQ(:PATH)%",
    "start": "%START_TIME%",
}
ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")
START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DEFAULT_LINE = re.compile(
    r'^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "- - (?P<proto>\S+)" 0 - (?P<rx>\d+) '
    r'(?P<tx>\d+) \d+ - "-" "-" "-" "-" "-"$'
)
HELLO = "hello"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(tmp_path_factory.mktemp("listener-log-pki"))


def _routes() -> dict[str, Any]:
    reply = {"status": 200, "body": {"inline_string": HELLO}}
    return route_config(
        [virtual_host("all", ["*"], [route({"prefix": "/"}, direct_response=reply)])]
    )


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, pki, tmp_path_factory) -> Iterator[Proxy]:
    logs = tmp_path_factory.mktemp(f"listener-logs-{request.param}")
    plain = http_listener("plain", free_port(), _routes(), stat_prefix="plain")
    plain["access_log"] = [file_log(logs / "plain.log", {"json_format": FIELDS})]
    tls = http_listener("tls", free_port(), _routes(), stat_prefix="tls")
    tls["filter_chains"][0]["transport_socket"] = tls_socket(pki, alpn=("h2", "http/1.1"))
    tls["access_log"] = [
        file_log(logs / "tls.log", {"json_format": FIELDS}),
        file_log(logs / "default.log"),
    ]
    flush = ("--file-flush-interval-msec", "100") if request.param == "envoy" else ()
    running = start_proxy(
        request.param, bootstrap([plain, tls], []), tmp_path_factory, extra_args=flush
    )
    running.logs = logs  # type: ignore[attr-defined]
    yield running
    running.stop()


def _curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


@pytest.fixture(scope="module")
def logged(proxy: Proxy, pki: Pki) -> Path:
    plain, tls = proxy.listener_ports()
    base = f"http://127.0.0.1:{plain}"
    assert _curl("-o", "/dev/null", f"{base}/one", f"{base}/two") == "200200"
    assert _curl("--http2-prior-knowledge", f"{base}/h2c") == "200"
    secure = ("--cacert", str(pki.ca.path), "--resolve", f"localhost:{tls}:127.0.0.1")
    assert _curl(*secure, "--http1.1", f"https://localhost:{tls}/tls1") == "200"
    assert _curl(*secure, "--http2", f"https://localhost:{tls}/tls2") == "200"
    with socket.create_connection(("127.0.0.1", plain)):
        pass  # closed unused
    with socket.create_connection(("127.0.0.1", plain), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    return proxy.logs  # type: ignore[attr-defined]


def _lines(path: Path, count: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_lines(path, count)]


def _shape(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with times, durations and ports checked and taken out."""
    out = dict(entry)
    assert START.match(out.pop("start")), entry
    assert isinstance(out.pop("duration"), int), entry
    assert ADDRESS.match(out.pop("downstream_remote_address")), entry
    assert ADDRESS.match(out.pop("downstream_local_address")), entry
    return out


NOTHING = {
    "response_code": 0,
    "response_code_details": None,
    "upstream_host": None,
    "upstream_cluster": None,
    "route_name": None,
    "request_duration": None,
    "response_duration": None,
    "path": None,
    "downstream_peer_uri_san": None,
    # As Envoy without a tls_inspector: the TLS socket's SNI is not the listener log's.
    "requested_server_name": None,
}


def test_plain_connections(logged: Path) -> None:
    http1, h2c, unused, garbage = (_shape(e) for e in _lines(logged / "plain.log", 4))
    request = "GET /{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: curl"
    assert http1 == {
        **NOTHING,
        "protocol": "HTTP/1.1",
        "response_flags": "-",
        "downstream_tls_version": None,
        "bytes_received": http1["bytes_received"],
        "bytes_sent": http1["bytes_sent"],
    }
    # Two requests and two replies went over the one connection.
    assert http1["bytes_received"] > 2 * len(request)
    assert http1["bytes_sent"] > 2 * (len("HTTP/1.1 200 OK\r\n") + len(HELLO))
    assert h2c["protocol"] == "HTTP/2" and h2c["response_flags"] == "-"
    assert 100 <= h2c["bytes_received"] <= 400 and 60 <= h2c["bytes_sent"] <= 400, h2c
    assert unused == {
        **NOTHING,
        "protocol": None,
        "response_flags": "-",
        "downstream_tls_version": None,
        "bytes_received": 0,
        "bytes_sent": 0,
    }
    assert garbage["protocol"] is None and garbage["response_flags"] == "DPE"
    assert garbage["bytes_received"] == len(b"GARBAGE\r\n\r\n") and garbage["bytes_sent"] > 0


def test_tls_connections(logged: Path) -> None:
    http1, h2 = (_shape(e) for e in _lines(logged / "tls.log", 2))
    for entry, protocol in ((http1, "HTTP/1.1"), (h2, "HTTP/2")):
        assert {k: entry[k] for k in NOTHING} == NOTHING
        assert entry["protocol"] == protocol and entry["response_flags"] == "-"
        assert entry["downstream_tls_version"] == "TLSv1.3"
    # Decrypted bytes: one request and its reply.
    assert 60 <= http1["bytes_received"] <= 120 and 90 <= http1["bytes_sent"] <= 200, http1
    default = [DEFAULT_LINE.match(line) for line in log_lines(logged / "default.log", 2)]
    assert all(default), default
    assert [m["proto"] for m in default if m] == ["HTTP/1.1", "HTTP/2"]


def test_the_same_counts_on_both_proxies(logged: Path) -> None:
    """HTTP/1.1 bytes are the client's and the replies' (the same on both proxies); recorded
    per proxy, compared once both ran."""
    plain = _lines(logged / "plain.log", 4)
    tls = _lines(logged / "tls.log", 2)
    counts = [
        (e["protocol"], e["bytes_received"], e["bytes_sent"]) for e in (plain[0], plain[3], tls[0])
    ]
    _SEEN[logged.name.split("-")[2].rstrip("0123456789")] = counts
    if len(_SEEN) == 2:
        envoy, meshcore = _SEEN["envoy"], _SEEN["meshcore"]
        assert envoy == meshcore


_SEEN: dict[str, list[tuple[Any, ...]]] = {}
