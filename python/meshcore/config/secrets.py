"""SDS secrets (`envoy.extensions.transport_sockets.tls.v3.Secret`): checked into the PEM text
the engine snapshot takes (a key must match its certificate: checked with the standard
library's OpenSSL, so that a bad secret is refused naming its field), and the `{"$sds": ...}`
placeholders of TLS contexts replaced by them: static secrets when the bootstrap loads,
dynamic ones (ADS, files) by the xDS client whenever a secret arrives or changes."""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from . import paths, rules
from .errors import Problem, Problems
from .model import DnsCluster, MeshConfig
from .translate_tls import SDS_KEY, certificate, validation
from .values import is_ip

SecretValue = dict[str, Any]
"""`{"tls_certificate": {...}}` or `{"validation_context": {...}}` (snapshot shapes)."""
KINDS = ("tls_certificate", "validation_context")


def _pair_matches(chain: str, key: str, path: str, problems: Problems) -> None:
    """OpenSSL loads the chain and the key (there is no in-memory call for a key: a private
    0600 temporary file, removed at once)."""
    try:
        ssl.create_default_context().load_verify_locations(cadata=chain)
    except (ssl.SSLError, ValueError) as exc:
        problems.add(paths.field(path, "certificate_chain"), f"not a usable PEM certificate: {exc}")
        return
    with tempfile.TemporaryDirectory(prefix="meshcore-sds-") as directory:
        chain_file, key_file = os.path.join(directory, "chain"), os.path.join(directory, "key")
        for file, text in ((chain_file, chain), (key_file, key)):
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(chain_file, key_file)
        except ssl.SSLError as exc:
            key_path = paths.field(path, "private_key")
            if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                problems.add(key_path, "does not match the certificate in certificate_chain")
            else:
                problems.add(key_path, f"not a usable PEM private key: {exc}")


def check_secret(msg: secret_pb2.Secret, path: str) -> tuple[SecretValue | None, list[Problem]]:
    """A `Secret` (at `path`, which names it) as its snapshot value, or its problems."""
    problems = Problems()
    if not msg.name:
        problems.add(paths.field(path, "name"), "is required (it names the SDS secret)")
    rules.check(msg, path, problems)
    if problems:
        return None, problems.as_list()
    kind = msg.WhichOneof("type")
    value: SecretValue
    if kind == "tls_certificate":
        at = paths.field(path, "tls_certificate")
        pair = certificate(msg.tls_certificate, at, problems)
        if not problems:
            _pair_matches(pair["certificate_chain"], pair["private_key"], at, problems)
        value = {"tls_certificate": pair}
    elif kind == "validation_context":
        at = paths.field(path, "validation_context")
        context = validation(msg.validation_context, at, problems)
        if not problems:
            try:
                ssl.create_default_context().load_verify_locations(cadata=context["trusted_ca"])
            except (ssl.SSLError, ValueError) as exc:
                problems.add(paths.field(at, "trusted_ca"), f"not a usable PEM CA: {exc}")
        value = {"validation_context": context}
    else:
        problems.add(path, "a tls_certificate or a validation_context is required")
        return None, problems.as_list()
    if problems:
        return None, problems.as_list()
    return value, []


def static_secrets(
    secrets: Sequence[secret_pb2.Secret], path: str, problems: Problems
) -> dict[str, SecretValue]:
    """`static_resources.secrets` by name."""
    out: dict[str, SecretValue] = {}
    for i, msg in enumerate(secrets):
        at = paths.item(path, i)
        if msg.name in out:
            problems.add(paths.field(at, "name"), f"duplicate secret {msg.name!r}")
            continue
        value, found = check_secret(msg, at)
        problems.extend(found)
        if value is not None:
            out[msg.name] = value
    return out


def refs(obj: Any) -> Iterator[dict[str, Any]]:
    """Every SDS placeholder's reference in a snapshot piece (listener, cluster)."""
    if isinstance(obj, dict):
        ref = obj.get(SDS_KEY)
        if ref is not None:
            yield ref
            return
        for value in obj.values():
            yield from refs(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from refs(value)


def _merged(default: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    """A combined validation context: the secret's fields over the default's (repeated
    fields appended, as protobuf's MergeFrom that Envoy uses)."""
    return {
        "trusted_ca": secret.get("trusted_ca") or default.get("trusted_ca", ""),
        "match_typed_subject_alt_names": [
            *default.get("match_typed_subject_alt_names", []),
            *secret.get("match_typed_subject_alt_names", []),
        ],
    }


Lookup = Callable[[dict[str, Any]], SecretValue | None]


def resolve(obj: Any, lookup: Lookup, missing: list[dict[str, Any]]) -> Any:
    """`obj` with each placeholder replaced by its secret (`lookup(ref)`); a reference whose
    secret is not there (or is of the other kind) is appended to `missing` and its
    placeholder left in place (the result must not reach the engine then)."""
    if isinstance(obj, dict):
        ref = obj.get(SDS_KEY)
        if ref is None:
            return {k: resolve(v, lookup, missing) for k, v in obj.items()}
        secret = lookup(ref)
        value = secret.get(ref["kind"]) if secret is not None else None
        if value is None:
            missing.append(ref)
            return obj
        if "default" in ref:
            return _merged(ref["default"], value)
        return value
    if isinstance(obj, list):
        return [resolve(v, lookup, missing) for v in obj]
    return obj


def resolve_static(
    obj: Any,
    secrets: Mapping[str, SecretValue],
    problems: Problems,
    where: str,
    *,
    dynamic_ok: bool = False,
) -> Any:
    """A static resource's placeholders replaced by `static_resources.secrets` (`where`:
    "static listeners" or "static clusters", for the problem text); `dynamic_ok`: the
    placeholders of ADS, stream and file secrets stay (for the xDS client)."""
    missing: list[dict[str, Any]] = []

    def lookup(ref: dict[str, Any]) -> SecretValue | None:
        return secrets.get(ref["name"]) if ref["source"] == "static" else None

    out = resolve(obj, lookup, missing)
    for ref in missing:
        if ref["source"] == "unsupported":  # the table reported its config source
            continue
        if dynamic_ok and ref["source"] != "static":
            continue
        problems.add(*unresolved(ref, secrets, where))
    return out


def unresolved(
    ref: Mapping[str, Any], secrets: Mapping[str, SecretValue], where: str
) -> tuple[str, str]:
    """The problem (path, message) for a reference `resolve_static` could not resolve."""
    name, kind = ref["name"], ref["kind"]
    if ref["source"] != "static":
        return (
            paths.field(ref["path"], "sds_config"),
            f"SDS from {ref['source']} is supported in listeners (static or from LDS) and "
            f"clusters from CDS only yet, not in {where}",
        )
    if name not in secrets:
        return paths.field(ref["path"], "name"), f"no secret {name!r} in static_resources.secrets"
    return paths.field(ref["path"], "name"), f"secret {name!r} is not a {kind}"


@dataclass(frozen=True)
class SecretRef:
    """Where an xDS resource's secret comes from (its xDS client subscribes to it)."""

    name: str
    source: str
    """`static`, `ads`, `file` or `api` (a separate SDS stream)."""
    file: str | None = None
    watched_directory: str | None = None
    initial_fetch_timeout_s: float = 0.0
    path: str = ""
    """The first reference's path in the resource (for problems)."""
    cluster: str | None = None
    """`api`: the static cluster of the SDS server (`api_config_source`)."""
    delta: bool = False
    """`api`: DELTA_GRPC."""
    cluster_path: str = ""


def secret_refs(obj: Any) -> tuple[SecretRef, ...]:
    """The secrets a snapshot piece names, once each (by name and source)."""
    seen: dict[tuple[str, str, str | None], SecretRef] = {}
    for ref in refs(obj):
        key = (ref["name"], ref["source"], ref.get("file") or ref.get("cluster"))
        seen.setdefault(
            key,
            SecretRef(
                ref["name"],
                ref["source"],
                ref.get("file"),
                ref.get("watched_directory"),
                float(ref.get("initial_fetch_timeout_s", 0.0)),
                ref["path"],
                ref.get("cluster"),
                bool(ref.get("delta", False)),
                ref.get("cluster_path", ""),
            ),
        )
    return tuple(seen.values())


def sds_target(static: MeshConfig, cluster: str) -> str | None:
    """A gRPC target for the static cluster `cluster`; None when there is no such cluster or
    it has no address."""
    return grpc_target(static.snapshot.get("clusters", ()), static.dns_clusters, cluster)


def grpc_target(
    clusters: Sequence[Mapping[str, Any]], dns_clusters: Sequence[DnsCluster], name: str
) -> str | None:
    """A gRPC target for the static cluster `name` among the translated `clusters`: the
    first host of a DNS cluster (gRPC resolves it), else its IP endpoints (the IPv4 ones
    when it has any); None when it has neither."""
    for dns in dns_clusters:
        if dns.name == name and dns.hosts:
            return f"dns:///{dns.hosts[0].hostname}:{dns.hosts[0].port}"
    found = [c for c in clusters if c["name"] == name]
    if not found:
        return None
    endpoints = [e for e in found[0].get("endpoints", ()) if is_ip(e["address"])]
    v4 = [e for e in endpoints if ":" not in e["address"]]
    if v4:
        return "ipv4:" + ",".join(f"{e['address']}:{e['port']}" for e in v4)
    if endpoints:
        return "ipv6:" + ",".join(f"[{e['address']}]:{e['port']}" for e in endpoints)
    return None
