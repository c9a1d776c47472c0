//! Durations as users write them in the spec (`60s`, `5m`, `1h30m`).
//!
//! The spec keeps them as strings so the CRD reads like every other Kubernetes API
//! (`metav1.Duration` style) and CEL's `duration()` can compare them server-side; this
//! module turns them into [`std::time::Duration`] for the controller.

use std::time::Duration;

/// The accepted shape: one or more `<digits><unit>` groups, units `ms`, `s`, `m`, `h`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    #[error("duration is empty")]
    Empty,
    #[error("duration {0:?} has a number without a unit (use ms, s, m or h)")]
    MissingUnit(String),
    #[error("duration {0:?} has a unit without a number")]
    MissingNumber(String),
    #[error("duration {input:?} has an unknown unit {unit:?} (use ms, s, m or h)")]
    UnknownUnit { input: String, unit: String },
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `90s`, `5m`, `1h30m`, `250ms` into a [`Duration`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationParseError> {
    if input.is_empty() {
        return Err(DurationParseError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = input;
    while !rest.is_empty() {
        let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits_len == 0 {
            return Err(DurationParseError::MissingNumber(input.to_owned()));
        }
        let (digits, after) = rest.split_at(digits_len);
        let unit_len = after.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(DurationParseError::MissingUnit(input.to_owned()));
        }
        let (unit, next) = after.split_at(unit_len);
        let amount: u64 = digits
            .parse()
            .map_err(|_| DurationParseError::Overflow(input.to_owned()))?;
        let part = scaled(amount, unit).ok_or_else(|| match unit_scale_ms(unit) {
            Some(_) => DurationParseError::Overflow(input.to_owned()),
            None => DurationParseError::UnknownUnit {
                input: input.to_owned(),
                unit: unit.to_owned(),
            },
        })?;
        total = total
            .checked_add(part)
            .ok_or_else(|| DurationParseError::Overflow(input.to_owned()))?;
        rest = next;
    }
    Ok(total)
}

/// Formats a duration the way the spec writes them (largest units first, `0s` for zero).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

fn unit_scale_ms(unit: &str) -> Option<u64> {
    match unit {
        "ms" => Some(1),
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        _ => None,
    }
}

fn scaled(amount: u64, unit: &str) -> Option<Duration> {
    amount
        .checked_mul(unit_scale_ms(unit)?)
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_compound_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_malformed_input_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationParseError::Empty));
        assert!(matches!(
            parse_duration("60"),
            Err(DurationParseError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationParseError::MissingNumber(_))
        ));
        assert!(matches!(
            parse_duration("5d"),
            Err(DurationParseError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationParseError::MissingNumber(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationParseError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("9999999999999999h"),
            Err(DurationParseError::Overflow(_))
        ));
    }

    #[test]
    fn formats_what_it_parses() {
        for text in ["1h30m", "60s", "5m", "250ms", "1h1m1s1ms"] {
            let parsed = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(parsed)), Ok(parsed));
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
