"""`/stats` text and JSON, `/stats/prometheus`, and Envoy's tag extraction: exact output."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from meshcore.admin import tags as tags_module
from meshcore.admin.histogram import ENGINE_BOUNDS_MS, Histogram
from meshcore.admin.stat_lines import Lines, encode, encode_histogram, merge, parse_histogram
from meshcore.admin.stats_model import StatsSnapshot, parse_engine_stats, select
from meshcore.admin.stats_prometheus import metric_name, render_prometheus
from meshcore.admin.stats_text import render_json, render_text
from meshcore.admin.tags import extract_tags

BOUNDS = (0.5, 1.0, 5.0)
RQ_TIME = Histogram(BOUNDS, (0, 4, 0, 0), 4.2, 4)  # four samples in (0.5, 1]
UNUSED = Histogram(BOUNDS, (0, 0, 0, 0), 0.0, 0)


def snapshot(**intervals: Histogram) -> StatsSnapshot:
    return StatsSnapshot.of(
        counters={
            "cluster.service_v1.upstream_rq_total": 23,
            "cluster.service_v1.upstream_rq_200": 23,
            "http.ingress_http.downstream_rq_2xx": 20,
        },
        gauges={"server.live": 1, "cluster.service_v1.upstream_cx_active": 2},
        histograms={
            "cluster.service_v1.upstream_rq_time": RQ_TIME,
            "cluster.service_v1.upstream_cx_length_ms": UNUSED,
        },
        intervals=intervals,
    )


def test_text_sorts_counters_and_gauges_together_then_histograms():
    assert render_text(snapshot()).splitlines() == [
        "cluster.service_v1.upstream_cx_active: 2",
        "cluster.service_v1.upstream_rq_200: 23",
        "cluster.service_v1.upstream_rq_total: 23",
        "http.ingress_http.downstream_rq_2xx: 20",
        "server.live: 1",
        "cluster.service_v1.upstream_cx_length_ms: No recorded values",
        "cluster.service_v1.upstream_rq_time: P0(nan,0.5) P25(nan,0.625) P50(nan,0.75) "
        "P75(nan,0.875) P90(nan,0.95) P95(nan,0.975) P99(nan,0.995) P99.5(nan,0.9975) "
        "P99.9(nan,0.9995) P100(nan,1)",
    ]


def test_text_shows_the_last_flush_interval():
    interval = Histogram(BOUNDS, (0, 0, 2, 0), 6.0, 2)  # two samples in (1, 5]
    line = render_text(snapshot(**{"cluster.service_v1.upstream_rq_time": interval}))
    assert line.splitlines()[-1] == (
        "cluster.service_v1.upstream_rq_time: P0(1,0.5) P25(2,0.625) P50(3,0.75) "
        "P75(4,0.875) P90(4.6,0.95) P95(4.8,0.975) P99(4.96,0.995) P99.5(4.98,0.9975) "
        "P99.9(4.996,0.9995) P100(5,1)"
    )


def test_json_form():
    doc = orjson.loads(render_json(snapshot()))
    stats = doc["stats"]
    assert stats[0] == {"name": "cluster.service_v1.upstream_cx_active", "value": 2}
    assert [s["name"] for s in stats[:-1]] == sorted(s["name"] for s in stats[:-1])
    hist = stats[-1]["histograms"]
    assert hist["supported_quantiles"] == [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]
    names = [c["name"] for c in hist["computed_quantiles"]]
    assert names == [
        "cluster.service_v1.upstream_cx_length_ms",
        "cluster.service_v1.upstream_rq_time",
    ]
    unused, rq_time = hist["computed_quantiles"]
    assert unused["values"][0] == {"interval": None, "cumulative": None}
    assert rq_time["values"][2] == {"interval": None, "cumulative": 0.75}
    assert len(rq_time["values"]) == 10


def test_select_filters_by_regex_search_and_type():
    snap = select(snapshot(), re.compile(r"upstream_rq_\d"))
    assert render_text(snap) == "cluster.service_v1.upstream_rq_200: 23\n"
    gauges = select(snapshot(), None, "Gauges")
    assert set(gauges.gauges) == {"server.live", "cluster.service_v1.upstream_cx_active"}
    assert not gauges.counters and not gauges.histograms
    hists = select(snapshot(), re.compile("rq_time"), "Histograms")
    assert list(hists.histograms) == ["cluster.service_v1.upstream_rq_time"]


def test_parse_engine_stats():
    raw = (
        b"a.b\0001\nc.d\0-3\n",
        b"c\0002\n",
        b"h\0001 0.5 1 0 0\nunused\0000\n",
    )
    snap = parse_engine_stats(raw)
    assert list(snap.counters.items()) == [("a.b", 1), ("c.d", -3)]
    assert snap.counters["a.b"] == 1 and "x" not in snap.counters
    assert snap.gauges["c"] == 2
    bounds = (1.0, 2.0)
    snap = StatsSnapshot(snap.counters, snap.gauges, snap.histograms, bounds)
    assert snap.histogram("h") == (Histogram(bounds, (1, 0, 0), 0.5, 1), None)
    assert snap.histogram("unused") == (Histogram(bounds, (0, 0, 0), 0.0, 0), None)


def test_engine_histogram_lines_carry_the_last_interval():
    bounds = (1.0, 2.0)
    line = b"h\0003 2.5 1 2 0 0 1 0"
    assert parse_histogram(line, bounds) == (
        Histogram(bounds, (1, 2, 0), 2.5, 3),
        Histogram(bounds, (0, 1, 0), 0.0, 1),
    )
    hist, interval = parse_histogram(line, bounds)
    assert parse_histogram(encode_histogram("h", hist, interval), bounds) == (hist, interval)


def test_a_malformed_engine_histogram_is_an_error_naming_it():
    with pytest.raises(ValueError, match="malformed engine histogram 'h': 1 bucket counts"):
        parse_histogram(b"h\0002 1.0 1", (1.0, 2.0))
    with pytest.raises(ValueError, match="malformed engine histogram 'h'"):
        parse_histogram(b"h\000x", (1.0, 2.0))
    snap = StatsSnapshot(Lines([]), Lines([]), Lines([b"h\0002 1.0 1"]), (1.0, 2.0))
    with pytest.raises(ValueError, match="'h'"):
        render_text(snap)


def test_control_stats_merge_into_engine_lines_in_name_order():
    engine = encode({"cluster.a.x": 1, "cluster.a-b.x": 2, "cluster.b.x": 3})
    merged = merge(engine, {"cluster.a.health_check.attempt": 7, "cluster.b.x": 99, "z": 1})
    assert [line.decode().replace("\0", "=") for line in merged] == [
        "cluster.a-b.x=2",
        "cluster.a.health_check.attempt=7",
        "cluster.a.x=1",
        "cluster.b.x=3",  # the engine's value wins
        "z=1",
    ]


def test_json_form_escapes_names_that_need_it():
    snap = StatsSnapshot.of({'we"ird\\name': 1, "plain": 2}, {}, {})
    assert orjson.loads(render_json(snap)) == {
        "stats": [{"name": "plain", "value": 2}, {"name": 'we"ird\\name', "value": 1}]
    }
    G = (0.5, 0.625, 0.75, 0.875, 0.95, 0.975, 0.995, 0.9975, 0.9995, 1.0)  # RQ_TIME
    plain = StatsSnapshot.of({"b": 1, "a": -2}, {"c": 3}, {"h": UNUSED, "g": RQ_TIME})
    doc = {
        "stats": [
            {"name": "a", "value": -2},
            {"name": "b", "value": 1},
            {"name": "c", "value": 3},
            {
                "histograms": {
                    "supported_quantiles": [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100],
                    "computed_quantiles": [
                        {"name": "g", "values": [{"interval": None, "cumulative": c} for c in G]},
                        {"name": "h", "values": [{"interval": None, "cumulative": None}] * 10},
                    ],
                }
            },
        ]
    }
    # Byte for byte what orjson writes for the same document.
    assert render_json(plain) == orjson.dumps(doc)


DATA = Path(__file__).parent / "data"


def _data_lines(name: str) -> list[tuple[str, str]]:
    lines = (DATA / name).read_text().splitlines()
    return [tuple(line.split(" ", 1)) for line in lines if not line.startswith("#")]  # type: ignore[misc]


def _series(stat: str) -> str:
    name, labels = metric_name(stat)
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def test_prometheus_names_and_labels_match_envoy_for_all_its_stats():
    """Every stat name Envoy 1.40 showed in /stats maps to the series it showed in
    /stats/prometheus (captured from the same process, values dropped)."""
    stats = _data_lines("envoy-1.40-stats.txt")
    envoy = _data_lines("envoy-1.40-prometheus.txt")
    assert len(stats) == len(envoy) > 600
    ours_scalar = sorted(_series(name) for kind, name in stats if kind == "scalar")
    ours_hist = sorted(_series(name) for kind, name in stats if kind == "histogram")
    assert ours_scalar == sorted(s for kind, s in envoy if kind in ("counter", "gauge"))
    assert ours_hist == sorted(s for kind, s in envoy if kind == "histogram")


@pytest.mark.parametrize(
    ("stat", "series"),
    [
        (
            "cluster.a.upstream_rq_503",
            'envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="a"}',
        ),
        (
            "listener.127.0.0.1_80.http.in.downstream_rq_5xx",
            'envoy_listener_http_downstream_rq_xx{envoy_response_code_class="5",'
            'envoy_http_conn_manager_prefix="in",envoy_listener_address="127.0.0.1_80"}',
        ),
        (
            "listener.127.0.0.1_80.worker_1.downstream_cx_total",
            'envoy_listener_worker_downstream_cx_total{envoy_worker_id="1",'
            'envoy_listener_address="127.0.0.1_80"}',
        ),
        ("listener.admin.downstream_cx_total", "envoy_listener_admin_downstream_cx_total{}"),
        (
            "cluster.a.b.upstream_rq_total",
            'envoy_cluster_b_upstream_rq_total{envoy_cluster_name="a"}',
        ),
        # grpc_stats, as Envoy 1.40 prints them (a dotted service splits at its dot).
        (
            "cluster.c0.grpc.test.Echo.Bidi.upstream_rq_time",
            'envoy_cluster_grpc_Bidi_upstream_rq_time{envoy_grpc_bridge_method="Echo",'
            'envoy_grpc_bridge_service="test",envoy_cluster_name="c0"}',
        ),
        (
            "cluster.c3.grpc.upstream_rq_time",
            'envoy_cluster_grpc_upstream_rq_time{envoy_cluster_name="c3"}',
        ),
    ],
)
def test_prometheus_series_of_typical_stats(stat, series):
    assert _series(stat) == series


def test_tag_extraction_of_an_ipv6_listener():
    assert extract_tags("listener.[__1]_80.downstream_cx_total") == (
        "listener.downstream_cx_total",
        (("envoy.listener_address", "[__1]_80"),),
    )


def test_prometheus_exposition():
    snap = StatsSnapshot.of(
        counters={
            "cluster.b.upstream_rq_total": 2,
            "cluster.a.upstream_rq_total": 1,
            "server.reload": 3,
        },
        gauges={"server.live": 1},
        histograms={
            "cluster.a.upstream_rq_time": Histogram(
                (0.5, 3600000.0), (1, 2, 1), 1.0476190476190477, 4
            )
        },
    )
    assert render_prometheus(snap).splitlines() == [
        "# TYPE envoy_cluster_upstream_rq_total counter",
        'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 1',
        'envoy_cluster_upstream_rq_total{envoy_cluster_name="b"} 2',
        "# TYPE envoy_server_reload counter",
        "envoy_server_reload{} 3",
        "# TYPE envoy_server_live gauge",
        "envoy_server_live{} 1",
        "# TYPE envoy_cluster_upstream_rq_time histogram",
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="0.5"} 1',
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="3600000"} 3',
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="a",le="+Inf"} 4',
        # Envoy prints sums with %.32g.
        'envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="a"} '
        "1.0476190476190476719153821250075",
        'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="a"} 4',
    ]


def test_prometheus_escapes_label_values_and_sanitizes_names():
    snap = StatsSnapshot.of({'cluster.we"ird\\x.upstream-rq': 1}, {}, {})
    assert render_prometheus(snap).splitlines() == [
        "# TYPE envoy_cluster_upstream_rq counter",
        'envoy_cluster_upstream_rq{envoy_cluster_name="we\\"ird\\\\x"} 1',
    ]


def test_the_engine_export_is_what_the_admin_reads():
    """The real engine: its bounds are the admin's, its lines are sorted by full name (a
    cluster named `a-b` before `a`, outlier detection stats inside `a`'s), and the admin's
    text shows every stat once."""
    from meshcore._fastpath import HISTOGRAM_BOUNDS_MS, Engine

    assert HISTOGRAM_BOUNDS_MS == ENGINE_BOUNDS_MS
    endpoints = [{"address": "127.0.0.1", "port": 1}]
    clusters = [
        {"name": "a", "endpoints": endpoints, "outlier_detection": {}},
        {"name": "a-b", "endpoints": []},
    ]
    engine = Engine(2)
    try:
        engine.apply(orjson.dumps({"listeners": [], "clusters": clusters}))
        engine.flush_histograms()
        snap = parse_engine_stats(engine.stats())
    finally:
        engine.stop()
    for kind in (snap.counters, snap.gauges, snap.histograms):
        names = kind.names()
        assert names == sorted(names) and len(set(names)) == len(names)
    assert snap.gauges["cluster.a.membership_total"] == 1
    assert snap.gauges["cluster.a-b.membership_total"] == 0
    assert snap.counters["cluster.a.outlier_detection.ejections_total"] == 0
    text = render_text(snap).splitlines()
    assert len(text) == len(snap.counters) + len(snap.gauges) + len(snap.histograms)
    assert text[-1] == "cluster.a.upstream_rq_time: No recorded values"


@pytest.mark.parametrize(
    "name",
    [
        "cluster.a.upstream_rq_200",
        "cluster.svc_rq_200.upstream_rq_2xx",
        "cluster.a_rq.x",
        "cluster.b.outlier_detection.ejections_total",
        "cluster.a.b.upstream_rq_503",
        "cluster.x.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256",
        "cluster.worker_1.upstream_cx_total",
        "cluster..upstream_rq_200",
        "cluster.a.",
    ],
)
def test_cluster_stats_share_one_tag_reading_per_stat(name):
    assert extract_tags(name) == tags_module._extract_tags(name)


def test_usedonly_keeps_nonzero_counters_gauges_and_histograms_with_samples() -> None:
    empty = Histogram(ENGINE_BOUNDS_MS, (0,) * (len(ENGINE_BOUNDS_MS) + 1), 0.0, 0)
    one = Histogram(ENGINE_BOUNDS_MS, (1,) + (0,) * len(ENGINE_BOUNDS_MS), 0.5, 1)
    snap = StatsSnapshot.of(
        {"c.used": 2, "c.unused": 0},
        {"g.set": 3, "g.zero": 0},
        {"h.empty": empty, "h.one": one},
    )
    used = select(snap, None, used_only=True)
    names = [line.split(b"\0")[0] for kind in (used.counters, used.gauges, used.histograms)
             for line in kind.lines]  # fmt: skip
    assert names == [b"c.used", b"g.set", b"h.one"]
    assert len(select(snap, None).counters.lines) == 2
