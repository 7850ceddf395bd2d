"""The snapshot fuzzer's corpus (`fastpath/tests/corpus/`) is what meshcore's config path
produces today: a stale corpus would fuzz a schema the engine no longer reads."""

from __future__ import annotations

from tests.config.snapshot_corpus import CORPUS, snapshots


def test_corpus_is_current() -> None:
    expected = snapshots()
    on_disk = {p.name: p.read_bytes() for p in CORPUS.glob("*.json")}
    assert sorted(on_disk) == sorted(expected)
    stale = [name for name, data in expected.items() if on_disk[name] != data]
    assert not stale, f"regenerate with `python -m tests.config.snapshot_corpus`: {stale}"
