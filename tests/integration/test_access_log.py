"""Access logs on real Envoy and meshcore with the same bootstrap: the same requests (200,
404 NR, 503 UH, 503 UF, a POST with a body, a prefix rewrite) give the same fields, in JSON
(typed values), in Envoy's default format and through filters. Values that legitimately
differ (times, durations, ports, request ids) are compared by shape. SIGUSR1 reopens files."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.support.access_logs import file_log, log_lines
from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import get
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

STDOUT = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
UF_DETAILS = (
    "upstream_reset_before_response_started"
    "{remote_connection_failure|delayed_connect_error:_Connection_refused}"
)
UF_BODY = (
    "upstream connect error or disconnect/reset before headers. "
    "reset reason: remote connection failure"
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ADDRESS = re.compile(r"^127\.0\.0\.1:\d+$")
START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

JSON_FIELDS = {
    "start": "%START_TIME%",
    "start_ms": "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "authority": "%REQ(:AUTHORITY)%",
    "agent": "%REQ(USER-AGENT):5%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "content_type": "%RESP(CONTENT-TYPE)%",
    "protocol": "%PROTOCOL%",
    "code": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "received": "%BYTES_RECEIVED%",
    "sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "request_duration": "%REQUEST_DURATION%",
    "response_duration": "%RESPONSE_DURATION%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local": "%UPSTREAM_LOCAL_ADDRESS%",
    "failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "remote": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "remote_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "local": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "route": "%ROUTE_NAME%",
    "sni": "%REQUESTED_SERVER_NAME%",
    "san": "%DOWNSTREAM_PEER_URI_SAN%",
    "text": "code=%RESPONSE_CODE% route=%ROUTE_NAME%",
    "nested": {"code": "%RESPONSE_CODE%", "cluster": "%UPSTREAM_CLUSTER%"},
}


def _ge(value: int) -> dict[str, Any]:
    return {"op": "GE", "value": {"default_value": value, "runtime_key": "unused"}}


def _text(fmt: str) -> dict[str, Any]:
    return {"text_format_source": {"inline_string": fmt}}


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def dead() -> int:
    return dead_port()


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, dead, tmp_path_factory) -> Iterator[Proxy]:
    logs = tmp_path_factory.mktemp(f"logs-{request.param}")
    codes = "%RESPONSE_CODE% %RESPONSE_FLAGS%\n"
    access_log = [
        file_log(logs / "json.log", {"json_format": JSON_FIELDS}),
        file_log(logs / "default.log"),
        file_log(
            logs / "errors.log",
            _text(codes),
            filter={
                "and_filter": {
                    "filters": [
                        {"status_code_filter": {"comparison": _ge(400)}},
                        {"not_health_check_filter": {}},
                    ]
                }
            },
        ),
        file_log(
            logs / "flags.log",
            _text(codes),
            filter={
                "or_filter": {
                    "filters": [
                        {"response_flag_filter": {"flags": ["NR", "UF"]}},
                        {"duration_filter": {"comparison": _ge(60_000)}},
                    ]
                }
            },
        ),
    ]
    routes = [
        route({"prefix": "/live"}, cluster="live", name="live_route"),
        route({"prefix": "/rw/"}, cluster="live", prefix_rewrite="/x/"),
        route({"prefix": "/empty"}, cluster="empty"),
        route({"prefix": "/refused"}, cluster="refused"),
    ]
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([virtual_host("all", ["*"], routes)]),
                access_log=access_log,
            )
        ],
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("empty", []),
            static_cluster("refused", [("127.0.0.1", dead)]),
        ],
    )
    running = _start(request.param, config, tmp_path_factory)
    running.logs = logs  # type: ignore[attr-defined]
    yield running
    running.stop()


def _start(kind: str, config: dict[str, Any], tmp_path_factory: Any) -> Proxy:
    """Envoy flushes log files every 10 s by default: every 100 ms here."""
    flush = ("--file-flush-interval-msec", "100") if kind == "envoy" else ()
    return start_proxy(kind, config, tmp_path_factory, extra_args=flush)


@pytest.fixture(scope="module")
def logged(proxy: Proxy) -> Path:
    """Sends the scripted requests once per proxy; returns the log directory."""

    async def send() -> None:
        agent = [("user-agent", "meshtest/1.0")]
        with trio.fail_after(10):
            assert (await get(proxy.port, "/live", headers=agent)).status == 200
            assert (await get(proxy.port, "/nowhere", headers=agent)).status == 404
            assert (await get(proxy.port, "/empty", headers=agent)).status == 503
            assert (await get(proxy.port, "/refused", headers=agent)).status == 503
            post = await get(proxy.port, "/live", method="POST", body=b"hello-body", headers=agent)
            assert post.status == 200
            assert (await get(proxy.port, "/rw/abc", headers=agent)).status == 200

    trio.run(send)
    logs: Path = proxy.logs  # type: ignore[attr-defined]
    return logs


def _shape(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and bool(pattern.match(value))


def test_json_fields(proxy: Proxy, logged: Path, upstream: Upstream, dead: int) -> None:
    entries = [json.loads(line) for line in log_lines(logged / "json.log", 6)]
    assert [sorted(e) for e in entries] == [sorted(JSON_FIELDS)] * 6
    live = f"127.0.0.1:{upstream.port}"
    common = {
        "method": "GET",
        "authority": "example.com",
        "agent": "mesht",
        "protocol": "HTTP/1.1",
        "received": 0,
        "remote_ip": "127.0.0.1",
        "local": f"127.0.0.1:{proxy.port}",
        "sni": None,
        "san": None,
    }
    expected = [
        {
            "path": "/live",
            "code": 200,
            "flags": "-",
            "details": "via_upstream",
            "sent": 4,
            "upstream_host": live,
            "upstream_cluster": "live",
            "failure_reason": None,
            "route": "live_route",
            "content_type": "text/plain",
            "text": "code=200 route=live_route",
            "nested": {"code": 200, "cluster": "live"},
        },
        {
            "path": "/nowhere",
            "code": 404,
            "flags": "NR",
            "details": "route_not_found",
            "sent": 0,
            "response_duration": None,
            "upstream_host": None,
            "upstream_cluster": None,
            "upstream_local": None,
            "failure_reason": None,
            "route": None,
            "content_type": None,
            "text": "code=404 route=-",
            "nested": {"code": 404, "cluster": None},
        },
        {
            "path": "/empty",
            "code": 503,
            "flags": "UH",
            "details": "no_healthy_upstream",
            "sent": len("no healthy upstream"),
            "response_duration": None,
            "upstream_host": None,
            "upstream_cluster": "empty",
            "upstream_local": None,
            "failure_reason": None,
            "route": None,
            "content_type": "text/plain",
        },
        {
            "path": "/refused",
            "code": 503,
            "flags": "UF",
            "details": UF_DETAILS,
            "sent": len(UF_BODY),
            "response_duration": None,
            "upstream_host": f"127.0.0.1:{dead}",
            "upstream_cluster": "refused",
            "upstream_local": None,
            "failure_reason": "delayed_connect_error:_Connection_refused",
            "route": None,
        },
        {
            "method": "POST",
            "path": "/live",
            "code": 200,
            "received": len(b"hello-body"),
            "sent": 4,
            "upstream_host": live,
            "details": "via_upstream",
        },
        {"path": "/rw/abc", "code": 200, "route": None, "upstream_cluster": "live"},
    ]
    for entry, want in zip(entries, expected, strict=True):
        assert {k: entry[k] for k in {**common, **want}} == {**common, **want}, entry
        assert _shape(entry["start"], START) and entry["start"] == entry["start_ms"], entry
        assert _shape(entry["request_id"], UUID), entry
        assert _shape(entry["remote"], ADDRESS), entry
        for key in ("duration", "request_duration"):
            assert isinstance(entry[key], int) and entry[key] >= 0, entry
        if entry["code"] == 200:
            assert isinstance(entry["response_duration"], int), entry
            assert _shape(entry["upstream_local"], ADDRESS), entry


def test_default_format(logged: Path, upstream: Upstream, dead: int) -> None:
    line = re.compile(
        r'^\[(?P<start>[^\]]+)\] "(?P<request>[^"]*)" (?P<code>\d+) (?P<flags>\S+) '
        r"(?P<received>\d+) (?P<sent>\d+) (?P<duration>\d+) (?P<service_time>\S+) "
        r'"(?P<xff>[^"]*)" "(?P<agent>[^"]*)" "(?P<id>[^"]*)" "(?P<authority>[^"]*)" '
        r'"(?P<upstream>[^"]*)"$'
    )
    parsed = []
    for text in log_lines(logged / "default.log", 6):
        match = line.match(text)
        assert match, text
        parsed.append(match.groupdict())
    live = f"127.0.0.1:{upstream.port}"
    want = [
        ("GET /live HTTP/1.1", "200", "-", "0", "4", live),
        ("GET /nowhere HTTP/1.1", "404", "NR", "0", "0", "-"),
        ("GET /empty HTTP/1.1", "503", "UH", "0", "19", "-"),
        ("GET /refused HTTP/1.1", "503", "UF", "0", "98", f"127.0.0.1:{dead}"),
        ("POST /live HTTP/1.1", "200", "-", "10", "4", live),
        ("GET /rw/abc HTTP/1.1", "200", "-", "0", "4", live),
    ]
    got = [
        (p["request"], p["code"], p["flags"], p["received"], p["sent"], p["upstream"])
        for p in parsed
    ]
    assert got == want
    for p in parsed:
        assert START.match(p["start"]) and UUID.match(p["id"]), p
        assert (p["xff"], p["agent"], p["authority"]) == ("-", "meshtest/1.0", "example.com")
        # x-envoy-upstream-service-time: only on proxied responses.
        assert (p["service_time"] != "-") == (p["code"] == "200" or p["flags"] == "-"), p
        assert p["service_time"] == "-" or p["service_time"].isdigit(), p


def test_filters(logged: Path) -> None:
    assert log_lines(logged / "errors.log", 3) == ["404 NR", "503 UH", "503 UF"]
    assert log_lines(logged / "flags.log", 2) == ["404 NR", "503 UF"]
    # Nothing more arrives: the 200s were filtered out, not late.
    time.sleep(1.2)
    assert len((logged / "errors.log").read_text().splitlines()) == 3
    assert len((logged / "flags.log").read_text().splitlines()) == 2


@pytest.mark.parametrize("kind", proxy_kinds())
def test_sigusr1_reopens_files(kind: str, upstream: Upstream, tmp_path_factory) -> None:
    logs = tmp_path_factory.mktemp(f"rotate-{kind}")
    path = logs / "access.log"
    routes = [route({"prefix": "/"}, cluster="live")]
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([virtual_host("all", ["*"], routes)]),
                access_log=[file_log(path, _text("%REQ(:PATH)%\n"))],
            )
        ],
        [static_cluster("live", [("127.0.0.1", upstream.port)])],
    )
    proxy = _start(kind, config, tmp_path_factory)
    try:

        async def one(target: str) -> None:
            with trio.fail_after(5):
                assert (await get(proxy.port, target)).status == 200

        trio.run(one, "/before")
        assert log_lines(path, 1) == ["/before"]
        rotated = logs / "access.log.1"
        path.rename(rotated)
        proxy.send_signal(signal.SIGUSR1)
        # Envoy reopens asynchronously on its main thread: allow it a moment.
        time.sleep(0.5)
        trio.run(one, "/after")
        assert log_lines(path, 1) == ["/after"]
        assert rotated.read_text() == "/before\n"
    finally:
        proxy.stop()


@pytest.mark.parametrize("kind", proxy_kinds())
def test_stdout_logger_and_rewritten_path(kind: str, upstream: Upstream, tmp_path_factory) -> None:
    """`envoy.access_loggers.stdout` writes to the process's stdout; after a
    `prefix_rewrite`, `:PATH` is the rewritten path and `x-envoy-original-path` the received
    one, as Envoy's log sees the request."""
    stdout_log = {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": STDOUT,
            "log_format": _text(
                "ACCESS %REQ(:PATH)% %REQ(X-ENVOY-ORIGINAL-PATH)% %RESPONSE_CODE%\n"
            ),
        },
    }
    routes = [route({"prefix": "/rw/"}, cluster="live", prefix_rewrite="/x/")]
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([virtual_host("all", ["*"], routes)]),
                access_log=[stdout_log],
            )
        ],
        [static_cluster("live", [("127.0.0.1", upstream.port)])],
    )
    proxy = _start(kind, config, tmp_path_factory)
    try:

        async def one() -> None:
            with trio.fail_after(5):
                assert (await get(proxy.port, "/rw/abc?q=1")).status == 200

        trio.run(one)
        deadline = time.monotonic() + 8
        while "ACCESS" not in proxy.log_tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in proxy.log_tail().splitlines() if line.startswith("ACCESS")]
        assert lines == ["ACCESS /x/abc?q=1 /rw/abc?q=1 200"], proxy.log_tail()
    finally:
        proxy.stop()
