"""Envoy's default tag extraction: `cluster.service_v1.upstream_rq_200` becomes the name
`cluster.upstream_rq` with tags envoy.response_code=200, envoy.cluster_name=service_v1.

The regexes are Envoy's (source/common/config/well_known_names.cc, placeholders expanded),
checked against what Envoy 1.40 prints. Each runs on the full stat name; its first group is
cut from the name and its second group (or the first) is the tag value. Extractors without
a name prefix run first, then those whose prefix equals the name's first segment, in table
order, which fixes the order of the labels Envoy prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class _Extractor:
    tag: str
    regex: re.Pattern[str]
    prefix: str | None  # first segment of the names it can match; None: any name
    # Text every name the regex matches contains: names without it skip the regex (a
    # substring test is far cheaper, and 10,000 clusters have ~500,000 stat names).
    needs: str = ""


def _x(tag: str, pattern: str, prefix: str | None = None, needs: str = "") -> _Extractor:
    return _Extractor(tag, re.compile(pattern), prefix, needs)


_WORD = r"[^.]+"
_ADDRESS = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}_\d+|\[[_a-fA-F\d]+\]_\d+"

_EXTRACTORS: tuple[_Extractor, ...] = (
    # *_rq(_<response_code>)
    _x("envoy.response_code", r"_rq(_(\d{3}))$", needs="_rq_"),
    # *_rq_(<response_code_class>)xx
    _x("envoy.response_code_class", r"_rq_((\d))xx$", needs="_rq_"),
    # (listener|server|thread_local_cluster_manager).[<address>.]worker_(<id>.)*, as Envoy
    # 1.40 prints it (`listener.worker_downstream_cx_total{envoy_worker_id="0",...}`).
    _x(
        "envoy.worker_id",
        r"^(?:listener|listener_manager|server|thread_local_cluster_manager)\.(?:.*\.)?worker_((\d+)\.)",
        needs="worker_",
    ),
    # http.[<stat_prefix>.]user_agent.(<user_agent>.)*
    _x(
        "envoy.http_user_agent",
        rf"^http\.{_WORD}\.user_agent\.(({_WORD})\.)",
        "http",
        ".user_agent.",
    ),
    # vhost.[<virtual host name>.]vcluster.(<virtual_cluster_name>.)*
    _x(
        "envoy.virtual_cluster", rf"^vhost\.{_WORD}\.vcluster\.(({_WORD})\.)", "vhost", ".vcluster."
    ),
    # http.[<stat_prefix>.]fault.(<downstream_cluster>.)*
    _x(
        "envoy.fault_downstream_cluster",
        rf"^http\.{_WORD}\.fault\.(({_WORD})\.)",
        "http",
        ".fault.",
    ),
    # listener.[<address>.]ssl.cipher.(<cipher>)
    _x(
        "envoy.ssl_cipher",
        r"^listener\..*?\.ssl\.cipher(\.([0-9A-Za-z_-]+))$",
        "listener",
        ".ssl.cipher.",
    ),
    # cluster.[<cluster_name>.]ssl.ciphers.(<cipher>)
    _x(
        "cipher_suite",
        rf"^cluster\.{_WORD}\.ssl\.ciphers(\.([0-9A-Za-z_-]+))$",
        "cluster",
        ".ssl.ciphers.",
    ),
    # tcp.(<stat_prefix>.)*
    _x("envoy.tcp_prefix", rf"^tcp\.(({_WORD})\.)", "tcp"),
    # cluster.[<cluster_name>.]grpc.[<grpc_service>.](<grpc_method>.)<base_stat> (`grpc_stats`;
    # a dotted service splits as Envoy splits it: `test.Echo` gives service `test`, method
    # `Echo`)
    _x(
        "envoy.grpc_bridge_method",
        rf"^cluster\.{_WORD}\.grpc\.{_WORD}\.(({_WORD})\.)",
        "cluster",
        ".grpc.",
    ),
    # cluster.[<cluster_name>.]grpc.(<grpc_service>.)*
    _x(
        "envoy.grpc_bridge_service", rf"^cluster\.{_WORD}\.grpc\.(({_WORD})\.)", "cluster", ".grpc."
    ),
    # cluster.(<cluster_name>.)*
    _x("envoy.cluster_name", rf"^cluster\.(({_WORD})\.)", "cluster"),
    # listener.[<address>.]http.(<stat_prefix>.)*
    _x(
        "envoy.http_conn_manager_prefix",
        rf"^listener\..*?\.http\.(({_WORD})\.)",
        "listener",
        ".http.",
    ),
    # http.(<stat_prefix>.)*
    _x("envoy.http_conn_manager_prefix", rf"^http\.(({_WORD})\.)", "http"),
    # listener.(<address>.)*
    _x("envoy.listener_address", rf"^listener\.(({_ADDRESS})\.)", "listener"),
    # vhost.(<virtual host name>.)*
    _x("envoy.virtual_host", rf"^vhost\.(({_WORD})\.)", "vhost"),
    # http.[<stat_prefix>.]rds.(<route_config_name>.)<base_stat>
    _x("envoy.rds_route_config", rf"^http\.{_WORD}\.rds\.(([\w\-.]+)\.)\w+?$", "http", ".rds."),
)


@lru_cache(maxsize=64)
def _extractors_for(first_segment: str) -> tuple[_Extractor, ...]:
    """The extractors that can match a name starting with `first_segment`, in run order."""
    return tuple(e for e in _EXTRACTORS if e.prefix is None) + tuple(
        e for e in _EXTRACTORS if e.prefix == first_segment
    )


def extract_tags(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(tag-extracted name, ((tag name, value), ...)) for a stat name."""
    # `cluster.<x>.<rest>` with a dot-free <x> (most stats at scale): the extractors that can
    # match a `cluster.` name (`envoy.cluster_name` takes <x>; the response code, code class
    # and cipher suite ones match inside <rest>, their texts having no dot, or after `[^.]+`)
    # give the same as for any other dot-free <x>. So one reading per <rest> serves every
    # cluster, with <x> put in as the cluster name.
    if name.startswith("cluster."):
        x, dot, rest = name[8:].partition(".")
        if x and dot and rest:
            extracted, tags = _cluster_stat(rest)
            return extracted, tuple(
                (tag, x if tag == "envoy.cluster_name" else value) for tag, value in tags
            )
    return _extract_tags(name)


@lru_cache(maxsize=4096)
def _cluster_stat(rest: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return _extract_tags("cluster.x." + rest)


@lru_cache(maxsize=4096)
def _extract_tags(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(tag-extracted name, ((tag name, value), ...)) for a stat name."""
    cut: list[tuple[int, int]] = []
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for extractor in _extractors_for(name.split(".", 1)[0]):
        if extractor.tag in seen or extractor.needs not in name:
            continue
        match = extractor.regex.search(name)
        if match is None:
            continue
        value_group = 2 if match.re.groups >= 2 and match.group(2) is not None else 1
        tags.append((extractor.tag, match.group(value_group)))
        seen.add(extractor.tag)
        cut.append(match.span(1))
    if not cut:
        return name, ()
    # The name without the union of the cut spans.
    kept: list[str] = []
    at = 0
    for start, end in sorted(cut):
        if start > at:
            kept.append(name[at:start])
        at = max(at, end)
    kept.append(name[at:])
    return "".join(kept), tuple(tags)
