"""Micro benchmarks of meshcore's control path (pytest-benchmark) and the regression guard."""
