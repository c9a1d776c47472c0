//! Shared building blocks for conditions and their human messages.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::report::{ConditionStatus, ConditionType, DeviceCondition, Reason};
use crate::twin::TwinTime;

pub(crate) fn condition(
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: String,
) -> DeviceCondition {
    DeviceCondition {
        type_,
        status,
        reason,
        message,
    }
}

/// `15m`, `1h 30m`, `2d 3h`: whole seconds, friendly.
pub(crate) fn human(duration: Duration) -> String {
    let whole = SignedDuration::from_secs(duration.as_secs().min(i64::MAX as u64) as i64);
    if whole.is_zero() {
        return "0s".to_owned();
    }
    format!("{whole:#}")
}

/// The time elapsed from `then` to `now`, zero when `then` is in the future.
pub(crate) fn elapsed(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

/// `then + duration`, saturating at the end of representable time.
pub(crate) fn after(then: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| then.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `then - duration`, saturating at the start of representable time.
pub(crate) fn before(then: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| then.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

/// A twin time for a message: the instant, `never`, or `unreadable`.
pub(crate) fn twin_time(time: Option<TwinTime>) -> String {
    match time {
        Some(TwinTime::At(ts)) => ts.to_string(),
        Some(TwinTime::Never) => "never".to_owned(),
        Some(TwinTime::Unparseable) => "unreadable".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// A JSON value for a message: compact, cut at 60 characters.
pub(crate) fn render(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        return text;
    }
    let cut: String = text.chars().take(LIMIT).collect();
    format!("{cut}…")
}

/// "1 module" / "3 modules".
pub(crate) fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_flags() {
        assert_eq!(human(Duration::from_secs(900)), "15m");
        assert_eq!(human(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human(Duration::from_millis(400)), "0s");
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(100));
        assert!(render(&long).ends_with('…'));
        assert_eq!(render(&Value::from(30)), "30");
    }
}
