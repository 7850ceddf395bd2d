//! The engine snapshot: the JSON the control layer hands to `Engine.apply`, as serde types.
//!
//! This is the contract between `python/meshcore/config/translate_*.py` (which write it from an
//! Envoy v3 bootstrap) and the Rust engine (which compiles it). Envoy's shapes are kept, but
//! pre-digested: durations are integer milliseconds, enums are lower-case strings, deprecated
//! Envoy spellings are normalised by Python, and unknown fields are rejected.
use serde::Deserialize;

pub use super::http2::{CodecType, Http2Options};
pub use super::jwt::{JwtAuthn, JwtPerRoute};
pub use super::rbac::{HttpRbac, NetworkRbac, RbacPerRoute};
pub use super::tls::{
    ClientCertDetails, CommonTls, DownstreamTls, ForwardClientCert, SanMatcher, SanType,
    TlsCertificate, TlsParams, UpstreamTls, Validation,
};

fn default_true() -> bool {
    true
}

/// The whole configuration, swapped in atomically.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    /// The node's own address (Envoy's `local_info` address: the first non-loopback IPv4
    /// interface address, else 127.0.0.1). With `use_remote_address`, Envoy appends it to
    /// x-forwarded-for instead of a loopback peer address.
    #[serde(default = "default_local_address")]
    pub local_address: String,
    /// The overload manager's `envoy.resource_monitors.global_downstream_max_connections`
    /// (`max_active_downstream_connections`): a connection accepted while the process holds
    /// this many is closed (`listener.<prefix>.downstream_global_cx_overflow`).
    #[serde(default)]
    pub global_downstream_max_connections: Option<u64>,
}

fn default_local_address() -> String {
    "127.0.0.1".to_string()
}

/// One listening socket (`static_resources.listeners[i]`): its listener filters and filter
/// chains (`docs/filter-chains.md`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// IP literal, e.g. "0.0.0.0", "127.0.0.1", "::".
    pub address: String,
    /// 0 asks the kernel for a free port; `Engine.listener_ports()` reports it.
    pub port: u16,
    /// Listener `stat_prefix`: stats are `listener.<stat_prefix>.*` when set, else
    /// `listener.<address>_<port>.*`.
    #[serde(default)]
    pub stat_prefix: Option<String>,
    #[serde(default = "default_buffer_limit")]
    pub per_connection_buffer_limit_bytes: u32,
    /// `listener_filters`: `envoy.filters.listener.tls_inspector` (None: no listener filter).
    #[serde(default)]
    pub tls_inspector: Option<TlsInspector>,
    /// `listener_filters_timeout` (Envoy's default 15 s; 0: wait without limit).
    #[serde(default = "default_listener_filters_timeout_ms")]
    pub listener_filters_timeout_ms: u64,
    /// `continue_on_listener_filters_timeout`: on the timeout, pick a chain with what is known
    /// (false: close the connection).
    #[serde(default)]
    pub continue_on_listener_filters_timeout: bool,
    /// `filter_chains`, in order (may be empty when `default_filter_chain` is set).
    pub filter_chains: Vec<FilterChain>,
    /// `default_filter_chain`: used when no chain's `filter_chain_match` matches.
    #[serde(default)]
    pub default_filter_chain: Option<FilterChain>,
    /// `ignore_global_conn_limit`: the overload manager's global connection limit does not
    /// apply to this listener.
    #[serde(default)]
    pub ignore_global_conn_limit: bool,
    /// The listener's `access_log`: a line per connection when it closes (or is refused for
    /// want of a filter chain). Only on listeners whose chains all end in `tcp_proxy`.
    #[serde(default)]
    pub access_log: Vec<super::access_log::AccessLog>,
}

/// `envoy.filters.listener.tls_inspector`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsInspector {
    /// `max_client_hello_size` (Envoy's default 16 KiB): a larger ClientHello counts
    /// `client_hello_too_large` and closes the connection.
    #[serde(default = "default_max_client_hello_size")]
    pub max_client_hello_size: u32,
}

fn default_max_client_hello_size() -> u32 {
    16 * 1024
}
fn default_listener_filters_timeout_ms() -> u64 {
    15_000
}

/// One `filter_chains[i]` (or the `default_filter_chain`): what it matches and its network
/// filters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterChain {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub filter_chain_match: FilterChainMatch,
    /// `envoy.filters.network.local_ratelimit` filters before the terminal filter, in order.
    #[serde(default)]
    pub connection_rate_limits: Vec<ConnectionRateLimit>,
    /// `envoy.filters.network.connection_limit` filters (checked after the rate limits).
    #[serde(default)]
    pub connection_limits: Vec<ConnectionLimit>,
    /// `envoy.filters.network.rbac` filters before the terminal filter, in order.
    #[serde(default)]
    pub rbac: Vec<NetworkRbac>,
    pub filter: NetworkFilter,
    /// The filter chain's `transport_socket` (`envoy.transport_sockets.tls`): TLS is
    /// terminated before the filter runs (None: plain TCP).
    #[serde(default)]
    pub transport_socket: Option<DownstreamTls>,
}

/// `envoy.filters.network.connection_limit`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimit {
    pub stat_prefix: String,
    pub max_connections: u64,
    /// `delay`: how long a refused connection is held before it is closed (0: at once).
    #[serde(default)]
    pub delay_ms: u64,
}

/// `filter_chain_match` (Envoy's semantics: `listener/chain_match.rs`). Empty lists and
/// `None` match anything.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterChainMatch {
    #[serde(default)]
    pub destination_port: Option<u16>,
    #[serde(default)]
    pub prefix_ranges: Vec<CidrRange>,
    /// Lower-cased by Python; `*.example.com` is a wildcard.
    #[serde(default)]
    pub server_names: Vec<String>,
    /// "" (any), "raw_buffer", "tls".
    #[serde(default)]
    pub transport_protocol: String,
    #[serde(default)]
    pub application_protocols: Vec<String>,
    #[serde(default)]
    pub direct_source_prefix_ranges: Vec<CidrRange>,
    #[serde(default)]
    pub source_type: SourceType,
    #[serde(default)]
    pub source_prefix_ranges: Vec<CidrRange>,
    #[serde(default)]
    pub source_ports: Vec<u16>,
}

/// `config.core.v3.CidrRange`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CidrRange {
    pub address_prefix: String,
    #[serde(default)]
    pub prefix_len: u32,
}

/// `FilterChainMatch.source_type`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SourceType {
    #[default]
    Any,
    /// The peer is a loopback address or the connection's own local address.
    SameIpOrLoopback,
    External,
}

fn default_buffer_limit() -> u32 {
    1024 * 1024
}

/// The network filter that terminates the filter chain.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
// One per filter chain, read once per apply: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum NetworkFilter {
    HttpConnectionManager(HttpConnectionManager),
    TcpProxy(TcpProxy),
}

/// `envoy.filters.network.tcp_proxy`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpProxy {
    pub stat_prefix: String,
    /// `cluster` (one entry, weight 1) or `weighted_clusters.clusters`.
    pub clusters: Vec<TcpCluster>,
    /// No bytes either way for this long closes both sides (Envoy default 1 h; 0 disables).
    #[serde(default = "default_tcp_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connect attempts (each to a newly picked host) before giving up (default 1).
    #[serde(default = "default_max_connect_attempts")]
    pub max_connect_attempts: u32,
    /// `hash_policy: [{source_ip: {}}]`: RING_HASH / MAGLEV hash the downstream address.
    #[serde(default)]
    pub hash_source_ip: bool,
    /// `access_log`: a line per connection when it closes.
    #[serde(default)]
    pub access_log: Vec<super::access_log::AccessLog>,
    /// `access_log_options.access_log_flush_interval` (or the deprecated top-level field):
    /// a `TcpPeriodic` line this often while the connection is open (0: none).
    #[serde(default)]
    pub access_log_flush_interval_ms: u64,
    /// `access_log_options.flush_access_log_on_connected`: a `TcpUpstreamConnected` line.
    #[serde(default)]
    pub flush_access_log_on_connected: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TcpCluster {
    pub name: String,
    pub weight: u32,
}

fn default_tcp_idle_timeout_ms() -> u64 {
    3_600_000
}
fn default_max_connect_attempts() -> u32 {
    1
}

/// `envoy.filters.network.local_ratelimit`: a connection that finds no token is closed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionRateLimit {
    pub stat_prefix: String,
    pub token_bucket: TokenBucket,
}

/// `envoy.filters.network.http_connection_manager`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConnectionManager {
    pub stat_prefix: String,
    pub route_config: RouteConfig,
    /// Use the peer address as the client address and append it to x-forwarded-for.
    #[serde(default)]
    pub use_remote_address: bool,
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
    #[serde(default)]
    pub skip_xff_append: bool,
    #[serde(default = "default_true")]
    pub generate_request_id: bool,
    #[serde(default)]
    pub preserve_external_request_id: bool,
    /// Value of the `server` response header.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    #[serde(default)]
    pub server_header_transformation: ServerHeaderTransformation,
    #[serde(default = "default_max_request_headers_kb")]
    pub max_request_headers_kb: u32,
    /// `strip_any_host_port` / `strip_matching_host_port`: whether the Host port is removed
    /// before virtual host matching (and from the forwarded Host). Envoy's default: none.
    #[serde(default)]
    pub strip_port_mode: StripPortMode,
    /// `http_protocol_options.accept_http_10` (Envoy default false: HTTP/1.0 gets 426).
    #[serde(default)]
    pub accept_http_10: bool,
    /// `http_protocol_options.default_host_for_http_10`.
    #[serde(default)]
    pub default_host_for_http_10: Option<String>,
    /// Downstream connection idle timeout (`common_http_protocol_options.idle_timeout`);
    /// 0 disables. Envoy's default is 1 h.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// How long a draining listener lets connections finish (`drain_timeout`, default 5 s).
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    // Issue 4 (resilience): see the grouped types at the end of this file.
    #[serde(default)]
    pub connection_limits: ConnectionLimits,
    #[serde(default)]
    pub stream_timeouts: StreamTimeouts,
    /// Header hygiene and path normalization before routing (types below).
    #[serde(default)]
    pub request_normalization: RequestNormalization,
    /// `upgrade_configs`: the upgrades (e.g. `websocket`) this connection manager proxies.
    #[serde(default)]
    pub upgrade_configs: Vec<UpgradeConfig>,
    /// The HTTP filters before the router, in order (`http_filters`; empty: none).
    #[serde(default)]
    pub http_filters: Vec<HttpFilter>,
    /// `access_log` (types in `config/access_log.rs`; empty: no access log).
    #[serde(default)]
    pub access_log: Vec<super::access_log::AccessLog>,
    /// `access_log_options.flush_access_log_on_new_request`: a `DownstreamStart` line once
    /// a request is routed.
    #[serde(default)]
    pub flush_access_log_on_new_request: bool,
    /// `access_log_options.flush_log_on_tunnel_successfully_established`: a
    /// `DownstreamTunnelSuccessfullyEstablished` line once a CONNECT or upgrade tunnel is up.
    #[serde(default)]
    pub flush_log_on_tunnel_successfully_established: bool,
    /// `access_log_options.access_log_flush_interval`: a `DownstreamPeriodic` line this
    /// often while a request is in progress (0: none).
    #[serde(default)]
    pub access_log_flush_interval_ms: u64,
    /// `tracing` (`config/tracing.rs`; `None`: no spans, no trace headers).
    #[serde(default)]
    pub tracing: Option<super::tracing::Tracing>,
    /// `forward_client_cert_details` and `set_current_client_cert_details`
    /// (x-forwarded-client-cert; types in `config/tls.rs`).
    #[serde(default)]
    pub forward_client_cert_details: ForwardClientCert,
    #[serde(default)]
    pub set_current_client_cert_details: ClientCertDetails,
    /// `codec_type` (`config/http2.rs`).
    #[serde(default)]
    pub codec_type: CodecType,
    /// `http2_protocol_options` for HTTP/2 downstream connections.
    #[serde(default)]
    pub http2: Http2Options,
}

fn default_server_name() -> String {
    "envoy".to_string()
}
fn default_max_request_headers_kb() -> u32 {
    60
}
fn default_idle_timeout_ms() -> u64 {
    3_600_000
}
fn default_drain_timeout_ms() -> u64 {
    5_000
}

/// What the connection manager does to a request before routing it: Envoy's
/// `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`, and
/// `common_http_protocol_options.headers_with_underscores_action` / `max_headers_count`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestNormalization {
    #[serde(default)]
    pub normalize_path: bool,
    #[serde(default)]
    pub merge_slashes: bool,
    #[serde(default)]
    pub path_with_escaped_slashes_action: EscapedSlashesAction,
    #[serde(default)]
    pub headers_with_underscores_action: UnderscoresAction,
    /// More header lines than this: 431 (Envoy's default 100, also meshcore's maximum).
    #[serde(default = "default_max_headers_count")]
    pub max_headers_count: u32,
}

impl Default for RequestNormalization {
    fn default() -> Self {
        RequestNormalization {
            normalize_path: false,
            merge_slashes: false,
            path_with_escaped_slashes_action: EscapedSlashesAction::default(),
            headers_with_underscores_action: UnderscoresAction::default(),
            max_headers_count: default_max_headers_count(),
        }
    }
}

fn default_max_headers_count() -> u32 {
    100
}

/// `path_with_escaped_slashes_action` (`%2F`, `%5C` in the path).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashesAction {
    /// Also Envoy's `IMPLEMENTATION_SPECIFIC_DEFAULT`.
    #[default]
    KeepUnchanged,
    RejectRequest,
    UnescapeAndRedirect,
    UnescapeAndForward,
}

/// `headers_with_underscores_action`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnderscoresAction {
    #[default]
    Allow,
    RejectRequest,
    DropHeader,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StripPortMode {
    #[default]
    None,
    /// `strip_any_host_port: true`.
    Any,
    /// `strip_matching_host_port: true`: only when the port is the listener's.
    Matching,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServerHeaderTransformation {
    #[default]
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

/// `RouteConfiguration`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHost>,
    #[serde(default)]
    pub headers: HeaderMutations,
}

/// The four header lists Envoy allows at route config, virtual host, route and weighted
/// cluster level. Envoy applies them most specific first unless
/// `most_specific_header_mutations_wins` (not supported) says otherwise.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct HeaderMutations {
    #[serde(default)]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default)]
    pub request_headers_to_remove: Vec<String>,
    #[serde(default)]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    #[serde(default)]
    pub response_headers_to_remove: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderValueOption {
    /// Lower-cased by Python.
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub append_action: AppendAction,
    #[serde(default)]
    pub keep_empty_value: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppendAction {
    #[default]
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VirtualHost {
    pub name: String,
    /// Envoy forms: exact "a.com", suffix "*.a.com" / "*-a.com", prefix "a.*", and "*".
    /// Lower-cased by Python.
    pub domains: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub headers: HeaderMutations,
    /// `typed_per_filter_config`, keyed by filter name.
    #[serde(default)]
    pub typed_per_filter_config: Vec<PerFilterConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    pub action: RouteAction,
    #[serde(default)]
    pub headers: HeaderMutations,
    /// `typed_per_filter_config`, keyed by filter name (overrides the virtual host's).
    #[serde(default)]
    pub typed_per_filter_config: Vec<PerFilterConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    pub path: PathMatch,
    #[serde(default = "default_true")]
    pub case_sensitive: bool,
    #[serde(default)]
    pub headers: Vec<HeaderMatcher>,
    #[serde(default)]
    pub query_parameters: Vec<QueryParameterMatcher>,
}

/// Matched against the request path without the query string (`safe_regex` must match the
/// whole path, as in Envoy).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathMatch {
    Prefix(String),
    Path(String),
    SafeRegex(String),
    PathSeparatedPrefix(String),
    /// `connect_matcher: {}`: CONNECT requests only (they have no path; no other path
    /// matcher matches them).
    ConnectMatcher {},
}

/// Envoy `HeaderMatcher`. `name` is lower-cased by Python. `:authority`, `:path`, `:method`
/// and `:scheme` match the request line / host as Envoy's pseudo-headers do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatcher {
    pub name: String,
    pub rule: HeaderRule,
    #[serde(default)]
    pub invert: bool,
    #[serde(default)]
    pub treat_missing_header_as_empty: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HeaderRule {
    /// `present_match: true|false`.
    Present(bool),
    String(StringMatcher),
    /// `range_match`: start inclusive, end exclusive, on the value parsed as i64.
    Range {
        start: i64,
        end: i64,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StringMatcher {
    pub pattern: StringPattern,
    #[serde(default)]
    pub ignore_case: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StringPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// RE2 syntax, full match.
    Regex(String),
}

/// Envoy `QueryParameterMatcher`: `string_match` or `present_match`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryParameterMatcher {
    pub name: String,
    pub rule: QueryRule,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum QueryRule {
    Present(bool),
    String(StringMatcher),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
// Read once per apply: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum RouteAction {
    Route(ForwardAction),
    DirectResponse(DirectResponse),
    Redirect(Redirect),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardAction {
    pub target: ClusterTarget,
    #[serde(default)]
    pub prefix_rewrite: Option<String>,
    #[serde(default)]
    pub host_rewrite_literal: Option<String>,
    /// Route timeout in ms, from the end of the downstream request to the end of the
    /// upstream response; 0 disables. Envoy's default is 15 s.
    #[serde(default = "default_route_timeout_ms")]
    pub timeout_ms: u64,
    // Issue 4 (resilience): see the grouped types at the end of this file.
    /// The route's `retry_policy`, else its virtual host's (Python picks which).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// `include_request_attempt_count` (virtual host): send `x-envoy-attempt-count`.
    #[serde(default)]
    pub include_request_attempt_count: bool,
    #[serde(default)]
    pub request_mirror_policies: Vec<MirrorPolicy>,
    /// `hash_policy`: the request hash for RING_HASH and MAGLEV clusters.
    #[serde(default)]
    pub hash_policy: Vec<HashPolicy>,
    /// Route `idle_timeout` in ms: replaces the HCM's `stream_idle_timeout` for requests on
    /// this route (0 disables it); absent: the HCM's applies.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// Route `upgrade_configs`: enable or disable an upgrade type for this route (over the
    /// connection manager's).
    #[serde(default)]
    pub upgrade_configs: Vec<UpgradeConfig>,
    /// Route `max_stream_duration` (the message; its presence makes the route `timeout`
    /// unused, as Envoy's "new timeouts").
    #[serde(default)]
    pub max_stream_duration: Option<RouteStreamDuration>,
}

/// `RouteAction.max_stream_duration`, in ms; each field `None` when unset.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteStreamDuration {
    /// Replaces the connection manager's `max_stream_duration` (0 disables it).
    #[serde(default)]
    pub max_stream_duration_ms: Option<u64>,
    /// Set: a `grpc-timeout` request header gives the stream duration, capped by this (0: no
    /// cap).
    #[serde(default)]
    pub grpc_timeout_header_max_ms: Option<u64>,
    /// Subtracted from the `grpc-timeout` duration.
    #[serde(default)]
    pub grpc_timeout_header_offset_ms: Option<u64>,
}

/// An `upgrade_configs` entry: `upgrade_type` (lower-cased by Python; `websocket`) and
/// whether it is enabled (Envoy's default: true).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpgradeConfig {
    pub upgrade_type: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Route `connect` entries only: `connect_config` is set, so CONNECT is terminated here
    /// (200 to the client, a TCP tunnel to the cluster) instead of forwarded.
    #[serde(default)]
    pub connect_config: Option<ConnectConfig>,
}

/// `connect_config` (no field is supported yet: `allow_post` and `proxy_protocol_config`
/// are refused by the control layer).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConnectConfig {}

/// One route `hash_policy` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HashPolicy {
    pub policy: HashSource,
    /// Stop at this policy when a hash has been computed.
    #[serde(default)]
    pub terminal: bool,
}

/// What a hash policy hashes (names lower-cased by Python for headers).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HashSource {
    Header(String),
    /// An existing cookie's value (meshcore does not generate cookies).
    Cookie(String),
    SourceIp,
    QueryParameter(String),
}

fn default_route_timeout_ms() -> u64 {
    15_000
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClusterTarget {
    Cluster(String),
    WeightedClusters(Vec<WeightedCluster>),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
    #[serde(default)]
    pub headers: HeaderMutations,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectResponse {
    pub status: u16,
    #[serde(default)]
    pub body: Option<String>,
}

/// Envoy `RedirectAction`; Python maps `https_redirect: true` to `scheme_redirect: "https"`
/// and the response code enum to its number (301 default).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    #[serde(default)]
    pub scheme_redirect: Option<String>,
    #[serde(default)]
    pub host_redirect: Option<String>,
    #[serde(default)]
    pub port_redirect: Option<u16>,
    #[serde(default)]
    pub path_redirect: Option<String>,
    #[serde(default)]
    pub prefix_rewrite: Option<String>,
    #[serde(default = "default_redirect_code")]
    pub response_code: u16,
    #[serde(default)]
    pub strip_query: bool,
}

fn default_redirect_code() -> u16 {
    301
}

/// One HTTP filter of a connection manager (`http_filters[i]`, the router excluded).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpFilter {
    /// The filter's `name`: the key of per-route overrides.
    pub name: String,
    pub config: HttpFilterConfig,
}

/// A per-route override (`typed_per_filter_config` entry) for the filter named `name`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerFilterConfig {
    pub name: String,
    pub config: HttpFilterConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpFilterConfig {
    /// `envoy.extensions.filters.http.fault.v3.HTTPFault`.
    Fault(Fault),
    /// `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
    LocalRatelimit(LocalRateLimit),
    /// `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`.
    JwtAuthn(Box<JwtAuthn>),
    /// `envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig` (per-route only).
    JwtAuthnPerRoute(JwtPerRoute),
    /// `envoy.extensions.filters.http.rbac.v3.RBAC` (types in `config/rbac.rs`).
    Rbac(HttpRbac),
    /// `RBACPerRoute`: only in `typed_per_filter_config`.
    RbacPerRoute(RbacPerRoute),
    /// `envoy.extensions.filters.http.grpc_stats.v3.FilterConfig` (counts, no request work).
    GrpcStats(GrpcStatsFilter),
}

/// `grpc_stats` `FilterConfig`: per-method stats for the allowlisted methods (the others in
/// the method-less `cluster.<c>.grpc.*`), or for every method (`all_methods`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcStatsFilter {
    /// `individual_method_stats_allowlist.services`.
    #[serde(default)]
    pub allowlist: Vec<GrpcServiceMethods>,
    /// `stats_for_all_methods: true`: per-method stats for every method, none method-less.
    #[serde(default)]
    pub all_methods: bool,
    /// `replace_dots_in_grpc_service_name` (Envoy applies it to `all_methods` names only).
    #[serde(default)]
    pub replace_dots: bool,
    /// `enable_upstream_stats`: the `upstream_rq_time` histogram.
    #[serde(default)]
    pub upstream_stats: bool,
}

/// One allowlisted gRPC service and its methods.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcServiceMethods {
    pub name: String,
    #[serde(default)]
    pub method_names: Vec<String>,
}

/// Envoy `FractionalPercent`: `numerator` out of `denominator` (100, 10000 or 1000000).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    pub numerator: u32,
    pub denominator: u32,
}

/// `HTTPFault`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    #[serde(default)]
    pub delay: Option<FaultDelay>,
    #[serde(default)]
    pub abort: Option<FaultAbort>,
    /// The fault applies only to requests matching all of these.
    #[serde(default)]
    pub headers: Vec<HeaderMatcher>,
    /// The fault applies only to requests routed to this cluster.
    #[serde(default)]
    pub upstream_cluster: Option<String>,
    /// Most requests with an active fault at once (all workers); unset: no limit.
    #[serde(default)]
    pub max_active_faults: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultDelay {
    pub kind: FaultDelayKind,
    pub percentage: Percent,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultDelayKind {
    /// `fixed_delay` in ms.
    FixedMs(u64),
    /// `header_delay`: `x-envoy-fault-delay-request`.
    Header,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultAbort {
    pub kind: FaultAbortKind,
    pub percentage: Percent,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAbortKind {
    HttpStatus(u16),
    GrpcStatus(u32),
    /// `header_abort`: `x-envoy-fault-abort-request` / `x-envoy-fault-abort-grpc-request`.
    Header,
}

/// `LocalRateLimit` (HTTP).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalRateLimit {
    pub stat_prefix: String,
    #[serde(default)]
    pub token_bucket: Option<TokenBucket>,
    /// `filter_enabled.default_value` (Envoy default 0%: the filter does nothing).
    #[serde(default = "zero_percent")]
    pub filter_enabled: Percent,
    /// `filter_enforced.default_value` (Envoy default 0%).
    #[serde(default = "zero_percent")]
    pub filter_enforced: Percent,
    /// Added to the rate-limited reply (append only).
    #[serde(default)]
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// Added to a rate-limited request that is not enforced (append only).
    #[serde(default)]
    pub request_headers_to_add_when_not_enforced: Vec<HeaderValueOption>,
    /// `status.code` (default 429).
    #[serde(default = "default_rate_limited_status")]
    pub status: u16,
    /// `enable_x_ratelimit_headers: DRAFT_VERSION_03`.
    #[serde(default)]
    pub enable_x_ratelimit_headers: bool,
    /// `local_rate_limit_per_downstream_connection`.
    #[serde(default)]
    pub per_downstream_connection: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenBucket {
    pub max_tokens: u32,
    #[serde(default = "default_tokens_per_fill")]
    pub tokens_per_fill: u32,
    pub fill_interval_ms: u64,
}

fn zero_percent() -> Percent {
    Percent {
        numerator: 0,
        denominator: 100,
    }
}
fn default_rate_limited_status() -> u16 {
    429
}
fn default_tokens_per_fill() -> u32 {
    1
}

/// One upstream cluster.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    /// `alt_stat_name`: the name in the cluster's stats (`cluster.<alt_stat_name>.*`) and in
    /// `%UPSTREAM_CLUSTER%` instead of `name` (absent: `name`).
    #[serde(default)]
    pub alt_stat_name: Option<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default)]
    pub lb_policy: LbPolicy,
    /// `least_request_lb_config.choice_count` (default 2).
    #[serde(default = "default_choice_count")]
    pub least_request_choice_count: u32,
    /// Resolved addresses (STATIC from `load_assignment`; STRICT_DNS resolved by Python).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Upstream keep-alive idle timeout (`common_http_protocol_options.idle_timeout`,
    /// Envoy default 1 h); 0 disables.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Most idle keep-alive connections one worker keeps per host.
    #[serde(default = "default_max_idle_per_host")]
    pub max_idle_per_host: u32,
    #[serde(default = "default_buffer_limit")]
    pub per_connection_buffer_limit_bytes: u32,
    // Issue 4 (resilience): see the grouped types at the end of this file.
    /// `circuit_breakers.thresholds` (DEFAULT priority).
    #[serde(default)]
    pub circuit_breakers: CircuitBreakers,
    /// `common_http_protocol_options.max_requests_per_connection`; 0: no limit.
    #[serde(default)]
    pub max_requests_per_connection: u32,
    /// `common_http_protocol_options.max_connection_duration` in ms; 0: no limit. An older
    /// connection is closed when idle and not reused.
    #[serde(default)]
    pub max_connection_duration_ms: u64,
    /// Balancing beyond the policy: panic threshold, priorities, bias, hash tables.
    #[serde(default)]
    pub lb: LbSettings,
    /// `outlier_detection`; absent disables it.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// `transport_socket` (`envoy.transport_sockets.tls`): connections to the hosts are TLS.
    #[serde(default)]
    pub transport_socket: Option<UpstreamTls>,
    /// `explicit_http_config.http2_protocol_options`: requests go upstream over HTTP/2
    /// (`http2/client.rs`); absent: HTTP/1.1.
    #[serde(default)]
    pub http2: Option<Http2Options>,
    /// `use_downstream_protocol_config`: `http2` applies only to requests that came over
    /// HTTP/2; those that came over HTTP/1.1 go upstream over HTTP/1.1.
    #[serde(default)]
    pub http2_follows_downstream: bool,
    /// `auto_config`: TLS with ALPN `h2,http/1.1`; the protocol the host chose picks the
    /// codec (`http2` holds the HTTP/2 options; no ALPN chosen: HTTP/1.1).
    #[serde(default)]
    pub http_auto: bool,
}

impl Cluster {
    /// The name of the cluster's stats scope (`cluster.<stat_name>.*`) and of
    /// `%UPSTREAM_CLUSTER%`: `alt_stat_name` when set, else `name` (Envoy's observability name).
    pub fn stat_name(&self) -> &str {
        self.alt_stat_name.as_deref().unwrap_or(&self.name)
    }
}

/// `common_lb_config`, the policy's own config, and the load assignment's `policy`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LbSettings {
    /// `common_lb_config.healthy_panic_threshold` in percent (default 50; 0 disables).
    #[serde(default = "default_panic_threshold_pct")]
    pub healthy_panic_threshold_pct: u32,
    /// `load_assignment.policy.overprovisioning_factor` (default 140).
    #[serde(default = "default_overprovisioning_factor")]
    pub overprovisioning_factor: u32,
    /// `least_request_lb_config.active_request_bias` (default 1.0).
    #[serde(default = "default_active_request_bias")]
    pub active_request_bias: f64,
    /// `ring_hash_lb_config.minimum_ring_size` (default 1024).
    #[serde(default = "default_min_ring")]
    pub minimum_ring_size: u64,
    /// `ring_hash_lb_config.maximum_ring_size` (default 8M).
    #[serde(default = "default_max_ring")]
    pub maximum_ring_size: u64,
    /// `maglev_lb_config.table_size` (default 65537, a prime).
    #[serde(default = "default_maglev_table")]
    pub maglev_table_size: u64,
}

impl Default for LbSettings {
    fn default() -> Self {
        LbSettings {
            healthy_panic_threshold_pct: default_panic_threshold_pct(),
            overprovisioning_factor: default_overprovisioning_factor(),
            active_request_bias: default_active_request_bias(),
            minimum_ring_size: default_min_ring(),
            maximum_ring_size: default_max_ring(),
            maglev_table_size: default_maglev_table(),
        }
    }
}

fn default_panic_threshold_pct() -> u32 {
    50
}
fn default_overprovisioning_factor() -> u32 {
    140
}
fn default_active_request_bias() -> f64 {
    1.0
}
fn default_min_ring() -> u64 {
    1024
}
fn default_max_ring() -> u64 {
    8 * 1024 * 1024
}
fn default_maglev_table() -> u64 {
    65_537
}

/// `outlier_detection`: Envoy's fields, durations in ms, percentages 0..100.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(default = "default_consecutive")]
    pub consecutive_5xx: u32,
    #[serde(default = "default_consecutive")]
    pub consecutive_gateway_failure: u32,
    #[serde(default = "default_consecutive")]
    pub consecutive_local_origin_failure: u32,
    #[serde(default)]
    pub split_external_local_origin_errors: bool,
    #[serde(default = "default_od_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "default_base_ejection_ms")]
    pub base_ejection_time_ms: u64,
    #[serde(default = "default_max_ejection_ms")]
    pub max_ejection_time_ms: u64,
    #[serde(default = "default_max_ejection_percent")]
    pub max_ejection_percent: u32,
    #[serde(default = "default_hundred")]
    pub enforcing_consecutive_5xx: u32,
    #[serde(default)]
    pub enforcing_consecutive_gateway_failure: u32,
    #[serde(default = "default_hundred")]
    pub enforcing_consecutive_local_origin_failure: u32,
    #[serde(default = "default_hundred")]
    pub enforcing_success_rate: u32,
    #[serde(default = "default_hundred")]
    pub enforcing_local_origin_success_rate: u32,
    #[serde(default = "default_success_rate_minimum_hosts")]
    pub success_rate_minimum_hosts: u32,
    #[serde(default = "default_success_rate_request_volume")]
    pub success_rate_request_volume: u32,
    #[serde(default = "default_success_rate_stdev_factor")]
    pub success_rate_stdev_factor: u32,
    #[serde(default)]
    pub enforcing_failure_percentage: u32,
    #[serde(default)]
    pub enforcing_failure_percentage_local_origin: u32,
    #[serde(default = "default_failure_percentage_threshold")]
    pub failure_percentage_threshold: u32,
    #[serde(default = "default_success_rate_minimum_hosts")]
    pub failure_percentage_minimum_hosts: u32,
    #[serde(default = "default_failure_percentage_request_volume")]
    pub failure_percentage_request_volume: u32,
}

fn default_consecutive() -> u32 {
    5
}
fn default_od_interval_ms() -> u64 {
    10_000
}
fn default_base_ejection_ms() -> u64 {
    30_000
}
fn default_max_ejection_ms() -> u64 {
    300_000
}
fn default_max_ejection_percent() -> u32 {
    10
}
fn default_hundred() -> u32 {
    100
}
fn default_success_rate_minimum_hosts() -> u32 {
    5
}
fn default_success_rate_request_volume() -> u32 {
    100
}
fn default_success_rate_stdev_factor() -> u32 {
    1900
}
fn default_failure_percentage_threshold() -> u32 {
    85
}
fn default_failure_percentage_request_volume() -> u32 {
    50
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_choice_count() -> u32 {
    2
}
fn default_max_idle_per_host() -> u32 {
    1024
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
    Maglev,
}

/// One upstream host; also the element type of `Engine.update_endpoints`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// IP literal.
    pub address: String,
    pub port: u16,
    /// `load_balancing_weight` (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// False takes the host out of load balancing (EDS health / active health checks).
    #[serde(default = "default_true")]
    pub healthy: bool,
    /// `LocalityLbEndpoints.priority` (0 is the highest).
    #[serde(default)]
    pub priority: u32,
}

fn default_weight() -> u32 {
    1
}

// ---- Issue 4 (resilience): retries, circuit breakers, request mirroring ----

/// Envoy `RetryPolicy`, pre-digested by Python (`translate_retry.py`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// `retry_on`, split on commas: `5xx`, `gateway-error`, `reset`, `connect-failure`,
    /// `retriable-4xx`, `refused-stream`, `retriable-status-codes`, `retriable-headers`.
    #[serde(default)]
    pub retry_on: Vec<String>,
    /// `num_retries` (Envoy default 1).
    #[serde(default = "default_num_retries")]
    pub num_retries: u32,
    /// `per_try_timeout` in ms; 0: none (the route timeout applies).
    #[serde(default)]
    pub per_try_timeout_ms: u64,
    /// `per_try_idle_timeout` in ms; 0: none. An attempt whose upstream sends nothing for
    /// this long is abandoned (and retried like a per-try timeout).
    #[serde(default)]
    pub per_try_idle_timeout_ms: u64,
    /// `retry_back_off.base_interval` (default 25 ms).
    #[serde(default = "default_retry_base_ms")]
    pub base_interval_ms: u64,
    /// `retry_back_off.max_interval` (default 10 × base).
    #[serde(default)]
    pub max_interval_ms: Option<u64>,
    #[serde(default)]
    pub retriable_status_codes: Vec<u16>,
    /// Matched against the response headers.
    #[serde(default)]
    pub retriable_headers: Vec<HeaderMatcher>,
    /// `retry_host_predicate` `envoy.retry_host_predicates.previous_hosts`.
    #[serde(default)]
    pub previous_hosts: bool,
    /// Envoy's default: one more host selection.
    #[serde(default = "default_num_retries")]
    pub host_selection_retry_max_attempts: u32,
    /// Route / virtual host `per_request_buffer_limit_bytes`; else the listener's
    /// `per_connection_buffer_limit_bytes`. A request body larger than this is not retried.
    #[serde(default)]
    pub per_request_buffer_limit_bytes: Option<u32>,
}

fn default_num_retries() -> u32 {
    1
}
fn default_retry_base_ms() -> u64 {
    25
}

/// `circuit_breakers.thresholds[priority=DEFAULT]` with Envoy's defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakers {
    #[serde(default = "default_breaker_limit")]
    pub max_connections: u32,
    #[serde(default = "default_breaker_limit")]
    pub max_pending_requests: u32,
    #[serde(default = "default_breaker_limit")]
    pub max_requests: u32,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// `track_remaining`: publish `circuit_breakers.default.remaining_*`.
    #[serde(default)]
    pub track_remaining: bool,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            track_remaining: false,
        }
    }
}

fn default_breaker_limit() -> u32 {
    1024
}
fn default_max_retries() -> u32 {
    3
}

/// One `request_mirror_policies` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MirrorPolicy {
    pub cluster: String,
    /// `runtime_fraction.default_value` as parts per million (default 1 000 000: all).
    #[serde(default = "default_mirror_ppm")]
    pub fraction_ppm: u32,
}

fn default_mirror_ppm() -> u32 {
    1_000_000
}

/// Downstream `common_http_protocol_options` limits and HCM `request_headers_timeout`
/// (0: none).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// After this many requests the connection closes (`connection: close` on the last).
    #[serde(default)]
    pub max_requests_per_connection: u32,
    /// After this long the connection closes: at once when idle, else after its request.
    #[serde(default)]
    pub max_connection_duration_ms: u64,
    /// HCM `request_headers_timeout`: a head not complete this long after its first byte
    /// gets 408 `request header timeout`.
    #[serde(default)]
    pub request_headers_timeout_ms: u64,
}

/// HCM `stream_idle_timeout` (default 5 min; 0 disables) and `request_timeout` (default 0:
/// disabled), in ms.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamTimeouts {
    /// A request with no bytes flowing either way for this long is ended: 408/504
    /// `stream timeout` before the response started, else the connection is reset. A
    /// route's `idle_timeout` replaces it.
    #[serde(default = "default_stream_idle_timeout_ms")]
    pub stream_idle_timeout_ms: u64,
    /// The whole request must be received within this (408 `request timeout`).
    #[serde(default)]
    pub request_timeout_ms: u64,
    /// `common_http_protocol_options.max_stream_duration`: a stream still open this long
    /// after its first byte is ended (0: no limit). A route's `max_stream_duration` replaces
    /// it.
    #[serde(default)]
    pub max_stream_duration_ms: u64,
}

impl Default for StreamTimeouts {
    fn default() -> Self {
        StreamTimeouts {
            stream_idle_timeout_ms: default_stream_idle_timeout_ms(),
            request_timeout_ms: 0,
            max_stream_duration_ms: 0,
        }
    }
}

fn default_stream_idle_timeout_ms() -> u64 {
    300_000
}
