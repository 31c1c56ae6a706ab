//! Instants as PostHog writes them (RFC 3339) and as the journal keeps them (Unix seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where "now" comes from: the system clock, or a fixed one in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The instant `seconds` after the Unix epoch.
pub(crate) fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// `2025-01-02T03:04:05Z`.
pub(crate) fn format_utc(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(timestamp) => timestamp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{} s after the epoch", unix_seconds(at)),
    }
}

/// Parses the RFC 3339 timestamps PostHog renders (`2025-01-01T00:00:00Z`,
/// `2025-01-01T00:00:00.123456+00:00`).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    text.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_posthog_renders() {
        let at = |text| parse_rfc3339(text).map(unix_seconds);
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2025-01-01T00:00:00Z"), Some(1_735_689_600));
        assert_eq!(at("2025-01-01T00:00:00.250000Z"), Some(1_735_689_600));
        assert_eq!(at("2025-01-01T02:00:00+02:00"), Some(1_735_689_600));
        assert_eq!(at("2024-02-29T12:00:00z"), Some(1_709_208_000));
        for bad in [
            "",
            "2025-01-01",
            "2025-13-01T00:00:00Z",
            "2025-01-01T00:00:00",
            "x",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_and_parses_back() {
        for seconds in [0, 1_709_208_000, 1_735_689_599, 4_102_444_800] {
            let text = format_utc(from_unix_seconds(seconds));
            assert_eq!(
                parse_rfc3339(&text).map(unix_seconds),
                Some(seconds),
                "{text}"
            );
        }
        assert_eq!(
            format_utc(from_unix_seconds(1_709_208_000)),
            "2024-02-29T12:00:00Z"
        );
    }
}
