"""`access_log` on the connection manager into the snapshot: sinks, formats, filters, and a
problem naming the field path for everything meshcore would not log as Envoy does."""

from __future__ import annotations

from typing import Any

from meshcore.config.supported import REQ_WITHOUT_QUERY
from meshcore.config.translate_access_log import format_problem, operators

from .builders import base, hcm, load, problems

FILE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
HCM_PATH = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"


def _with_logs(*logs: dict[str, Any]) -> dict[str, Any]:
    b = base()
    hcm(b)["access_log"] = list(logs)
    return b


def _logs(b: dict[str, Any]) -> Any:
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    return manager.get("access_log")


def _file(path: str = "/tmp/a.log", **extra: Any) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": FILE, "path": path, **extra},
    }


def test_no_access_log_adds_nothing() -> None:
    assert _logs(base()) is None


def test_sinks_and_formats() -> None:
    b = _with_logs(
        _file(),
        _file(
            "/dev/stdout",
            log_format={
                "text_format_source": {"inline_string": "%REQ(:PATH):10% %START_TIME(%s.%3f)%\n"}
            },
        ),
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": STDOUT,
                "log_format": {
                    "json_format": {"z": "%RESPONSE_CODE%", "a": {"nested": "x %PROTOCOL%"}}
                },
            },
        },
        {"name": "envoy.access_loggers.stderr", "typed_config": {"@type": STDERR}},
    )
    assert _logs(b) == [
        {"sink": {"file": "/tmp/a.log"}},
        {
            "sink": {"file": "/dev/stdout"},
            "format": {"text": "%REQ(:PATH):10% %START_TIME(%s.%3f)%\n"},
        },
        {
            "sink": "stdout",
            "format": {
                "json": {
                    "a": {"object": {"nested": {"text": "x %PROTOCOL%"}}},
                    "z": {"text": "%RESPONSE_CODE%"},
                }
            },
        },
        {"sink": "stderr"},
    ]


def test_filters() -> None:
    log = _file()
    log["filter"] = {
        "or_filter": {
            "filters": [
                {
                    "and_filter": {
                        "filters": [
                            {
                                "status_code_filter": {
                                    "comparison": {
                                        "op": "GE",
                                        "value": {"default_value": 500, "runtime_key": "k"},
                                    }
                                }
                            },
                            {"not_health_check_filter": {}},
                        ]
                    }
                },
                {"response_flag_filter": {"flags": ["NR", "UH"]}},
                {
                    "duration_filter": {
                        "comparison": {"value": {"default_value": 100, "runtime_key": "d"}}
                    }
                },
            ]
        }
    }
    assert _logs(_with_logs(log))[0]["filter"] == {
        "or": [
            {"and": [{"status_code": {"op": "ge", "value": 500}}, "not_health_check"]},
            {"response_flag": ["NR", "UH"]},
            {"duration": {"op": "eq", "value": 100}},
        ]
    }


def test_bad_formats_name_their_field() -> None:
    text = _file(log_format={"text_format_source": {"inline_string": "%NOPE% %BYTES_SENT%"}})
    json = _file(log_format={"json_format": {"ok": "%DURATION%", "bad": {"inner": "%REQ%"}}})
    number = _file(log_format={"json_format": {"n": 1}})
    found = problems(_with_logs(text, json, number))
    fmt = f"{HCM_PATH}.access_log[%d].typed_config.log_format"
    assert f"{fmt % 0}.text_format_source: unknown command operator %NOPE%" in found
    assert f"{fmt % 1}.json_format.bad.inner: %REQ%: needs a header name: %REQ(X)%" in found
    assert any(p.startswith(f"{fmt % 2}.json_format.n: only strings") for p in found), found


def test_unsupported_parts_are_problems() -> None:
    runtime = _file()
    runtime["filter"] = {"runtime_filter": {"runtime_key": "x"}}
    omit = _file(
        log_format={"text_format_source": {"inline_string": "x"}, "omit_empty_values": True}
    )
    found = problems(_with_logs(runtime, omit))
    assert any(p.startswith(f"{HCM_PATH}.access_log[0].filter.runtime_filter") for p in found), (
        found
    )
    assert any(
        p.startswith(f"{HCM_PATH}.access_log[1].typed_config.log_format.omit_empty_values")
        for p in found
    ), found


def test_format_checks() -> None:
    assert format_problem("[%START_TIME%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):20%\n") is None
    assert format_problem("%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ %E3S %f %9f)%") is None
    assert format_problem("%START_TIME(%Q)%") == (
        "%START_TIME%: time format '%Q': unsupported conversion %Q"
    )
    assert format_problem("50%") is not None
    assert (
        format_problem("%DURATION:4%")
        == "%DURATION%: a :N length limit applies to REQ, RESP, REQ_WITHOUT_QUERY and "
        "ENVIRONMENT only"
    )
    without_query = "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH):10%"
    assert format_problem(without_query, frozenset({REQ_WITHOUT_QUERY})) is None
    # As in Envoy, the operator needs its formatter extension listed in `formatters`.
    assert format_problem(without_query) == (
        "%REQ_WITHOUT_QUERY% needs the envoy.formatter.req_without_query formatter in formatters"
    )
    assert format_problem("%ENVIRONMENT(HOME):3% %HOSTNAME% %CONNECTION_ID%") is None
    assert format_problem("%ENVIRONMENT%") == (
        "%ENVIRONMENT%: needs a variable name: %ENVIRONMENT(X)%"
    )
    assert format_problem("%DOWNSTREAM_PEER_CERT_V_END(%Y)% %DOWNSTREAM_PEER_CERT_V_START%") is None
    assert format_problem("%DOWNSTREAM_PEER_CERT_V_START(%Q)%") == (
        "%DOWNSTREAM_PEER_CERT_V_START%: time format '%Q': unsupported conversion %Q"
    )
    assert format_problem("%UPSTREAM_CONNECTION_ID%") == (
        "unknown command operator %UPSTREAM_CONNECTION_ID%"
    )
    assert format_problem("%REQ(a?b?c)%") is not None
    assert format_problem("%PROTOCOL(x)%") == "%PROTOCOL%: takes no argument"


def test_connection_operators_are_accepted() -> None:
    for op in ("ACCESS_LOG_TYPE", "CONNECTION_TERMINATION_DETAILS"):
        assert format_problem(f"%{op}%") is None
    assert format_problem("%DOWNSTREAM_TRANSPORT_FAILURE_REASON%") is None
    assert format_problem("%ACCESS_LOG_TYPE(x)%") == "%ACCESS_LOG_TYPE%: takes no argument"


def test_access_log_options() -> None:
    b = _with_logs(_file())
    hcm(b)["access_log_options"] = {
        "flush_access_log_on_new_request": True,
        "flush_log_on_tunnel_successfully_established": True,
    }
    manager = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    assert manager["flush_access_log_on_new_request"] is True
    assert manager["flush_log_on_tunnel_successfully_established"] is True
    assert "flush_access_log_on_new_request" not in _hcm_snapshot(_with_logs(_file()))
    periodic = _with_logs(_file())
    hcm(periodic)["access_log_options"] = {"access_log_flush_interval": "1.5s"}
    assert _hcm_snapshot(periodic)["access_log_flush_interval_ms"] == 1500
    assert "access_log_flush_interval_ms" not in _hcm_snapshot(_with_logs(_file()))
    zero = _with_logs(_file())
    hcm(zero)["access_log_options"] = {"access_log_flush_interval": "0s"}
    assert problems(zero) == [
        f"{HCM_PATH}.access_log_options.access_log_flush_interval: 0s must be at least 0.001s"
    ]


def _hcm_snapshot(b: dict[str, Any]) -> dict[str, Any]:
    manager: dict[str, Any] = load(b).snapshot["listeners"][0]["filter_chains"][0]["filter"][
        "http_connection_manager"
    ]
    return manager


def test_the_check_takes_the_engines_operators() -> None:
    """One list: the config check accepts exactly the operators the engine exports (each
    alone, none with an argument), and refuses one the engine lacks."""
    from meshcore._fastpath import access_log_operators

    engine = set(access_log_operators())
    assert {"RESPONSE_CODE", "HOSTNAME", "DOWNSTREAM_PEER_FINGERPRINT_1"} <= engine
    assert operators() == engine
    for name in engine:
        assert format_problem(f"%{name}%") is None, name
        assert format_problem(f"%{name}(x)%") == f"%{name}%: takes no argument", name
    assert "UPSTREAM_CONNECTION_ID" not in engine
    assert format_problem("%UPSTREAM_CONNECTION_ID%") == (
        "unknown command operator %UPSTREAM_CONNECTION_ID%"
    )
