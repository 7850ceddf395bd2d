"""Keeps the fake engine and the runtime's EngineApi honest against `_fastpath.pyi`."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from meshcore.lifecycle.interfaces import EngineApi

from tests.runtime.fakes import FakeEngine

STUB = Path(__file__).resolve().parents[2] / "python" / "meshcore" / "_fastpath.pyi"


def stub_methods() -> dict[str, list[str]]:
    tree = ast.parse(STUB.read_text())
    engine = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    return {
        fn.name: [a.arg for a in fn.args.args]
        for fn in engine.body
        if isinstance(fn, ast.FunctionDef)
    }


def params(cls: type, name: str) -> list[str]:
    return list(inspect.signature(getattr(cls, name)).parameters)


def test_fake_engine_matches_the_stub():
    for name, args in stub_methods().items():
        assert params(FakeEngine, name) == args, name


def test_engine_api_is_the_stub_minus_the_constructor():
    stub = stub_methods()
    api = {n for n, v in vars(EngineApi).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert api == set(stub) - {"__init__"}
    for name in api:
        assert params(EngineApi, name) == stub[name], name
