"""The table of Envoy fields meshcore implements: per message, the fields it may set (and, for
enums, the values; for typed configs, the types). Any other set field is a problem; nothing
is silently ignored. `markdown_table()` renders it for the README."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault"
LOCAL_RATELIMIT = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
NETWORK_LOCAL_RATELIMIT = "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
UPSTREAM_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_LOG = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR_LOG = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"


@dataclass(frozen=True)
class Rule:
    """How a supported field is checked."""

    values: frozenset[str] | None = None
    """Enum: the values implemented (None: all)."""
    later_values: frozenset[str] = frozenset()
    """Enum: values planned ("not supported yet")."""
    types: frozenset[str] | None = None
    """Typed config (`Any`): the message types implemented."""
    later_types: frozenset[str] = frozenset()
    """Typed config: types planned ("not supported yet")."""
    filter_kind: bool = False
    """Typed config of a filter: problems name the filter (`filter x is not supported`)."""
    opaque: bool = False
    """Accepted whole: meshcore does not act on what is inside."""
    empty: str = ""
    """Accepted only when nothing inside is set; otherwise this is the problem."""
    note: str = ""


@dataclass(frozen=True)
class Message:
    """The supported fields of one message type."""

    fields: Mapping[str, Rule]
    later: frozenset[str] = frozenset()
    """Fields not supported yet but planned (their problem says "not supported yet")."""
    note: str = ""


def ok(note: str = "") -> Rule:
    return Rule(note=note)


def enum(*values: str, later: tuple[str, ...] = (), note: str = "") -> Rule:
    return Rule(values=frozenset(values), later_values=frozenset(later), note=note)


def typed(
    *types: str, filter_kind: bool = False, later: tuple[str, ...] = (), note: str = ""
) -> Rule:
    return Rule(
        types=frozenset(types), later_types=frozenset(later), filter_kind=filter_kind, note=note
    )


def opaque(note: str = "") -> Rule:
    return Rule(opaque=True, note=note)


def message(later: tuple[str, ...] = (), note: str = "", **fields: Rule) -> Message:
    return Message(fields=fields, later=frozenset(later), note=note)


def with_header_lists(spec: Message) -> Message:
    """`spec` plus the four header lists (`request_headers_to_add`...)."""
    lists = (
        "request_headers_to_add",
        "request_headers_to_remove",
        "response_headers_to_add",
        "response_headers_to_remove",
    )
    return Message({**spec.fields, **{name: ok() for name in lists}}, spec.later, spec.note)


_RUNTIME_NOOP = "no runtime: the configured value applies"
PER_FILTER_CONFIG = typed(
    FAULT, LOCAL_RATELIMIT, note="keyed by filter name; the route's wins over the virtual host's"
)

FILTER_MESSAGES: dict[str, Message] = {
    FAULT: message(
        later=("response_rate_limit",),
        delay=ok(),
        abort=ok(),
        headers=ok(),
        upstream_cluster=ok(),
        max_active_faults=ok(),
        delay_percent_runtime=ok(_RUNTIME_NOOP),
        abort_percent_runtime=ok(_RUNTIME_NOOP),
        delay_duration_runtime=ok(_RUNTIME_NOOP),
        abort_http_status_runtime=ok(_RUNTIME_NOOP),
        abort_grpc_status_runtime=ok(_RUNTIME_NOOP),
        max_active_faults_runtime=ok(_RUNTIME_NOOP),
        response_rate_limit_percent_runtime=ok(_RUNTIME_NOOP),
        disable_downstream_cluster_stats=ok("no per-downstream-cluster stats are kept"),
        note="the delay is a timer (the worker runs on); filters after a delay see the request "
        "as it arrived",
    ),
    "envoy.extensions.filters.common.fault.v3.FaultDelay": message(
        fixed_delay=ok(), header_delay=ok(), percentage=ok("default 0%")
    ),
    "envoy.extensions.filters.common.fault.v3.FaultDelay.HeaderDelay": message(
        note="`x-envoy-fault-delay-request` (ms), `x-envoy-fault-delay-request-percentage`"
    ),
    "envoy.extensions.filters.http.fault.v3.FaultAbort": message(
        http_status=ok(), grpc_status=ok(), header_abort=ok(), percentage=ok("default 0%")
    ),
    "envoy.extensions.filters.http.fault.v3.FaultAbort.HeaderAbort": message(
        note="`x-envoy-fault-abort-request`, `x-envoy-fault-abort-grpc-request`, "
        "`x-envoy-fault-abort-request-percentage`"
    ),
    "envoy.type.v3.FractionalPercent": message(
        numerator=ok(), denominator=enum("HUNDRED", "TEN_THOUSAND", "MILLION")
    ),
    LOCAL_RATELIMIT: message(
        later=(
            "descriptors",
            "stage",
            "local_cluster_rate_limit",
            "vh_rate_limits",
            "always_consume_default_token_bucket",
            "rate_limited_as_resource_exhausted",
            "rate_limits",
            "max_dynamic_descriptors",
        ),
        stat_prefix=ok(),
        status=ok("below 400: 429, as Envoy"),
        token_bucket=ok("shared by all workers"),
        filter_enabled=ok("default 0%"),
        filter_enforced=ok("default 0%"),
        request_headers_to_add_when_not_enforced=ok("APPEND_IF_EXISTS_OR_ADD only"),
        response_headers_to_add=ok("APPEND_IF_EXISTS_OR_ADD only"),
        local_rate_limit_per_downstream_connection=ok("true: a bucket per downstream connection"),
        enable_x_ratelimit_headers=enum(
            "OFF",
            "DRAFT_VERSION_03",
            note="on every response to a request the bucket counted (proxied or local)",
        ),
    ),
    "envoy.type.v3.TokenBucket": message(
        max_tokens=ok(), tokens_per_fill=ok("default 1"), fill_interval=ok("at least 50ms")
    ),
    "envoy.config.core.v3.RuntimeFractionalPercent": message(
        default_value=ok(), runtime_key=ok(_RUNTIME_NOOP)
    ),
    "envoy.type.v3.HttpStatus": message(code=ok()),
}

HEALTH_CHECK_MESSAGES: dict[str, Message] = {
    "envoy.config.core.v3.HealthCheck": message(
        later=(
            "grpc_health_check",
            "event_log_path",
            "event_logger",
            "tls_options",
            "transport_socket_match_criteria",
        ),
        timeout=ok(),
        interval=ok(),
        initial_jitter=ok(),
        interval_jitter=ok(),
        interval_jitter_percent=ok(),
        unhealthy_threshold=ok(),
        healthy_threshold=ok(),
        reuse_connection=ok(),
        http_health_check=ok(),
        tcp_health_check=ok(),
        no_traffic_interval=ok("until the cluster's first upstream connection (default 60s)"),
        no_traffic_healthy_interval=ok(),
        unhealthy_interval=ok(),
        unhealthy_edge_interval=ok(),
        healthy_edge_interval=ok(),
        always_log_health_check_failures=ok("failed checks are logged at info"),
        always_log_health_check_success=ok("no effect (no event log)"),
    ),
    "envoy.config.core.v3.HealthCheck.HttpHealthCheck": message(
        later=("send", "service_name_matcher"),
        host=ok("default: the cluster name"),
        path=ok(),
        method=enum(
            "METHOD_UNSPECIFIED",
            "GET",
            "HEAD",
            "POST",
            "PUT",
            "DELETE",
            "OPTIONS",
            "TRACE",
            "PATCH",
        ),
        expected_statuses=ok("default 200"),
        retriable_statuses=ok(),
        receive=ok(),
        response_buffer_size=ok(),
        request_headers_to_add=ok(),
        request_headers_to_remove=ok(),
        codec_client_type=enum("HTTP1", later=("HTTP2",)),
        note="HTTP/1.1; `x-envoy-degraded` marks a host degraded, but degraded hosts still "
        "take traffic like healthy ones",
    ),
    "envoy.config.core.v3.HealthCheck.TcpHealthCheck": message(
        later=("proxy_protocol_config",),
        send=ok("not written when `receive` is empty (as Envoy)"),
        receive=ok(),
    ),
    "envoy.config.core.v3.HealthCheck.Payload": message(
        text=ok("hex"),
        binary=ok("Envoy 1.40 does not write a `binary` tcp `send`; meshcore does"),
    ),
}

# Issue 4: retries, circuit breakers, request mirroring.
RESILIENCE_MESSAGES: dict[str, Message] = {
    "envoy.config.route.v3.RetryPolicy": message(
        retry_on=ok(
            "5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, "
            "retriable-status-codes, retriable-headers; gRPC (trailers-only): cancelled, "
            "deadline-exceeded, resource-exhausted, unavailable, internal"
        ),
        num_retries=ok("default 1"),
        per_try_timeout=ok(),
        per_try_idle_timeout=ok(
            "from the request's end, restarted by response bytes; retried like per_try_timeout"
        ),
        retry_host_predicate=ok("previous_hosts only"),
        host_selection_retry_max_attempts=ok(),
        retriable_status_codes=ok(),
        retry_back_off=ok(),
        retriable_headers=ok(),
    ),
    "envoy.config.route.v3.RetryPolicy.RetryBackOff": message(
        base_interval=ok("default 25ms"), max_interval=ok("default 10 × base_interval")
    ),
    "envoy.config.route.v3.RetryPolicy.RetryHostPredicate": message(
        name=ok(), typed_config=typed(PREVIOUS_HOSTS)
    ),
    PREVIOUS_HOSTS: message(),
    "envoy.config.route.v3.RouteAction.RequestMirrorPolicy": message(
        cluster=ok(), runtime_fraction=ok("default_value only")
    ),
    "envoy.config.cluster.v3.CircuitBreakers": message(thresholds=ok()),
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds": message(
        priority=enum("DEFAULT", later=("HIGH",)),
        max_connections=ok("default 1024"),
        max_pending_requests=ok("default 1024"),
        max_requests=ok("default 1024"),
        max_retries=ok("default 3"),
        track_remaining=ok(),
    ),
}

# Issue 8: the connection manager's access logs (docs/access-logs.md).
_COMPARISON = "envoy.config.accesslog.v3.ComparisonFilter"
ACCESS_LOG_MESSAGES: dict[str, Message] = {
    "envoy.config.accesslog.v3.AccessLog": message(
        name=ok(), filter=ok(), typed_config=typed(FILE_LOG, STDOUT_LOG, STDERR_LOG)
    ),
    "envoy.config.accesslog.v3.AccessLogFilter": message(
        later=(
            "traceable_filter",
            "runtime_filter",
            "header_filter",
            "grpc_status_filter",
            "extension_filter",
            "metadata_filter",
            "log_type_filter",
        ),
        status_code_filter=ok(),
        duration_filter=ok("compared with %DURATION% (ms)"),
        not_health_check_filter=ok("meshcore has no health check filter: matches every request"),
        response_flag_filter=ok("flags meshcore never sets never match"),
        and_filter=ok(),
        or_filter=ok(),
    ),
    "envoy.config.accesslog.v3.StatusCodeFilter": message(comparison=ok()),
    "envoy.config.accesslog.v3.DurationFilter": message(comparison=ok()),
    _COMPARISON: message(op=enum("EQ", "GE", "LE", "NE"), value=ok()),
    "envoy.config.core.v3.RuntimeUInt32": message(
        default_value=ok(), runtime_key=ok(_RUNTIME_NOOP)
    ),
    "envoy.config.accesslog.v3.NotHealthCheckFilter": message(),
    "envoy.config.accesslog.v3.ResponseFlagFilter": message(flags=ok("empty: any flag")),
    "envoy.config.accesslog.v3.AndFilter": message(filters=ok()),
    "envoy.config.accesslog.v3.OrFilter": message(filters=ok()),
    FILE_LOG: message(
        later=("format", "json_format", "typed_json_format"),
        path=ok("`/dev/stdout` and `/dev/stderr` share the stdout / stderr writer"),
        log_format=ok("default: Envoy's default format"),
        note="one writer thread per path; reopened on SIGUSR1",
    ),
    STDOUT_LOG: message(log_format=ok()),
    STDERR_LOG: message(log_format=ok()),
    "envoy.config.core.v3.SubstitutionFormatString": message(
        later=(
            "text_format",
            "omit_empty_values",
            "content_type",
            "formatters",
            "json_format_options",
        ),
        text_format_source=ok("command operators: docs/access-logs.md"),
        json_format=ok("string and nested object values; keys sorted, as Envoy"),
    ),
}

# `dynamic_resources` and the xDS config sources (meshcore/xds).
DYNAMIC_MESSAGES: dict[str, Message] = {
    "envoy.config.bootstrap.v3.Bootstrap.DynamicResources": message(
        lds_config=ok(),
        cds_config=ok(),
        ads_config=ok(),
    ),
    "envoy.config.core.v3.ApiConfigSource": message(
        later=("rate_limit_settings", "request_timeout", "refresh_delay"),
        api_type=enum("GRPC", "DELTA_GRPC", note="GRPC: state of the world; DELTA_GRPC: delta"),
        transport_api_version=enum("V3"),
        grpc_services=ok("exactly one, `envoy_grpc`; plain-text gRPC"),
        set_node_on_first_message_only=ok("delta streams always send it on the first only"),
    ),
    "envoy.config.core.v3.GrpcService": message(
        later=("google_grpc",),
        envoy_grpc=ok(),
        timeout=ok("no effect on the ADS stream (as Envoy)"),
        initial_metadata=ok("sent with the stream"),
    ),
    "envoy.config.core.v3.GrpcService.EnvoyGrpc": message(
        cluster_name=ok("a static cluster (STATIC, STRICT_DNS or LOGICAL_DNS)")
    ),
    "envoy.config.core.v3.ConfigSource": message(
        later=("api_config_source",),
        ads=ok(),
        path_config_source=ok("for `lds_config` and `cds_config`"),
        initial_fetch_timeout=ok("default 15s, 0 waits forever"),
        resource_api_version=enum("V3"),
    ),
    "envoy.config.core.v3.AggregatedConfigSource": message(),
    "envoy.config.core.v3.PathConfigSource": message(
        path=ok("a DiscoveryResponse in YAML or JSON"),
        watched_directory=ok("the file is also re-read when it changes in place"),
    ),
    "envoy.config.core.v3.WatchedDirectory": message(path=ok()),
}

# HTTP/2 upstream options: accepted (empty) on the static cluster `ads_config` names, which
# meshcore's gRPC client reaches by itself; routed traffic is HTTP/1.1 only.

# Protobuf's own types are leaves: they are values, not configs to walk.
LEAF_PREFIX = "google.protobuf."

MESSAGES: dict[str, Message] = {
    "envoy.config.bootstrap.v3.Bootstrap": message(
        later=(
            "cluster_manager",
            "stats_sinks",
            "tracing",
            "overload_manager",
        ),
        node=opaque("`id` and `cluster` are used; the whole node is sent to the xDS server"),
        static_resources=ok(),
        dynamic_resources=ok(),
        admin=ok(),
        layered_runtime=ok(),
        stats_config=Rule(empty="only an empty stats_config is supported", note="must be empty"),
        stats_flush_interval=ok("no effect (no stats sinks)"),
    ),
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources": message(
        later=("secrets",), listeners=ok(), clusters=ok()
    ),
    **DYNAMIC_MESSAGES,
    "envoy.config.bootstrap.v3.Admin": message(
        address=ok(),
        access_log=opaque("the admin API's own log"),
        access_log_path=ok(),
        profile_path=ok(),
    ),
    "envoy.config.bootstrap.v3.LayeredRuntime": message(layers=ok()),
    "envoy.config.bootstrap.v3.RuntimeLayer": message(
        name=ok(),
        static_layer=Rule(empty="runtime values are not supported", note="must be empty"),
        admin_layer=ok(),
    ),
    "envoy.config.bootstrap.v3.RuntimeLayer.AdminLayer": message(),
    "envoy.config.core.v3.Address": message(socket_address=ok()),
    "envoy.config.core.v3.SocketAddress": message(
        address=ok("an IP literal (except in STRICT_DNS/LOGICAL_DNS clusters)"),
        port_value=ok(),
        protocol=enum("TCP"),
    ),
    "envoy.config.listener.v3.Listener": message(
        later=("listener_filters", "access_log"),
        name=ok(),
        address=ok(),
        stat_prefix=ok(),
        filter_chains=ok("exactly one"),
        per_connection_buffer_limit_bytes=ok(),
        metadata=opaque(),
    ),
    "envoy.config.listener.v3.FilterChain": message(
        later=("filter_chain_match", "transport_socket"),
        name=ok(),
        filters=ok(
            "network local_ratelimit filters (any number), then one http_connection_manager "
            "or tcp_proxy"
        ),
        metadata=opaque(),
    ),
    "envoy.config.listener.v3.Filter": message(
        name=ok(),
        typed_config=typed(HCM, TCP_PROXY, NETWORK_LOCAL_RATELIMIT, filter_kind=True),
    ),
    TCP_PROXY: message(
        later=(
            "on_demand",
            "metadata_match",
            "downstream_idle_timeout",
            "upstream_idle_timeout",
            "access_log",
            "backoff_options",
            "tunneling_config",
            "max_downstream_connection_duration",
            "access_log_flush_interval",
            "access_log_options",
        ),
        stat_prefix=ok(),
        cluster=ok("a cluster that does not exist closes connections (`downstream_cx_no_route`)"),
        weighted_clusters=ok(),
        idle_timeout=ok("default 1h, 0 disables"),
        max_connect_attempts=ok("each attempt picks a host again"),
        hash_policy=ok("`source_ip` only"),
        note="relays with splice(2); half-close is passed on",
    ),
    f"{TCP_PROXY}.WeightedCluster": message(clusters=ok()),
    f"{TCP_PROXY}.WeightedCluster.ClusterWeight": message(
        later=("metadata_match",), name=ok(), weight=ok()
    ),
    "envoy.type.v3.HashPolicy": message(later=("filter_state",), source_ip=ok()),
    "envoy.type.v3.HashPolicy.SourceIp": message(note="no fields"),
    NETWORK_LOCAL_RATELIMIT: message(
        later=("runtime_enabled", "share_key"),
        stat_prefix=ok(),
        token_bucket=ok("shared by all workers; a connection without a token is closed"),
    ),
    HCM: message(
        stat_prefix=ok(),
        access_log=ok("file, stdout and stderr loggers"),
        codec_type=enum("AUTO", "HTTP1", "HTTP2", note="AUTO: HTTP/2 on the connection preface"),
        http2_protocol_options=ok("h2c (prior knowledge); see docs/http2.md"),
        route_config=ok(),
        rds=ok("over ADS, in listeners from LDS"),
        http_filters=ok("fault and local_ratelimit (in order), then the router"),
        use_remote_address=ok(),
        xff_num_trusted_hops=ok(),
        skip_xff_append=ok(),
        generate_request_id=ok(),
        preserve_external_request_id=ok(),
        server_name=ok(),
        server_header_transformation=enum("OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"),
        max_request_headers_kb=ok(),
        strip_any_host_port=ok(),
        strip_matching_host_port=ok("not together with `strip_any_host_port`"),
        http_protocol_options=ok(),
        common_http_protocol_options=ok(),
        drain_timeout=ok(
            "HTTP/2's GOAWAY grace period; also closes an idle connection that passed "
            "`max_connection_duration` (the process drain time is `--drain-time-s`)"
        ),
        request_headers_timeout=ok("408 `request header timeout`"),
        stream_idle_timeout=ok(
            "default 5m, 0 disables; 504 `stream timeout` (408 while the request is "
            "incomplete), or a reset once the response started"
        ),
        request_timeout=ok("408 `request timeout`"),
    ),
    "envoy.extensions.filters.network.http_connection_manager.v3.Rds": message(
        config_source=ok("`ads` only"), route_config_name=ok()
    ),
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter": message(
        name=ok(), typed_config=typed(ROUTER, FAULT, LOCAL_RATELIMIT, filter_kind=True)
    ),
    ROUTER: message(note="no fields"),
    **FILTER_MESSAGES,
    **ACCESS_LOG_MESSAGES,
    "envoy.config.core.v3.HttpProtocolOptions": message(
        idle_timeout=ok("0 disables"),
        max_requests_per_connection=ok(),
        max_connection_duration=ok(
            "downstream; upstream: an older pooled connection is closed and not reused"
        ),
    ),
    "envoy.config.route.v3.RouteConfiguration": with_header_lists(
        message(
            name=ok(),
            virtual_hosts=ok(),
            validate_clusters=ok("references are always checked"),
            max_direct_response_body_size_bytes=ok(),
        )
    ),
    "envoy.config.route.v3.VirtualHost": with_header_lists(
        message(
            name=ok(),
            domains=ok("lower-cased"),
            routes=ok(),
            retry_policy=ok("used by routes without their own"),
            include_request_attempt_count=ok(),
            per_request_buffer_limit_bytes=ok("largest request body kept for a retry"),
            request_mirror_policies=ok("used by routes without their own"),
            typed_per_filter_config=PER_FILTER_CONFIG,
        )
    ),
    "envoy.config.route.v3.Route": with_header_lists(
        message(
            name=ok(),
            match=ok(),
            route=ok(),
            redirect=ok(),
            direct_response=ok(),
            per_request_buffer_limit_bytes=ok("largest request body kept for a retry"),
            metadata=opaque(),
            typed_per_filter_config=PER_FILTER_CONFIG,
        )
    ),
    "envoy.config.route.v3.RouteMatch": message(
        prefix=ok(),
        path=ok(),
        safe_regex=ok(),
        path_separated_prefix=ok(),
        case_sensitive=ok(),
        headers=ok(),
        query_parameters=ok(),
    ),
    "envoy.type.matcher.v3.RegexMatcher": message(regex=ok("RE2"), google_re2=ok()),
    "envoy.type.matcher.v3.RegexMatcher.GoogleRE2": message(),
    "envoy.config.route.v3.HeaderMatcher": message(
        name=ok(),
        string_match=ok(),
        exact_match=ok(),
        prefix_match=ok(),
        suffix_match=ok(),
        contains_match=ok(),
        safe_regex_match=ok(),
        present_match=ok(),
        range_match=ok(),
        invert_match=ok(),
        treat_missing_header_as_empty=ok(),
    ),
    "envoy.type.v3.Int64Range": message(start=ok(), end=ok()),
    "envoy.type.matcher.v3.StringMatcher": message(
        exact=ok(), prefix=ok(), suffix=ok(), contains=ok(), safe_regex=ok(), ignore_case=ok()
    ),
    "envoy.config.route.v3.QueryParameterMatcher": message(
        name=ok(), string_match=ok(), present_match=ok()
    ),
    "envoy.config.route.v3.RouteAction": message(
        cluster=ok(),
        retry_policy=ok("replaces the virtual host's"),
        request_mirror_policies=ok("only requests whose body is fully buffered"),
        weighted_clusters=ok(),
        prefix_rewrite=ok(),
        host_rewrite_literal=ok(),
        timeout=ok("default 15s, 0 disables"),
        idle_timeout=ok("replaces the connection manager's `stream_idle_timeout`; 0 disables"),
        hash_policy=ok("for RING_HASH and MAGLEV clusters"),
    ),
    "envoy.config.route.v3.RouteAction.HashPolicy": message(
        later=("filter_state",),
        header=ok(),
        cookie=ok("an existing cookie only"),
        connection_properties=ok(),
        query_parameter=ok(),
        terminal=ok(),
    ),
    "envoy.config.route.v3.RouteAction.HashPolicy.Header": message(
        later=("regex_rewrite",), header_name=ok()
    ),
    "envoy.config.route.v3.RouteAction.HashPolicy.Cookie": message(
        later=("ttl", "path", "attributes"),
        name=ok(),
        note="meshcore does not generate cookies",
    ),
    "envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties": message(source_ip=ok()),
    "envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter": message(name=ok()),
    "envoy.config.route.v3.WeightedCluster": message(
        clusters=ok(), total_weight=ok("must equal the sum of the weights")
    ),
    "envoy.config.route.v3.WeightedCluster.ClusterWeight": with_header_lists(
        message(name=ok(), weight=ok())
    ),
    "envoy.config.route.v3.DirectResponseAction": message(status=ok(), body=ok()),
    "envoy.config.core.v3.DataSource": message(
        inline_string=ok(), inline_bytes=ok("UTF-8"), filename=ok("read at load time")
    ),
    "envoy.config.route.v3.RedirectAction": message(
        https_redirect=ok(),
        scheme_redirect=ok(),
        host_redirect=ok(),
        port_redirect=ok(),
        path_redirect=ok(),
        prefix_rewrite=ok(),
        response_code=ok(),
        strip_query=ok(),
    ),
    "envoy.config.core.v3.HeaderValueOption": message(
        header=ok(), append=ok(), append_action=ok(), keep_empty_value=ok()
    ),
    "envoy.config.core.v3.HeaderValue": message(
        key=ok("lower-cased"), value=ok("no %FORMATTERS% yet; %% is a literal %")
    ),
    "envoy.config.cluster.v3.Cluster": message(
        later=("transport_socket",),
        name=ok(),
        type=enum(
            "STATIC",
            "STRICT_DNS",
            "LOGICAL_DNS",
            "EDS",
            note="LOGICAL_DNS: one endpoint, resolved like STRICT_DNS; EDS: over ADS, in "
            "clusters from CDS",
        ),
        eds_cluster_config=ok(),
        http2_protocol_options=ok("deprecated spelling; HTTP/2 upstream, see docs/http2.md"),
        connect_timeout=ok("default 5s"),
        lb_policy=enum("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"),
        least_request_lb_config=ok(),
        ring_hash_lb_config=ok(),
        maglev_lb_config=ok(),
        common_lb_config=ok(),
        outlier_detection=ok("hosts return on the `interval` timer, as in Envoy"),
        load_assignment=ok(),
        dns_refresh_rate=ok("default 5s"),
        dns_lookup_family=enum(
            "AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", note="V4_PREFERRED is treated as AUTO"
        ),
        per_connection_buffer_limit_bytes=ok(),
        common_http_protocol_options=ok(),
        typed_extension_protocol_options=typed(
            UPSTREAM_HTTP_OPTIONS, note=f"key {UPSTREAM_HTTP_OPTIONS}"
        ),
        health_checks=ok("one per cluster, run by the control layer"),
        circuit_breakers=ok("counted across all workers"),
        max_requests_per_connection=ok("deprecated spelling"),
        metadata=opaque(),
    ),
    "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig": message(
        later=("slow_start_config",),
        choice_count=ok(),
        active_request_bias=ok("`default_value` only"),
    ),
    "envoy.config.core.v3.RuntimeDouble": message(
        default_value=ok(), runtime_key=opaque("no runtime: the default value is used")
    ),
    "envoy.config.cluster.v3.Cluster.RingHashLbConfig": message(
        minimum_ring_size=ok(),
        maximum_ring_size=ok(),
        hash_function=enum("XX_HASH", later=("MURMUR_HASH_2",)),
        note="points hashed as Envoy's ring (xxHash64 of `ip:port_i`)",
    ),
    "envoy.config.cluster.v3.Cluster.MaglevLbConfig": message(table_size=ok("a prime")),
    "envoy.config.cluster.v3.Cluster.CommonLbConfig": message(
        later=(
            "zone_aware_lb_config",
            "locality_weighted_lb_config",
            "update_merge_window",
            "ignore_new_hosts_until_first_hc",
            "close_connections_on_host_set_change",
            "consistent_hashing_lb_config",
            "override_host_status",
        ),
        healthy_panic_threshold=ok("whole percentages; 0 disables panic mode"),
    ),
    "envoy.type.v3.Percent": message(value=ok()),
    "envoy.config.cluster.v3.OutlierDetection": message(
        later=(
            "max_ejection_time_jitter",
            "successful_active_health_check_uneject_host",
            "monitors",
            "always_eject_one_host",
        ),
        consecutive_5xx=ok(),
        consecutive_gateway_failure=ok(),
        consecutive_local_origin_failure=ok(),
        split_external_local_origin_errors=ok(),
        interval=ok(),
        base_ejection_time=ok(),
        max_ejection_time=ok(),
        max_ejection_percent=ok(),
        enforcing_consecutive_5xx=ok(),
        enforcing_consecutive_gateway_failure=ok(),
        enforcing_consecutive_local_origin_failure=ok(),
        enforcing_success_rate=ok(),
        enforcing_local_origin_success_rate=ok(),
        success_rate_minimum_hosts=ok(),
        success_rate_request_volume=ok(),
        success_rate_stdev_factor=ok(),
        failure_percentage_threshold=ok(),
        enforcing_failure_percentage=ok(),
        enforcing_failure_percentage_local_origin=ok(),
        failure_percentage_minimum_hosts=ok(),
        failure_percentage_request_volume=ok(),
    ),
    "envoy.config.cluster.v3.Cluster.EdsClusterConfig": message(
        eds_config=ok("`ads` only"), service_name=ok("default: the cluster name")
    ),
    **HEALTH_CHECK_MESSAGES,
    **RESILIENCE_MESSAGES,
    "envoy.config.endpoint.v3.ClusterLoadAssignment": message(
        cluster_name=ok(), endpoints=ok(), policy=ok()
    ),
    "envoy.config.endpoint.v3.ClusterLoadAssignment.Policy": message(
        later=("drop_overloads", "endpoint_stale_after", "weighted_priority_health"),
        overprovisioning_factor=ok("default 140 (1.4)"),
    ),
    "envoy.config.endpoint.v3.LocalityLbEndpoints": message(
        later=("locality",), lb_endpoints=ok(), priority=ok("0 to N without gaps")
    ),
    "envoy.config.endpoint.v3.LbEndpoint": message(
        endpoint=ok(),
        health_status=enum(
            "UNKNOWN",
            "HEALTHY",
            "UNHEALTHY",
            "DRAINING",
            "TIMEOUT",
            note="UNHEALTHY, DRAINING, TIMEOUT: not used; STATIC only",
        ),
        load_balancing_weight=ok(),
        metadata=opaque(),
    ),
    "envoy.config.endpoint.v3.Endpoint": message(address=ok(), hostname=ok()),
    UPSTREAM_HTTP_OPTIONS: message(
        common_http_protocol_options=ok(),
        explicit_http_config=ok(),
        use_downstream_protocol_config=ok("HTTP/1.1 options only: upstreams are HTTP/1.1"),
    ),
    f"{UPSTREAM_HTTP_OPTIONS}.ExplicitHttpConfig": message(
        http_protocol_options=ok(),
        http2_protocol_options=ok("HTTP/2 upstream (h2c), multiplexed; see docs/http2.md"),
    ),
    f"{UPSTREAM_HTTP_OPTIONS}.UseDownstreamHttpConfig": message(
        later=("http2_protocol_options", "http3_protocol_options"),
        http_protocol_options=ok(),
    ),
    "envoy.config.core.v3.Http2ProtocolOptions": message(
        later=(
            "hpack_table_size",
            "max_outbound_frames",
            "max_outbound_control_frames",
            "max_consecutive_inbound_frames_with_empty_payload",
            "max_inbound_priority_frames_per_stream",
            "max_inbound_window_update_frames_per_data_frame_sent",
            "allow_connect",
            "allow_metadata",
            "override_stream_error_on_invalid_http_message",
            "stream_error_on_invalid_http_messaging",
            "connection_keepalive",
            "custom_settings_parameters",
        ),
        max_concurrent_streams=ok("default 2147483647"),
        initial_stream_window_size=ok("default 268435456"),
        initial_connection_window_size=ok("default 268435456"),
        note="the `h2` crate's own flood limits apply (not Envoy's counters)",
    ),
    "envoy.config.core.v3.Http1ProtocolOptions": message(
        accept_http_10=ok(),
        default_host_for_http_10=ok(),
        note="both fields act on downstream requests only (no effect in a cluster's options, "
        "as in Envoy)",
    ),
}


@dataclass
class _Row:
    message: str
    fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _describe(name: str, rule: Rule) -> str:
    text = f"`{name}`"
    if rule.values is not None:
        text += f" ({', '.join(sorted(rule.values))})"
    if rule.types is not None:
        text += f" ({', '.join(t.rsplit('.', 1)[-1] for t in sorted(rule.types))})"
    return text


def markdown_table() -> str:
    """The supported fields as a Markdown table (one row per message)."""
    rows = ["| Envoy message | Supported fields | Notes |", "| --- | --- | --- |"]
    for full_name, spec in MESSAGES.items():
        row = _Row(full_name)
        for name, rule in spec.fields.items():
            row.fields.append(_describe(name, rule))
            if rule.note:
                row.notes.append(f"`{name}`: {rule.note}")
        if spec.note:
            row.notes.append(spec.note)
        if spec.later:
            row.notes.append("not yet: " + ", ".join(f"`{n}`" for n in sorted(spec.later)))
        fields_text = ", ".join(row.fields) or "(none)"
        rows.append(f"| `{full_name}` | {fields_text} | {'; '.join(row.notes)} |")
    return "\n".join(rows) + "\n"
