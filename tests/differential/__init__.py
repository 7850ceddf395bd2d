"""Differential tests: the same bootstrap and requests against real Envoy and meshcore."""
