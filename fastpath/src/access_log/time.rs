//! `%START_TIME(...)%` formats: the strftime subset Envoy's access logs use (absl's
//! `FormatTime` in UTC plus Envoy's `%f` / `%1f`..`%9f` fractions), compiled once per config.
//! Hand-written: the crate has no date library, and this is a per-request path.
use std::time::{SystemTime, UNIX_EPOCH};

/// Envoy's default `%START_TIME%` format.
pub const DEFAULT: &str = "%Y-%m-%dT%H:%M:%E3SZ";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Year,
    Year2,
    Month,
    Day,
    DaySpace,
    Hour,
    Hour12,
    Minute,
    Second,
    /// Seconds with this many fraction digits (`%E3S`).
    SecondFrac(u8),
    /// The first n digits of the nanoseconds (`%f` is 9, `%3f` is 3).
    Frac(u8),
    Epoch,
    DayOfYear,
    WeekdayShort,
    WeekdayLong,
    MonthShort,
    MonthLong,
    AmPm,
}

/// A compiled time format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeFormat(Vec<Part>);

const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl TimeFormat {
    /// Compiles `fmt`; an unsupported conversion is an error naming it.
    pub fn compile(fmt: &str) -> Result<TimeFormat, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some(spec) = chars.next() else {
                return Err(format!("time format {fmt:?} ends with '%'"));
            };
            let part = match spec {
                '%' => {
                    lit.push('%');
                    continue;
                }
                'n' => {
                    lit.push('\n');
                    continue;
                }
                't' => {
                    lit.push('\t');
                    continue;
                }
                'Y' => vec![Part::Year],
                'y' => vec![Part::Year2],
                'm' => vec![Part::Month],
                'd' => vec![Part::Day],
                'e' => vec![Part::DaySpace],
                'H' => vec![Part::Hour],
                'I' => vec![Part::Hour12],
                'M' => vec![Part::Minute],
                'S' => vec![Part::Second],
                's' => vec![Part::Epoch],
                'j' => vec![Part::DayOfYear],
                'a' => vec![Part::WeekdayShort],
                'A' => vec![Part::WeekdayLong],
                'b' | 'h' => vec![Part::MonthShort],
                'B' => vec![Part::MonthLong],
                'p' => vec![Part::AmPm],
                'z' => vec![Part::Lit("+0000".into())],
                'Z' => vec![Part::Lit("UTC".into())],
                'f' => vec![Part::Frac(9)],
                'T' => vec![
                    Part::Hour,
                    lit_part(":"),
                    Part::Minute,
                    lit_part(":"),
                    Part::Second,
                ],
                'R' => vec![Part::Hour, lit_part(":"), Part::Minute],
                'F' => vec![
                    Part::Year,
                    lit_part("-"),
                    Part::Month,
                    lit_part("-"),
                    Part::Day,
                ],
                'D' => vec![
                    Part::Month,
                    lit_part("/"),
                    Part::Day,
                    lit_part("/"),
                    Part::Year2,
                ],
                d @ '1'..='9' if chars.peek() == Some(&'f') => {
                    chars.next();
                    vec![Part::Frac(d as u8 - b'0')]
                }
                'E' => {
                    let n = match chars.next() {
                        Some('*') => 9,
                        Some(d @ '0'..='9') => d as u8 - b'0',
                        _ => return Err(format!("time format {fmt:?}: unsupported %E conversion")),
                    };
                    if chars.next() != Some('S') {
                        return Err(format!("time format {fmt:?}: unsupported %E conversion"));
                    }
                    vec![Part::SecondFrac(n)]
                }
                other => {
                    return Err(format!(
                        "time format {fmt:?}: unsupported conversion %{other}"
                    ));
                }
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.extend(part);
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(TimeFormat(parts))
    }

    /// Appends `t` (UTC) to `out`.
    pub fn render(&self, t: SystemTime, out: &mut Vec<u8>) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs();
        let nanos = d.subsec_nanos();
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (rem / 3600, rem / 60 % 60, rem % 60);
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Year => num(out, year as u64, 4),
                Part::Year2 => num(out, (year % 100) as u64, 2),
                Part::Month => num(out, month as u64, 2),
                Part::Day => num(out, day as u64, 2),
                Part::DaySpace => {
                    if day < 10 {
                        out.push(b' ');
                    }
                    num(out, day as u64, 1)
                }
                Part::Hour => num(out, hour, 2),
                Part::Hour12 => num(out, (hour + 11) % 12 + 1, 2),
                Part::Minute => num(out, minute, 2),
                Part::Second => num(out, second, 2),
                Part::SecondFrac(n) => {
                    num(out, second, 2);
                    if *n > 0 {
                        out.push(b'.');
                        frac(out, nanos, *n);
                    }
                }
                Part::Frac(n) => frac(out, nanos, *n),
                Part::Epoch => num(out, secs, 1),
                Part::DayOfYear => {
                    let jan1 = days_from_civil(year, 1, 1);
                    num(out, (days - jan1 + 1) as u64, 3)
                }
                Part::WeekdayShort => {
                    out.extend_from_slice(&WEEKDAYS[days.rem_euclid(7) as usize].as_bytes()[..3])
                }
                Part::WeekdayLong => {
                    out.extend_from_slice(WEEKDAYS[days.rem_euclid(7) as usize].as_bytes())
                }
                Part::MonthShort => {
                    out.extend_from_slice(&MONTHS[month as usize - 1].as_bytes()[..3])
                }
                Part::MonthLong => out.extend_from_slice(MONTHS[month as usize - 1].as_bytes()),
                Part::AmPm => out.extend_from_slice(if hour < 12 { b"AM" } else { b"PM" }),
            }
        }
    }
}

fn lit_part(s: &str) -> Part {
    Part::Lit(s.to_string())
}

/// `v` zero-padded to at least `width` digits.
fn num(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// The first `n` digits of the 9-digit nanoseconds.
fn frac(out: &mut Vec<u8>, nanos: u32, n: u8) {
    let mut digits = [b'0'; 9];
    let mut v = nanos;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&digits[..n.min(9) as usize]);
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * if m > 2 { m - 3 } else { m + 9 } + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn render(fmt: &str, t: SystemTime) -> String {
        let mut out = Vec::new();
        TimeFormat::compile(fmt).unwrap().render(t, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_format_matches_envoy() {
        // Seen from Envoy 1.40: 1795683627.967410000 -> 2026-11-26T09:00:27.967Z
        let t = at(1_795_683_627, 967_410_000);
        assert_eq!(render(DEFAULT, t), "2026-11-26T09:00:27.967Z");
        assert_eq!(
            render("%s.%f|%9f|%1f", t),
            "1795683627.967410000|967410000|9"
        );
        assert_eq!(
            render("%Y-%m-%dT%H:%M:%S.%3fZ", t),
            "2026-11-26T09:00:27.967Z"
        );
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(
            render("%F %T %j %a %b", at(0, 0)),
            "1970-01-01 00:00:00 001 Thu Jan"
        );
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(
            render("%D %I%p %A %B %e %z %Z %%", at(1_709_210_096, 0)),
            "02/29/24 12PM Thursday February 29 +0000 UTC %"
        );
        assert_eq!(render("%j", at(1_735_603_200, 0)), "366"); // 2024-12-31
        assert_eq!(render("%E*S|%E0S", at(5, 1)), "05.000000001|05");
        for days in [-1i64, 0, 59, 365, 11_016, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn unsupported_conversions_are_errors() {
        assert!(TimeFormat::compile("%Q").unwrap_err().contains("%Q"));
        assert!(TimeFormat::compile("%").is_err());
        assert!(TimeFormat::compile("%E3X").is_err());
    }
}
