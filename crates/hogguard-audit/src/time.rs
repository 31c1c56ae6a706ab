//! Instants as the log writes them: RFC 3339 in UTC with milliseconds,
//! `2025-01-02T03:04:05.678Z`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant with millisecond precision, for entry times and [`Filter`](crate::Filter)
/// bounds.
///
/// It prints as RFC 3339 in UTC with milliseconds; it parses any RFC 3339 date-time (`Z` or a
/// numeric offset, any number of fraction digits, cut to milliseconds) and, for filters, a bare
/// date `YYYY-MM-DD` meaning its midnight in UTC.
///
/// ```
/// use hogguard_audit::Timestamp;
///
/// let at: Timestamp = "2025-01-02T04:04:05.6789+01:00".parse()?;
/// assert_eq!(at.to_string(), "2025-01-02T03:04:05.678Z");
/// let day: Timestamp = "2025-01-02".parse()?;
/// assert!(day < at);
/// # Ok::<(), hogguard_audit::InvalidTimestamp>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_millis: i64,
}

/// A text that is not an RFC 3339 date-time or a `YYYY-MM-DD` date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time or YYYY-MM-DD date: {text:?}")]
pub struct InvalidTimestamp {
    /// The rejected text, cut to 64 characters.
    pub text: String,
}

impl Timestamp {
    /// The system clock's current time.
    pub fn now() -> Timestamp {
        Timestamp::from_unix_millis(jiff::Timestamp::now().as_millisecond())
    }

    /// The instant `unix_millis` milliseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_millis(unix_millis: i64) -> Timestamp {
        Timestamp { unix_millis }
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub fn unix_millis(self) -> i64 {
        self.unix_millis
    }

    /// Parses an RFC 3339 date-time or a `YYYY-MM-DD` date (midnight UTC).
    pub fn parse(text: &str) -> Result<Timestamp, InvalidTimestamp> {
        let instant = match text.len() {
            10 => jiff::civil::Date::from_str(text)
                .and_then(|date| date.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|midnight| midnight.timestamp()),
            _ => jiff::Timestamp::from_str(text),
        };
        instant
            .map(|instant| Timestamp::from_unix_millis(instant.as_millisecond()))
            .map_err(|_| InvalidTimestamp {
                text: text.chars().take(64).collect(),
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Out of jiff's range (years -9999 to 9999) only for hand-made values.
        let instant =
            jiff::Timestamp::from_millisecond(self.unix_millis).map_err(|_| fmt::Error)?;
        write!(f, "{}", instant.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(text: &str) -> Result<Timestamp, InvalidTimestamp> {
        Timestamp::parse(text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_735_689_600_250, "2025-01-01T00:00:00.250Z"),
            (951_825_599_999, "2000-02-29T11:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(Timestamp::from_unix_millis(millis).to_string(), text);
            assert_eq!(Timestamp::parse(text).unwrap().unix_millis(), millis);
        }
    }

    #[test]
    fn parses_offsets_fractions_and_dates() {
        let parse = |text: &str| Timestamp::parse(text).map(Timestamp::unix_millis);
        assert_eq!(parse("2025-01-01"), Ok(1_735_689_600_000));
        assert_eq!(parse("2025-01-01T01:00:00+01:00"), Ok(1_735_689_600_000));
        assert_eq!(parse("2024-12-31T19:00:00.1-05:00"), Ok(1_735_689_600_100));
        assert_eq!(
            parse("2025-01-01T00:00:00.123456789Z"),
            Ok(1_735_689_600_123)
        );
        for bad in [
            "",
            "2025-1-01",
            "2025-02-29",
            "2025-13-01",
            "2025-01-01T24:00:01Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00Zjunk",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(millis in -62_135_596_800_000_i64..253_402_300_799_999) {
            let at = Timestamp::from_unix_millis(millis);
            prop_assert_eq!(Timestamp::parse(&at.to_string()), Ok(at));
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Timestamp::parse(&text);
        }
    }
}
