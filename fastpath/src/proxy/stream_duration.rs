//! Envoy's stream duration limit: the connection manager's `max_stream_duration`, replaced by
//! the route's `max_stream_duration`, or by the request's `grpc-timeout` when the route sets
//! `grpc_timeout_header_max` (capped by it, less `grpc_timeout_header_offset`); and the
//! `grpc-timeout` header sent upstream when the route sets `max_stream_duration`.
use std::time::Duration;

use crate::router::StreamDuration;

/// Largest `TimeoutValue` of a `grpc-timeout` header (eight digits).
const MAX_GRPC_TIMEOUT_VALUE: u64 = 99_999_999;

/// Parses a `grpc-timeout` value (`TimeoutValue TimeoutUnit`: at most 8 digits, then one of
/// `H M S m u n`), as Envoy's `Grpc::Common::getGrpcTimeout`: sub-millisecond values round up
/// to whole milliseconds. `None` for anything else.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let ms = match unit {
        b'H' => n * 3_600_000,
        b'M' => n * 60_000,
        b'S' => n * 1000,
        b'm' => n,
        b'u' => n.div_ceil(1000),
        b'n' => n.div_ceil(1_000_000),
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Writes `timeout` as a `grpc-timeout` value into `out`, as Envoy's `toGrpcTimeout`:
/// milliseconds, or the smallest of seconds, minutes, hours that fits in eight digits
/// (clipped at 99999999 hours).
pub fn format_grpc_timeout(timeout: Duration, out: &mut Vec<u8>) {
    let mut time = timeout.as_millis().min(u128::from(u64::MAX)) as u64;
    let units = b"mSMH";
    let mut unit = 0;
    if time > MAX_GRPC_TIMEOUT_VALUE {
        time /= 1000;
        unit = 1;
    }
    while time > MAX_GRPC_TIMEOUT_VALUE {
        if unit == 3 {
            time = MAX_GRPC_TIMEOUT_VALUE;
        } else {
            time /= 60;
            unit += 1;
        }
    }
    out.extend_from_slice(time.to_string().as_bytes());
    out.push(units[unit]);
}

/// The stream duration limit once the route is known (Envoy's `refreshDurationTimeout`):
/// `None` disables the timer, `Some(ZERO)` fires it at once. `hcm` is the connection
/// manager's `max_stream_duration` (zero: none), `grpc_timeout` the request's parsed header.
pub fn limit(
    route: Option<&StreamDuration>,
    hcm: Duration,
    grpc_timeout: Option<Duration>,
) -> Option<Duration> {
    let grpc_max = route.and_then(|r| r.grpc_max);
    let (Some(mut timeout), Some(max)) = (grpc_timeout, grpc_max) else {
        return match route.and_then(|r| r.max) {
            Some(d) => (!d.is_zero()).then_some(d),
            None => (!hcm.is_zero()).then_some(hcm),
        };
    };
    if !max.is_zero() && timeout > max {
        timeout = max;
    }
    if let Some(offset) = route.and_then(|r| r.grpc_offset)
        && !timeout.is_zero()
    {
        timeout = timeout.checked_sub(offset).unwrap_or(Duration::ZERO);
    }
    Some(timeout)
}

/// What the request's headers say for the stream duration: its `grpc-timeout` (when valid)
/// and whether it is a gRPC request (`content-type: application/grpc*`).
pub fn grpc_headers(headers: &[httparse::Header<'_>]) -> (Option<Duration>, bool) {
    let mut timeout = None;
    let mut grpc = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("grpc-timeout") {
            timeout = parse_grpc_timeout(h.value);
        } else if h.name.eq_ignore_ascii_case("content-type") {
            grpc = h
                .value
                .get(..16)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"application/grpc"));
        }
    }
    (timeout, grpc)
}

/// Replaces the `grpc-timeout` line of the upstream head `out` (ending in the blank line) by
/// `timeout`, or removes it when `None` (Envoy does so for gRPC requests on routes with
/// `max_stream_duration`, so the upstream sees the deadline the proxy enforces).
pub fn set_grpc_timeout(out: &mut Vec<u8>, timeout: Option<Duration>) {
    super::upstream_head::remove_lines(out, &["grpc-timeout".into()]);
    let Some(t) = timeout else {
        return;
    };
    if out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
        out.extend_from_slice(b"grpc-timeout: ");
        format_grpc_timeout(t, out);
        out.extend_from_slice(b"\r\n\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grpc_timeouts_parse_as_envoy() {
        assert_eq!(parse_grpc_timeout(b"1H"), Some(ms(3_600_000)));
        assert_eq!(parse_grpc_timeout(b"2M"), Some(ms(120_000)));
        assert_eq!(parse_grpc_timeout(b"3S"), Some(ms(3000)));
        assert_eq!(parse_grpc_timeout(b"250m"), Some(ms(250)));
        assert_eq!(parse_grpc_timeout(b"1500u"), Some(ms(2)));
        assert_eq!(parse_grpc_timeout(b"1000u"), Some(ms(1)));
        assert_eq!(parse_grpc_timeout(b"1n"), Some(ms(1)));
        assert_eq!(parse_grpc_timeout(b"0m"), Some(ms(0)));
        assert_eq!(parse_grpc_timeout(b"99999999S"), Some(ms(99_999_999_000)));
        for bad in [
            &b""[..],
            b"m",
            b"10",
            b"10x",
            b"-1m",
            b"1 m",
            b"123456789m",
            b"1.5S",
        ] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn grpc_timeouts_format_as_envoy() {
        let f = |d: Duration| {
            let mut v = Vec::new();
            format_grpc_timeout(d, &mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(f(ms(490)), "490m");
        assert_eq!(f(ms(99_999_999)), "99999999m");
        assert_eq!(f(ms(100_000_000)), "100000S");
        assert_eq!(f(Duration::from_secs(100_000_000 * 60)), "1666666H");
        assert_eq!(f(Duration::from_secs(u64::MAX / 2)), "99999999H");
    }

    #[test]
    fn the_limit_follows_envoys_refresh() {
        let hcm = ms(800);
        // No route setting: the connection manager's, or none.
        assert_eq!(limit(None, hcm, Some(ms(5))), Some(hcm));
        assert_eq!(limit(None, Duration::ZERO, None), None);
        // The route's max_stream_duration replaces it; 0 disables.
        let route = StreamDuration {
            max: Some(ms(500)),
            ..Default::default()
        };
        assert_eq!(limit(Some(&route), hcm, Some(ms(5))), Some(ms(500)));
        let off = StreamDuration {
            max: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(limit(Some(&off), hcm, None), None);
        // grpc_timeout_header_max: the header, capped (0: no cap), less the offset.
        let grpc = StreamDuration {
            max: Some(ms(500)),
            grpc_max: Some(ms(300)),
            grpc_offset: Some(ms(100)),
        };
        assert_eq!(limit(Some(&grpc), hcm, Some(ms(10_000))), Some(ms(200)));
        assert_eq!(limit(Some(&grpc), hcm, Some(ms(250))), Some(ms(150)));
        assert_eq!(limit(Some(&grpc), hcm, Some(ms(50))), Some(Duration::ZERO));
        // Without the header the route's max_stream_duration applies.
        assert_eq!(limit(Some(&grpc), hcm, None), Some(ms(500)));
        let uncapped = StreamDuration {
            grpc_max: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(limit(Some(&uncapped), hcm, Some(ms(9000))), Some(ms(9000)));
        // A zero grpc-timeout fires at once (the offset is not applied to it).
        assert_eq!(
            limit(Some(&grpc), hcm, Some(Duration::ZERO)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn grpc_request_headers_are_found() {
        let h = [
            httparse::Header {
                name: "Content-Type",
                value: b"application/grpc+proto",
            },
            httparse::Header {
                name: "grpc-timeout",
                value: b"2S",
            },
        ];
        assert_eq!(grpc_headers(&h), (Some(ms(2000)), true));
        assert_eq!(grpc_headers(&h[1..]), (Some(ms(2000)), false));
    }

    #[test]
    fn the_upstream_grpc_timeout_is_replaced_or_removed() {
        let mut head = b"POST /a HTTP/1.1\r\ngrpc-timeout: 3S\r\nx: 1\r\n\r\n".to_vec();
        set_grpc_timeout(&mut head, Some(ms(490)));
        assert_eq!(
            head,
            b"POST /a HTTP/1.1\r\nx: 1\r\ngrpc-timeout: 490m\r\n\r\n"
        );
        set_grpc_timeout(&mut head, None);
        assert_eq!(head, b"POST /a HTTP/1.1\r\nx: 1\r\n\r\n");
    }
}
