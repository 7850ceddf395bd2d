"""Envoy's admin API served by the control layer (HTTP/1.1 on trio via h11)."""
