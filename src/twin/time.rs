//! Twin timestamps: with or without `Z`, up to 7 fractional digits, always UTC, and a
//! `0001-01-01T00:00:00` sentinel meaning "never".

use jiff::{Timestamp, civil::DateTime, tz::TimeZone};
use serde_json::Value;

/// `0001-01-01T00:00:00Z`, the .NET `DateTime.MinValue` IoT Hub and the agent write for "never".
const NEVER_SECONDS: i64 = -62_135_596_800;

/// A timestamp read from a twin. Absence is `Option::None` around it, so the three
/// cases the rules care about stay distinct: absent, never, unparseable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinTime {
    /// The sentinel `0001-01-01T00:00:00[Z]`: the event has never happened.
    Never,
    /// A real instant.
    At(Timestamp),
    /// Present but not a timestamp we can read.
    Unparseable,
}

impl TwinTime {
    /// Reads a twin timestamp; text without an offset is UTC, as IoT Hub and the agent mean it.
    pub fn parse(text: &str) -> TwinTime {
        let text = text.trim();
        // A date alone is not a twin timestamp: require the time part.
        let has_time = text.contains(['T', 't', ' ']);
        let instant = text.parse::<Timestamp>().ok().or_else(|| {
            has_time
                .then(|| text.parse::<DateTime>().ok())
                .flatten()
                .and_then(|civil| TimeZone::UTC.to_timestamp(civil).ok())
        });
        match instant {
            Some(ts) if ts.as_second() == NEVER_SECONDS && ts.subsec_nanosecond() == 0 => {
                TwinTime::Never
            }
            Some(ts) => TwinTime::At(ts),
            None => TwinTime::Unparseable,
        }
    }

    /// Reads a JSON value: strings are parsed, anything else is unparseable.
    pub fn from_json(value: &Value) -> TwinTime {
        match value {
            Value::String(text) => TwinTime::parse(text),
            _ => TwinTime::Unparseable,
        }
    }

    /// The instant, when there is one.
    pub fn timestamp(self) -> Option<Timestamp> {
        match self {
            TwinTime::At(ts) => Some(ts),
            TwinTime::Never | TwinTime::Unparseable => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_and_zulu_forms_are_the_same_instant() {
        let naive = TwinTime::parse("2021-06-28T21:46:40.4869405");
        let zulu = TwinTime::parse("2021-06-28T21:46:40.4869405Z");
        assert_eq!(naive, zulu);
        let ts = naive.timestamp().unwrap();
        assert_eq!(ts.to_string(), "2021-06-28T21:46:40.4869405Z");
    }

    #[test]
    fn sentinel_means_never_with_or_without_z() {
        assert_eq!(TwinTime::parse("0001-01-01T00:00:00"), TwinTime::Never);
        assert_eq!(TwinTime::parse("0001-01-01T00:00:00Z"), TwinTime::Never);
        assert_ne!(TwinTime::parse("0001-01-01T00:00:01Z"), TwinTime::Never);
    }

    #[test]
    fn offsets_are_honoured() {
        let t = TwinTime::parse("2024-01-01T02:00:00+02:00")
            .timestamp()
            .unwrap();
        assert_eq!(t.to_string(), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn garbage_is_unparseable_not_never() {
        for text in ["", "yesterday", "2021-13-40T00:00:00", "2021-06-28"] {
            assert_eq!(TwinTime::parse(text), TwinTime::Unparseable, "{text:?}");
        }
        assert_eq!(TwinTime::from_json(&Value::from(5)), TwinTime::Unparseable);
    }
}
