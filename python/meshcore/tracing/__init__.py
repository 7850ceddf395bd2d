"""Distributed tracing in the control layer: spans the engine queued are drained in batches
(`Engine.take_spans`) and exported to Zipkin (v2 JSON) or an OpenTelemetry collector
(OTLP/HTTP protobuf)."""
