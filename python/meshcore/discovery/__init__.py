"""Endpoint discovery done by the control layer (STRICT_DNS resolution)."""
