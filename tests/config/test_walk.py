"""The typed-config walk skips only subtrees whose type cannot hold an `Any`, and finds the
same typed configs, in the same order, as a walk of every set sub-message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2, duration_pb2, json_format, struct_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from meshcore.config.any_reach import ANY, reaches_any
from meshcore.config.supported import MESSAGES
from meshcore.config.type_urls import descriptor_for, unpack
from meshcore.config.walk import children, typed_configs

TYPE = "type.googleapis.com/"
PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
RBAC_PER_ROUTE = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
UPSTREAM_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"


def _parse(data: dict[str, Any], msg: Message) -> Any:
    """`data` parsed into `msg`, after importing the modules of the typed configs used."""
    for name in (PREVIOUS_HOSTS, RBAC_PER_ROUTE, UPSTREAM_TLS, UPSTREAM_OPTIONS, HCM, ROUTER):
        assert descriptor_for(f"{TYPE}{name}") is not None, name
    return json_format.ParseDict(data, msg)


def _reaches_by_search(descriptor: Descriptor) -> bool:
    """Whether `descriptor` reaches `Any`, by a fresh search of the descriptor graph."""
    seen = {descriptor}
    pending = [descriptor]
    while pending:
        current = pending.pop()
        if current.full_name == ANY:
            return True
        for fd in current.fields:
            child = fd.message_type
            if child is not None and child not in seen:
                seen.add(child)
                pending.append(child)
    return False


def _graph(roots: list[Descriptor]) -> set[Descriptor]:
    found = set(roots)
    pending = list(roots)
    while pending:
        for fd in pending.pop().fields:
            child = fd.message_type
            if child is not None and child not in found:
                found.add(child)
                pending.append(child)
    return found


def test_reachability_agrees_with_a_search_for_every_type() -> None:
    roots = [
        bootstrap_pb2.Bootstrap.DESCRIPTOR,
        route_pb2.RouteConfiguration.DESCRIPTOR,
        cluster_pb2.Cluster.DESCRIPTOR,
        listener_pb2.Listener.DESCRIPTOR,
    ]
    for full_name in MESSAGES:
        descriptor = descriptor_for(f"{TYPE}{full_name}")
        assert descriptor is not None
        roots.append(descriptor)
    graph = _graph(roots)
    assert len(graph) > 300
    # Sorted by name (not graph order): answers cached for one type must hold for the next.
    for descriptor in sorted(graph, key=lambda d: d.full_name):
        assert reaches_any(descriptor) == _reaches_by_search(descriptor), descriptor.full_name
    assert any(reaches_any(d) for d in graph) and not all(reaches_any(d) for d in graph)


def test_recursive_types() -> None:
    # Struct -> Value -> ListValue -> Value: a cycle without an Any.
    assert not reaches_any(struct_pb2.Value.DESCRIPTOR)
    assert not reaches_any(struct_pb2.Struct.DESCRIPTOR)
    # Permission -> Permission.Set -> Permission, and Permission.matcher holds an Any.
    assert reaches_any(rbac_pb2.Permission.Set.DESCRIPTOR)
    assert reaches_any(rbac_pb2.Permission.DESCRIPTOR)
    assert not reaches_any(duration_pb2.Duration.DESCRIPTOR)
    assert reaches_any(any_pb2.Any.DESCRIPTOR)


def _every_typed_config(msg: Message, path: str) -> Iterator[tuple[str, Message]]:
    """The reference: every set sub-message is looked into."""
    for child_path, _, child in children(msg, path):
        if child.DESCRIPTOR.full_name == ANY:
            inner = unpack(child)
            if inner is not None:
                yield child_path, inner
                yield from _every_typed_config(inner, child_path)
        else:
            yield from _every_typed_config(child, child_path)


def _found(msg: Message, path: str) -> list[tuple[str, str]]:
    found = typed_configs(msg, path)
    assert found == list(_every_typed_config(msg, path))
    return [(where, inner.DESCRIPTOR.full_name) for where, inner in found]


def _permission_with_a_matcher() -> dict[str, Any]:
    """An RBAC permission whose typed config (`matcher`) sits three sets deep."""
    matcher = {"name": "m", "typed_config": {"@type": f"{TYPE}{ROUTER}"}}
    return {"and_rules": {"rules": [{"any": True}, {"not_rule": {"matcher": matcher}}]}}


def _route_config() -> route_pb2.RouteConfiguration:
    per_route = {
        "@type": f"{TYPE}{RBAC_PER_ROUTE}",
        "rbac": {
            "rules": {
                "policies": {
                    "p": {
                        "permissions": [_permission_with_a_matcher()],
                        "principals": [{"any": True}],
                    }
                }
            }
        },
    }
    retry = {
        "num_retries": 2,
        "per_try_timeout": "1s",
        "retry_host_predicate": [
            {"name": "previous", "typed_config": {"@type": f"{TYPE}{PREVIOUS_HOSTS}"}}
        ],
    }
    plain = {"match": {"prefix": "/"}, "route": {"cluster": "a", "timeout": "1s"}}
    data = {
        "name": "r",
        "virtual_hosts": [
            {"name": "a", "domains": ["a"], "routes": [plain]},
            {
                "name": "b",
                "domains": ["b"],
                "routes": [
                    plain,
                    {
                        "match": {"prefix": "/"},
                        "route": {"cluster": "b", "retry_policy": retry},
                        "typed_per_filter_config": {"z.rbac": per_route, "a.rbac": per_route},
                    },
                ],
            },
        ],
    }
    result: route_pb2.RouteConfiguration = _parse(data, route_pb2.RouteConfiguration())
    return result


def test_typed_configs_deep_in_a_route() -> None:
    route = "rc.virtual_hosts[1].routes[1]"
    matcher = "rbac.rules.policies[p].permissions[0].and_rules.rules[1].not_rule.matcher"
    assert _found(_route_config(), "rc") == [
        (f"{route}.route.retry_policy.retry_host_predicate[0].typed_config", PREVIOUS_HOSTS),
        (f"{route}.typed_per_filter_config[a.rbac]", RBAC_PER_ROUTE),
        (f"{route}.typed_per_filter_config[a.rbac].{matcher}.typed_config", ROUTER),
        (f"{route}.typed_per_filter_config[z.rbac]", RBAC_PER_ROUTE),
        (f"{route}.typed_per_filter_config[z.rbac].{matcher}.typed_config", ROUTER),
    ]


def test_typed_configs_of_a_cluster_and_a_listener() -> None:
    cluster = _parse(
        {
            "name": "c",
            "transport_socket": {
                "name": "tls",
                "typed_config": {"@type": f"{TYPE}{UPSTREAM_TLS}", "sni": "x"},
            },
            "typed_extension_protocol_options": {
                UPSTREAM_OPTIONS: {
                    "@type": f"{TYPE}{UPSTREAM_OPTIONS}",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            },
        },
        cluster_pb2.Cluster(),
    )
    assert _found(cluster, "") == [
        ("transport_socket.typed_config", UPSTREAM_TLS),
        (f"typed_extension_protocol_options[{UPSTREAM_OPTIONS}]", UPSTREAM_OPTIONS),
    ]
    manager = {
        "@type": f"{TYPE}{HCM}",
        "stat_prefix": "s",
        "route_config": json_format.MessageToDict(_route_config()),
        "http_filters": [{"name": "router", "typed_config": {"@type": f"{TYPE}{ROUTER}"}}],
    }
    listener = _parse(
        {"name": "l", "filter_chains": [{"filters": [{"name": "hcm", "typed_config": manager}]}]},
        listener_pb2.Listener(),
    )
    found = _found(listener, "listeners[l]")
    hcm = "listeners[l].filter_chains[0].filters[0].typed_config"
    assert found[0] == (hcm, HCM)
    assert (f"{hcm}.http_filters[0].typed_config", ROUTER) in found
    assert len(found) == 7  # the HCM, the route config's five, the router
