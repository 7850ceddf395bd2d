//! The per-request record: what an access log line needs about one request (its status and
//! Envoy response flags, and when an access log is configured the boxed `Fields`), filled in
//! as the request is served and complete when `Conn::one_request` returns.
use std::net::SocketAddr;
use std::time::Instant;

use crate::access_log::{AccessLogs, Fields};
use crate::error::ErrorKind;
use crate::http1::HeadError;
use crate::local_reply::{self, ResponseFlag, ResponseFlags};

#[derive(Debug, Default)]
pub struct RequestRecord {
    /// Status of the response head sent downstream (0: none was sent).
    pub status: u16,
    pub flags: ResponseFlags,
    /// Access log values; `None` when the connection manager has no access log (then every
    /// hook below is one branch).
    pub log: Option<Box<Fields>>,
}

impl Clone for RequestRecord {
    fn clone(&self) -> Self {
        RequestRecord {
            status: self.status,
            flags: self.flags,
            log: self.log.clone(),
        }
    }

    /// Keeps the copy's box and buffers (the periodic access log refreshes its copy of the
    /// record at each state change of a request).
    fn clone_from(&mut self, src: &Self) {
        self.status = src.status;
        self.flags = src.flags;
        match (&mut self.log, &src.log) {
            (Some(mine), Some(theirs)) => mine.copy_from(theirs),
            (mine, theirs) => mine.clone_from(theirs),
        }
    }
}

impl RequestRecord {
    /// Clears status and flags for the next request (the log fields are reset by `begin`).
    pub fn clear(&mut self) {
        self.status = 0;
        self.flags = ResponseFlags::default();
        if let Some(l) = self.log.as_deref_mut() {
            l.ready = false;
        }
    }

    /// The first bytes of a request are here: start its log fields if it will be logged or
    /// traced.
    pub fn begin(&mut self, logs: Option<&AccessLogs>, traced: bool) {
        match (logs, traced) {
            (Some(a), _) => self
                .log
                .get_or_insert_with(Default::default)
                .reset(a.needs()),
            (None, true) => self
                .log
                .get_or_insert_with(Default::default)
                .reset(Default::default()),
            (None, false) => self.log = None,
        }
    }

    /// A local reply for `kind`: records its status and flag, returns status and body.
    pub fn error(&mut self, kind: ErrorKind) -> (u16, &'static str) {
        let (status, body, flag) = local_reply::for_error(kind);
        self.status = status;
        self.flags.insert(flag);
        if let Some(l) = self.log.as_deref_mut() {
            (l.details, l.failure_reason) = details(kind);
        }
        (status, body)
    }

    /// Sets `%RESPONSE_CODE_DETAILS%` for a local reply that is not an error.
    pub fn details(&mut self, details: &'static str) {
        if let Some(l) = self.log.as_deref_mut() {
            l.details = details;
        }
    }

    /// The upstream host the (last) attempt went to.
    pub fn upstream(&mut self, addr: SocketAddr) {
        if let Some(l) = self.log.as_deref_mut() {
            l.upstream_host = Some(addr);
        }
    }

    /// Upstream attempts made (`%UPSTREAM_REQUEST_ATTEMPT_COUNT%`).
    pub fn attempts(&mut self, n: u32) {
        if let Some(l) = self.log.as_deref_mut() {
            l.attempts = n;
        }
    }

    /// A reply meshcore wrote itself: its head and body length.
    pub fn local_sent(&mut self, head: &[u8], body_len: usize) {
        if let Some(l) = self.log.as_deref_mut() {
            l.bytes_sent = body_len as u64;
            if l.details.is_empty() && l.filter_details.is_empty() {
                l.details = "direct_response";
            }
            if l.needs.resp_head {
                l.resp_head.clear();
                l.resp_head.extend_from_slice(head);
            }
        }
    }

    /// A failure after the response head was sent, or with no response at all (DC; UC/UT/UPE
    /// mid-body).
    pub fn flag(&mut self, flag: ResponseFlag) {
        self.flags.insert(flag);
    }
}

/// Envoy 1.40's `%RESPONSE_CODE_DETAILS%` and `%UPSTREAM_TRANSPORT_FAILURE_REASON%` for a
/// local reply.
fn details(kind: ErrorKind) -> (&'static str, &'static str) {
    const REFUSED: &str = "delayed_connect_error:_Connection_refused";
    match kind {
        ErrorKind::DownstreamProtocol(HeadError::MissingHost) => ("missing_host_header", ""),
        ErrorKind::DownstreamProtocol(HeadError::TooLarge) => ("http1.headers_too_large", ""),
        ErrorKind::DownstreamProtocol(HeadError::TooManyHeaders) => ("http1.too_many_headers", ""),
        ErrorKind::DownstreamProtocol(HeadError::InvalidPath) => ("path_normalization_failed", ""),
        ErrorKind::DownstreamProtocol(HeadError::UnderscoreInHeader) => {
            ("http1.unexpected_underscore", "")
        }
        ErrorKind::DownstreamProtocol(_) => ("http1.codec_error", ""),
        ErrorKind::NoRoute => ("route_not_found", ""),
        ErrorKind::NoHealthyUpstream => ("no_healthy_upstream", ""),
        ErrorKind::ConnectFailure => (
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
            REFUSED,
        ),
        ErrorKind::ConnectTimeout => (
            "upstream_reset_before_response_started{connection_timeout}",
            "",
        ),
        ErrorKind::UpstreamReset => (
            "upstream_reset_before_response_started{connection_termination}",
            "",
        ),
        ErrorKind::UpstreamProtocol => {
            ("upstream_reset_before_response_started{protocol_error}", "")
        }
        ErrorKind::UpstreamTimeout => ("upstream_response_timeout", ""),
        ErrorKind::Overflow => ("upstream_reset_before_response_started{overflow}", ""),
    }
}

/// The start of a forwarded response (its head is `head`, written downstream next).
pub fn response_started(l: &mut Fields, head: &[u8], upstream_local: Option<SocketAddr>) {
    l.first_byte = Some(Instant::now());
    l.details = "via_upstream";
    l.upstream_local = upstream_local;
    if l.needs.resp_head {
        l.resp_head.clear();
        l.resp_head.extend_from_slice(head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::HeadError;

    #[test]
    fn local_replies_carry_their_flag_into_the_record() {
        let mut r = RequestRecord::default();
        assert_eq!(r.error(ErrorKind::ConnectTimeout).0, 503);
        assert_eq!((r.status, r.flags.to_string().as_str()), (503, "UF"));

        let mut r = RequestRecord::default();
        let (status, body) = r.error(ErrorKind::DownstreamProtocol(HeadError::UnsupportedVersion));
        assert_eq!((status, body), (426, "Upgrade Required"));
        assert!(r.flags.contains(ResponseFlag::DownstreamProtocolError));

        // A response cut mid-body keeps its status and gains the flag.
        let mut r = RequestRecord {
            status: 200,
            ..Default::default()
        };
        assert!(r.log.is_none());
        r.flag(ResponseFlag::UpstreamRequestTimeout);
        assert_eq!((r.status, r.flags.to_string().as_str()), (200, "UT"));
    }
}
