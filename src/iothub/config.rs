//! Client settings: where the hub is, how long to wait, how fast to go.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::observer::{NoopObserver, RequestObserver};

/// Source of wall-clock time for token expiry, so tests can move time without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// At most `requests` calls per `period`, spread evenly (one every `period / requests`).
///
/// Even spacing rather than bursts: IoT Hub shapes traffic per second and rejects with
/// 429 once its queue is full, so a smooth client never causes what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    pub fn per_second(requests: NonZeroU32) -> Self {
        RateLimit {
            requests,
            period: Duration::from_secs(1),
        }
    }

    pub fn per_minute(requests: NonZeroU32) -> Self {
        RateLimit {
            requests,
            period: Duration::from_secs(60),
        }
    }

    /// Time between two calls.
    pub fn interval(&self) -> Duration {
        self.period / self.requests.get()
    }
}

/// Per-category budgets. Defaults keep a margin below one S1 unit's quotas (reference §4):
/// 100 twin reads/s, 20 queries/min, ~40 method calls/s (4 KB chunks of 160 KB/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Twin GETs and module listings.
    pub twin_reads: RateLimit,
    /// `/devices/query` pages.
    pub queries: RateLimit,
    /// Direct method invocations.
    pub methods: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            twin_reads: RateLimit::per_second(NonZeroU32::new(80).expect("non-zero")),
            queries: RateLimit::per_minute(NonZeroU32::new(15).expect("non-zero")),
            methods: RateLimit::per_second(NonZeroU32::new(30).expect("non-zero")),
        }
    }
}

/// Jittered exponential backoff for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 disables retries).
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// Upper bound of one backoff step. A `Retry-After` longer than this is not waited
    /// for: the error is returned (with [`retry_after`](super::IotHubError::retry_after))
    /// so the caller can come back later instead of stalling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// Everything [`IotHubClient::new`](super::IotHubClient::new) needs besides the credential.
#[derive(Clone)]
pub struct ClientConfig {
    /// `<hub>.azure-devices.net` (with `:port` if the connection string has one). Used as
    /// the SAS resource and as the `hub` metrics label.
    pub host_name: String,
    /// Send requests here instead of `https://<host_name>` (the simulator, a private
    /// endpoint). `http://` is accepted only for loopback addresses.
    pub endpoint: Option<String>,
    pub api_version: String,
    /// PEM certificates trusted in addition to the public web PKI roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-request timeout for twin reads and queries (methods use the reference §1.5 rule).
    pub request_timeout: Duration,
    /// Lifetime of generated SAS tokens (the C# SDK uses 20 minutes).
    pub sas_ttl: Duration,
    /// Renew SAS and Entra tokens this long before they expire.
    pub token_renewal_margin: Duration,
    pub rate_limits: RateLimits,
    /// Upper bound on requests in flight at once for this client.
    pub max_concurrent_requests: usize,
    pub retry: RetryPolicy,
    /// `x-ms-max-item-count` for queries.
    pub page_size: u32,
    pub observer: Arc<dyn RequestObserver>,
    pub clock: Arc<dyn Clock>,
}

impl ClientConfig {
    /// Defaults for a hub reached at `https://<host_name>`.
    pub fn new(host_name: impl Into<String>) -> Self {
        ClientConfig {
            host_name: host_name.into(),
            endpoint: None,
            api_version: "2021-04-12".to_owned(),
            extra_ca_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            sas_ttl: Duration::from_secs(20 * 60),
            token_renewal_margin: Duration::from_secs(3 * 60),
            rate_limits: RateLimits::default(),
            max_concurrent_requests: 16,
            retry: RetryPolicy::default(),
            page_size: 100,
            observer: Arc::new(NoopObserver),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("host_name", &self.host_name)
            .field("endpoint", &self.endpoint)
            .field("api_version", &self.api_version)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(Vec::len))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("sas_ttl", &self.sas_ttl)
            .field("token_renewal_margin", &self.token_renewal_margin)
            .field("rate_limits", &self.rate_limits)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("retry", &self.retry)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}
