"""The admin page at `/` (live charts and cluster health) and its static files, shipped as
package data in `meshcore/admin/static/`; the list of admin endpoints is filled in here."""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable
from importlib import resources

STATIC_PREFIX = "/static/"
# What `/static/` serves (index.html is the template of `/`, not served as it is).
_TYPES = {".css": "text/css; charset=UTF-8", ".js": "text/javascript; charset=UTF-8"}
_ENDPOINTS_MARK = "<!--ENDPOINTS-->"


@functools.cache
def _read(name: str) -> bytes | None:
    if "/" in name or name.startswith(".") or not name:
        return None
    item = resources.files("meshcore.admin").joinpath("static", name)
    return item.read_bytes() if item.is_file() else None


def static_file(path: str) -> tuple[bytes, str] | None:
    """(body, content type) of `/static/<name>`, None for any other path or unknown file."""
    if not path.startswith(STATIC_PREFIX):
        return None
    name = path[len(STATIC_PREFIX) :]
    content_type = _TYPES.get(name[name.rfind(".") :]) if "." in name else None
    body = _read(name) if content_type else None
    return (body, content_type) if body is not None and content_type else None


def endpoint_rows(endpoints: Iterable[tuple[str, str, bool]]) -> str:
    """Table rows linking every (path, help, POST only) endpoint; POST ones are buttons."""
    rows = []
    for path, text, post_only in endpoints:
        path, text = html.escape(path), html.escape(text)
        if post_only:
            cell = f"<form action='{path}' method='post'><button>{path}</button></form>"
        else:
            cell = f"<a href='{path}'>{path}</a>"
        rows.append(f"<tr><td>{cell}</td><td>{text}</td></tr>")
    return "".join(rows)


def home(endpoints: Iterable[tuple[str, str, bool]]) -> bytes:
    """The page: `static/index.html` with the endpoint table filled in."""
    template = _read("index.html")
    if template is None:
        raise FileNotFoundError("meshcore/admin/static/index.html is missing from the package")
    return template.decode().replace(_ENDPOINTS_MARK, endpoint_rows(endpoints)).encode()
