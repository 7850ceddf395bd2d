"""The table of Envoy fields meshcore implements: per message, the fields it may set (and, for
enums, the values; for typed configs, the types). Any other set field is a problem; nothing
is silently ignored. `markdown_table()` renders it for the README."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ZIPKIN = "envoy.config.trace.v3.ZipkinConfig"
OPENTELEMETRY = "envoy.config.trace.v3.OpenTelemetryConfig"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
PREVIOUS_HOSTS = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault"
LOCAL_RATELIMIT = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
JWT_AUTHN = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
JWT_AUTHN_PER_ROUTE = "envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"
NETWORK_LOCAL_RATELIMIT = "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"
CONNECTION_LIMIT = "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"
STATSD_SINK = "envoy.config.metrics.v3.StatsdSink"
DOWNSTREAM_CONNECTIONS = (
    "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)
TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
RBAC = "envoy.extensions.filters.http.rbac.v3.RBAC"
GRPC_STATS = "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig"
RBAC_PER_ROUTE = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
NETWORK_RBAC = "envoy.extensions.filters.network.rbac.v3.RBAC"
UPSTREAM_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FILE_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
STDOUT_LOG = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDERR_LOG = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"
REQ_WITHOUT_QUERY = "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_TLS = "envoy.extensions.transport_sockets.tls.v3"


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


_FLOOD = "downstream and upstream; "
_RUNTIME_NOOP = "no runtime: the configured value applies"
PER_FILTER_CONFIG = typed(
    FAULT,
    LOCAL_RATELIMIT,
    JWT_AUTHN_PER_ROUTE,
    RBAC_PER_ROUTE,
    note="keyed by filter name; the route's wins over the virtual host's",
)

FILTER_MESSAGES: dict[str, Message] = {
    GRPC_STATS: message(
        individual_method_stats_allowlist=ok(),
        stats_for_all_methods=ok(
            "a scope per `<service>.<method>` seen, made on its first call (unbounded, as Envoy)"
        ),
        replace_dots_in_grpc_service_name=ok(
            "with `stats_for_all_methods` only (as Envoy; allowlisted names keep their dots)"
        ),
        enable_upstream_stats=ok("`upstream_rq_time` per method, from the call going upstream"),
        emit_filter_state=ok("`false` only: meshcore keeps no filter state"),
        note="gRPC over HTTP/2 downstream; counts `success`, `failure`, `total`, the "
        "`grpc-status` counters 0-16 (all exported, zeros included) and "
        "`request_message_count`/`response_message_count`",
    ),
    "envoy.config.core.v3.GrpcMethodList": message(services=ok()),
    "envoy.config.core.v3.GrpcMethodList.Service": message(name=ok(), method_names=ok()),
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

_JWT = "envoy.extensions.filters.http.jwt_authn.v3."
JWT_MESSAGES: dict[str, Message] = {
    JWT_AUTHN: message(
        later=("filter_state_rules", "strip_failure_response", "stat_prefix"),
        providers=ok(),
        rules=ok("the first rule whose `match` matches picks the requirement"),
        requirement_map=ok(),
        bypass_cors_preflight=ok(),
        note="see docs/jwt-authn.md",
    ),
    _JWT + "JwtProvider": message(
        later=(
            "header_in_metadata",
            "failed_status_in_metadata",
            "clear_route_cache",
        ),
        issuer=ok(),
        audiences=ok(),
        subjects=ok("a subject that does not match fails as `Jwt verification fails`"),
        require_expiration=ok(),
        max_lifetime=ok("whole seconds; `exp - iat` (both present) at most this"),
        remote_jwks=ok("fetched by the control layer; tokens fail until the first fetch"),
        local_jwks=ok("must parse and hold a usable key (Envoy fails requests instead)"),
        forward=ok(),
        from_headers=ok(),
        from_params=ok(),
        from_cookies=ok(),
        forward_payload_header=ok(),
        pad_forward_payload_header=ok(),
        payload_in_metadata=ok("namespace `envoy.filters.http.jwt_authn` (for RBAC)"),
        normalize_payload_in_metadata=ok(),
        clock_skew_seconds=ok("0: 60, as Envoy"),
        claim_to_headers=ok(),
        jwt_cache_config=ok("per worker; hits skip the signature, claims are checked again"),
    ),
    _JWT + "JwtCacheConfig": message(
        jwt_cache_size=ok("default 100"), jwt_max_token_size=ok("default 4096")
    ),
    _JWT + "JwtProvider.NormalizePayload": message(space_delimited_claims=ok()),
    _JWT + "RemoteJwks": message(
        http_uri=ok(),
        cache_duration=ok("default 10m"),
        async_fetch=ok("the fetch is always in the background"),
        retry_policy=ok(),
    ),
    _JWT + "JwksAsyncFetch": message(
        fast_listener=ok("no effect: listeners never wait for a fetch"),
        failed_refetch_duration=ok(),
    ),
    "envoy.config.core.v3.HttpUri": message(uri=ok("`http://` only"), cluster=ok(), timeout=ok()),
    "envoy.config.core.v3.RetryPolicy": message(
        later=("retry_on", "retry_priority", "retry_host_predicate"),
        num_retries=ok(),
        retry_back_off=ok(),
    ),
    "envoy.config.core.v3.BackoffStrategy": message(base_interval=ok(), max_interval=ok()),
    _JWT + "JwtHeader": message(name=ok(), value_prefix=ok()),
    _JWT + "JwtClaimToHeader": message(header_name=ok(), claim_name=ok()),
    _JWT + "RequirementRule": message(
        match=ok("as a route's match"), requires=ok(), requirement_name=ok()
    ),
    _JWT + "JwtRequirement": message(
        provider_name=ok(),
        provider_and_audiences=ok(),
        requires_any=ok(),
        requires_all=ok(),
        allow_missing_or_failed=ok(),
        allow_missing=ok(),
    ),
    _JWT + "ProviderWithAudiences": message(provider_name=ok(), audiences=ok()),
    _JWT + "JwtRequirementOrList": message(requirements=ok()),
    _JWT + "JwtRequirementAndList": message(requirements=ok()),
    JWT_AUTHN_PER_ROUTE: message(disabled=ok(), requirement_name=ok()),
}

TLS_MESSAGES: dict[str, Message] = {
    "envoy.config.core.v3.TransportSocket": message(
        name=ok(),
        typed_config=typed(
            DOWNSTREAM_TLS, UPSTREAM_TLS, note="Downstream on filter chains, Upstream on clusters"
        ),
    ),
    DOWNSTREAM_TLS: message(
        later=(
            "session_ticket_keys",
            "session_ticket_keys_sds_secret_config",
            "disable_stateless_session_resumption",
            "disable_stateful_session_resumption",
            "session_timeout",
            "ocsp_staple_policy",
            "full_scan_certs_on_sni_mismatch",
            "prefer_client_ciphers",
        ),
        common_tls_context=ok(),
        require_client_certificate=ok("needs `validation_context.trusted_ca`"),
    ),
    UPSTREAM_TLS: message(
        later=("allow_renegotiation", "max_session_keys", "enforce_rsa_key_usage"),
        common_tls_context=ok(),
        sni=ok("not checked against the certificate (Envoy checks only SAN matchers)"),
    ),
    f"{_TLS}.CommonTlsContext": message(
        later=(
            "tls_certificate_provider_instance",
            "tls_certificate_certificate_provider_instance",
            "custom_handshaker",
            "key_log",
        ),
        tls_params=ok(),
        tls_certificates=ok("one certificate"),
        validation_context=ok(),
        tls_certificate_sds_secret_configs=ok(
            "SDS (docs/tls.md): one certificate in all, static or from ADS or a file"
        ),
        validation_context_sds_secret_config=ok("SDS: a `validation_context` secret"),
        combined_validation_context=ok("the default context merged with the SDS secret"),
        alpn_protocols=ok(
            "upstream: the cluster's codec only, `h2` for an HTTP/2 cluster, else `http/1.1` "
            "(offered when not set)"
        ),
    ),
    f"{_TLS}.SdsSecretConfig": message(
        name=ok(),
        sds_config=ok(
            "none: `static_resources.secrets`; `ads`, `path_config_source` or "
            "`api_config_source` (not in static clusters)"
        ),
    ),
    f"{_TLS}.CommonTlsContext.CombinedCertificateValidationContext": message(
        default_validation_context=ok("`trusted_ca` may come from the secret instead"),
        validation_context_sds_secret_config=ok(),
    ),
    f"{_TLS}.Secret": message(
        later=("session_ticket_keys", "generic_secret"),
        name=ok(),
        tls_certificate=ok("a certificate chain and its key"),
        validation_context=ok("`trusted_ca` and SAN matchers"),
    ),
    f"{_TLS}.TlsParameters": message(
        later=("ecdh_curves", "signature_algorithms", "compliance_policies"),
        tls_minimum_protocol_version=enum("TLS_AUTO", "TLSv1_2", "TLSv1_3"),
        tls_maximum_protocol_version=enum(
            "TLS_AUTO", "TLSv1_2", "TLSv1_3", note="default TLSv1_3 downstream, TLSv1_2 upstream"
        ),
        cipher_suites=ok("TLS 1.2 ECDHE with AES-GCM or CHACHA20-POLY1305 (rustls)"),
    ),
    f"{_TLS}.TlsCertificate": message(
        later=(
            "private_key_provider",
            "ocsp_staple",
            "password",
            "watched_directory",
            "signed_certificate_timestamp",
            "pkcs12",
        ),
        certificate_chain=ok("PEM"),
        private_key=ok("PEM"),
    ),
    f"{_TLS}.CertificateValidationContext": message(
        later=(
            "verify_certificate_spki",
            "verify_certificate_hash",
            "match_subject_alt_names",
            "crl",
            "allow_expired_certificate",
            "trust_chain_verification",
            "custom_validator_config",
            "only_verify_leaf_cert_crl",
            "max_verify_depth",
            "system_root_certs",
            "watched_directory",
        ),
        trusted_ca=ok("PEM; required"),
        match_typed_subject_alt_names=ok("any one matching SAN accepts"),
    ),
    f"{_TLS}.SubjectAltNameMatcher": message(
        san_type=enum("DNS", "URI", "EMAIL", "IP_ADDRESS", later=("OTHER_NAME",)),
        matcher=ok(),
    ),
}

HEALTH_CHECK_MESSAGES: dict[str, Message] = {
    "envoy.config.core.v3.HealthCheck": message(
        later=(
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
        grpc_health_check=ok("cleartext HTTP/2 (h2c), as Envoy to a cluster without TLS"),
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
    "envoy.config.core.v3.HealthCheck.GrpcHealthCheck": message(
        service_name=ok("empty: the server's overall health"),
        authority=ok("default: the cluster name"),
        initial_metadata=ok(),
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

# Issue 5: RBAC, HTTP and network (docs/rbac.md).
_RBAC_STATS = "stats named as Envoy's"
RBAC_MESSAGES: dict[str, Message] = {
    RBAC: message(
        later=("matcher", "shadow_matcher", "track_per_rule_stats"),
        rules=ok("absent: every request is allowed"),
        rules_stat_prefix=ok(_RBAC_STATS),
        shadow_rules=ok("evaluated and counted, never enforced"),
        shadow_rules_stat_prefix=ok(_RBAC_STATS),
        note="a denial is 403 `RBAC: access denied`, details "
        "`rbac_access_denied_matched_policy[...]`",
    ),
    RBAC_PER_ROUTE: message(rbac=ok("replaces the filter's; absent: the filter is off")),
    NETWORK_RBAC: message(
        later=("matcher", "shadow_matcher", "delay_deny"),
        stat_prefix=ok(),
        rules=ok("a denied connection is closed before it is read"),
        shadow_rules=ok(),
        shadow_rules_stat_prefix=ok(),
        enforcement_type=enum(
            "ONE_TIME_ON_FIRST_BYTE",
            "CONTINUOUS",
            note="decided once when the connection is accepted (the rules read only the "
            "connection)",
        ),
        note="`header` rules are refused, `url_path` never matches (as Envoy)",
    ),
    "envoy.config.rbac.v3.RBAC": message(
        later=("audit_logging_options",), action=enum("ALLOW", "DENY", "LOG"), policies=ok()
    ),
    "envoy.config.rbac.v3.Policy": message(
        later=("condition", "checked_condition", "cel_config"), permissions=ok(), principals=ok()
    ),
    "envoy.config.rbac.v3.Permission": message(
        later=("matcher", "uri_template", "sourced_metadata"),
        any=ok(),
        header=ok(),
        url_path=ok("the path without query"),
        destination_ip=ok(),
        destination_port=ok(),
        destination_port_range=ok(),
        requested_server_name=ok(),
        metadata=ok("dynamic metadata of earlier filters (RBAC, JWT `payload_in_metadata`)"),
        and_rules=ok(),
        or_rules=ok(),
        not_rule=ok(),
    ),
    "envoy.config.rbac.v3.Permission.Set": message(rules=ok()),
    "envoy.config.rbac.v3.Principal": message(
        later=("filter_state", "sourced_metadata", "custom"),
        any=ok(),
        authenticated=ok("URI SANs, then DNS SANs, then the subject of the client certificate"),
        source_ip=ok("as `direct_remote_ip`"),
        direct_remote_ip=ok(),
        remote_ip=ok("after x-forwarded-for processing (`use_remote_address`, trusted hops)"),
        header=ok(),
        url_path=ok(),
        metadata=ok(),
        and_ids=ok(),
        or_ids=ok(),
        not_id=ok(),
    ),
    "envoy.config.rbac.v3.Principal.Set": message(ids=ok()),
    "envoy.config.rbac.v3.Principal.Authenticated": message(principal_name=ok()),
    "envoy.type.matcher.v3.PathMatcher": message(path=ok()),
    "envoy.config.core.v3.CidrRange": message(address_prefix=ok(), prefix_len=ok()),
    "envoy.type.v3.Int32Range": message(start=ok(), end=ok()),
    "envoy.type.matcher.v3.MetadataMatcher": message(
        filter=ok(), path=ok(), value=ok(), invert=ok()
    ),
    "envoy.type.matcher.v3.MetadataMatcher.PathSegment": message(key=ok()),
    "envoy.type.matcher.v3.ValueMatcher": message(
        null_match=ok(),
        double_match=ok(),
        string_match=ok(),
        bool_match=ok(),
        present_match=ok(),
        list_match=ok(),
        or_match=ok(),
    ),
    "envoy.type.matcher.v3.ValueMatcher.NullMatch": message(),
    "envoy.type.matcher.v3.DoubleMatcher": message(range=ok(), exact=ok()),
    "envoy.type.v3.DoubleRange": message(start=ok(), end=ok()),
    "envoy.type.matcher.v3.ListMatcher": message(one_of=ok()),
    "envoy.type.matcher.v3.OrMatcher": message(value_matchers=ok()),
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
    # Only as an access log `formatters` entry (no other field of this type is supported).
    "envoy.config.core.v3.TypedExtensionConfig": message(
        name=ok(), typed_config=typed(REQ_WITHOUT_QUERY)
    ),
    REQ_WITHOUT_QUERY: message(note="enables `%REQ_WITHOUT_QUERY(X?Y):Z%`"),
    STDERR_LOG: message(log_format=ok()),
    "envoy.config.core.v3.SubstitutionFormatString": message(
        later=(
            "text_format",
            "omit_empty_values",
            "content_type",
            "json_format_options",
        ),
        text_format_source=ok("command operators: docs/access-logs.md"),
        formatters=ok("the `%REQ_WITHOUT_QUERY%` formatter"),
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
        grpc_services=ok(
            "exactly one, `envoy_grpc`; plain text, or TLS from the cluster's transport_socket "
            "(docs/xds.md)"
        ),
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
        ads=ok(),
        api_config_source=ok("SDS `sds_config` only: a separate SDS stream (docs/tls.md)"),
        path_config_source=ok("for `lds_config`, `cds_config` and SDS `sds_config`"),
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
        later=("cluster_manager",),
        tracing=ok(
            "the provider of connection managers whose `tracing` names none (static "
            "and LDS listeners; docs/tracing.md)"
        ),
        stats_sinks=ok("statsd over UDP (docs/stats.md)"),
        overload_manager=ok("the global downstream connection limit"),
        node=opaque("`id` and `cluster` are used; the whole node is sent to the xDS server"),
        static_resources=ok(),
        dynamic_resources=ok(),
        admin=ok(),
        layered_runtime=ok(),
        stats_config=Rule(empty="only an empty stats_config is supported", note="must be empty"),
        stats_flush_interval=ok("stats sinks and histogram intervals (default 5s)"),
    ),
    "envoy.config.metrics.v3.StatsSink": message(name=ok(), typed_config=typed(STATSD_SINK)),
    STATSD_SINK: message(
        later=("tcp_cluster_name",),
        address=ok("UDP; lines packed into datagrams of up to 1432 bytes"),
        prefix=ok("default envoy"),
    ),
    "envoy.config.overload.v3.OverloadManager": message(
        later=("actions", "loadshed_points", "buffer_factory_config"),
        refresh_interval=ok("no effect: the connection limit is checked at each accept"),
        resource_monitors=ok(),
    ),
    "envoy.config.overload.v3.ResourceMonitor": message(
        name=ok(), typed_config=typed(DOWNSTREAM_CONNECTIONS, filter_kind=True)
    ),
    DOWNSTREAM_CONNECTIONS: message(
        max_active_downstream_connections=ok(
            "a connection accepted over it is closed (`downstream_global_cx_overflow`)"
        )
    ),
    "envoy.config.bootstrap.v3.Bootstrap.StaticResources": message(
        listeners=ok(), clusters=ok(), secrets=ok("SDS secrets by name (docs/tls.md)")
    ),
    **DYNAMIC_MESSAGES,
    "envoy.config.bootstrap.v3.Admin": message(
        address=ok(),
        ignore_global_conn_limit=ok(
            "meshcore's admin API never counts toward the global connection limit"
        ),
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
        access_log=ok(
            "a line per connection when it closes, tcp_proxy or HTTP (HTTP/1.1, HTTP/2, "
            "TLS), per connection no chain matched (NR), and per connection a network "
            "filter (rbac, connection_limit, local_ratelimit) or a failed TLS handshake "
            "closed (docs/access-logs.md)"
        ),
        name=ok(),
        address=ok(),
        stat_prefix=ok(),
        filter_chains=ok("chosen by `filter_chain_match` as Envoy does (docs/filter-chains.md)"),
        default_filter_chain=ok("when no chain matches"),
        listener_filters=ok("the TLS inspector"),
        listener_filters_timeout=ok("default 15s, 0 waits without limit"),
        continue_on_listener_filters_timeout=ok(),
        per_connection_buffer_limit_bytes=ok(),
        ignore_global_conn_limit=ok(),
        metadata=opaque(),
        traffic_direction=enum(
            "UNSPECIFIED", "INBOUND", "OUTBOUND", note="OUTBOUND: CLIENT (egress) spans"
        ),
    ),
    "envoy.config.listener.v3.ListenerFilter": message(
        name=ok(), typed_config=typed(TLS_INSPECTOR, filter_kind=True)
    ),
    TLS_INSPECTOR: message(
        later=(
            "enable_ja3_fingerprinting",
            "enable_ja4_fingerprinting",
            "close_connection_on_client_hello_parsing_errors",
        ),
        max_client_hello_size=ok("default 16 KiB; a larger ClientHello closes the connection"),
        initial_read_buffer_size=ok("meshcore peeks up to max_client_hello_size at once"),
        note="peeks (MSG_PEEK) for a ClientHello: SNI, ALPN, transport protocol `tls`",
    ),
    "envoy.config.listener.v3.FilterChainMatch": message(
        destination_port=ok(),
        prefix_ranges=ok(),
        direct_source_prefix_ranges=ok("the peer's address (no PROXY protocol)"),
        source_type=ok(),
        source_prefix_ranges=ok(),
        source_ports=ok(),
        server_names=ok("exact, then `*.suffix` (longest first), then chains without"),
        transport_protocol=ok("`tls` (TLS inspector) or `raw_buffer`"),
        application_protocols=ok("any ALPN protocol the ClientHello offers"),
    ),
    "envoy.config.core.v3.CidrRange": message(address_prefix=ok(), prefix_len=ok()),
    "envoy.config.listener.v3.FilterChain": message(
        name=ok(),
        filter_chain_match=ok("docs/filter-chains.md"),
        transport_socket=ok("TLS termination (docs/tls.md)"),
        transport_socket_connect_timeout=ok("the TLS handshake's timeout (default 10s)"),
        filters=ok(
            "network local_ratelimit, connection_limit and rbac filters (any number; rate "
            "limits, then connection limits, then rbac are checked), then one "
            "http_connection_manager or tcp_proxy"
        ),
        metadata=opaque(),
    ),
    "envoy.config.listener.v3.Filter": message(
        name=ok(),
        typed_config=typed(
            HCM,
            TCP_PROXY,
            NETWORK_LOCAL_RATELIMIT,
            CONNECTION_LIMIT,
            NETWORK_RBAC,
            filter_kind=True,
        ),
    ),
    CONNECTION_LIMIT: message(
        later=("runtime_enabled",),
        stat_prefix=ok(),
        max_connections=ok("open connections on the chain, counted over all workers"),
        delay=ok("a refused connection is held this long, then closed"),
    ),
    TCP_PROXY: message(
        later=(
            "on_demand",
            "metadata_match",
            "downstream_idle_timeout",
            "upstream_idle_timeout",
            "backoff_options",
            "tunneling_config",
            "max_downstream_connection_duration",
        ),
        stat_prefix=ok(),
        cluster=ok("a cluster that does not exist closes connections (`downstream_cx_no_route`)"),
        weighted_clusters=ok(),
        idle_timeout=ok("default 1h, 0 disables"),
        max_connect_attempts=ok("each attempt picks a host again"),
        hash_policy=ok("`source_ip` only"),
        access_log=ok("a line per connection when it closes (docs/access-logs.md)"),
        access_log_options=ok("periodic and upstream-connected lines"),
        access_log_flush_interval=ok("deprecated: `access_log_options` has it"),
        note="relays with splice(2); half-close is passed on",
    ),
    f"{TCP_PROXY}.TcpAccessLogOptions": message(
        access_log_flush_interval=ok("a `TcpPeriodic` line this often"),
        flush_access_log_on_connected=ok("a `TcpUpstreamConnected` line"),
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
        access_log_options=ok("lines at a new request, periodically and at a tunnel's start"),
        codec_type=enum("AUTO", "HTTP1", "HTTP2", note="AUTO: HTTP/2 on the connection preface"),
        http2_protocol_options=ok("h2c (prior knowledge); see docs/http2.md"),
        route_config=ok(),
        rds=ok("over ADS, in listeners from LDS"),
        http_filters=ok("fault, local_ratelimit, jwt_authn and rbac (in order), then the router"),
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
        normalize_path=ok("RFC 3986 dot segments and Envoy's (Chromium's) canonical escapes"),
        merge_slashes=ok(),
        upgrade_configs=ok(
            "WebSocket and other HTTP/1.1 upgrades: a byte tunnel after the upstream's 101; "
            "CONNECT (HTTP/1.1 and HTTP/2)"
        ),
        path_with_escaped_slashes_action=enum(
            "IMPLEMENTATION_SPECIFIC_DEFAULT",
            "KEEP_UNCHANGED",
            "REJECT_REQUEST",
            "UNESCAPE_AND_REDIRECT",
            "UNESCAPE_AND_FORWARD",
        ),
        forward_client_cert_details=enum(
            "SANITIZE", "FORWARD_ONLY", "APPEND_FORWARD", "SANITIZE_SET", "ALWAYS_FORWARD_ONLY"
        ),
        set_current_client_cert_details=ok(),
        tracing=ok("Zipkin (B3) and OpenTelemetry (W3C); see docs/tracing.md"),
    ),
    f"{HCM}.HcmAccessLogOptions": message(
        access_log_flush_interval=ok("a `DownstreamPeriodic` line this often per request"),
        flush_access_log_on_new_request=ok("a `DownstreamStart` line once routed"),
        flush_log_on_tunnel_successfully_established=ok(
            "a `DownstreamTunnelSuccessfullyEstablished` line (CONNECT's 200, an upgrade's 101)"
        ),
    ),
    f"{HCM}.Tracing": message(
        later=("verbose", "spawn_upstream_span"),
        random_sampling=ok("on the x-request-id, as Envoy (default 100%)"),
        client_sampling=ok("requests with `x-client-trace-id` (default 100%)"),
        overall_sampling=ok("default 100%"),
        max_path_tag_length=ok("default 256"),
        custom_tags=ok(),
        provider=ok(
            "`envoy.tracers.zipkin` or `envoy.tracers.opentelemetry`; none: the bootstrap's "
            "`tracing.http`"
        ),
    ),
    "envoy.type.tracing.v3.CustomTag": message(
        later=("environment", "metadata"), tag=ok(), literal=ok(), request_header=ok()
    ),
    "envoy.type.tracing.v3.CustomTag.Literal": message(value=ok()),
    "envoy.type.tracing.v3.CustomTag.Header": message(name=ok(), default_value=ok()),
    "envoy.config.trace.v3.Tracing": message(http=ok("Zipkin or OpenTelemetry")),
    "envoy.config.trace.v3.Tracing.Http": message(
        name=ok(), typed_config=typed(ZIPKIN, OPENTELEMETRY)
    ),
    ZIPKIN: message(
        later=("collector_hostname", "split_spans_for_request", "trace_context_option"),
        collector_cluster=ok("spans are POSTed to its hosts by the control layer"),
        collector_endpoint=ok(),
        collector_endpoint_version=enum("HTTP_JSON"),
        trace_id_128bit=ok(),
        shared_span_context=ok("default true"),
    ),
    OPENTELEMETRY: message(
        later=("resource_detectors", "sampler", "max_cache_size"),
        grpc_service=ok("OTLP over gRPC (`envoy_grpc`), sent by the control layer"),
        http_service=ok("OTLP/HTTP protobuf, POSTed by the control layer; preferred when both"),
        service_name=ok(),
    ),
    "envoy.config.core.v3.HttpService": message(later=("request_headers_to_add",), http_uri=ok()),
    f"{HCM}.SetCurrentClientCertDetails": message(
        subject=ok(), cert=ok(), chain=ok(), dns=ok(), uri=ok()
    ),
    **TLS_MESSAGES,
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    ".UpgradeConfig": message(later=("filters",), upgrade_type=ok(), enabled=ok()),
    "envoy.extensions.filters.network.http_connection_manager.v3.Rds": message(
        config_source=ok("`ads` only"), route_config_name=ok()
    ),
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter": message(
        name=ok(),
        typed_config=typed(
            ROUTER, FAULT, LOCAL_RATELIMIT, JWT_AUTHN, RBAC, GRPC_STATS, filter_kind=True
        ),
    ),
    ROUTER: message(note="no fields"),
    **FILTER_MESSAGES,
    **JWT_MESSAGES,
    **RBAC_MESSAGES,
    **ACCESS_LOG_MESSAGES,
    "envoy.config.core.v3.HttpProtocolOptions": message(
        idle_timeout=ok("0 disables"),
        headers_with_underscores_action=ok("connection manager only (requests)"),
        max_headers_count=ok("connection manager only; at most 100 (431 above it)"),
        max_requests_per_connection=ok(),
        max_connection_duration=ok(
            "downstream; upstream: an older pooled connection is closed and not reused"
        ),
        max_stream_duration=ok(
            "connection manager only: 504 (408 while the request is incomplete) "
            "`downstream duration timeout`, DEADLINE_EXCEEDED for gRPC, or a reset once the "
            "response started"
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
        connect_matcher=ok("CONNECT requests only (no other path matcher matches them)"),
    ),
    "envoy.config.route.v3.RouteMatch.ConnectMatcher": message(),
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
        upgrade_configs=ok("enables or disables an upgrade type for the route"),
        max_stream_duration=ok("when set, the route `timeout` is not used (as Envoy)"),
    ),
    "envoy.config.route.v3.RouteAction.MaxStreamDuration": message(
        max_stream_duration=ok("replaces the connection manager's; 0 disables"),
        grpc_timeout_header_max=ok("a request's `grpc-timeout` sets the limit, capped (0: no cap)"),
        grpc_timeout_header_offset=ok(),
    ),
    "envoy.config.route.v3.RouteAction.UpgradeConfig": message(
        upgrade_type=ok(),
        enabled=ok(),
        connect_config=ok(
            "CONNECT is terminated: 200 to the client, then a TCP tunnel to the route's cluster"
        ),
    ),
    "envoy.config.route.v3.RouteAction.UpgradeConfig.ConnectConfig": message(
        later=("proxy_protocol_config", "allow_post")
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
        name=ok(),
        alt_stat_name=ok(
            "the cluster's stats are `cluster.<alt_stat_name>.*` and `%UPSTREAM_CLUSTER%` shows "
            "it; docs/stats.md"
        ),
        transport_socket=ok("TLS origination (docs/tls.md)"),
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
        use_downstream_protocol_config=ok(
            "HTTP/2 requests go upstream over HTTP/2 when http2_protocol_options is set"
        ),
        auto_config=ok("TLS clusters only: ALPN h2,http/1.1 picks the codec; see docs/http2.md"),
    ),
    f"{UPSTREAM_HTTP_OPTIONS}.AutoHttpConfig": message(
        later=("http3_protocol_options", "alternate_protocols_cache_options"),
        http_protocol_options=ok(),
        http2_protocol_options=ok("used when the upstream chose h2 in ALPN"),
    ),
    f"{UPSTREAM_HTTP_OPTIONS}.ExplicitHttpConfig": message(
        http_protocol_options=ok(),
        http2_protocol_options=ok("HTTP/2 upstream (h2c), multiplexed; see docs/http2.md"),
    ),
    f"{UPSTREAM_HTTP_OPTIONS}.UseDownstreamHttpConfig": message(
        later=("http3_protocol_options",),
        http_protocol_options=ok(),
        http2_protocol_options=ok("over TLS, ALPN offers the request's protocol"),
    ),
    "envoy.config.core.v3.Http2ProtocolOptions": message(
        later=(
            "hpack_table_size",
            "allow_metadata",
            "override_stream_error_on_invalid_http_message",
            "stream_error_on_invalid_http_messaging",
            "connection_keepalive",
            "custom_settings_parameters",
        ),
        max_concurrent_streams=ok("default 2147483647"),
        initial_stream_window_size=ok("default 268435456"),
        initial_connection_window_size=ok("default 268435456"),
        allow_connect=ok(
            "downstream: SETTINGS_ENABLE_CONNECT_PROTOCOL, extended CONNECT (WebSocket over "
            "HTTP/2, RFC 8441); no effect upstream"
        ),
        max_outbound_frames=ok(_FLOOD + "default 10000"),
        max_outbound_control_frames=ok(_FLOOD + "default 1000"),
        max_consecutive_inbound_frames_with_empty_payload=ok(_FLOOD + "default 1"),
        max_inbound_priority_frames_per_stream=ok(_FLOOD + "default 100"),
        max_inbound_window_update_frames_per_data_frame_sent=ok(_FLOOD + "default 10"),
        note="flood limits: Envoy's counters (`http2.*_flood`) on downstream connections, "
        "`cluster.<name>.http2.*_flood` on upstream ones; see docs/http2.md",
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
