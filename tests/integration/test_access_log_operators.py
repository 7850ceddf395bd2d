"""Differential test of access-log command operators: one bootstrap with Istio's default
proxy log format (without %CONNECTION_TERMINATION_DETAILS%) and formats holding every
operator beyond the first set (text and json_format), run on real Envoy and on meshcore
(plain, edge with a trusted hop, mutual TLS and Zipkin-traced listeners); the same requests
must give the same fields. Times are left out; values that differ by nature
(client ports, connection and request ids, durations) are compared by shape and JSON type;
the listeners' ports are compared by name."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
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
from tests.support.certs import PROXY_ID, Pki, make_pki, tls_socket
from tests.support.client import get
from tests.support.ports import dead_port, free_port
from tests.support.proxy import Proxy, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

ISTIO = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)
# Istio's fields after the start time, split as a shell would split them.
ISTIO_FIELDS = [
    "request",
    "code",
    "flags",
    "details",
    "failure_reason",
    "received",
    "sent",
    "duration",
    "service_time",
    "xff",
    "agent",
    "request_id",
    "authority",
    "upstream_host",
    "cluster_raw",
    "upstream_local",
    "local",
    "remote",
    "sni",
    "route",
]

OPERATORS = [
    "UPSTREAM_CLUSTER",
    "UPSTREAM_CLUSTER_RAW",
    "UPSTREAM_HOST",
    "UPSTREAM_REMOTE_ADDRESS",
    "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "UPSTREAM_REMOTE_PORT",
    "UPSTREAM_LOCAL_ADDRESS",
    "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "UPSTREAM_LOCAL_PORT",
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_REMOTE_PORT",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_LOCAL_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_PORT",
    "RESPONSE_FLAGS_LONG",
    "TRACE_ID",
    "STREAM_ID",
    "HOSTNAME",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "REQUEST_TX_DURATION",
    "RESPONSE_TX_DURATION",
    "CONNECTION_ID",
    "VIRTUAL_CLUSTER_NAME",
    "DOWNSTREAM_TLS_CIPHER",
    "DOWNSTREAM_LOCAL_URI_SAN",
    "DOWNSTREAM_PEER_DNS_SAN",
    "DOWNSTREAM_PEER_ISSUER",
    "DOWNSTREAM_PEER_SERIAL",
    "DOWNSTREAM_PEER_FINGERPRINT_256",
    "DOWNSTREAM_PEER_FINGERPRINT_1",
    "DOWNSTREAM_PEER_CERT_V_START",
    "DOWNSTREAM_PEER_CERT_V_END",
]
WITH_ARGUMENTS = {
    "path_no_query": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "path_no_query_cut": "%REQ_WITHOUT_QUERY(:PATH):3%",
    "env": "%ENVIRONMENT(MESHCORE_LOG_TEST_VALUE):5%",
    "env_unset": "%ENVIRONMENT(MESHCORE_LOG_TEST_UNSET)%",
    "text": "%UPSTREAM_REMOTE_PORT%/%CONNECTION_ID%/%RESPONSE_FLAGS_LONG%",
}
# `%REQ_WITHOUT_QUERY%` is an extension formatter: Envoy requires it listed in `formatters`.
FORMATTERS = [
    {
        "name": "envoy.formatter.req_without_query",
        "typed_config": {
            "@type": "type.googleapis.com/"
            "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"
        },
    }
]
JSON_FIELDS = {**{op: f"%{op}%" for op in OPERATORS}, **WITH_ARGUMENTS}
TEXT = "|".join([f"%{op}%" for op in OPERATORS] + list(WITH_ARGUMENTS.values())) + "\n"

# Values that differ by nature: compared by shape (and JSON type).
# A request id; its version digit is 4, or Envoy's trace status when the request is traced.
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CLIENT = re.compile(r"^127\.0\.0\.1:\d+$")
BY_SHAPE = {
    "CONNECTION_ID",
    "STREAM_ID",
    "TRACE_ID",
    "REQUEST_TX_DURATION",
    "RESPONSE_TX_DURATION",
    "UPSTREAM_LOCAL_ADDRESS",
    "UPSTREAM_LOCAL_PORT",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
    "DOWNSTREAM_DIRECT_REMOTE_PORT",
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_REMOTE_PORT",
    "text",
    "duration",
    "service_time",
    "request_id",
    "upstream_local",
    "remote",
}

XFF = [("x-forwarded-for", "198.51.100.1, 203.0.113.7")]
TRACE = "463ac35c9f6413ad48485a3953bb6124"
B3 = [("x-b3-traceid", TRACE), ("x-b3-spanid", "a2fb4a1d1a96d312"), ("x-b3-sampled", "1")]
AGENT = [("user-agent", "meshtest/1.0")]

# (listener, method, target, headers, body, status)
REQUESTS: list[tuple[str, str, str, list[tuple[str, str]], bytes | None, int]] = [
    ("inner", "GET", "/live?q=1", XFF + AGENT, None, 200),
    ("inner", "GET", "/nowhere", AGENT, None, 404),
    ("inner", "GET", "/empty", AGENT, None, 503),
    ("inner", "GET", "/refused", AGENT, None, 503),
    ("inner", "POST", "/live", [("x-request-id", "fixed-request-id"), *AGENT], b"0123456789", 200),
    ("inner", "GET", "/rw/abc?x=1", [("x-forwarded-for", "not-an-address")], None, 200),
    ("edge", "GET", "/live", XFF, None, 200),
    ("edge", "GET", "/live", [], None, 200),
    # Over mutual TLS (curl with the `web` client certificate): the TLS operators.
    ("mtls", "GET", "/live?tls=1", [], None, 200),
    # Zipkin tracing: a propagated trace, a new one, and one not sampled.
    ("traced", "GET", "/live", B3, None, 200),
    ("traced", "GET", "/live", [], None, 200),
    ("traced", "GET", "/nowhere", [], None, 404),
    ("untraced", "GET", "/live", [], None, 200),
]


LISTENERS = ["inner", "edge", "mtls", "traced", "untraced"]


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def dead() -> int:
    return dead_port()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(tmp_path_factory.mktemp("ops-pki"))


def _curl_mtls(pki: Pki, port: int, target: str) -> int:
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "--http1.1",
            "--cacert",
            str(pki.ca.path),
            "--cert",
            str(pki.web.cert),
            "--key",
            str(pki.web.key),
            "--resolve",
            f"localhost:{port}:127.0.0.1",
            f"https://localhost:{port}{target}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(done.stdout or 0)


def _listener(name: str, logs: Path, **hcm: Any) -> dict[str, Any]:
    routes = [
        route({"prefix": "/live"}, cluster="live", name="live_route"),
        route({"prefix": "/rw/"}, cluster="live", prefix_rewrite="/x/"),
        route({"prefix": "/empty"}, cluster="empty"),
        route({"prefix": "/refused"}, cluster="refused"),
    ]
    access_log = [
        file_log(logs / f"{name}-istio.log", {"text_format_source": {"inline_string": ISTIO}}),
        file_log(logs / f"{name}-ops.json", {"json_format": JSON_FIELDS, "formatters": FORMATTERS}),
        file_log(
            logs / f"{name}-ops.txt",
            {"text_format_source": {"inline_string": TEXT}, "formatters": FORMATTERS},
        ),
    ]
    return http_listener(
        name,
        free_port(),
        route_config([virtual_host("all", ["*"], routes)]),
        stat_prefix=name,
        access_log=access_log,
        **hcm,
    )


def _run(
    kind: str, upstream: Upstream, dead: int, pki: Pki, tmp_path_factory: Any
) -> dict[str, Any]:
    """Starts `kind` with the bootstrap, sends the requests, returns its lines per file and
    the names of its listener ports."""
    logs = tmp_path_factory.mktemp(f"ops-{kind}")
    mtls = _listener("mtls", logs)
    mtls["filter_chains"][0]["transport_socket"] = tls_socket(pki, require_client_certificate=True)
    zipkin = {
        "name": "envoy.tracers.zipkin",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "collector",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
        },
    }
    config = bootstrap(
        [
            _listener("inner", logs),
            _listener("edge", logs, use_remote_address=True, xff_num_trusted_hops=1),
            mtls,
            _listener("traced", logs, tracing={"provider": zipkin}),
            _listener(
                "untraced", logs, tracing={"provider": zipkin, "random_sampling": {"value": 0}}
            ),
        ],
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("empty", []),
            static_cluster("refused", [("127.0.0.1", dead)]),
            # Spans go nowhere: only the log's trace ids matter here.
            static_cluster("collector", [("127.0.0.1", dead)]),
        ],
    )
    config["node"] = {"id": "node-a", "cluster": "svc-a"}
    ports = {
        listener["name"]: listener["address"]["socket_address"]["port_value"]
        for listener in config["static_resources"]["listeners"]
    }
    flush = ("--file-flush-interval-msec", "100") if kind == "envoy" else ()
    proxy: Proxy = start_proxy(kind, config, tmp_path_factory, extra_args=flush)
    try:

        async def send() -> None:
            with trio.fail_after(15):
                for listener, method, target, headers, body, status in REQUESTS:
                    if listener == "mtls":
                        code = await trio.to_thread.run_sync(
                            _curl_mtls, pki, ports[listener], target
                        )
                        assert code == status, (kind, target, code)
                        continue
                    got = await get(
                        ports[listener], target, method=method, headers=headers, body=body
                    )
                    assert got.status == status, (kind, target, got.status)

        trio.run(send)
        lines: dict[str, list[str]] = {}
        for listener in ports:
            count = sum(1 for r in REQUESTS if r[0] == listener)
            for suffix in ("istio.log", "ops.json", "ops.txt"):
                lines[f"{listener}-{suffix}"] = log_lines(logs / f"{listener}-{suffix}", count)
    finally:
        proxy.stop()
    return {"lines": lines, "ports": {str(port): name for name, port in ports.items()}}


@pytest.fixture(scope="module")
def runs(
    upstream: Upstream, dead: int, pki: Pki, tmp_path_factory: Any
) -> Iterator[dict[str, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MESHCORE_LOG_TEST_VALUE", "hello-environment")
        mp.delenv("MESHCORE_LOG_TEST_UNSET", raising=False)
        yield {
            kind: _run(kind, upstream, dead, pki, tmp_path_factory)
            for kind in ("envoy", "meshcore")
        }


def _shape(value: Any) -> Any:
    """What a value that differs by nature must look like on both proxies."""
    if value is None or value == "-":
        return "missing"
    if isinstance(value, int):
        return "number"
    if isinstance(value, str) and value.isdigit():
        return "digits"
    if isinstance(value, str) and (uuid := UUID.match(value)):
        return f"uuid (version digit {uuid.group(1)})"
    if isinstance(value, str) and value != TRACE and re.fullmatch(r"[0-9a-f]{16}", value):
        return "trace id (64 bits)"
    if isinstance(value, str) and CLIENT.match(value):
        return "127.0.0.1:port"
    if isinstance(value, str) and re.fullmatch(r"[0-9.]+:0", value):
        return f"{value} (from x-forwarded-for)"
    if isinstance(value, str) and re.fullmatch(r"[\d-]+/\d+/\S+", value):
        port, _, flags = value.split("/")
        return f"{port}/id/{flags}"
    return value  # anything else (a given request id): compared exactly


def _normal(key: str, value: Any, ports: dict[str, str]) -> Any:
    """`value` with the listener ports named, or its shape when it differs by nature."""
    if isinstance(value, int | str) and str(value) in ports:
        return ports[str(value)]
    if isinstance(value, str):
        for port, name in ports.items():
            value = value.replace(f":{port}", f":{name}")
    # A client address from x-forwarded-for has port 0 on both proxies: compared exactly.
    from_xff = (isinstance(value, str) and value.endswith(":0")) or (
        key == "DOWNSTREAM_REMOTE_PORT" and str(value) == "0"
    )
    if key in BY_SHAPE and not from_xff:
        return _shape(value)
    return value


def _json(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        {k: _normal(k, v, run["ports"]) for k, v in json.loads(line).items()}
        for line in run["lines"][name]
    ]


def _text(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    keys = [*OPERATORS, *WITH_ARGUMENTS]
    out = []
    for line in run["lines"][name]:
        values = line.split("|")
        assert len(values) == len(keys), line
        out.append({k: _normal(k, v, run["ports"]) for k, v in zip(keys, values, strict=True)})
    return out


def _istio(run: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out = []
    for line in run["lines"][name]:
        match = re.match(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] (.*)$", line)
        assert match, line
        values = shlex.split(match.group(1))
        assert len(values) == len(ISTIO_FIELDS), line
        out.append(
            {k: _normal(k, v, run["ports"]) for k, v in zip(ISTIO_FIELDS, values, strict=True)}
        )
    return out


def _same(listener: str, envoy: list[dict[str, Any]], meshcore: list[dict[str, Any]]) -> None:
    sent = [r for r in REQUESTS if r[0] == listener]
    assert len(envoy) == len(meshcore) == len(sent)
    for request, want, got in zip(sent, envoy, meshcore, strict=True):
        differ = {k: (want.get(k), got.get(k)) for k in {*want, *got} if want.get(k) != got.get(k)}
        assert not differ, f"{listener} {request[1]} {request[2]}: (envoy, meshcore) {differ}"


@pytest.mark.parametrize("listener", LISTENERS)
def test_istio_default_format(runs: dict[str, dict[str, Any]], listener: str) -> None:
    name = f"{listener}-istio.log"
    envoy = _istio(runs["envoy"], name)
    _same(listener, envoy, _istio(runs["meshcore"], name))
    if listener == "inner":
        # What the comparison covered: the flags, the raw cluster and the XFF client.
        assert [e["flags"] for e in envoy] == ["-", "NR", "UH", "UF", "-", "-"]
        assert envoy[0]["remote"] == "203.0.113.7:0"
        assert envoy[3]["cluster_raw"] == "refused"


@pytest.mark.parametrize("listener", LISTENERS)
def test_every_operator_in_json(runs: dict[str, dict[str, Any]], listener: str) -> None:
    name = f"{listener}-ops.json"
    envoy = _json(runs["envoy"], name)
    _same(listener, envoy, _json(runs["meshcore"], name))
    if listener == "inner":
        first = envoy[0]
        assert first["DOWNSTREAM_REMOTE_ADDRESS"] == "203.0.113.7:0"
        assert first["DOWNSTREAM_REMOTE_PORT"] == 0
        assert first["DOWNSTREAM_LOCAL_PORT"] == "inner"
        assert first["UPSTREAM_REQUEST_ATTEMPT_COUNT"] == 1
        assert first["path_no_query"] == "/live"
        assert (first["env"], first["env_unset"]) == ("hello", "-")
        assert envoy[4]["STREAM_ID"] == "fixed-request-id"
        assert [e["RESPONSE_FLAGS_LONG"] for e in envoy[1:4]] == [
            "NoRouteFound",
            "NoHealthyUpstream",
            "UpstreamConnectionFailure",
        ]
    elif listener == "edge":
        remote = [e["DOWNSTREAM_REMOTE_ADDRESS"] for e in envoy]
        assert remote == ["203.0.113.7:0", "127.0.0.1:port"]
    elif listener == "mtls":
        (tls,) = envoy
        assert tls["DOWNSTREAM_PEER_DNS_SAN"] == "web.default.svc"
        assert tls["DOWNSTREAM_PEER_ISSUER"] == "CN=ca,O=meshcore test"
        assert tls["DOWNSTREAM_LOCAL_URI_SAN"] == PROXY_ID
        assert re.fullmatch(r"[0-9a-f]{40}", tls["DOWNSTREAM_PEER_FINGERPRINT_1"])
    elif listener == "traced":
        assert [e["TRACE_ID"] for e in envoy][:2] == [TRACE, "trace id (64 bits)"]


@pytest.mark.parametrize("listener", LISTENERS)
def test_every_operator_in_text(runs: dict[str, dict[str, Any]], listener: str) -> None:
    name = f"{listener}-ops.txt"
    _same(listener, _text(runs["envoy"], name), _text(runs["meshcore"], name))
