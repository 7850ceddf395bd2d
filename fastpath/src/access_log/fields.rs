//! What an access log line is made from: the per-request values the data path fills in when
//! (and only when) the connection manager has an access log, and the borrowed view the
//! formatter and filters read at the end of the request.

/// `Entry::minor` of a request that came over HTTP/2 (bridged to the core as HTTP/1.1):
/// `%PROTOCOL%` renders `HTTP/2`.
pub const MINOR_HTTP2: u8 = 20;
use std::cell::OnceCell;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use super::format::Needs;
use super::head::HeadIndex;
use crate::local_reply::ResponseFlags;

/// Per-request values kept only when logging is on (boxed in the request record and reused
/// across a connection's requests).
#[derive(Clone, Debug)]
pub struct Fields {
    /// What the formats read (copied from the compiled logs when the request begins).
    pub needs: Needs,
    /// The head was read (or rejected): there is a request to log.
    pub ready: bool,
    /// HTTP minor version of the request (`None`: not parsed).
    pub minor: Option<u8>,
    /// Wall clock at the start of the request (`%START_TIME%`).
    pub start: SystemTime,
    /// Monotonic start (durations).
    pub begun: Instant,
    /// The request was fully received (`%REQUEST_DURATION%`).
    pub req_done: Option<Instant>,
    /// The first byte of the upstream response arrived (`%RESPONSE_DURATION%`).
    pub first_byte: Option<Instant>,
    pub bytes_received: u64,
    /// Response body bytes sent downstream.
    pub bytes_sent: u64,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_local: Option<SocketAddr>,
    /// Index of the routed cluster in the listener view's cluster list.
    pub cluster: Option<usize>,
    /// `%RESPONSE_CODE_DETAILS%` (empty: none).
    pub details: &'static str,
    /// `%RESPONSE_CODE_DETAILS%` an HTTP filter's reply set (RBAC's policy name); shown
    /// instead of `details` when not empty. Its allocation is kept across requests.
    pub filter_details: String,
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%` (empty: none).
    pub failure_reason: &'static str,
    /// The request head as Envoy's log sees it (the upstream head of a forwarded request,
    /// with meshcore's additions; else the received head), kept when a format reads
    /// `%REQ(...)%`.
    pub req_head: Vec<u8>,
    /// The response head sent downstream, kept when a format reads `%RESP(...)%`.
    pub resp_head: Vec<u8>,
    /// The selected route's `name` (empty: none).
    pub route_name: String,
    /// The request's trace (connection managers with `tracing`; `crate::tracing`).
    pub trace: Option<crate::tracing::SpanCtx>,
    /// The client address taken from x-forwarded-for (`%DOWNSTREAM_REMOTE_ADDRESS%` as Envoy
    /// sees it, port 0), kept when a format reads it; None: the peer.
    pub remote: Option<SocketAddr>,
    /// Upstream attempts made (`%UPSTREAM_REQUEST_ATTEMPT_COUNT%`; 0: the router sent none;
    /// on a `tcp_proxy` connection: the connects tried).
    pub attempts: u32,
    /// A `tcp_proxy` connection's `%STREAM_ID%` (a random UUID, as Envoy's tcp_proxy sets
    /// on its connection), drawn only when a format of its lines reads it; None: the
    /// request's `x-request-id`.
    pub stream_id: Option<[u8; 36]>,
    /// The request became a tunnel (CONNECT, an upgrade): as in Envoy its request and
    /// response never complete (`%REQUEST_DURATION%` and the `_TX_` durations are `-`).
    pub tunneled: bool,
}

impl Fields {
    pub fn new() -> Fields {
        Fields {
            needs: Needs::default(),
            ready: false,
            minor: None,
            start: SystemTime::now(),
            begun: Instant::now(),
            req_done: None,
            first_byte: None,
            bytes_received: 0,
            bytes_sent: 0,
            upstream_host: None,
            upstream_local: None,
            cluster: None,
            details: "",
            filter_details: String::new(),
            failure_reason: "",
            req_head: Vec::new(),
            resp_head: Vec::new(),
            route_name: String::new(),
            trace: None,
            remote: None,
            attempts: 0,
            stream_id: None,
            tunneled: false,
        }
    }

    /// Starts a new request, keeping the buffers' allocations.
    pub fn reset(&mut self, needs: Needs) {
        self.copy_from(&Fields {
            needs,
            ..Fields::new()
        });
    }

    /// Makes this a copy of `src`, keeping this copy's buffers (`clone_from` would allocate
    /// each anew): a new request starts from a fresh value, and the periodic line's copy is
    /// refreshed a few times per request.
    pub fn copy_from(&mut self, src: &Fields) {
        let mut req_head = std::mem::take(&mut self.req_head);
        let mut resp_head = std::mem::take(&mut self.resp_head);
        let mut route_name = std::mem::take(&mut self.route_name);
        let mut filter_details = std::mem::take(&mut self.filter_details);
        req_head.clone_from(&src.req_head);
        resp_head.clone_from(&src.resp_head);
        route_name.clone_from(&src.route_name);
        filter_details.clone_from(&src.filter_details);
        // Every other field is `Copy` (a field that is not stops this from compiling).
        *self = Fields {
            req_head,
            resp_head,
            route_name,
            filter_details,
            ..*src
        };
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields::new()
    }
}

/// `%ACCESS_LOG_TYPE%`: why a line was written (Envoy's `AccessLogType` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogType {
    /// A listener access log's line.
    NotSet,
    TcpUpstreamConnected,
    TcpPeriodic,
    TcpConnectionEnd,
    DownstreamStart,
    DownstreamPeriodic,
    DownstreamEnd,
    DownstreamTunnelSuccessfullyEstablished,
}

impl LogType {
    pub fn name(self) -> &'static str {
        match self {
            LogType::NotSet => "NotSet",
            LogType::TcpUpstreamConnected => "TcpUpstreamConnected",
            LogType::TcpPeriodic => "TcpPeriodic",
            LogType::TcpConnectionEnd => "TcpConnectionEnd",
            LogType::DownstreamStart => "DownstreamStart",
            LogType::DownstreamPeriodic => "DownstreamPeriodic",
            LogType::DownstreamEnd => "DownstreamEnd",
            LogType::DownstreamTunnelSuccessfullyEstablished => {
                "DownstreamTunnelSuccessfullyEstablished"
            }
        }
    }
}

/// Everything one line can show, borrowed at the end of a request.
pub struct Entry<'a> {
    pub fields: &'a Fields,
    /// `%ACCESS_LOG_TYPE%`.
    pub kind: LogType,
    /// `%CONNECTION_TERMINATION_DETAILS%` (empty: none): why a network filter closed the
    /// connection (RBAC's `rbac_access_denied_matched_policy[...]`).
    pub termination: &'a str,
    /// `%DOWNSTREAM_TRANSPORT_FAILURE_REASON%` (empty: none): why the downstream TLS
    /// handshake failed.
    pub transport_failure: &'a str,
    /// Status sent downstream (0: none).
    pub status: u16,
    pub flags: ResponseFlags,
    /// HTTP minor version (`None`: the head was not parsed).
    pub minor: Option<u8>,
    /// The request head as Envoy's log sees it (request line and headers; empty: none).
    pub req_head: &'a [u8],
    pub route_name: &'a str,
    pub cluster: Option<ClusterNames<'a>>,
    pub downstream_remote: SocketAddr,
    pub downstream_local: SocketAddr,
    /// The downstream connection's id (`%CONNECTION_ID%`, `ConnInfo::id`).
    pub connection_id: u64,
    /// The downstream connection's TLS facts (None: plain TCP).
    pub tls: Option<&'a crate::conn_info::TlsInfo>,
    pub end: Instant,
    /// `generate_request_id`: a request without `x-request-id` gets one, as Envoy's does.
    pub generate_request_id: bool,
    /// The request id generated for this line (once).
    pub generated_id: OnceCell<[u8; 36]>,
    /// `req_head`, indexed on the first `%REQ(...)%` lookup.
    pub req_index: OnceCell<HeadIndex<'a>>,
}

/// The routed cluster's names in a line: `%UPSTREAM_CLUSTER%` shows `stat` (its
/// `alt_stat_name`, else its name, as Envoy 1.40 does), `%UPSTREAM_CLUSTER_RAW%` its `name`.
#[derive(Clone, Copy, Debug)]
pub struct ClusterNames<'a> {
    pub name: &'a str,
    pub stat: &'a str,
}

impl<'a> ClusterNames<'a> {
    /// The names of a snapshot cluster.
    pub fn of(c: &'a crate::config::snapshot::Cluster) -> ClusterNames<'a> {
        ClusterNames {
            name: &c.name,
            stat: c.stat_name(),
        }
    }
}

impl Entry<'_> {
    /// `%DURATION%` in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        ms(self.end.saturating_duration_since(self.fields.begun))
    }
}

pub fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}
