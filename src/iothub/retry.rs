//! Retry decisions: jittered exponential backoff from `backon`, bent by `Retry-After`.

use std::time::Duration;

use backon::ExponentialBuilder;
use jiff::Timestamp;

use super::config::RetryPolicy;
use super::error::IotHubError;

/// The backoff schedule of a policy: `max_attempts - 1` jittered, doubling delays.
pub(crate) fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(policy.base_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
        .with_jitter()
}

/// The wait before the next attempt, or `None` to stop.
///
/// `backoff` is `None` once the attempts are used up. A `Retry-After` replaces the
/// backoff step; one longer than `max_delay` ends the retries so the caller can come
/// back later (the error carries the hint) instead of stalling a reconcile.
pub(crate) fn next_delay(
    error: &IotHubError,
    backoff: Option<Duration>,
    max_delay: Duration,
) -> Option<Duration> {
    let step = backoff?;
    match error.retry_after() {
        Some(wait) if wait > max_delay => None,
        Some(wait) => Some(wait),
        None => Some(step),
    }
}

/// Parses `Retry-After` in either form: delay seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::{ErrorKind, Operation};

    fn throttled(retry_after: Option<Duration>) -> IotHubError {
        IotHubError::new(ErrorKind::Throttled, Operation::GetTwin, "").with_retry_after(retry_after)
    }

    #[test]
    fn retry_after_in_seconds_and_as_http_date() {
        let now: Timestamp = "2026-11-26T13:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 13:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 26 Nov 2026 12:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn retry_after_replaces_the_backoff_step_within_bounds() {
        let max = Duration::from_secs(10);
        let step = Some(Duration::from_millis(300));
        assert_eq!(next_delay(&throttled(None), step, max), step);
        assert_eq!(
            next_delay(&throttled(Some(Duration::from_secs(2))), step, max),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            next_delay(&throttled(Some(Duration::from_secs(60))), step, max),
            None
        );
        assert_eq!(
            next_delay(&throttled(Some(Duration::ZERO)), None, max),
            None
        );
    }

    #[test]
    fn backoff_is_bounded_by_attempts() {
        use backon::BackoffBuilder;
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        let delays: Vec<Duration> = backoff(&policy).build().collect();
        assert_eq!(delays.len(), 2);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_millis(100)),
            "{delays:?}"
        );
    }
}
