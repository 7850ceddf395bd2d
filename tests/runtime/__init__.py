"""Tests of the control-layer runtime (CLI, lifecycle, admin, DNS) against a fake engine."""
