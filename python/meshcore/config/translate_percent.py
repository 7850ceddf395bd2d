"""Envoy `FractionalPercent` / `RuntimeFractionalPercent` into the snapshot's `Percent`."""

from __future__ import annotations

from typing import Any

from envoy.type.v3 import percent_pb2

_DENOMINATORS = {0: 100, 1: 10_000, 2: 1_000_000}


def fractional_percent(percent: percent_pb2.FractionalPercent) -> dict[str, Any]:
    """`{numerator, denominator}` with the denominator as a number (HUNDRED: 100 ...)."""
    return {
        "numerator": percent.numerator,
        "denominator": _DENOMINATORS.get(percent.denominator, 100),
    }
