//! Envoy's stat sets of the network filters: `tcp.<stat_prefix>.*` (tcp_proxy) and
//! `local_rate_limit.<stat_prefix>.*` (network local_ratelimit), `connection_limit.<stat_prefix>.*`.
use crate::stats::stat_set;

stat_set! { tcp_proxy, prefix_codes: None,
    counters {
        DownstreamCxTotal => "downstream_cx_total",
        DownstreamCxNoRoute => "downstream_cx_no_route",
        DownstreamCxRxBytesTotal => "downstream_cx_rx_bytes_total",
        DownstreamCxTxBytesTotal => "downstream_cx_tx_bytes_total",
        IdleTimeout => "idle_timeout",
        // Envoy keeps a connection whose downstream closed open to flush buffered bytes
        // upstream; meshcore writes them before closing, so this stays 0.
        UpstreamFlushTotal => "upstream_flush_total",
    }
    gauges {
        // Bytes read but not yet written on: at most one pipe's worth, and not tracked
        // (Envoy's flow-control gauges), so 0.
        DownstreamCxRxBytesBuffered => "downstream_cx_rx_bytes_buffered",
        DownstreamCxTxBytesBuffered => "downstream_cx_tx_bytes_buffered",
        UpstreamFlushActive => "upstream_flush_active",
    }
    histograms {}
    globals {}
    control_counters {}
}

stat_set! { connection_limit, prefix_codes: None,
    counters {
        LimitedConnections => "limited_connections",
    }
    gauges {
        ActiveConnections => "active_connections",
    }
    histograms {}
    globals {}
    control_counters {}
}

stat_set! { network_rate_limit, prefix_codes: None,
    counters {
        RateLimited => "rate_limited",
    }
    gauges {}
    histograms {}
    globals {}
    control_counters {}
}
