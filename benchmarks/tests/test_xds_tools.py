"""The xDS latency tools: the transport-floor driver (every client variant, meshcore's own
stream included, opens its stream to the test ADS server and ACKs every pushed route
config), the traced run's join of the process's time stamps with the server's, and the
in-process measure (each kind of update ACKed and timed)."""

from types import SimpleNamespace

import trio

from benchmarks.xds import in_process, traced, transport_floor


def test_each_floor_variant_acks_every_push():
    variants = ["sync", "sync-direct", "meshcore", "aio-trio", "sync-trio:FLOOR_WORK_MS=0.1"]
    results = transport_floor.drive(variants, rounds=3, envoy=False)
    assert sorted(results) == sorted(variants)
    for variant, figures in results.items():
        assert figures["samples"] == 3, variant
        assert 0 < figures["p50"] <= figures["p99"], variant


def _record(nonce: str, start: float, stage_s: float) -> dict[str, object]:
    return {
        "nonce": nonce,
        "poll_start": start + 0.001,
        "stage_start": start + 0.002,
        "stage_end": start + 0.002 + stage_s,
        "d_pgv": 0.0001,
        "n_pgv": 2,
    }


def test_the_traced_report_joins_by_nonce_and_leaves_out_loads():
    server = SimpleNamespace(
        sent={"1": 10.0, "2": 20.0, "3": 30.0},
        acks={"1": 10.004, "2": 20.006, "3": 30.5},
    )
    lines = [
        _record("1", 10.0, 0.0005),
        _record("2", 20.0, 0.0005),
        _record("3", 30.0, 0.4),  # a 10,000-cluster load, not a change
        _record("4", 40.0, 0.0005),  # never ACKed
    ]
    rows = traced.report(lines, server)  # type: ignore[arg-type]
    assert rows[0] == "2 responses, p50 ms"
    by_label = {row[:62].strip(): row[62:].strip() for row in rows[1:]}
    assert by_label["server send → ACK"] == "5.000"  # the median of 4 and 6 ms
    assert by_label["server send → grpcio's polling thread runs the deserializer"] == "1.000"
    assert by_label["stage: check and plan"] == "0.500"
    assert by_label["pgv (2×)"] == "0.100"  # two calls, 0.1 ms in all


def test_the_in_process_measure_pushes_each_kind_and_times_it():
    for kind, size in (("route", 0), ("vhosts", 5), ("root", 5), ("eds", 5)):
        figures = trio.run(in_process._measure, kind, size, 3)
        assert figures["warm_p50_ms"] > 0, kind
        assert 0 < figures["cold_p50_ms"] <= figures["cold_max_ms"], kind
