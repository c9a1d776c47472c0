//! Client-side pacing: one rate limiter per quota category and a bound on requests in
//! flight, so edgewatch stays inside the hub's budget instead of discovering it via 429.

use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::{RateLimit, RateLimits};
use super::error::ConfigError;
use super::observer::Operation;

/// Admits requests at the configured rates.
pub(crate) struct Pacer {
    twin_reads: DefaultDirectRateLimiter,
    queries: DefaultDirectRateLimiter,
    methods: DefaultDirectRateLimiter,
    in_flight: Arc<Semaphore>,
}

impl Pacer {
    pub(super) fn new(limits: &RateLimits, max_concurrent: usize) -> Result<Pacer, ConfigError> {
        if max_concurrent == 0 {
            return Err(ConfigError::InvalidSetting {
                name: "max_concurrent_requests",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Pacer {
            twin_reads: limiter(limits.twin_reads, "rate_limits.twin_reads")?,
            queries: limiter(limits.queries, "rate_limits.queries")?,
            methods: limiter(limits.methods, "rate_limits.methods")?,
            in_flight: Arc::new(Semaphore::new(max_concurrent)),
        })
    }

    /// Waits for a concurrency slot, then for the category's next rate slot.
    ///
    /// The slot is taken first so requests cannot pile up behind the semaphore after
    /// passing the limiter and then leave in a burst.
    pub(super) async fn admit(&self, operation: Operation) -> OwnedSemaphorePermit {
        let permit = Arc::clone(&self.in_flight)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if let Some(limiter) = self.limiter_for(operation) {
            limiter.until_ready().await;
        }
        permit
    }

    fn limiter_for(&self, operation: Operation) -> Option<&DefaultDirectRateLimiter> {
        match operation {
            Operation::GetTwin | Operation::GetModuleTwin | Operation::ListModules => {
                Some(&self.twin_reads)
            }
            Operation::Query => Some(&self.queries),
            Operation::InvokeMethod => Some(&self.methods),
            Operation::Token => None,
        }
    }
}

/// An evenly spaced limiter: burst of one, one cell every `period / requests`.
fn limiter(limit: RateLimit, name: &'static str) -> Result<DefaultDirectRateLimiter, ConfigError> {
    let quota = Quota::with_period(limit.interval()).ok_or(ConfigError::InvalidSetting {
        name,
        reason: "the period must be longer than zero".to_owned(),
    })?;
    Ok(RateLimiter::direct(quota))
}
