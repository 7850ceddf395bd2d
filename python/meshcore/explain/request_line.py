"""Turns `'GET http://host/path'`, `-H 'name: value'` and the connection options into the
request JSON `meshcore._fastpath.explain` takes; errors name what is wrong."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class RequestError(ValueError):
    """The request line, a header or a connection option is malformed."""


@dataclass
class ExplainOptions:
    """What `meshcore explain` is asked: the request and the downstream connection facts."""

    request: str
    headers: Sequence[str] = ()
    listener: str | None = None
    port: int | None = None
    sni: str | None = None
    alpn: Sequence[str] = field(default_factory=list)
    tls: bool = False
    source: str | None = None
    random: int | None = None


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN for c in text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_header(text: str) -> tuple[str, str]:
    """`name: value` (the value may be empty)."""
    name, sep, value = text.partition(":")
    if not sep:
        raise RequestError(f"header {text!r}: expected 'name: value'")
    name = name.strip()
    if not _is_token(name):
        raise RequestError(f"header {text!r}: {name!r} is not a header name")
    return name, value.strip()


def request_json(opts: ExplainOptions) -> dict[str, Any]:
    """The request dict for the engine. `request` is `METHOD URL` with an absolute
    `http(s)://host[:port]/path?query` URL, or `METHOD /path` with a `host` header."""
    parts = opts.request.split()
    if len(parts) != 2:
        raise RequestError(
            f"request {opts.request!r}: expected 'METHOD URL', e.g. 'GET http://example.com/path'"
        )
    method, target = parts
    if not _is_token(method):
        raise RequestError(f"request {opts.request!r}: {method!r} is not an HTTP method")
    headers = [parse_header(h) for h in opts.headers]
    host_headers = [v for n, v in headers if n.lower() == "host"]
    tls = opts.tls
    sni = opts.sni
    if target.startswith("/"):
        if not host_headers:
            raise RequestError(
                f"request {opts.request!r}: an origin-form target needs -H 'host: NAME' "
                "(or give an absolute URL: http://host/path)"
            )
        authority, path = host_headers[0], target
    else:
        url = urlsplit(target)
        if url.scheme not in ("http", "https"):
            raise RequestError(
                f"request {opts.request!r}: the URL must be http://host/path or "
                f"https://host/path, got scheme {url.scheme or '(none)'!r}"
            )
        if not url.netloc or "@" in url.netloc:
            raise RequestError(f"request {opts.request!r}: the URL has no host")
        if url.fragment:
            raise RequestError(f"request {opts.request!r}: a URL fragment is never sent")
        try:
            url.port  # noqa: B018 - validates the port
        except ValueError:
            raise RequestError(
                f"request {opts.request!r}: the URL's port is not a number"
            ) from None
        authority = host_headers[0] if host_headers else url.netloc
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if url.scheme == "https":
            # A client sends the host as SNI (not an IP literal), as curl does.
            tls = True
            host = url.hostname or ""
            if sni is None and host and not _is_ip(host):
                sni = host
    headers = [(n, v) for n, v in headers if n.lower() != "host"]
    return {
        "method": method,
        "authority": authority,
        "path": path,
        "headers": headers,
        "listener": opts.listener,
        "port": opts.port,
        "sni": sni,
        "alpn": list(opts.alpn),
        "tls": tls,
        "source": opts.source,
        "random": opts.random,
    }
