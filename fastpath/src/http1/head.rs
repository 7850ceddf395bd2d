//! Head boundary shared by request and response parsing: httparse's status to a head length.
use super::{HeadError, headers};

/// The length of a complete head from httparse's result on `buf`, checked against `max_head`
/// and for bare LFs. `Ok(None)`: incomplete, read more (`HeadError::TooLarge` instead when
/// `buf` already exceeds `max_head`). `syntax` maps httparse's other errors (the request
/// and response sides name them differently). Generic, so no dynamic dispatch on the hot path.
#[inline]
pub(super) fn head_len(
    parsed: Result<httparse::Status<usize>, httparse::Error>,
    buf: &[u8],
    max_head: usize,
    syntax: impl FnOnce(httparse::Error) -> HeadError,
) -> Result<Option<usize>, HeadError> {
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > max_head {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(syntax(e)),
    };
    if head_len > max_head {
        return Err(HeadError::TooLarge);
    }
    if !headers::crlf_only(&buf[..head_len]) {
        return Err(HeadError::Malformed("bare LF in head"));
    }
    Ok(Some(head_len))
}
