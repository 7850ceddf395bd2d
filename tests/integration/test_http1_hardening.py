"""The hardened HTTP/1.1 edge, as a differential table over real Envoy and meshcore: every
request that could be read two ways is answered by the proxy itself (400/426/431/501) and the
connection closes, and the upstream never sees it; every malformed upstream response is a 502
(`upstream_reset_before_response_started{protocol_error}`, UPE) and is never passed through.

Where Envoy 1.40 is more lenient than the hardened edge (it folds obs-fold lines, takes bare LF
and bare CR, forwards a chunked head before finding its body malformed...), the case states
Envoy's answer explicitly next to meshcore's stricter one; docs/http1-hardening.md lists
each difference. The Envoy `%RESPONSE_CODE_DETAILS%` of each case (read from its access log)
is in the case's comment."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import trio

from tests.support.bootstrap import (
    bootstrap,
    http_listener,
    route,
    route_config,
    static_cluster,
    virtual_host,
)
from tests.support.ports import free_port
from tests.support.proxy import Proxy, proxy_kinds, start_proxy
from tests.support.raw_upstream import RawUpstream, start_raw_upstream
from tests.support.upstream import Upstream, UpstreamServer


@dataclass(frozen=True)
class Expect:
    """What one proxy does with a case."""

    status: int
    # What the victim upstream saw: "none", "incomplete" (at most a head, reset before the
    # body ended: never a complete request) or "request" (a complete request).
    upstream: str = "none"
    # Counted in `downstream_cx_protocol_error` (Envoy's codec errors).
    codec_error: bool = True

    @property
    def closes(self) -> bool:
        return self.status >= 400


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    meshcore: Expect
    envoy: Expect | None = None  # None: as meshcore

    def expect(self, kind: str) -> Expect:
        return self.envoy if kind == "envoy" and self.envoy is not None else self.meshcore


BAD = Expect(400)
TOO_LARGE = Expect(431)
NOT_IMPLEMENTED = Expect(501)
UPGRADE = Expect(426)
# Envoy proxies it (it is not ambiguous to Envoy): 200 from the upstream.
ENVOY_PROXIES = Expect(200, upstream="request", codec_error=False)
# Envoy forwards the head, then finds the chunked body malformed: 400 to the client, the
# upstream's request reset before its end. Whether the head got out first depends on whether
# an upstream connection was ready when the head was parsed (the cases run concurrently), so
# the upstream may also see nothing.
ENVOY_RESETS_UPSTREAM = Expect(400, upstream="incomplete")


def req(n: int, line: str, *headers: bytes, body: bytes = b"", host: bool = True) -> bytes:
    """A request whose target is `/c/<n>` (`{p}` in `line`), so the upstream's records can be
    matched to the case."""
    head = line.replace("{p}", f"/c/{n}").encode("latin-1") + b"\r\n"
    if host:
        head += b"Host: h\r\n"
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def post(n: int, *headers: bytes, body: bytes = b"") -> bytes:
    return req(n, "POST {p} HTTP/1.1", *headers, body=body)


def get(n: int, *headers: bytes) -> bytes:
    return req(n, "GET {p} HTTP/1.1", *headers)


def chunked(n: int, body: bytes) -> bytes:
    return post(n, b"Transfer-Encoding: chunked", body=body)


TE = b"Transfer-Encoding: chunked"


def request_cases() -> list[Case]:
    rows: list[tuple[str, Callable[[int], bytes], Expect, Expect | None]] = [
        # -- framing: Content-Length and Transfer-Encoding --------------------------------
        # http1.content_length_and_chunked_not_allowed
        ("cl-and-te", lambda n: post(n, b"Content-Length: 5", TE, body=b"0\r\n\r\n"), BAD, None),
        ("te-and-cl", lambda n: post(n, TE, b"Content-Length: 5", body=b"0\r\n\r\n"), BAD, None),
        (
            "cl-te-smuggle",
            lambda n: post(
                n,
                b"Content-Length: 4",
                TE,
                body=b"5c\r\nGPOST /smuggled HTTP/1.1\r\nHost: h\r\n\r\n0\r\n\r\n",
            ),
            BAD,
            None,
        ),
        # http1.codec_error
        ("cl-twice-same", lambda n: post(n, b"Content-Length: 1", b"Content-Length: 1"), BAD, None),
        ("cl-twice-diff", lambda n: post(n, b"Content-Length: 1", b"Content-Length: 2"), BAD, None),
        ("cl-list-same", lambda n: post(n, b"Content-Length: 1,1", body=b"a"), BAD, None),
        ("cl-list-diff", lambda n: post(n, b"Content-Length: 1,2", body=b"ab"), BAD, None),
        ("cl-plus", lambda n: post(n, b"Content-Length: +1", body=b"a"), BAD, None),
        ("cl-minus", lambda n: post(n, b"Content-Length: -1", body=b"a"), BAD, None),
        ("cl-empty", lambda n: post(n, b"Content-Length: "), BAD, None),
        ("cl-overflow", lambda n: post(n, b"Content-Length: 18446744073709551616"), BAD, None),
        ("cl-hex", lambda n: post(n, b"Content-Length: 0x1", body=b"a"), BAD, None),
        ("cl-space-inside", lambda n: post(n, b"Content-Length: 1 1", body=b"a"), BAD, None),
        # http1.invalid_transfer_encoding (501, as Envoy)
        ("te-gzip", lambda n: post(n, b"Transfer-Encoding: gzip"), NOT_IMPLEMENTED, None),
        ("te-identity", lambda n: post(n, b"Transfer-Encoding: identity"), NOT_IMPLEMENTED, None),
        (
            "te-chunked-not-last",
            lambda n: post(n, b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"),
            NOT_IMPLEMENTED,
            None,
        ),
        (
            "te-gzip-chunked",
            lambda n: post(n, b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
            NOT_IMPLEMENTED,
            None,
        ),
        (
            "te-chunked-twice",
            lambda n: post(n, b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"),
            NOT_IMPLEMENTED,
            None,
        ),
        ("te-two-lines", lambda n: post(n, TE, TE, body=b"0\r\n\r\n"), NOT_IMPLEMENTED, None),
        ("te-empty", lambda n: post(n, b"Transfer-Encoding: "), NOT_IMPLEMENTED, None),
        (
            "te-chunkedx",
            lambda n: post(n, b"Transfer-Encoding: chunkedx", body=b"0\r\n\r\n"),
            NOT_IMPLEMENTED,
            None,
        ),
        # low_version: the version is checked first.
        ("te-http10", lambda n: req(n, "POST {p} HTTP/1.0", TE, body=b"0\r\n\r\n"), UPGRADE, None),
        # -- header lines ------------------------------------------------------------------
        # Envoy folds obs-fold into the value and proxies it.
        ("obs-fold", lambda n: get(n, b"X-A: a", b" b"), BAD, ENVOY_PROXIES),
        ("obs-fold-tab", lambda n: get(n, b"X-A: a", b"\tb"), BAD, ENVOY_PROXIES),
        # http1.codec_error
        ("te-space-before-colon", lambda n: post(n, b"Transfer-Encoding : chunked"), BAD, None),
        ("space-before-colon", lambda n: get(n, b"X-A : b"), BAD, None),
        ("tab-before-colon", lambda n: get(n, b"X-A\t: b"), BAD, None),
        ("space-in-name", lambda n: get(n, b"X A: b"), BAD, None),
        ("empty-name", lambda n: get(n, b": b"), BAD, None),
        ("no-colon", lambda n: get(n, b"NoColon"), BAD, None),
        ("name-paren", lambda n: get(n, b"X(a): b"), BAD, None),
        ("name-quote", lambda n: get(n, b'X"a: b'), BAD, None),
        ("name-slash", lambda n: get(n, b"X/a: b"), BAD, None),
        ("name-non-ascii", lambda n: get(n, b"X\xc3\xa9: b"), BAD, None),
        (
            "first-header-indented",
            lambda n: req(n, "GET {p} HTTP/1.1", b" Host: h", host=False),
            BAD,
            None,
        ),
        # http1.invalid_characters
        ("name-nul", lambda n: get(n, b"X\x00a: b"), BAD, None),
        ("value-nul", lambda n: get(n, b"X-A: a\x00b"), BAD, None),
        ("value-ctl", lambda n: get(n, b"X-A: a\x01b"), BAD, None),
        ("value-vt", lambda n: get(n, b"X-A: a\x0bb"), BAD, None),
        ("value-esc", lambda n: get(n, b"X-A: a\x1bb"), BAD, None),
        ("value-del", lambda n: get(n, b"X-A: a\x7fb"), BAD, None),
        ("te-value-vt", lambda n: post(n, b"Transfer-Encoding: \x0bchunked"), BAD, None),
        # Envoy keeps a bare CR inside a value and proxies it.
        ("value-bare-cr", lambda n: get(n, b"X-A: a\rb"), BAD, ENVOY_PROXIES),
        # -- line endings: Envoy takes a bare LF as a line end ------------------------------
        (
            "bare-lf-everywhere",
            lambda n: f"GET /c/{n} HTTP/1.1\nHost: h\n\n".encode(),
            BAD,
            ENVOY_PROXIES,
        ),
        (
            "bare-lf-one-header",
            lambda n: f"GET /c/{n} HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n".encode(),
            BAD,
            ENVOY_PROXIES,
        ),
        (
            "bare-lf-request-line",
            lambda n: f"GET /c/{n} HTTP/1.1\nHost: h\r\n\r\n".encode(),
            BAD,
            ENVOY_PROXIES,
        ),
        (
            "bare-lf-blank-line",
            lambda n: f"GET /c/{n} HTTP/1.1\r\nHost: h\r\n\n".encode(),
            BAD,
            ENVOY_PROXIES,
        ),
        # -- request line (http1.codec_error unless noted) ----------------------------------
        ("method-lowercase", lambda n: req(n, "get {p} HTTP/1.1"), BAD, None),
        ("method-unknown", lambda n: req(n, "FOO {p} HTTP/1.1"), BAD, None),
        ("method-m-search", lambda n: req(n, "M-SEARCH {p} HTTP/1.1"), BAD, None),
        ("method-bad-token", lambda n: req(n, "G(T {p} HTTP/1.1"), BAD, None),
        ("method-empty", lambda n: req(n, " {p} HTTP/1.1"), BAD, None),
        ("leading-space", lambda n: req(n, " GET {p} HTTP/1.1"), BAD, None),
        # Envoy takes runs of spaces and tabs as one separator.
        ("double-space", lambda n: req(n, "GET  {p} HTTP/1.1"), BAD, ENVOY_PROXIES),
        ("tab-separators", lambda n: req(n, "GET\t{p}\tHTTP/1.1"), BAD, ENVOY_PROXIES),
        ("trailing-space", lambda n: req(n, "GET {p} HTTP/1.1 "), BAD, ENVOY_PROXIES),
        ("extra-token", lambda n: req(n, "GET {p} HTTP/1.1 x"), BAD, None),
        ("version-lowercase", lambda n: req(n, "GET {p} http/1.1"), BAD, None),
        ("version-1.10", lambda n: req(n, "GET {p} HTTP/1.10"), BAD, None),
        ("version-no-dot", lambda n: req(n, "GET {p} HTTP/11"), BAD, None),
        # low_version
        ("version-missing", lambda n: req(n, "GET {p}"), UPGRADE, None),
        ("version-2.0", lambda n: req(n, "GET {p} HTTP/2.0"), UPGRADE, None),
        # http1.invalid_characters / codec_error
        ("target-control-char", lambda n: req(n, "GET {p}\x01 HTTP/1.1"), BAD, None),
        ("target-non-ascii", lambda n: req(n, "GET {p}\xe9 HTTP/1.1"), BAD, None),
        ("target-relative", lambda n: req(n, "GET c HTTP/1.1"), BAD, None),
        # http1.invalid_url, http1.invalid_scheme
        ("target-asterisk-get", lambda n: req(n, "GET * HTTP/1.1"), BAD, None),
        ("target-no-authority", lambda n: req(n, "GET http://{p} HTTP/1.1"), BAD, None),
        ("target-ftp", lambda n: req(n, "GET ftp://h{p} HTTP/1.1"), BAD, None),
        # path_normalization_failed: after the codec, empty body, not a codec error.
        (
            "target-fragment",
            lambda n: req(n, "GET {p}#f HTTP/1.1"),
            Expect(400, codec_error=False),
            None,
        ),
        # -- host ---------------------------------------------------------------------------
        # missing_host_header: after the codec, not a codec error.
        (
            "host-missing",
            lambda n: req(n, "GET {p} HTTP/1.1", host=False),
            Expect(400, codec_error=False),
            None,
        ),
        # http.invalid_authority
        ("host-space", lambda n: req(n, "GET {p} HTTP/1.1", b"Host: a b", host=False), BAD, None),
        ("host-slash", lambda n: req(n, "GET {p} HTTP/1.1", b"Host: a/b", host=False), BAD, None),
        # Envoy joins two Host lines and proxies the request.
        (
            "host-twice",
            lambda n: req(n, "GET {p} HTTP/1.1", b"Host: a", b"Host: b", host=False),
            BAD,
            ENVOY_PROXIES,
        ),
        # -- chunked bodies (sent with the head) --------------------------------------------
        # meshcore checks the chunk bytes that arrived with the head before it sends
        # anything upstream; Envoy forwards the head first, then resets the upstream request.
        (
            "chunk-size-overflow",
            lambda n: chunked(n, b"10000000000000000\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-0x",
            lambda n: chunked(n, b"0x1\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-plus",
            lambda n: chunked(n, b"+1\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-minus",
            lambda n: chunked(n, b"-1\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-leading-space",
            lambda n: chunked(n, b" 1\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-empty",
            lambda n: chunked(n, b"\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-non-hex",
            lambda n: chunked(n, b"zz\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-size-bare-lf",
            lambda n: chunked(n, b"1\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-data-cr-only",
            lambda n: chunked(n, b"1\r\na\r0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-last-bare-lf",
            lambda n: chunked(n, b"1\r\na\r\n0\n\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-ext-bare-lf",
            lambda n: chunked(n, b"1;a\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-ext-bare-cr",
            lambda n: chunked(n, b"1;a\rb\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        (
            "chunk-trailer-bad-name",
            lambda n: chunked(n, b"0\r\nX A: b\r\n\r\n"),
            BAD,
            ENVOY_RESETS_UPSTREAM,
        ),
        # Envoy reads a size with a space inside as its first digits, chunk data not ended by
        # CRLF, and extensions of any bytes; it re-frames the body, meshcore forwards it as
        # it is, so it refuses what an upstream could read differently.
        (
            "chunk-size-space-inside",
            lambda n: chunked(n, b"1 1\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_PROXIES,
        ),
        (
            "chunk-size-trailing-space",
            lambda n: chunked(n, b"1 \r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_PROXIES,
        ),
        ("chunk-ext-bws", lambda n: chunked(n, b"1 ;a=b\r\na\r\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        ("chunk-data-not-crlf", lambda n: chunked(n, b"1\r\naXX\r\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        ("chunk-data-lf-only", lambda n: chunked(n, b"1\r\na\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        ("chunk-ext-empty", lambda n: chunked(n, b"1;\r\na\r\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        ("chunk-ext-nul", lambda n: chunked(n, b"1;a\x00\r\na\r\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        (
            "chunk-ext-control",
            lambda n: chunked(n, b"1;a\x01\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_PROXIES,
        ),
        ("chunk-ext-space", lambda n: chunked(n, b"1;a b\r\na\r\n0\r\n\r\n"), BAD, ENVOY_PROXIES),
        (
            "chunk-ext-bad-value",
            lambda n: chunked(n, b"1;a=b@c\r\na\r\n0\r\n\r\n"),
            BAD,
            ENVOY_PROXIES,
        ),
        (
            "chunk-trailer-folded",
            lambda n: chunked(n, b"0\r\nX: a\r\n b\r\n\r\n"),
            BAD,
            ENVOY_PROXIES,
        ),
        # -- limits (http1.too_many_headers, http1.headers_too_large) -----------------------
        (
            "headers-101",
            lambda n: get(n, *[f"X-{i}: v".encode() for i in range(100)]),
            TOO_LARGE,
            None,
        ),
        ("head-over-60k", lambda n: get(n, b"X-Big: " + b"a" * (60 * 1024)), TOO_LARGE, None),
        (
            "request-line-over-60k",
            lambda n: req(n, "GET {p}" + "a" * (61 * 1024) + " HTTP/1.1"),
            TOO_LARGE,
            None,
        ),
        # -- legitimate neighbours: both proxy them ----------------------------------------
        (
            "ok-headers-100",
            lambda n: get(n, *[f"X-{i}: v".encode() for i in range(99)]),
            ENVOY_PROXIES,
            None,
        ),
        ("ok-head-59k", lambda n: get(n, b"X-Big: " + b"a" * (59 * 1024)), ENVOY_PROXIES, None),
        (
            "ok-cl-leading-zeros",
            lambda n: post(n, b"Content-Length: 001", body=b"a"),
            ENVOY_PROXIES,
            None,
        ),
        (
            "ok-te-uppercase",
            lambda n: post(n, b"Transfer-Encoding: CHUNKED", body=b"0\r\n\r\n"),
            ENVOY_PROXIES,
            None,
        ),
        (
            "ok-chunk-ext",
            lambda n: chunked(n, b'1;a=b;c="d e"\r\na\r\n0\r\nX-T: t\r\n\r\n'),
            ENVOY_PROXIES,
            None,
        ),
        ("ok-value-obs-text", lambda n: get(n, b"X-A: a\xe9\tb"), ENVOY_PROXIES, None),
        ("ok-name-underscore", lambda n: get(n, b"X_a: b"), ENVOY_PROXIES, None),
        ("ok-method-msearch", lambda n: req(n, "MSEARCH {p} HTTP/1.1"), ENVOY_PROXIES, None),
    ]
    cases = []
    for n, (name, build, mesh, envoy) in enumerate(rows):
        cases.append(Case(name, build(n), mesh, envoy))
    return cases


CASES = request_cases()
CASE_INDEX = {case.name: n for n, case in enumerate(CASES)}


def response_case_table() -> dict[str, tuple[bytes, int | None]]:
    """name -> (what the upstream sends, Envoy's status when it passes the response on
    instead of answering 502; None: Envoy answers 502 too)."""
    ok = b"Content-Length: 2\r\n\r\nok"
    ch = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    return {
        "cl-twice-diff": (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
            None,
        ),
        "cl-twice-same": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + ok, None),
        "cl-list": (b"HTTP/1.1 200 OK\r\nContent-Length: 2,2\r\n\r\nok", None),
        "cl-plus": (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", None),
        "cl-empty": (b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok", None),
        "cl-overflow": (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nok",
            None,
        ),
        "cl-and-te": (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + ch[17:] + b"2\r\nok\r\n0\r\n\r\n",
            None,
        ),
        "te-gzip": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", None),
        "te-chunked-not-last": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok",
            None,
        ),
        "te-two-lines": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + ch[17:] + b"0\r\n\r\n",
            None,
        ),
        # Envoy sends the 200 head, then resets: the client gets a cut response.
        "chunk-bad-size": (ch + b"zz\r\nok\r\n0\r\n\r\n", 200),
        "chunk-size-overflow": (ch + b"10000000000000000\r\nok\r\n0\r\n\r\n", 200),
        # Envoy relays these.
        "chunk-data-not-crlf": (ch + b"2\r\nokXX\r\n0\r\n\r\n", 200),
        "status-4-digits": (b"HTTP/1.1 2000 OK\r\n" + ok, 2000),
        "status-999": (b"HTTP/1.1 999 OK\r\n" + ok, 999),
        "version-2.0": (b"HTTP/2.0 200 OK\r\n" + ok, 200),
        "bare-lf": (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200),
        "obs-fold": (b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n" + ok, 200),
        "value-bare-cr": (b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n" + ok, 200),
        # Both refuse these.
        "status-2-digits": (b"HTTP/1.1 20 OK\r\n" + ok, None),
        "status-alpha": (b"HTTP/1.1 abc OK\r\n" + ok, None),
        "status-099": (b"HTTP/1.1 099 OK\r\n" + ok, None),
        "version-lowercase": (b"http/1.1 200 OK\r\n" + ok, None),
        "garbage": (b"garbage\r\n\r\n", None),
        "space-before-colon": (b"HTTP/1.1 200 OK\r\nX-A : a\r\n" + ok, None),
        "value-nul": (b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n" + ok, None),
        "name-bad": (b"HTTP/1.1 200 OK\r\nX(A): a\r\n" + ok, None),
    }


RESPONSES = response_case_table()


@dataclass
class Seen:
    """What the client got: the first status line's code (None: no response), whether the
    proxy closed the connection, the raw bytes."""

    status: int | None
    closed: bool
    raw: bytes


async def exchange(port: int, data: bytes, wait: float = 3.0, first: float = 15.0) -> Seen:
    """Sends `data` on a fresh connection and reads until the proxy closes it, or `wait`
    seconds pass with nothing more after a byte came (`first` seconds for the first: on a busy
    machine a proxy may answer late, and a late answer is still the answer)."""
    got = b""
    closed = False
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(data)
        while not closed:
            with trio.move_on_after(wait if got else first) as idle:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    chunk = b""
                closed = not chunk
                got += chunk
            if idle.cancelled_caught:
                break
    line = got.split(b"\r\n", 1)[0].split(b" ")
    status = int(line[1]) if len(line) > 1 and line[0] == b"HTTP/1.1" else None
    return Seen(status, closed, got)


@pytest.fixture(scope="module")
def victim(upstream_server: UpstreamServer) -> Upstream:
    return upstream_server.start("victim")


@pytest.fixture(scope="module")
def raw(upstream_server: UpstreamServer) -> RawUpstream:
    return start_raw_upstream(upstream_server, {k: v[0] for k, v in RESPONSES.items()})


@pytest.fixture(scope="module", params=proxy_kinds())
def proxy(request, victim, raw, tmp_path_factory) -> Iterator[Proxy]:
    rc = route_config(
        [
            virtual_host(
                "all",
                ["*"],
                [route({"prefix": "/r/"}, cluster="raw"), route({"prefix": "/"}, cluster="victim")],
            )
        ]
    )
    config = bootstrap(
        [http_listener("main", free_port(), rc)],
        [
            static_cluster("victim", [("127.0.0.1", victim.port)]),
            static_cluster("raw", [("127.0.0.1", raw.port)]),
        ],
    )
    running = start_proxy(request.param, config, tmp_path_factory)
    yield running
    running.stop()


@dataclass
class Run:
    requests: dict[str, Seen]
    responses: dict[str, Seen]
    upstream_saw: dict[str, list[bool]]  # case -> `complete` of each request it caused
    stats: dict[str, str]


@pytest.fixture(scope="module")
def run(proxy: Proxy, victim: Upstream) -> Run:
    """Sends every case at once (request cases, then response cases) and settles the stats."""
    victim.clear()
    requests: dict[str, Seen] = {}
    responses: dict[str, Seen] = {}

    async def one(out: dict[str, Seen], name: str, data: bytes) -> None:
        out[name] = await exchange(proxy.port, data)

    async def all_cases() -> dict[str, str]:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for case in CASES:
                    nursery.start_soon(one, requests, case.name, case.data)
            async with trio.open_nursery() as nursery:
                for name in RESPONSES:
                    data = f"GET /r/{name} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    nursery.start_soon(one, responses, name, data.encode())
            while True:
                stats = await trio.to_thread.run_sync(proxy.stats)
                if stats.get("http.ingress.downstream_cx_active") == "0":
                    return stats
                await trio.sleep(0.05)

    stats = trio.run(all_cases)
    saw: dict[str, list[bool]] = {}
    for record in victim.requests:
        name = CASES[int(record.target.split("/")[2].split("#")[0])].name
        saw.setdefault(name, []).append(record.complete)
    return Run(requests, responses, saw, stats)


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_request(run: Run, proxy: Proxy, name: str) -> None:
    case = CASES[CASE_INDEX[name]]
    want = case.expect(proxy.kind)
    seen = run.requests[name]
    assert seen.status == want.status, seen.raw[:200]
    assert seen.closed == want.closes, seen.raw[:200]
    head = seen.raw.partition(b"\r\n\r\n")[0].lower()
    if want.closes:
        assert b"\r\nconnection: close" in head
    upstream = run.upstream_saw.get(name, [])
    if want.upstream == "incomplete":
        # The head may or may not have reached the upstream before the reset.
        assert upstream in ([], [False]), "the upstream received a complete request"
    else:
        assert upstream == {"none": [], "request": [True]}[want.upstream], "what the upstream got"


@pytest.mark.parametrize("name", list(RESPONSES))
def test_malformed_upstream_response(run: Run, proxy: Proxy, name: str) -> None:
    envoy_passes = RESPONSES[name][1]
    seen = run.responses[name]
    if proxy.kind == "envoy" and envoy_passes is not None:
        # Envoy passes the head (and maybe the body) of this response on.
        assert seen.raw.startswith(f"HTTP/1.1 {envoy_passes} ".encode()), seen.raw[:200]
        return
    assert seen.status == 502, seen.raw[:200]
    assert seen.raw.endswith(
        b"upstream connect error or disconnect/reset before headers. reset reason: protocol error"
    ), seen.raw[-200:]


def test_counted_as_envoy_counts(run: Run, proxy: Proxy) -> None:
    """Every rejected request is a request with its status class, and every codec error a
    `downstream_cx_protocol_error`; every refused response an upstream protocol error and a
    completed upstream request with its 502."""
    expects = [case.expect(proxy.kind) for case in CASES]
    passed = [RESPONSES[name][1] for name in RESPONSES] if proxy.kind == "envoy" else []
    refused_502 = len(RESPONSES) - sum(1 for p in passed if p is not None)
    stat = {
        name: int(run.stats.get(f"http.ingress.{name}", "0"))
        for name in (
            "downstream_rq_total",
            "downstream_rq_4xx",
            "downstream_rq_5xx",
            "downstream_cx_protocol_error",
        )
    }
    assert stat["downstream_rq_4xx"] == sum(1 for e in expects if 400 <= e.status < 500)
    assert stat["downstream_rq_5xx"] == (sum(1 for e in expects if e.status >= 500) + refused_502)
    assert stat["downstream_cx_protocol_error"] == sum(
        1 for e in expects if e.status >= 400 and e.codec_error
    )
    assert stat["downstream_rq_total"] == len(CASES) + len(RESPONSES)
    assert int(run.stats.get("cluster.raw.upstream_cx_protocol_error", "0")) >= refused_502
    # Each response case is one upstream request, completed even when it ends in a 502 (UPE).
    raw = {
        name: int(run.stats.get(f"cluster.raw.{name}", "0"))
        for name in ("upstream_rq_total", "upstream_rq_completed", "upstream_rq_502")
    }
    assert raw == {
        "upstream_rq_total": len(RESPONSES),
        "upstream_rq_completed": len(RESPONSES),
        "upstream_rq_502": refused_502,
    }


async def test_worker_survives(run: Run, proxy: Proxy) -> None:
    seen = await exchange(
        proxy.port, b"GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    )
    assert seen.status == 200
    assert seen.raw.endswith(b"victim")
