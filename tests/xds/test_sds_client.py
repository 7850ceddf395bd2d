"""The SDS side of the xDS client against the test ADS server (the engine is a fake sink):
secrets subscribed by name as listeners and clusters name them (SotW and delta), warming
until they arrive, placeholders replaced by the secret's PEM in the snapshot, a new
version making a new snapshot, a bad secret NACKed naming its field, combined validation
contexts, static secrets, and the config errors that name their paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.cluster.v3 import cluster_pb2
from meshcore.config import ConfigError, load_text

from tests.support import bootstrap as b
from tests.support.certs import Pki, make_pki

from .ads_server import AdsServer
from .builders import ADS_SOURCE, CLUSTER, LISTENER, parse, static_cluster
from .fakes import FakeSink
from .harness import nacked, request, running_client, until
from .sds import (
    SECRET,
    api_source,
    mismatched_secret,
    sds_cluster,
    secret,
    tls_listener,
    tls_listener_json,
)

UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def ca_secret(name: str, pki: Pki) -> Any:
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

    return parse(
        secret_pb2.Secret,
        {
            "name": name,
            "validation_context": {"trusted_ca": {"inline_string": pki.ca.path.read_text()}},
        },
    )


def tls_cluster(name: str, ca_secret_name: str) -> Any:
    """A static cluster originating TLS: SAN matcher by default, CA from SDS (combined)."""
    cluster = b.static_cluster(name, [("127.0.0.1", 9443)])
    cluster["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "common_tls_context": {
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": "backend.test"}}
                        ]
                    },
                    "validation_context_sds_secret_config": {
                        "name": ca_secret_name,
                        "sds_config": ADS_SOURCE,
                    },
                }
            },
        },
    }
    return parse(cluster_pb2.Cluster, cluster)


def certificate_of(sink: FakeSink, listener: str) -> dict[str, Any]:
    chain = sink.listener(listener)["filter_chains"][0]
    certificates: list[dict[str, Any]] = chain["transport_socket"]["common"]["tls_certificates"]
    return certificates[0]


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_secrets_follow_listeners_warm_and_rotate(
    ads_server: AdsServer, sink: FakeSink, pki: Pki, delta: bool
) -> None:
    ads_server.set_resources(CLUSTER, [static_cluster("up", [("127.0.0.1", 9001)])])
    ads_server.set_resources(LISTENER, [tls_listener("tls", 0, "up", "server", ADS_SOURCE)])
    async with running_client(ads_server, sink, delta=delta, wait_initialized=False) as client:
        asked = await request(ads_server, lambda r: r.type_url == SECRET)
        names = asked.request.resource_names_subscribe if delta else asked.request.resource_names
        assert list(names) == ["server"]
        await until(lambda: client.store.view.warming_listeners == {"tls"})
        assert not client.initialized.is_set()
        assert all(lst["name"] != "tls" for c in sink.configs for lst in c.snapshot["listeners"])

        ads_server.set_resources(SECRET, [secret("server", pki.server)])
        await until(lambda: sink.configs and "tls" in sink.listener_names())
        await until(client.initialized.is_set)
        assert certificate_of(sink, "tls") == {
            "certificate_chain": pki.server.cert.read_text(),
            "private_key": pki.server.key.read_text(),
        }
        assert sink.clusters_changed[-1] is False  # a listener-only change

        rotated = pki.ca.issue("server2", "proxy-2", ("localhost",))
        ads_server.set_resources(SECRET, [secret("server", rotated)])
        await until(
            lambda: certificate_of(sink, "tls")["certificate_chain"] == rotated.cert.read_text()
        )
        applied = len(sink.configs)

        ads_server.set_resources(SECRET, [mismatched_secret("server", pki.server, pki.web)])
        nack = await request(ads_server, nacked(SECRET))
        assert nack.error == (
            "secrets[server].tls_certificate.private_key: "
            "does not match the certificate in certificate_chain"
        )
        assert len(sink.configs) == applied
        assert client.stats.control.get("sds.server.update_rejected") == 1

        # A cluster naming a CA secret (combined validation context) warms until it comes.
        ads_server.set_resources(
            CLUSTER, [static_cluster("up", [("127.0.0.1", 9001)]), tls_cluster("secure", "ca")]
        )
        await until(lambda: client.store.view.warming_clusters == {"secure"})
        assert client._subscribed[SECRET] == {"server", "ca"}
        ads_server.set_resources(SECRET, [secret("server", rotated), ca_secret("ca", pki)])
        await until(lambda: "secure" in sink.cluster_names())
        validation = sink.cluster("secure")["transport_socket"]["common"]["validation"]
        assert validation["trusted_ca"] == pki.ca.path.read_text()
        assert [m["san_type"] for m in validation["match_typed_subject_alt_names"]] == ["dns"]


def _bootstrap_with(pki: Pki, sds: dict[str, Any], secrets: list[dict[str, Any]]) -> str:
    listener = tls_listener_json("tls", 10443, "up", "server", sds)
    config = b.bootstrap([listener], [b.static_cluster("up", [("127.0.0.1", 9001)])])
    config["static_resources"]["secrets"] = secrets
    return yaml.safe_dump(config)


def _pair_json(name: str, cert: Path, key: Path) -> dict[str, Any]:
    return {
        "name": name,
        "tls_certificate": {
            "certificate_chain": {"filename": str(cert)},
            "private_key": {"filename": str(key)},
        },
    }


PREFIX = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config"
SDS_PATH = f"{PREFIX}.common_tls_context.tls_certificate_sds_secret_configs[0]"


def test_a_static_secret_is_inlined(pki: Pki) -> None:
    config = load_text(
        _bootstrap_with(pki, {}, [_pair_json("server", pki.server.cert, pki.server.key)])
    )
    chain = config.snapshot["listeners"][0]["filter_chains"][0]
    assert chain["transport_socket"]["common"]["tls_certificates"] == [
        {
            "certificate_chain": pki.server.cert.read_text(),
            "private_key": pki.server.key.read_text(),
        }
    ]
    assert "$sds" not in str(config.snapshot)


@pytest.mark.parametrize(
    ("sds", "secrets", "expected"),
    [
        ({}, [], [f"{SDS_PATH}.name: no secret 'server' in static_resources.secrets"]),
        (
            ADS_SOURCE,
            [],
            [f"{SDS_PATH}.sds_config.ads: needs dynamic_resources.ads_config"],
        ),
        (
            {
                "api_config_source": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "nope"}}],
                }
            },
            [],
            [
                f"{SDS_PATH}.sds_config.api_config_source.grpc_services[0].envoy_grpc"
                ".cluster_name: unknown cluster 'nope' (the SDS cluster must be a static "
                "cluster with an address)"
            ],
        ),
        (
            {},
            ["mismatch"],
            [
                "static_resources.secrets[0].tls_certificate.private_key: "
                "does not match the certificate in certificate_chain",
                f"{SDS_PATH}.name: no secret 'server' in static_resources.secrets",
            ],
        ),
    ],
    ids=["unknown", "ads-without-ads-config", "api-unknown-cluster", "key-mismatch"],
)
def test_secret_config_errors_name_their_paths(
    pki: Pki, sds: dict[str, Any], secrets: list[str], expected: list[str]
) -> None:
    chosen = [_pair_json("server", pki.server.cert, pki.web.key) for _ in secrets]
    with pytest.raises(ConfigError) as err:
        load_text(_bootstrap_with(pki, sds, chosen))
    lines = [str(p) for p in err.value.problems]
    for line in expected:
        assert line in lines
    assert len(lines) == len(expected), lines


def test_a_static_listener_with_a_file_secret_waits_for_the_xds_client(pki: Pki) -> None:
    sds = {"path_config_source": {"path": "/run/secrets/server.yaml"}}
    config = load_text(_bootstrap_with(pki, sds, []))
    assert config.snapshot["listeners"] == []
    [waiting] = config.sds_listeners
    assert waiting["name"] == "tls"
    assert config.dynamic is not None and config.dynamic.ads is None


def test_a_static_cluster_may_name_static_secrets_only(pki: Pki) -> None:
    cluster = b.static_cluster("up", [("127.0.0.1", 9443)])
    cluster["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "common_tls_context": {
                "validation_context_sds_secret_config": {"name": "ca", "sds_config": ADS_SOURCE}
            },
        },
    }
    with pytest.raises(ConfigError) as err:
        load_text(yaml.safe_dump(b.bootstrap([], [cluster])))
    assert [str(p) for p in err.value.problems] == [
        "static_resources.clusters[0].transport_socket.typed_config.common_tls_context"
        ".validation_context_sds_secret_config.sds_config: SDS from ads is supported in "
        "listeners (static or from LDS) and clusters from CDS only yet, not in static clusters"
    ]


def test_a_secret_of_the_wrong_kind_is_an_error(pki: Pki) -> None:
    secrets = [
        {"name": "server", "validation_context": {"trusted_ca": {"filename": str(pki.ca.path)}}}
    ]
    with pytest.raises(ConfigError) as err:
        load_text(_bootstrap_with(pki, {}, secrets))
    assert [str(p) for p in err.value.problems] == [
        f"{SDS_PATH}.name: secret 'server' is not a tls_certificate"
    ]


async def test_static_listener_config_dump_redacts_keys(pki: Pki) -> None:
    from meshcore.admin.config_dump import config_dump

    config = load_text(
        _bootstrap_with(pki, {}, [_pair_json("server", pki.server.cert, pki.server.key)])
    )
    dump = config_dump(config.bootstrap, 0.0)
    secrets = next(c for c in dump["configs"] if c["@type"].endswith("SecretsConfigDump"))
    [static] = secrets["static_secrets"]
    assert static["name"] == "server"
    assert static["secret"]["tls_certificate"]["private_key"] == {"filename": "[redacted]"}
    assert static["secret"]["tls_certificate"]["certificate_chain"] == {
        "filename": str(pki.server.cert)
    }
    boot = dump["configs"][0]["bootstrap"]["static_resources"]["secrets"][0]
    assert boot["tls_certificate"]["private_key"] == {"filename": "[redacted]"}


@pytest.mark.parametrize("delta", [False, True], ids=["sotw", "delta"])
async def test_a_separate_sds_stream_serves_secrets(
    ads_server: AdsServer, sink: FakeSink, pki: Pki, delta: bool
) -> None:
    sds_server = AdsServer().start()
    try:
        ads_server.set_resources(CLUSTER, [static_cluster("up", [("127.0.0.1", 9001)])])
        listener = tls_listener("tls", 0, "up", "server", api_source(delta))
        ads_server.set_resources(LISTENER, [listener])
        sds_server.set_resources(SECRET, [secret("server", pki.server)])
        async with running_client(
            ads_server,
            sink,
            delta=delta,
            wait_initialized=False,
            clusters=[sds_cluster(sds_server.port)],
        ) as client:
            asked = await request(sds_server, lambda r: r.type_url == SECRET)
            names = (
                asked.request.resource_names_subscribe if delta else asked.request.resource_names
            )
            assert list(names) == ["server"]
            assert asked.request.node.id == "meshcore"
            await until(lambda: sink.configs and "tls" in sink.listener_names())
            assert certificate_of(sink, "tls")["private_key"] == pki.server.key.read_text()
            assert not ads_server.requests(SECRET)  # not over ADS

            sds_server.set_resources(SECRET, [mismatched_secret("server", pki.server, pki.web)])
            nack = await request(sds_server, nacked(SECRET))
            assert nack.error.startswith("secrets[server].tls_certificate.private_key")

            ads_server.set_resources(LISTENER, [])  # nothing names the server: stream closed
            await until(lambda: not client.sds_links)
            await until(lambda: not sds_server.streams)
            assert not client.store.accepted[SECRET]
    finally:
        sds_server.stop()


async def test_an_unknown_sds_cluster_is_nacked_naming_it(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    ads_server.set_resources(CLUSTER, [static_cluster("up", [("127.0.0.1", 9001)])])
    ads_server.set_resources(LISTENER, [tls_listener("tls", 0, "up", "server", api_source(False))])
    async with running_client(ads_server, sink, wait_initialized=False):
        nack = await request(ads_server, nacked(LISTENER))
        assert nack.error == (
            "listeners[tls].filter_chains[0].transport_socket.typed_config.common_tls_context"
            ".tls_certificate_sds_secret_configs[0].sds_config.api_config_source"
            ".grpc_services[0].envoy_grpc.cluster_name: unknown cluster 'sds_cluster' "
            "(the SDS cluster must be a static cluster with an address)"
        )


async def test_a_secret_that_does_not_come_counts_init_fetch_timeout(
    ads_server: AdsServer, sink: FakeSink
) -> None:
    source = {**ADS_SOURCE, "initial_fetch_timeout": "0.2s"}
    ads_server.set_resources(CLUSTER, [static_cluster("up", [("127.0.0.1", 9001)])])
    ads_server.set_resources(LISTENER, [tls_listener("tls", 0, "up", "missing", source)])
    async with running_client(ads_server, sink, wait_initialized=False) as client:
        await until(lambda: client.stats.control.get("sds.missing.init_fetch_timeout") == 1)
        assert client.store.view.warming_listeners == {"tls"}
        assert client.dump()["secrets"] == {"dynamic_warming_secrets": [{"name": "missing"}]}


async def test_a_static_listener_warms_until_its_ads_secret_comes(
    ads_server: AdsServer, sink: FakeSink, pki: Pki
) -> None:
    ads_server.set_resources(CLUSTER, [])
    ads_server.set_resources(LISTENER, [])
    static = tls_listener_json("tls", 0, "up", "server", ADS_SOURCE)
    async with running_client(
        ads_server,
        sink,
        wait_initialized=False,
        listeners=[static],
        clusters=[b.static_cluster("up", [("127.0.0.1", 9001)])],
    ) as client:
        asked = await request(ads_server, lambda r: r.type_url == SECRET)
        assert list(asked.request.resource_names) == ["server"]
        await until(lambda: sink.configs)  # LDS and CDS applied, the listener still waits
        assert "tls" not in sink.listener_names()
        assert client.store.warming()
        assert not client.initialized.is_set()

        ads_server.set_resources(SECRET, [secret("server", pki.server)])
        await until(lambda: "tls" in sink.listener_names())
        assert certificate_of(sink, "tls")["certificate_chain"] == pki.server.cert.read_text()
        await until(client.initialized.is_set)
