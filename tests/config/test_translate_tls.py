"""TLS transport sockets into the snapshot's `DownstreamTls` / `UpstreamTls`, XFCC settings,
and the problems of what meshcore cannot do (each naming its path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import Pki, make_pki, tls_socket, upstream_tls_socket

from .builders import base, cluster, hcm, listener, load, problems

TS = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config"
COMMON = f"{TS}.common_tls_context"
CLUSTER_TS = "static_resources.clusters[0].transport_socket.typed_config"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _with_tls(pki: Pki, **kw: Any) -> dict[str, Any]:
    b = base()
    listener(b)["filter_chains"][0]["transport_socket"] = tls_socket(pki, **kw)
    return b


def test_downstream_tls_reads_pem_files_into_the_snapshot(pki: Pki) -> None:
    b = _with_tls(
        pki,
        require_client_certificate=True,
        sans=(("URI", "spiffe://cluster.local/ns/default/sa/web"),),
        alpn=("h2", "http/1.1"),
        tls_params={"tls_minimum_protocol_version": "TLSv1_3"},
    )
    listener(b)["filter_chains"][0]["transport_socket_connect_timeout"] = "2s"
    hcm(b)["forward_client_cert_details"] = "SANITIZE_SET"
    hcm(b)["set_current_client_cert_details"] = {"subject": True, "uri": True}
    snap = load(b).snapshot
    (listener_snapshot,) = snap["listeners"]
    (translated,) = listener_snapshot["filter_chains"]
    tls = translated["transport_socket"]
    assert tls["require_client_certificate"] is True
    assert tls["handshake_timeout_ms"] == 2000
    common = tls["common"]
    assert common["tls_certificates"][0]["certificate_chain"] == pki.server.cert.read_text()
    assert common["tls_certificates"][0]["private_key"] == pki.server.key.read_text()
    assert common["validation"]["trusted_ca"] == pki.ca.path.read_text()
    assert common["validation"]["match_typed_subject_alt_names"] == [
        {
            "san_type": "uri",
            "matcher": {
                "pattern": {"exact": "spiffe://cluster.local/ns/default/sa/web"},
                "ignore_case": False,
            },
        }
    ]
    assert common["alpn_protocols"] == ["h2", "http/1.1"]
    assert common["tls_params"] == {"cipher_suites": [], "minimum": "TLSv1_3"}
    manager = translated["filter"]["http_connection_manager"]
    assert manager["forward_client_cert_details"] == "sanitize_set"
    assert manager["set_current_client_cert_details"] == {
        "subject": True,
        "cert": False,
        "chain": False,
        "dns": False,
        "uri": True,
    }


def test_upstream_tls_into_the_cluster(pki: Pki) -> None:
    b = base()
    cluster(b)["transport_socket"] = upstream_tls_socket(pki, sni="backend.test", client=pki.web)
    (c,) = load(b).snapshot["clusters"]
    assert c["transport_socket"]["sni"] == "backend.test"
    assert c["transport_socket"]["common"]["tls_certificates"][0]["certificate_chain"] == (
        pki.web.cert.read_text()
    )


def test_unreadable_and_malformed_pem_name_the_field(pki: Pki, tmp_path: Path) -> None:
    b = _with_tls(pki)
    chain = listener(b)["filter_chains"][0]["transport_socket"]["typed_config"]
    certs = chain["common_tls_context"]["tls_certificates"][0]
    certs["certificate_chain"] = {"filename": str(tmp_path / "missing.pem")}
    certs["private_key"] = {
        "inline_string": "-----BEGIN PRIVATE KEY-----\n@@@\n-----END PRIVATE KEY-----\n"
    }
    found = problems(b)
    assert any(
        p.startswith(f"{COMMON}.tls_certificates[0].certificate_chain.filename: cannot read")
        for p in found
    ), found
    assert (
        f"{COMMON}.tls_certificates[0].private_key: "
        "a private key: the PRIVATE KEY block is not valid base64" in found
    ), found
    certs["private_key"] = {"inline_string": "not pem"}
    assert (
        f"{COMMON}.tls_certificates[0].private_key: a private key is not PEM (no -----BEGIN line)"
        in problems(b)
    )


def test_what_meshcore_cannot_do_is_an_error_with_its_path(pki: Pki) -> None:
    b = _with_tls(pki, tls_params={"tls_minimum_protocol_version": "TLSv1_1"})
    typed = listener(b)["filter_chains"][0]["transport_socket"]["typed_config"]
    typed["common_tls_context"]["tls_certificate_sds_secret_configs"] = [{"name": "cert"}]
    typed["session_ticket_keys"] = {"keys": [{"inline_bytes": "YWJj" * 22}]}
    found = "\n".join(problems(b))
    assert f"{COMMON}.tls_params.tls_minimum_protocol_version" in found
    assert f"{COMMON}.tls_certificate_sds_secret_configs" in found
    assert f"{TS}.session_ticket_keys" in found
    # An UpstreamTlsContext on a listener.
    b = base()
    sock = upstream_tls_socket(pki)
    listener(b)["filter_chains"][0]["transport_socket"] = sock
    assert f"{TS}: must be a DownstreamTlsContext here" in problems(b)
    b = base()
    cluster(b)["transport_socket"] = tls_socket(pki)
    assert f"{CLUSTER_TS}: must be a UpstreamTlsContext here" in problems(b)


def test_a_listener_without_a_certificate_is_refused(pki: Pki) -> None:
    b = _with_tls(pki)
    typed = listener(b)["filter_chains"][0]["transport_socket"]["typed_config"]
    typed["common_tls_context"]["tls_certificates"] = []
    assert f"{COMMON}.tls_certificates: a listener needs a certificate" in problems(b)
