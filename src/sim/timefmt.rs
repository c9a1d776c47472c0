//! The timestamp spellings IoT Hub and the edge agent really use.
//!
//! Twin metadata uses 7 fractional digits with `Z`; the agent writes
//! `lastStartTimeUtc`/`lastExitTimeUtc` without `Z` but `lastRestartTimeUtc` with it;
//! "never" is `0001-01-01T00:00:00` (with or without `Z`). Error bodies carry a US-style
//! `MM/dd/yyyy HH:mm:ss` stamp.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// "Never", as the agent writes it (no `Z`).
pub const NEVER_AGENT: &str = "0001-01-01T00:00:00";
/// "Never", as the service writes it in twin envelopes and empty metadata.
pub const NEVER_Z: &str = "0001-01-01T00:00:00Z";

fn seven_digits(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

/// `2021-06-28T21:46:40.5353785Z`: `$metadata.$lastUpdated`, `lastRestartTimeUtc`, clients.
pub fn with_z(ts: Timestamp) -> String {
    let mut s = seven_digits(ts);
    s.push('Z');
    s
}

/// `2021-06-28T21:46:40.4869405`: the agent's `lastStartTimeUtc` / `lastExitTimeUtc`.
pub fn agent_naive(ts: Timestamp) -> String {
    seven_digits(ts)
}

/// The agent's spelling of an optional start/exit time.
pub fn agent_naive_or_never(ts: Option<Timestamp>) -> String {
    ts.map(agent_naive)
        .unwrap_or_else(|| NEVER_AGENT.to_string())
}

/// `11/03/2020 07:18:24`: the stamp inside `ExceptionMessage` of error bodies.
pub fn error_stamp(ts: Timestamp) -> String {
    let dt = ts.to_zoned(TimeZone::UTC).datetime();
    format!(
        "{:02}/{:02}/{:04} {:02}:{:02}:{:02}",
        dt.month(),
        dt.day(),
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_real_documents() {
        let ts: Timestamp = "2021-06-28T21:46:40.48694051Z".parse().unwrap();
        assert_eq!(with_z(ts), "2021-06-28T21:46:40.4869405Z");
        assert_eq!(agent_naive(ts), "2021-06-28T21:46:40.4869405");
        assert_eq!(agent_naive_or_never(None), "0001-01-01T00:00:00");
        assert_eq!(error_stamp(ts), "06/28/2021 21:46:40");
    }
}
