"""JWT authentication (`envoy.filters.http.jwt_authn`) over real sockets, on Envoy and
meshcore with the same bootstrap and tokens: good RS256 / ES256 / EdDSA tokens pass (the
token header removed, the payload and a claim forwarded); missing, expired, forged, foreign
and wrong-audience tokens get Envoy's status, body and `www-authenticate`; a remote JWKS
served through a cluster is fetched, and a key rotation is picked up after
`cache_duration`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio

from tests.support.bootstrap import (
    Json,
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.client import Response, get
from tests.support.filters import http_filters
from tests.support.jwt_tokens import Key, jwks, make_key, tamper, token
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.upstream import Upstream, UpstreamServer

JWT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
PER_ROUTE_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
JWT_NAME = "envoy.filters.http.jwt_authn"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
LOG_FORMAT = "%REQ(X-CASE)% %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\n"
ISSUER = "https://issuer.example"
REMOTE_ISSUER = "https://remote.example"

RSA = make_key("RS256", "rsa-1")
EC = make_key("ES256", "ec-1")
ED = make_key("EdDSA", "ed-1")
STRANGER = make_key("RS256", "rsa-1")  # same kid, a key nobody published
ROTATED_OUT = make_key("ES256", "remote-1")
ROTATED_IN = make_key("ES256", "remote-2")
PAST = int(time.time()) - 600


class JwksServer:
    """A plain HTTP server answering `GET /jwks` with the current key set (a thread)."""

    def __init__(self, body: str) -> None:
        self.body = body.encode()
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner.hits += 1
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("live")


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(jwks(ROTATED_OUT))
    yield server
    server.close()


def jwt_config(jwks_port: int) -> Json:
    return {
        "@type": JWT_TYPE,
        "providers": {
            "local": {
                "issuer": ISSUER,
                "audiences": ["api"],
                "local_jwks": {"inline_string": jwks(RSA, EC, ED)},
                "forward_payload_header": "x-jwt-payload",
                "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
                "jwt_cache_config": {"jwt_cache_size": 10},
            },
            "remote": {
                "issuer": REMOTE_ISSUER,
                "remote_jwks": {
                    "http_uri": {
                        "uri": f"http://127.0.0.1:{jwks_port}/jwks",
                        "cluster": "jwks",
                        "timeout": "1s",
                    },
                    "cache_duration": "1s",
                },
                "from_headers": [{"name": "x-remote-token"}],
                "forward": True,
            },
        },
        "rules": [
            {"match": {"prefix": "/open"}},
            {"match": {"prefix": "/remote"}, "requires": {"provider_name": "remote"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "local"}},
        ],
    }


@pytest.fixture(scope="module")
def log_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jwt-log") / "access.log"


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, upstream, jwks_server, log_path, tmp_path_factory) -> Iterator[Proxy]:
    log_path.unlink(missing_ok=True)
    access_log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": FILE_LOG,
            "path": str(log_path),
            "log_format": {"text_format_source": {"inline_string": LOG_FORMAT}},
        },
    }
    routes = [
        route({"prefix": "/unchecked"}, cluster="live")
        | {"typed_per_filter_config": {JWT_NAME: {"@type": PER_ROUTE_TYPE, "disabled": True}}},
        route({"prefix": "/"}, cluster="live"),
    ]
    config = bootstrap(
        [
            http_listener(
                "main",
                free_port(),
                route_config([virtual_host("all", ["*"], routes)]),
                http_filters=http_filters((JWT_NAME, jwt_config(jwks_server.port))),
                access_log=[access_log],
            )
        ],
        [
            static_cluster("live", [("127.0.0.1", upstream.port)]),
            static_cluster("jwks", [("127.0.0.1", jwks_server.port)]),
        ],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


def bearer(t: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {t}")]


def assert_denied(r: Response, status: int, body: str, path: str, missing: bool = False) -> None:
    assert (r.status, r.body.decode()) == (status, body)
    realm = f'Bearer realm="http://example.com{path}"'
    assert r.header("www-authenticate") == (realm if missing else f'{realm}, error="invalid_token"')
    assert r.upstream is None


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=lambda k: k.alg)
async def test_good_tokens_pass_without_the_token_header(proxy, upstream, key: Key) -> None:
    t = token(key, iss=ISSUER, aud="api", sub="alice")
    with trio.fail_after(5):
        r = await get(proxy.port, "/data?x=1", headers=bearer(t))
    assert (r.status, r.upstream) == (200, "live")
    (seen,) = upstream.requests
    assert seen.header("authorization") is None
    assert seen.header_values("x-jwt-payload") == [t.split(".")[1]]
    assert seen.header("x-jwt-sub") == "alice"


async def test_missing_token_is_401_without_error(proxy) -> None:
    with trio.fail_after(5):
        r = await get(proxy.port, "/data?q=1")
        assert_denied(r, 401, "Jwt is missing", "/data?q=1", missing=True)
        # Another scheme is not a bearer token.
        r = await get(proxy.port, "/data", headers=[("authorization", "Basic dTpw")])
        assert_denied(r, 401, "Jwt is missing", "/data", missing=True)


@pytest.mark.parametrize(
    ("make", "status", "body"),
    [
        (
            lambda: token(RSA, iss=ISSUER, aud="api", exp=int(time.time()) - 600),
            401,
            "Jwt is expired",
        ),
        (lambda: tamper(token(EC, iss=ISSUER, aud="api")), 401, "Jwt verification fails"),
        (lambda: token(STRANGER, iss=ISSUER, aud="api"), 401, "Jwt verification fails"),
        (
            lambda: token(ED, iss="https://evil.example", aud="api"),
            401,
            "Jwt issuer is not configured",
        ),
        (lambda: token(RSA, iss=ISSUER, aud="other"), 403, "Audiences in Jwt are not allowed"),
        (
            lambda: token(make_key("EdDSA", "nope"), iss=ISSUER, aud="api"),
            401,
            "Jwks doesn't have key to match kid or alg from Jwt",
        ),
        (
            lambda: "not-a-jwt",
            401,
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
    ],
    ids=["expired", "tampered", "unknown-key", "issuer", "audience", "kid", "garbage"],
)
async def test_bad_tokens_get_envoys_reply(proxy, upstream, make, status, body) -> None:
    with trio.fail_after(5):
        r = await get(proxy.port, "/data", headers=bearer(make()))
    assert_denied(r, status, body, "/data")
    assert upstream.requests == []


async def test_unprotected_rule_and_disabled_route(proxy, upstream) -> None:
    with trio.fail_after(5):
        assert (await get(proxy.port, "/open/x")).status == 200
        r = await get(proxy.port, "/unchecked", headers=[("authorization", "Bearer junk")])
    assert r.status == 200
    # Not checked, so not removed either.
    assert upstream.requests[-1].header("authorization") == "Bearer junk"


async def test_remote_jwks_fetched_and_rotation_picked_up(proxy, upstream, jwks_server) -> None:
    old = token(ROTATED_OUT, iss=REMOTE_ISSUER)
    new = token(ROTATED_IN, iss=REMOTE_ISSUER)
    headers = [("x-remote-token", old)]
    with trio.fail_after(10):
        r = await get(proxy.port, "/remote", headers=headers)
        while r.status != 200:  # meshcore fetches in the background right after start
            await trio.sleep(0.1)
            r = await get(proxy.port, "/remote", headers=headers)
        # forward: true keeps the token header.
        assert upstream.requests[-1].header("x-remote-token") == old
        r = await get(proxy.port, "/remote", headers=[("x-remote-token", new)])
        assert_denied(r, 401, "Jwks doesn't have key to match kid or alg from Jwt", "/remote")
        jwks_server.body = jwks(ROTATED_IN).encode()
        # Picked up once the 1 s cache_duration has passed.
        while (await get(proxy.port, "/remote", headers=[("x-remote-token", new)])).status != 200:
            await trio.sleep(0.2)
        r = await get(proxy.port, "/remote", headers=headers)
        assert_denied(r, 401, "Jwks doesn't have key to match kid or alg from Jwt", "/remote")
    jwks_server.body = jwks(ROTATED_OUT).encode()
    assert proxy.counter("http.ingress.jwt_authn.jwks_fetch_success") >= 2


async def test_allowed_and_denied_stats(proxy) -> None:
    before = (
        proxy.counter("http.ingress.jwt_authn.allowed"),
        proxy.counter("http.ingress.jwt_authn.denied"),
    )
    with trio.fail_after(5):
        await get(proxy.port, "/data", headers=bearer(token(RSA, iss=ISSUER, aud="api")))
        await get(proxy.port, "/data")
        await get(proxy.port, "/data", headers=bearer("x.y.z"))
        await get(proxy.port, "/open")
    after = (
        proxy.counter("http.ingress.jwt_authn.allowed"),
        proxy.counter("http.ingress.jwt_authn.denied"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2, 2)


async def test_response_code_details(proxy, log_path) -> None:
    cases = {
        "missing": [],
        "expired": bearer(token(RSA, iss=ISSUER, aud="api", exp=PAST)),
        "audience": bearer(token(RSA, iss=ISSUER, aud="other")),
        "good": bearer(token(ED, iss=ISSUER, aud="api")),
    }
    with trio.fail_after(10):
        for case, headers in cases.items():
            await get(proxy.port, "/data", headers=[("x-case", case), *headers])
        # Envoy writes its access log about once a second.
        while len(lines := _logged(log_path, cases)) < len(cases):
            await trio.sleep(0.1)
    assert lines == {
        "missing": "401 jwt_authn_access_denied{Jwt_is_missing}",
        "expired": "401 jwt_authn_access_denied{Jwt_is_expired}",
        "audience": "403 jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}",
        "good": "200 via_upstream",
    }


def _logged(path: Path, cases: dict[str, object]) -> dict[str, str]:
    text = path.read_text() if path.exists() else ""
    found = {}
    for line in text.splitlines():
        case, _, rest = line.partition(" ")
        if case in cases:
            found[case] = rest
    return found


async def test_token_cache_hits(proxy, upstream) -> None:
    def counts() -> tuple[int, int]:
        return (
            proxy.counter("http.ingress.jwt_authn.jwt_cache_hit"),
            proxy.counter("http.ingress.jwt_authn.jwt_cache_miss"),
        )

    t = token(EC, iss=ISSUER, aud="api", sub="carol")
    before = counts()
    with trio.fail_after(5):
        for _ in range(3):
            assert (await get(proxy.port, "/data", headers=bearer(t))).status == 200
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    # A hit still forwards the payload and the claim.
    assert upstream.requests[-1].header("x-jwt-sub") == "carol"
    assert upstream.requests[-1].header("x-jwt-payload") == t.split(".")[1]
