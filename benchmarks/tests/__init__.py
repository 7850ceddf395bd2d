"""Tests of the benchmark harness logic (no network): `python -m pytest benchmarks/tests`."""
