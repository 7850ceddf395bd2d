"""The request line and option parsing of `meshcore explain` and the admin endpoint, and the
bound-port substitution for the running config (no engine needed)."""

from __future__ import annotations

import pytest
from meshcore.admin.explain_view import BadExplainRequest, options, parse_fields
from meshcore.explain.request_line import ExplainOptions, RequestError, request_json
from meshcore.explain.run import with_bound_ports


def test_absolute_url_gives_authority_path_and_query():
    req = request_json(ExplainOptions("GET http://Api.Example.com:8080/a/b?x=1&y", ["X-A: 1 "]))
    assert (req["method"], req["authority"], req["path"]) == (
        "GET",
        "Api.Example.com:8080",
        "/a/b?x=1&y",
    )
    assert req["headers"] == [("X-A", "1")]
    assert req["tls"] is False and req["sni"] is None
    assert request_json(ExplainOptions("GET http://a"))["path"] == "/"


def test_https_sends_the_host_as_sni_but_not_an_ip():
    req = request_json(ExplainOptions("GET https://Secure.example.com/"))
    assert req["tls"] is True and req["sni"] == "secure.example.com"
    req = request_json(ExplainOptions("GET https://10.0.0.1/"))
    assert req["tls"] is True and req["sni"] is None
    req = request_json(ExplainOptions("GET https://a.com/", sni="b.com"))
    assert req["sni"] == "b.com"


def test_host_header_overrides_the_url_and_serves_origin_form():
    req = request_json(ExplainOptions("GET http://a.com/x", ["host: b.com"]))
    assert req["authority"] == "b.com" and req["headers"] == []
    req = request_json(ExplainOptions("POST /x?y", ["Host: c.com"]))
    assert (req["method"], req["authority"], req["path"]) == ("POST", "c.com", "/x?y")


@pytest.mark.parametrize(
    ("line", "headers", "message"),
    [
        ("GET", [], "expected 'METHOD URL'"),
        ("GET http://a/ extra", [], "expected 'METHOD URL'"),
        ("G(T http://a/", [], "is not an HTTP method"),
        ("GET a.com/x", [], "got scheme '(none)'"),
        ("GET http:///x", [], "the URL has no host"),
        ("GET http://a/#f", [], "fragment"),
        ("GET http://a:x/", [], "port is not a number"),
        ("GET /x", [], "needs -H 'host: NAME'"),
        ("GET http://a/", ["bad name: 1"], "is not a header name"),
        ("GET http://a/", ["nocolon"], "expected 'name: value'"),
    ],
)
def test_malformed_requests_name_the_problem(line, headers, message):
    with pytest.raises(RequestError, match=".*") as err:
        request_json(ExplainOptions(line, headers))
    assert message in str(err.value)


def test_bound_ports_replace_configured_ones():
    snap = {"listeners": [{"name": "a", "port": 0}, {"name": "b", "port": 80}], "clusters": []}
    out = with_bound_ports(snap, {"a": 40000})
    assert [li["port"] for li in out["listeners"]] == [40000, 80]
    assert snap["listeners"][0]["port"] == 0


def test_admin_fields_from_query_and_json():
    opts = options(
        parse_fields(
            "GET",
            {
                "request": "GET http://a/",
                "header": "x: 1\ny: 2",
                "alpn": "h2, http/1.1",
                "tls": "1",
                "port": "80",
            },
            b"",
        )
    )
    assert opts.headers == ["x: 1", "y: 2"] and opts.alpn == ["h2", "http/1.1"]
    assert opts.tls is True and opts.port == 80
    fields = parse_fields(
        "POST", {}, b'{"request": "GET http://a/", "headers": ["x: 1"], "random": 5}'
    )
    opts = options(fields)
    assert opts.headers == ["x: 1"] and opts.random == 5
    for body, message in (
        (b"[", "the body is not JSON"),
        (b'{"request": "GET http://a/", "port": true}', "port: expected an integer"),
        (b'{"request": 1}', "request: expected a string"),
        (b'{"request": "GET http://a/", "alpn": [1]}', "alpn: expected a string or a list"),
    ):
        with pytest.raises(BadExplainRequest) as err:
            options(parse_fields("POST", {}, body))
        assert message in str(err.value)
