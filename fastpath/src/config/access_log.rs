//! Snapshot types of the connection manager's `access_log` list (Envoy's
//! `envoy.config.accesslog.v3.AccessLog` with the file / stdout / stderr loggers), written by
//! `python/meshcore/config/translate_access_log.py`.
use std::collections::BTreeMap;

use serde::Deserialize;

/// One access log: where lines go, their format and which requests are logged.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    pub sink: AccessLogSink,
    /// Absent: Envoy's default text format.
    #[serde(default)]
    pub format: AccessLogFormat,
    /// Absent: every request is logged.
    #[serde(default)]
    pub filter: Option<AccessLogFilter>,
}

/// `envoy.access_loggers.file` (`{"file": "/path"}`, `/dev/stdout` and `/dev/stderr`
/// included) or `envoy.access_loggers.stdout` / `stderr`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessLogSink {
    File(String),
    Stdout,
    Stderr,
}

/// `log_format`: Envoy's default, `text_format_source.inline_string` or `json_format`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessLogFormat {
    #[default]
    Default,
    Text(String),
    /// Keys in Envoy's output order (sorted, as Envoy's `Struct` is).
    Json(BTreeMap<String, JsonFormatValue>),
}

/// A `json_format` value: a format string or a nested object.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JsonFormatValue {
    Text(String),
    Object(BTreeMap<String, JsonFormatValue>),
}

/// Access log `filter` (the runtime-free ones).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessLogFilter {
    StatusCode(Comparison),
    /// Compared with `%DURATION%` in milliseconds.
    Duration(Comparison),
    NotHealthCheck,
    /// Envoy flag names (`UH`, `NR`, ...); empty: any flag.
    ResponseFlag(Vec<String>),
    And(Vec<AccessLogFilter>),
    Or(Vec<AccessLogFilter>),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub op: ComparisonOp,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonOp {
    Eq,
    Ge,
    Le,
    Ne,
}
