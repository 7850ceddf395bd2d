"""meshcore: a service-mesh sidecar proxy with Envoy v3 config and a Rust data path."""

__version__ = "0.1.0"
