//! Per-watch exponential backoff on failed reconciles, reset by the first success.
//!
//! kube-runtime's `error_policy` never hears about successes, so the controller keeps
//! this state itself, keyed by watch, and resets it from the reconciler.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::key::WatchKey;

/// Delays that double per consecutive failure, from `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The delay after `failures` consecutive failures (1 = the first failure).
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << exponent)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay, spread by `jitter` in `[0, 1)` over its upper fifth so many watches
    /// failing together do not retry together.
    pub(crate) fn delay_with_jitter(&self, failures: u32, jitter: f64) -> Duration {
        let base = self.delay(failures);
        let spread = base.mul_f64(0.2 * jitter.clamp(0.0, 1.0));
        base.saturating_sub(base.mul_f64(0.2)) + spread
    }
}

/// Consecutive failure counts per watch key.
#[derive(Debug, Default)]
pub(crate) struct BackoffBook {
    failures: Mutex<HashMap<WatchKey, u32>>,
}

impl BackoffBook {
    /// Counts a failure of `key` and returns how many in a row it has now.
    pub(crate) fn record_failure(&self, key: &WatchKey) -> u32 {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(key.clone()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub(crate) fn reset(&self, key: &WatchKey) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Consecutive failures of `key` so far.
    pub(crate) fn failures(&self, key: &WatchKey) -> u32 {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let policy = BackoffPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
        };
        let delays: Vec<_> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_the_upper_fifth() {
        let policy = BackoffPolicy::default();
        let base = policy.delay(3);
        assert_eq!(policy.delay_with_jitter(3, 0.0), base.mul_f64(0.8));
        assert!(policy.delay_with_jitter(3, 0.999) <= base);
        assert!(policy.delay_with_jitter(3, 0.5) > base.mul_f64(0.8));
    }

    #[test]
    fn failures_count_per_watch_and_reset_on_success() {
        let key = |name: &str| WatchKey {
            namespace: "iot".into(),
            name: name.into(),
        };
        let book = BackoffBook::default();
        assert_eq!(book.record_failure(&key("a")), 1);
        assert_eq!(book.record_failure(&key("a")), 2);
        assert_eq!(book.record_failure(&key("b")), 1);
        book.reset(&key("a"));
        assert_eq!(book.failures(&key("a")), 0);
        assert_eq!(book.failures(&key("b")), 1);
        assert_eq!(book.record_failure(&key("a")), 1);
    }
}
