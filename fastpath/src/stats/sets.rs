//! The stat sets and their Envoy names (listener, HTTP connection manager, cluster).
use super::stat_set;

// `listener.<address>_<port>.*`
stat_set! { listener, prefix_codes: None,
    counters {
        DownstreamCxTotal => "downstream_cx_total",
        DownstreamCxDestroy => "downstream_cx_destroy",
        // Filter chains (`listener/`): no chain matched; the listener filters timed out.
        NoFilterChainMatch => "no_filter_chain_match",
        DownstreamPreCxTimeout => "downstream_pre_cx_timeout",
        // The overload manager's global connection limit refused a connection.
        DownstreamGlobalCxOverflow => "downstream_global_cx_overflow",
    }
    gauges {
        DownstreamCxActive => "downstream_cx_active",
        // Connections in the listener filters (the TLS inspector).
        DownstreamPreCxActive => "downstream_pre_cx_active",
    }
    histograms {
        DownstreamCxLengthMs => "downstream_cx_length_ms",
    }
    globals {}
    control_counters {}
}

// `http.<stat_prefix>.*` (connection manager and router filter stats).
stat_set! { http, prefix_codes: None,
    counters {
        DownstreamCxTotal => "downstream_cx_total",
        DownstreamCxHttp1Total => "downstream_cx_http1_total",
        DownstreamCxHttp2Total => "downstream_cx_http2_total",
        DownstreamCxDestroy => "downstream_cx_destroy",
        DownstreamCxDestroyRemote => "downstream_cx_destroy_remote",
        DownstreamCxDestroyLocal => "downstream_cx_destroy_local",
        DownstreamCxDestroyRemoteActiveRq => "downstream_cx_destroy_remote_active_rq",
        DownstreamCxDestroyLocalActiveRq => "downstream_cx_destroy_local_active_rq",
        DownstreamCxProtocolError => "downstream_cx_protocol_error",
        DownstreamCxIdleTimeout => "downstream_cx_idle_timeout",
        DownstreamCxDrainClose => "downstream_cx_drain_close",
        DownstreamCxDelayedCloseTimeout => "downstream_cx_delayed_close_timeout",
        DownstreamCxRxBytesTotal => "downstream_cx_rx_bytes_total",
        DownstreamCxTxBytesTotal => "downstream_cx_tx_bytes_total",
        DownstreamRqTotal => "downstream_rq_total",
        DownstreamRqHttp1Total => "downstream_rq_http1_total",
        DownstreamRqHttp2Total => "downstream_rq_http2_total",
        DownstreamRqCompleted => "downstream_rq_completed",
        DownstreamRq1xx => "downstream_rq_1xx",
        DownstreamRq2xx => "downstream_rq_2xx",
        DownstreamRq3xx => "downstream_rq_3xx",
        DownstreamRq4xx => "downstream_rq_4xx",
        DownstreamRq5xx => "downstream_rq_5xx",
        DownstreamRqRxReset => "downstream_rq_rx_reset",
        DownstreamRqTxReset => "downstream_rq_tx_reset",
        DownstreamRqNonRelativePath => "downstream_rq_non_relative_path",
        NoRoute => "no_route",
        NoCluster => "no_cluster",
        RqDirectResponse => "rq_direct_response",
        RqRedirect => "rq_redirect",
        RqTotal => "rq_total",
        // Issue 4 (resilience): connection limits.
        DownstreamCxMaxRequestsReached => "downstream_cx_max_requests_reached",
        DownstreamCxMaxDurationReached => "downstream_cx_max_duration_reached",
        DownstreamRqHeaderTimeout => "downstream_rq_header_timeout",
        DownstreamRqIdleTimeout => "downstream_rq_idle_timeout",
        DownstreamRqTimeout => "downstream_rq_timeout",
        DownstreamRqMaxDurationReached => "downstream_rq_max_duration_reached",
        DownstreamCxUpgradesTotal => "downstream_cx_upgrades_total",
    }
    gauges {
        DownstreamCxActive => "downstream_cx_active",
        DownstreamCxHttp1Active => "downstream_cx_http1_active",
        DownstreamCxHttp2Active => "downstream_cx_http2_active",
        DownstreamRqActive => "downstream_rq_active",
        DownstreamCxUpgradesActive => "downstream_cx_upgrades_active",
    }
    histograms {
        DownstreamRqTime => "downstream_rq_time",
        DownstreamCxLengthMs => "downstream_cx_length_ms",
    }
    globals {}
    control_counters {}
}

// `http1.*`: Envoy's HTTP/1 codec stats (one global scope, not per connection manager).
stat_set! { http1_codec, prefix_codes: None,
    counters {
        DroppedHeadersWithUnderscores => "dropped_headers_with_underscores",
        RequestsRejectedWithUnderscoresInHeaders => "requests_rejected_with_underscores_in_headers",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}

// `http2.*` (downstream, one global scope) and `cluster.<name>.http2.*` (upstream): Envoy's
// HTTP/2 codec flood counters and outbound queue gauges (`http2/flood.rs`).
stat_set! { http2_codec, prefix_codes: None,
    counters {
        OutboundFlood => "outbound_flood",
        OutboundControlFlood => "outbound_control_flood",
        InboundEmptyFramesFlood => "inbound_empty_frames_flood",
        InboundPriorityFramesFlood => "inbound_priority_frames_flood",
        InboundWindowUpdateFramesFlood => "inbound_window_update_frames_flood",
    }
    gauges {
        OutboundFramesActive => "outbound_frames_active",
        OutboundControlFramesActive => "outbound_control_frames_active",
    }
    histograms {}
    globals {}
    control_counters {}
}

// `cluster.<name>.*`
stat_set! { cluster, prefix_codes: Some("upstream_rq_"),
    counters {
        UpstreamCxTotal => "upstream_cx_total",
        UpstreamCxHttp1Total => "upstream_cx_http1_total",
        UpstreamCxHttp2Total => "upstream_cx_http2_total",
        UpstreamCxConnectFail => "upstream_cx_connect_fail",
        UpstreamCxConnectTimeout => "upstream_cx_connect_timeout",
        UpstreamCxDestroy => "upstream_cx_destroy",
        UpstreamCxDestroyLocal => "upstream_cx_destroy_local",
        UpstreamCxDestroyRemote => "upstream_cx_destroy_remote",
        UpstreamCxDestroyWithActiveRq => "upstream_cx_destroy_with_active_rq",
        UpstreamCxDestroyLocalWithActiveRq => "upstream_cx_destroy_local_with_active_rq",
        UpstreamCxDestroyRemoteWithActiveRq => "upstream_cx_destroy_remote_with_active_rq",
        UpstreamCxIdleTimeout => "upstream_cx_idle_timeout",
        UpstreamCxNoneHealthy => "upstream_cx_none_healthy",
        UpstreamCxProtocolError => "upstream_cx_protocol_error",
        UpstreamCxRxBytesTotal => "upstream_cx_rx_bytes_total",
        UpstreamCxTxBytesTotal => "upstream_cx_tx_bytes_total",
        UpstreamRqTotal => "upstream_rq_total",
        UpstreamRqCompleted => "upstream_rq_completed",
        UpstreamRqPendingTotal => "upstream_rq_pending_total",
        UpstreamRqTimeout => "upstream_rq_timeout",
        UpstreamRqRxReset => "upstream_rq_rx_reset",
        UpstreamRqTxReset => "upstream_rq_tx_reset",
        UpstreamRq1xx => "upstream_rq_1xx",
        UpstreamRq2xx => "upstream_rq_2xx",
        UpstreamRq3xx => "upstream_rq_3xx",
        UpstreamRq4xx => "upstream_rq_4xx",
        UpstreamRq5xx => "upstream_rq_5xx",
        LbHealthyPanic => "lb_healthy_panic",
        // Issue 4 (resilience): retries, per-try timeouts, circuit breakers, mirroring.
        UpstreamRqRetry => "upstream_rq_retry",
        UpstreamRqRetrySuccess => "upstream_rq_retry_success",
        UpstreamRqRetryOverflow => "upstream_rq_retry_overflow",
        UpstreamRqRetryLimitExceeded => "upstream_rq_retry_limit_exceeded",
        UpstreamRqRetryBackoffExponential => "upstream_rq_retry_backoff_exponential",
        UpstreamRqPerTryTimeout => "upstream_rq_per_try_timeout",
        UpstreamRqPendingOverflow => "upstream_rq_pending_overflow",
        UpstreamRqActiveOverflow => "upstream_rq_active_overflow",
        UpstreamCxOverflow => "upstream_cx_overflow",
        UpstreamCxMaxRequests => "upstream_cx_max_requests",
        // tcp_proxy: the last of `max_connect_attempts` failed.
        UpstreamCxConnectAttemptsExceeded => "upstream_cx_connect_attempts_exceeded",
        UpstreamRqPerTryIdleTimeout => "upstream_rq_per_try_idle_timeout",
        UpstreamCxMaxDurationReached => "upstream_cx_max_duration_reached",
    }
    gauges {
        UpstreamCxActive => "upstream_cx_active",
        UpstreamRqActive => "upstream_rq_active",
    }
    histograms {
        UpstreamRqTime => "upstream_rq_time",
        UpstreamCxConnectMs => "upstream_cx_connect_ms",
    }
    globals {
        MembershipTotal => "membership_total",
        MembershipHealthy => "membership_healthy",
        // Issue 4 (resilience): circuit breaker gauges (DEFAULT priority).
        CbCxOpen => "circuit_breakers.default.cx_open",
        CbRqPendingOpen => "circuit_breakers.default.rq_pending_open",
        CbRqOpen => "circuit_breakers.default.rq_open",
        CbRqRetryOpen => "circuit_breakers.default.rq_retry_open",
        CbRemainingCx => "circuit_breakers.default.remaining_cx",
        CbRemainingPending => "circuit_breakers.default.remaining_pending",
        CbRemainingRq => "circuit_breakers.default.remaining_rq",
        CbRemainingRetries => "circuit_breakers.default.remaining_retries",
    }
    control_counters {
        MembershipChange => "membership_change",
    }
}

// `cluster.<name>.outlier_detection.*` (only for clusters with outlier detection, as Envoy).
// Ejections happen off the per-request shards (control thread or a worker's rare ejection
// path), so everything is a control counter or a global.
stat_set! { outlier, prefix_codes: None,
    counters {}
    gauges {}
    histograms {}
    globals {
        EjectionsActive => "ejections_active",
    }
    control_counters {
        EjectionsTotal => "ejections_total",
        EjectionsOverflow => "ejections_overflow",
        EjectionsEnforcedTotal => "ejections_enforced_total",
        EjectionsConsecutive5xx => "ejections_consecutive_5xx",
        EjectionsSuccessRate => "ejections_success_rate",
        EnforcedConsecutive5xx => "ejections_enforced_consecutive_5xx",
        DetectedConsecutive5xx => "ejections_detected_consecutive_5xx",
        EnforcedGatewayFailure => "ejections_enforced_consecutive_gateway_failure",
        DetectedGatewayFailure => "ejections_detected_consecutive_gateway_failure",
        EnforcedLocalOriginFailure => "ejections_enforced_consecutive_local_origin_failure",
        DetectedLocalOriginFailure => "ejections_detected_consecutive_local_origin_failure",
        EnforcedSuccessRate => "ejections_enforced_success_rate",
        DetectedSuccessRate => "ejections_detected_success_rate",
        EnforcedLocalOriginSuccessRate => "ejections_enforced_local_origin_success_rate",
        DetectedLocalOriginSuccessRate => "ejections_detected_local_origin_success_rate",
        EnforcedFailurePercentage => "ejections_enforced_failure_percentage",
        DetectedFailurePercentage => "ejections_detected_failure_percentage",
        EnforcedLocalOriginFailurePercentage => "ejections_enforced_local_origin_failure_percentage",
        DetectedLocalOriginFailurePercentage => "ejections_detected_local_origin_failure_percentage",
    }
}

/// The `<class>xx` counter for a status code (1xx..5xx; others count as 5xx).
pub fn http_class(code: u16) -> http::Counter {
    use self::http::Counter::*;
    match code / 100 {
        1 => DownstreamRq1xx,
        2 => DownstreamRq2xx,
        3 => DownstreamRq3xx,
        4 => DownstreamRq4xx,
        _ => DownstreamRq5xx,
    }
}

pub fn cluster_class(code: u16) -> cluster::Counter {
    use cluster::Counter::*;
    match code / 100 {
        1 => UpstreamRq1xx,
        2 => UpstreamRq2xx,
        3 => UpstreamRq3xx,
        4 => UpstreamRq4xx,
        _ => UpstreamRq5xx,
    }
}

// `cluster.<name>.grpc[.<service>.<method>].*` (the `grpc_stats` HTTP filter): calls by
// outcome and by `grpc-status` (0 to 16), and messages each way. One counter list for both
// sets below, so their counters stand in the same slots (the filter counts either with
// `grpc::Counter`).
macro_rules! grpc_set {
    ($name:ident, histograms { $($h:ident => $hn:literal,)* }) => {
        stat_set! { $name, prefix_codes: None,
            counters {
                Success => "success",
                Failure => "failure",
                Total => "total",
                S0 => "0", S1 => "1", S2 => "2", S3 => "3", S4 => "4", S5 => "5", S6 => "6",
                S7 => "7", S8 => "8", S9 => "9", S10 => "10", S11 => "11", S12 => "12",
                S13 => "13", S14 => "14", S15 => "15", S16 => "16",
                RequestMessageCount => "request_message_count",
                ResponseMessageCount => "response_message_count",
            }
            gauges {}
            histograms { $($h => $hn,)* }
            globals {}
            control_counters {}
        }
    };
}

grpc_set! { grpc, histograms {} }

// With `enable_upstream_stats`: the same counters and the `upstream_rq_time` histogram.
grpc_set! { grpc_upstream, histograms {
    UpstreamRqTime => "upstream_rq_time",
} }

// `statsd.*`: the statsd sink's own counter (meshcore's; created on the first drop).
stat_set! { statsd, prefix_codes: None,
    counters {}
    gauges {}
    histograms {}
    globals {}
    control_counters {
        HistogramSamplesDropped => "histogram_samples_dropped",
    }
}
