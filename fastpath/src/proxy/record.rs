//! The per-request record: what an access log line needs about one request (its status and
//! Envoy response flags), filled in as the request is served and complete when
//! `Conn::one_request` returns.
use crate::error::ErrorKind;
use crate::local_reply::{self, ResponseFlag, ResponseFlags};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    /// Status of the response head sent downstream (0: none was sent).
    pub status: u16,
    pub flags: ResponseFlags,
}

impl RequestRecord {
    /// A local reply for `kind`: records its status and flag, returns status and body.
    pub fn error(&mut self, kind: ErrorKind) -> (u16, &'static str) {
        let (status, body, flag) = local_reply::for_error(kind);
        self.status = status;
        self.flags.insert(flag);
        (status, body)
    }

    /// A failure after the response head was sent, or with no response at all (DC; UC/UT/UPE
    /// mid-body).
    pub fn flag(&mut self, flag: ResponseFlag) {
        self.flags.insert(flag);
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
        r.flag(ResponseFlag::UpstreamRequestTimeout);
        assert_eq!((r.status, r.flags.to_string().as_str()), (200, "UT"));
    }
}
