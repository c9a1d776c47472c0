//! The one duration grammar of edgewatch: spec fields, the CRD's `pattern`, every CLI
//! duration flag and (with two additions) the simulator's scenario files.
//!
//! A duration is either
//! - Go-like: integer parts with the units `h`, `m`, `s`, `ms`, largest first, each at
//!   most once: `90s`, `5m`, `1h30m`, `2m30s`, `500ms`; or
//! - ISO 8601: `PT` and integer `H`, `M`, `S` parts, largest first: `PT15M`, `PT1H30M`.
//!
//! Each number has at most six digits. That keeps every accepted value inside the range
//! of Go's and CEL's durations, so the CRD's CEL rules can always evaluate it. The CRD
//! pattern [`DURATION_PATTERN`] accepts exactly what [`parse_duration`] parses (a shared
//! test holds them equal). Scenario files also accept spaces between parts (`1h 30m`)
//! and a bare number of seconds (`30`, `2.5`): [`parse_scenario_duration`].
//!
//! The spec keeps durations as strings so the CRD reads like other Kubernetes APIs and
//! CEL can compare them server-side (`PT…` is lowered to the Go form there, see
//! [`CEL_DURATION`]).

use std::time::Duration;

/// The CRD pattern: exactly the strings [`parse_duration`] accepts.
pub const DURATION_PATTERN: &str = concat!(
    "^(",
    "[0-9]{1,6}h([0-9]{1,6}m)?([0-9]{1,6}s)?([0-9]{1,6}ms)?",
    "|[0-9]{1,6}m([0-9]{1,6}s)?([0-9]{1,6}ms)?",
    "|[0-9]{1,6}s([0-9]{1,6}ms)?",
    "|[0-9]{1,6}ms",
    "|PT([0-9]{1,6}H([0-9]{1,6}M)?([0-9]{1,6}S)?|[0-9]{1,6}M([0-9]{1,6}S)?|[0-9]{1,6}S)",
    ")$"
);

/// The CEL expression turning a spec duration (`self`) into a CEL duration: CEL's
/// `duration()` reads the Go form only, so `PT1H30M` becomes `1h30m` first.
pub const CEL_DURATION: &str =
    "duration(self.startsWith('PT') ? self.substring(2).lowerAscii() : self)";

/// What error messages offer instead of a value that did not parse.
pub const ACCEPTED_FORMS: &str = "use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M";

/// Digits allowed per number.
const MAX_DIGITS: usize = 6;

/// A duration that does not follow the grammar; the message says why and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration ({problem}); {ACCEPTED_FORMS}")]
pub struct DurationParseError {
    input: String,
    problem: Problem,
}

impl DurationParseError {
    fn new(input: &str, problem: Problem) -> Self {
        Self {
            input: input.to_owned(),
            problem,
        }
    }
}

/// What is wrong with a duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Problem {
    #[error("it is empty")]
    Empty,
    #[error("a number has no unit")]
    MissingUnit,
    #[error("a unit has no number")]
    MissingNumber,
    #[error("unknown unit")]
    UnknownUnit,
    #[error("units must go from largest to smallest, each once")]
    UnitOrder,
    #[error("a number has more than six digits")]
    TooManyDigits,
    #[error("a bare number of seconds is out of range")]
    OutOfRange,
}

/// One `<digits><unit>` part, with the unit's rank (0 = largest) and length in milliseconds.
struct Unit {
    rank: u8,
    millis: u64,
}

fn go_unit(text: &str) -> Option<Unit> {
    let (rank, millis) = match text {
        "h" => (0, 3_600_000),
        "m" => (1, 60_000),
        "s" => (2, 1_000),
        "ms" => (3, 1),
        _ => return None,
    };
    Some(Unit { rank, millis })
}

fn iso_unit(text: &str) -> Option<Unit> {
    let (rank, millis) = match text {
        "H" => (0, 3_600_000),
        "M" => (1, 60_000),
        "S" => (2, 1_000),
        _ => return None,
    };
    Some(Unit { rank, millis })
}

/// Parses a spec or CLI duration: `90s`, `5m`, `1h30m`, `500ms`, `PT15M`, `PT1H30M`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationParseError> {
    let parsed = match input.strip_prefix("PT") {
        Some(iso) => parts(iso, iso_unit),
        None => parts(input, go_unit),
    };
    parsed.map_err(|problem| DurationParseError::new(input, problem))
}

/// Parses a scenario time: the spec grammar, also with spaces between parts (`1h 30m`),
/// or a bare number of seconds (`30`, `2.5`).
pub fn parse_scenario_duration(input: &str) -> Result<Duration, DurationParseError> {
    let trimmed = input.trim();
    if let Some(seconds) = bare_seconds(trimmed) {
        return seconds.map_err(|problem| DurationParseError::new(input, problem));
    }
    let joined: String = trimmed.split_ascii_whitespace().collect();
    parse_duration(&joined).map_err(|e| DurationParseError::new(input, e.problem))
}

/// `Some` when `text` is a plain decimal number (digits, optionally `.` and digits).
fn bare_seconds(text: &str) -> Option<Result<Duration, Problem>> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    let seconds: f64 = text.parse().ok()?;
    Some(Duration::try_from_secs_f64(seconds).map_err(|_| Problem::OutOfRange))
}

/// Sums `<digits><unit>` parts whose units `unit` knows, largest unit first, each once.
fn parts(text: &str, unit: fn(&str) -> Option<Unit>) -> Result<Duration, Problem> {
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    let mut total_ms: u64 = 0;
    let mut next_rank = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(Problem::MissingNumber);
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if letters == 0 {
            return Err(Problem::MissingUnit);
        }
        let (name, next) = after.split_at(letters);
        let unit = unit(name).ok_or(Problem::UnknownUnit)?;
        if unit.rank < next_rank {
            return Err(Problem::UnitOrder);
        }
        if digits > MAX_DIGITS {
            return Err(Problem::TooManyDigits);
        }
        let amount: u64 = number.parse().map_err(|_| Problem::TooManyDigits)?;
        total_ms += amount * unit.millis;
        next_rank = unit.rank + 1;
        rest = next;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_like_and_iso_forms() {
        let cases = [
            ("60s", 60_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("2m30s", 150_000),
            ("250ms", 250),
            ("1h1m1s1ms", 3_661_001),
            ("0s", 0),
            ("PT15M", 900_000),
            ("PT1H30M", 5_400_000),
            ("PT30S", 30_000),
            ("PT1H2M3S", 3_723_000),
            ("999999h", 999_999 * 3_600_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_the_rest_saying_why_and_what_is_accepted() {
        let cases = [
            ("", Problem::Empty),
            ("PT", Problem::Empty),
            ("60", Problem::MissingUnit),
            ("s", Problem::MissingNumber),
            ("-5s", Problem::MissingNumber),
            ("1.5h", Problem::UnknownUnit),
            ("5d", Problem::UnknownUnit),
            ("1h 30m", Problem::UnknownUnit),
            ("pt15m", Problem::MissingNumber),
            ("PT15m", Problem::UnknownUnit),
            ("15M", Problem::UnknownUnit),
            ("P1D", Problem::MissingNumber),
            ("30m1h", Problem::UnitOrder),
            ("1m1m", Problem::UnitOrder),
            ("1s1m", Problem::UnitOrder),
            ("1234567s", Problem::TooManyDigits),
            ("99999999999999999999999h", Problem::TooManyDigits),
        ];
        for (text, problem) in cases {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error.problem, problem, "{text}");
            let message = error.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(
                message.contains("1h30m") && message.contains("PT15M"),
                "{message}"
            );
        }
    }

    #[test]
    fn scenario_times_also_take_spaces_and_bare_seconds() {
        let cases = [
            ("30s", 30_000),
            ("1h 30m", 5_400_000),
            (" 2m 5s ", 125_000),
            ("500ms", 500),
            ("PT30S", 30_000),
            ("30", 30_000),
            ("2.5", 2_500),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_scenario_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for text in ["later", "-5", "1.", ".5", "1h30", "1e3"] {
            assert!(parse_scenario_duration(text).is_err(), "{text}");
        }
    }
}
