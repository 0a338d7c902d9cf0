//! The time formats step puts into JSON: Go's `time.Duration` strings (`"5m0s"`, `"24h"`,
//! `"1.5h"`), used by a provisioner's `claims` and by step's SSH token claims, and RFC 3339
//! times, which step's SSH claims `validAfter`/`validBefore` take as an alternative
//! (`TimeDuration`: either an absolute time or a duration relative to the signing time).

use crate::error::{Error, Result};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Parses a Go `time.Duration` string into nanoseconds: an optional sign, then one or more
/// decimal numbers (fractions allowed) each with a unit `ns`, `us` (`µs`, `μs`), `ms`, `s`,
/// `m` or `h`; `"0"` alone is zero. Overflowing ±2⁶³ ns (about 292 years) is an error.
pub fn parse_go_duration(text: &str) -> Result<i64> {
    let bad = || Error::malformed("duration", format!("{text:?} is not a Go duration"));
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        // Digits beyond what can matter are dropped (as Go does past its precision).
        let int_value: u128 = if int_part.is_empty() {
            0
        } else if int_part.len() > 20 {
            return Err(bad());
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut component = int_value.checked_mul(unit).ok_or_else(bad)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(18)];
            let scale = 10u128.pow(digits.len() as u32);
            let frac: u128 = digits.parse().map_err(|_| bad())?;
            component = component.checked_add(frac * unit / scale).ok_or_else(bad)?;
        }
        total = total.checked_add(component).ok_or_else(bad)?;
        if total > 1u128 << 63 {
            return Err(bad());
        }
    }
    if negative {
        Ok(0i64.checked_sub_unsigned(total as u64).ok_or_else(bad)?)
    } else {
        i64::try_from(total).map_err(|_| bad())
    }
}

/// Formats nanoseconds as Go's `Duration.String` does: `"0s"`, `"1.5µs"`, `"300ms"`,
/// `"5m0s"`, `"24h0m0s"`, `"-1m30s"`.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    fn with_fraction(whole: u64, frac: u64, digits: u32) -> String {
        if frac == 0 {
            return whole.to_string();
        }
        let mut f = format!("{frac:0width$}", width = digits as usize);
        while f.ends_with('0') {
            f.pop();
        }
        format!("{whole}.{f}")
    }
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", with_fraction(u / 1_000, u % 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", with_fraction(u / 1_000_000, u % 1_000_000, 6));
    }
    let seconds_total = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let hours = seconds_total / 3600;
    let minutes = (seconds_total % 3600) / 60;
    let seconds = with_fraction(seconds_total % 60, frac, 9);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 date-time (`2024-05-01T12:00:00Z`, `…T12:00:00.5+02:00`) into Unix
/// seconds (a fraction is truncated).
pub fn parse_rfc3339(text: &str) -> Result<i64> {
    let bad = || Error::malformed("time", format!("{text:?} is not an RFC 3339 time"));
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_ascii() {
        return Err(bad());
    }
    let num = |range: core::ops::Range<usize>| -> Result<i64> {
        let s = &text[range];
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let month_days = [
        31,
        28 + i64::from(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let offset = match &text[i..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let o = h * 3600 + m * 60;
            if zone.starts_with('-') { -o } else { o }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
    // Keep within years 1 ..= 9999, so that every time parsed formats back to one that parses.
    let first = days_from_civil(1, 1, 1) * 86_400;
    let last = days_from_civil(9999, 12, 31) * 86_400 + 86_399;
    if !(first..=last).contains(&unix) {
        return Err(bad());
    }
    Ok(unix)
}

/// Formats Unix seconds as an RFC 3339 UTC time, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// step's `TimeDuration`: an absolute time, or a duration relative to when the request is
/// signed. In JSON, a string: RFC 3339 for a time, a Go duration otherwise; `""` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOrDuration {
    /// An absolute time, Unix seconds.
    Time(i64),
    /// A duration relative to the signing time, nanoseconds (may be negative).
    Duration(i64),
}

impl TimeOrDuration {
    /// Parses step's string form; `""` is `None`.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        if text.is_empty() {
            return Ok(None);
        }
        if let Ok(t) = parse_rfc3339(text) {
            return Ok(Some(Self::Time(t)));
        }
        Ok(Some(Self::Duration(parse_go_duration(text)?)))
    }

    /// The string form step writes.
    pub fn to_json_string(&self) -> String {
        match *self {
            Self::Time(t) => format_rfc3339(t),
            Self::Duration(d) => format_go_duration(d),
        }
    }

    /// The absolute time in Unix seconds, a duration taken from `base` (Unix seconds).
    pub fn resolve(&self, base: i64) -> i64 {
        match *self {
            Self::Time(t) => t,
            Self::Duration(d) => base.saturating_add(d.div_euclid(NANOS_PER_SECOND)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SECOND;

    #[test]
    fn go_durations_parse_like_go() {
        let cases: [(&str, i64); 14] = [
            ("0", 0),
            ("5m", 300 * S),
            ("5m0s", 300 * S),
            ("24h", 86_400 * S),
            ("24h0m0s", 86_400 * S),
            ("1.5h", 5_400 * S),
            ("-1m30s", -90 * S),
            ("+10s", 10 * S),
            ("300ms", 300_000_000),
            ("1µs", 1_000),
            ("1us", 1_000),
            ("2ns", 2),
            (".5s", S / 2),
            ("720h0m0s", 720 * 3600 * S),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text).ok(), Some(want), "{text}");
        }
        for bad in ["", "5", "m", "1d", "-", "1.s.", "5 m", "9999999999999999999h", "1e3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_durations_format_like_go() {
        let cases: [(i64, &str); 9] = [
            (0, "0s"),
            (300 * S, "5m0s"),
            (86_400 * S, "24h0m0s"),
            (720 * 3600 * S, "720h0m0s"),
            (90 * S, "1m30s"),
            (-90 * S, "-1m30s"),
            (S + S / 2, "1.5s"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
        ];
        for (nanos, want) in cases {
            assert_eq!(format_go_duration(nanos), want);
            assert_eq!(parse_go_duration(want).ok(), Some(nanos));
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00Z").ok(), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("2024-02-29T14:00:00.999+02:00").ok(), Some(1_709_208_000));
        assert_eq!(format_rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "x",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:00:00-01:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(TimeOrDuration::parse("").ok(), Some(None));
        assert_eq!(TimeOrDuration::parse("5m").ok(), Some(Some(TimeOrDuration::Duration(300 * S))));
        let at = TimeOrDuration::parse("2024-02-29T12:00:00Z").ok().flatten();
        assert_eq!(at.map(|t| t.resolve(5)), Some(1_709_208_000));
        assert_eq!(TimeOrDuration::Duration(-60 * S).resolve(1000), 940);
    }
}
