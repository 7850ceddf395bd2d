//! Snapshot type of the connection manager's `tracing` (Envoy's
//! `HttpConnectionManager.Tracing` with the Zipkin or OpenTelemetry provider, pre-digested by
//! `python/meshcore/config/translate_tracing.py`).
use serde::Deserialize;

/// Which propagation headers a tracer reads and writes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TraceProvider {
    /// `envoy.tracers.zipkin`: B3 (multi-header `x-b3-*`, or the single `b3` header).
    Zipkin,
    /// `envoy.tracers.opentelemetry`: W3C `traceparent` / `tracestate`.
    Opentelemetry,
}

/// `tracing` of one connection manager.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tracing {
    /// The control layer's exporter the spans go to (an index it assigned).
    pub tracer: u32,
    pub provider: TraceProvider,
    /// `random_sampling`, `client_sampling`, `overall_sampling` in hundredths of a percent
    /// (0..=10000).
    pub random_sampling: u32,
    pub client_sampling: u32,
    pub overall_sampling: u32,
    /// The listener's `traffic_direction` is OUTBOUND: CLIENT spans, never shared.
    #[serde(default)]
    pub egress: bool,
    /// ZipkinConfig `shared_span_context` (default true): an ingress span reuses the
    /// incoming span id.
    #[serde(default)]
    pub shared_span_context: bool,
    /// ZipkinConfig `trace_id_128bit`: new traces get 128-bit ids.
    #[serde(default)]
    pub trace_id_128bit: bool,
    /// `max_path_tag_length` (Envoy's default 256).
    pub max_path_tag_length: u32,
    /// `node.id` and `node.locality.zone` (the `node_id` and `zone` tags).
    #[serde(default)]
    pub node_id: String,
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub custom_tags: Vec<CustomTag>,
    /// What the control layer's exporter needs (collector cluster, path, service name);
    /// not read by the data path.
    #[serde(default)]
    pub export: TraceExport,
}

/// Where the control layer sends the spans (unused by the data path).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct TraceExport {
    /// `zipkin`, `opentelemetry` (OTLP/HTTP) or `opentelemetry_grpc`.
    pub kind: String,
    /// The collector cluster.
    pub cluster: String,
    /// `collector_endpoint`, or the `http_uri` path.
    pub path: String,
    /// The `http_uri` authority (the Host of OTLP reports).
    #[serde(default)]
    pub authority: String,
    #[serde(default)]
    pub timeout_ms: u64,
    /// OpenTelemetry `service_name`.
    #[serde(default)]
    pub service_name: String,
    /// `node.cluster` (Zipkin's `localEndpoint.serviceName`).
    #[serde(default)]
    pub service_cluster: String,
}

/// `custom_tags[i]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomTag {
    pub tag: String,
    pub value: CustomTagValue,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomTagValue {
    Literal(String),
    /// A request header (lower-case name), else `default_value` (no tag when neither).
    RequestHeader {
        name: String,
        #[serde(default)]
        default_value: Option<String>,
    },
}
