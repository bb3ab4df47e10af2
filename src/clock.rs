//! Time, injected so that tests can hold it still.

use std::time::SystemTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A duration as people read it at a glance: `42s`, `3m05s`, `2h07m`, `3d04h`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// Unix ms as RFC 3339 in UTC with milliseconds (`2026-12-05T10:00:00.123Z`), how the platform API
/// writes times.
pub fn rfc3339(unix_ms: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let millis = time.millisecond();
    let seconds = time.replace_millisecond(0).unwrap_or(time);
    let whole = seconds
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // `Rfc3339` writes no fraction for whole seconds: put the milliseconds before the `Z`.
    format!("{}.{millis:03}Z", whole.trim_end_matches('Z'))
}

/// An RFC 3339 time (any offset, any fraction) as unix ms; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(time.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(59.0), "59s");
        assert_eq!(duration(3_599.0), "59m59s");
        assert_eq!(duration(7_260.0), "2h01m");
        assert_eq!(duration(90_000.0), "1d01h");
    }

    #[test]
    fn rfc3339_round_trips_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_464_800_123), "2026-12-05T10:00:00.123Z");
        assert_eq!(
            parse_rfc3339("2026-12-05T10:00:00.123Z"),
            Some(1_796_464_800_123)
        );
        assert_eq!(
            parse_rfc3339("2026-12-05T11:00:00.123+01:00"),
            Some(1_796_464_800_123)
        );
        assert_eq!(
            parse_rfc3339("2026-12-05T10:00:00Z"),
            Some(1_796_464_800_000)
        );
    }

    #[test]
    fn rfc3339_refuses_what_is_not_a_time() {
        for text in [
            "",
            "yesterday",
            "2026-12-05",
            "2026-12-05 10:00:00",
            "1796464800",
        ] {
            assert_eq!(parse_rfc3339(text), None, "{text}");
        }
    }
}
