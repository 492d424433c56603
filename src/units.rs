//! Times and sizes: how tripseal reads them from a command line and writes
//! them in reports, events and syslog lines. One place, on the `time` crate,
//! so that every output agrees on one calendar.
//!
//! Times inside tripseal are nanoseconds since the Unix epoch (`i64`, as the
//! baseline stores them); everything written is UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

const NS_PER_S: i64 = 1_000_000_000;

/// Now, in nanoseconds since the epoch (0 if the clock is before it).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn utc(ns: i64) -> OffsetDateTime {
    // Every i64 of nanoseconds (1677 to 2262) is a date `time` can hold.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// UTC ISO-8601 with whole seconds: `2027-01-31T12:00:00Z`.
pub fn iso8601(ns: i64) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    utc(ns).format(f).unwrap_or_default()
}

/// UTC ISO-8601, with the nanoseconds when there are any.
pub fn iso8601_ns(ns: i64) -> String {
    if ns.rem_euclid(NS_PER_S) == 0 {
        return iso8601(ns);
    }
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    utc(ns).format(f).unwrap_or_default()
}

/// UTC RFC 3339 with microseconds, from Celery's float `timestamp` (seconds
/// since the epoch), as syslog's TIMESTAMP field has it.
pub fn rfc3339_micros(t: f64) -> String {
    // Seconds and microseconds apart: t * 1e9 would exceed f64's precision.
    let secs = t.floor();
    let micros = (((t - secs) * 1e6).round() as i64).min(999_999);
    let ns = (secs as i64)
        .saturating_mul(NS_PER_S)
        .saturating_add(micros * 1000);
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    utc(ns).format(f).unwrap_or_default()
}

/// A span of time as days, hours and minutes (`6d 23h`, `5h 2m`, `40s`).
pub fn human_duration(ns: i64) -> String {
    let secs = ns / NS_PER_S;
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Bytes as a short human figure (1000-based, like `ls --si`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A period: a number with ms, s, m, h or d (a bare number is seconds).
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let (num, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a period such as 30s, 15m, 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("{text:?}: the unit is ms, s, m, h or d")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{text:?}: the period must be more than zero"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?}: the period is too long"))
}

/// An expiry: a period from `now_ns`, or a UTC date or time; in whole
/// seconds, and later than `now_ns`.
pub fn parse_when(text: &str, now_ns: i64) -> Result<i64, String> {
    let at = match parse_period(text) {
        Ok(period) => now_ns.saturating_add(i64::try_from(period.as_nanos()).unwrap_or(i64::MAX)),
        Err(_) => parse_time(text)?,
    };
    if at <= now_ns {
        return Err(format!(
            "--expires {text:?}: that time has passed; give a period (30d) or a later date"
        ));
    }
    Ok(at - at.rem_euclid(NS_PER_S))
}

/// A UTC date (`2027-01-31`, midnight) or an RFC 3339 time, in nanoseconds
/// since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{text:?} is neither a period (30d, 12h) nor a UTC date (2027-01-31) or time \
             (2027-01-31T12:00:00Z)"
        )
    };
    let at = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t,
        Err(_) => time::Date::parse(text, format_description!("[year]-[month]-[day]"))
            .map_err(|_| bad())?
            .midnight()
            .assume_utc(),
    };
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000 * NS_PER_S), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(-NS_PER_S), "1969-12-31T23:59:59Z");
        assert_eq!(
            iso8601_ns(1_700_000_000 * NS_PER_S + 5),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(iso8601_ns(NS_PER_S), "1970-01-01T00:00:01Z");
        assert_eq!(
            rfc3339_micros(1_700_000_000.25),
            "2023-11-14T22:13:20.250000Z"
        );
        // A leap day, and the last day of a century that is not a leap year.
        assert_eq!(iso8601(951_782_400 * NS_PER_S), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(4_107_456_000 * NS_PER_S), "2100-02-28T00:00:00Z");
    }

    #[test]
    fn times_read_back_as_written() {
        let t = 1_700_000_000 * NS_PER_S;
        assert_eq!(parse_time(&iso8601(t)), Ok(t));
        assert_eq!(parse_time("2023-11-14"), Ok(1_699_920_000 * NS_PER_S));
        assert!(parse_time("2023-13-01").is_err());
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn periods_and_expiries() {
        assert_eq!(parse_period("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_period("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_period("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["0", "-1s", "5x", "soon", "1e400s"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        let now = 1_700_000_000 * NS_PER_S + 123;
        assert_eq!(parse_when("1h", now), Ok(1_700_003_600 * NS_PER_S));
        assert!(parse_when("2001-01-01", now).is_err());
    }

    #[test]
    fn durations_and_sizes_for_people() {
        assert_eq!(human_duration(40 * NS_PER_S), "40s");
        assert_eq!(human_duration(302 * NS_PER_S), "5m");
        assert_eq!(human_duration(302 * 60 * NS_PER_S), "5h 2m");
        assert_eq!(
            human_duration((6 * 86_400 + 23 * 3600) * NS_PER_S),
            "6d 23h"
        );
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(1_700_000_000), "1.7 GB");
    }
}
