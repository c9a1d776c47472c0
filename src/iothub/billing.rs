//! What IoT Hub bills against its daily message quota, as pure functions of operation
//! kind and payload sizes.
//!
//! The simulator charges every answer with these rules and the client reports the same
//! numbers through [`RequestObserver::billed`](super::RequestObserver::billed), so tests
//! can assert that both sides agree and benchmarks can state what a sweep costs.
//!
//! The rules (IoT Hub pricing and quota pages, reference §4):
//! - twin reads are charged by the response in chunks, at least one message;
//! - queries by the result size of each page in chunks, at least one message per page;
//! - direct methods by the request payload in chunks plus the response payload in
//!   chunks as additional messages; an empty payload still counts one (a ping costs 2);
//! - identity-registry operations (module list, device identity get/list) cost nothing.
//!
//! A chunk is 4 KB on the standard tiers and 0.5 KB on the Free tier. Error answers
//! (4xx/5xx, 429 and 403002 included) cost nothing: the hub refuses the billable work
//! instead of doing it. That last rule is an assumption (no Microsoft page states it).

use std::num::NonZeroU64;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Bytes per billed message on S1, S2 and S3.
pub const STANDARD_CHUNK_BYTES: u64 = 4096;
/// Bytes per billed message on the Free tier.
pub const FREE_CHUNK_BYTES: u64 = 512;

/// The kinds of operation IoT Hub bills differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BilledOperation {
    /// GET of a device or module twin.
    TwinRead,
    /// One page of `POST /devices/query`.
    QueryPage,
    /// A direct method invocation.
    DirectMethod,
    /// Identity-registry operations such as listing a device's modules.
    Registry,
}

/// The billing rules for one chunk size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    chunk_bytes: NonZeroU64,
}

impl Default for Meter {
    fn default() -> Self {
        Meter::STANDARD
    }
}

impl Meter {
    /// S1, S2 and S3 hubs: 4 KB chunks.
    pub const STANDARD: Meter = Meter {
        chunk_bytes: NonZeroU64::new(STANDARD_CHUNK_BYTES).expect("non-zero"),
    };
    /// Free hubs: 0.5 KB chunks.
    pub const FREE: Meter = Meter {
        chunk_bytes: NonZeroU64::new(FREE_CHUNK_BYTES).expect("non-zero"),
    };

    /// A meter with another chunk size.
    pub fn with_chunk_bytes(chunk_bytes: NonZeroU64) -> Self {
        Meter { chunk_bytes }
    }

    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes.get()
    }

    /// Chunks needed for `bytes`, at least one (an empty payload counts as one message).
    pub fn chunks(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.chunk_bytes.get()).max(1)
    }

    /// A twin GET answered with a body of `response_bytes`.
    pub fn twin_read(&self, response_bytes: u64) -> u64 {
        self.chunks(response_bytes)
    }

    /// One query page whose result (the JSON array) is `result_bytes` long.
    pub fn query_page(&self, result_bytes: u64) -> u64 {
        self.chunks(result_bytes)
    }

    /// A direct method: request payload and response payload, each at least one message.
    pub fn direct_method(&self, request_payload_bytes: u64, response_payload_bytes: u64) -> u64 {
        self.chunks(request_payload_bytes) + self.chunks(response_payload_bytes)
    }

    /// Identity-registry operations are not billed.
    pub fn registry(&self) -> u64 {
        0
    }

    /// Any successful answer: `request_bytes` is only read for direct methods (the
    /// request payload); `response_bytes` is the body, or the response payload of a method.
    pub fn charge(
        &self,
        operation: BilledOperation,
        request_bytes: u64,
        response_bytes: u64,
    ) -> u64 {
        match operation {
            BilledOperation::TwinRead => self.twin_read(response_bytes),
            BilledOperation::QueryPage => self.query_page(response_bytes),
            BilledOperation::DirectMethod => self.direct_method(request_bytes, response_bytes),
            BilledOperation::Registry => self.registry(),
        }
    }
}

/// When a quota used up at `now` resets: the next 00:00 UTC strictly after `now`.
pub fn next_quota_reset(now: Timestamp) -> Timestamp {
    let today = now.to_zoned(TimeZone::UTC).date();
    let midnight = today
        .tomorrow()
        .and_then(|d| d.to_zoned(TimeZone::UTC))
        .map(|z| z.timestamp());
    midnight.unwrap_or(Timestamp::MAX)
}

/// How long after our 00:00 UTC a 403002 is read as the hub's clock lagging ours rather
/// than a new day's quota used up (which takes far more than minutes).
pub const MIDNIGHT_SKEW_ALLOWANCE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// How soon to ask again after a 403002 at `now`: the next 00:00 UTC, except just after
/// midnight by our clock, when the hub's clock may not have reached it yet — then a
/// minute later, instead of blocking for a whole day because of a few seconds of skew.
pub fn quota_refusal_lasts_until(now: Timestamp) -> Timestamp {
    let midnight = now
        .to_zoned(TimeZone::UTC)
        .date()
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp());
    match midnight {
        Ok(midnight) if now.duration_since(midnight) < MIDNIGHT_SKEW_ALLOWANCE => now
            .checked_add(jiff::SignedDuration::from_mins(1))
            .unwrap_or(Timestamp::MAX),
        _ => next_quota_reset(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KB: u64 = 1024;

    #[test]
    fn iot_hub_pricing_examples() {
        let m = Meter::STANDARD;
        assert_eq!(m.twin_read(8 * KB), 2, "an 8 KB twin is 2 messages");
        assert_eq!(
            m.direct_method(6 * KB, KB),
            3,
            "a 6 KB method body with a 1 KB response"
        );
        assert_eq!(m.direct_method(0, 0), 2, "an empty ping");
        assert_eq!(m.query_page(10 * KB), 3, "a 10 KB query page");
        assert_eq!(m.registry(), 0, "registry list");
    }

    #[test]
    fn chunk_edges() {
        let m = Meter::STANDARD;
        assert_eq!(m.twin_read(0), 1, "an empty answer is still one message");
        assert_eq!(m.twin_read(1), 1);
        assert_eq!(m.twin_read(4096), 1, "exactly one chunk");
        assert_eq!(m.twin_read(4097), 2);
        assert_eq!(m.query_page(2), 1, "an empty page ([]) costs one message");
        assert_eq!(m.direct_method(4096, 4097), 3);
    }

    #[test]
    fn free_tier_chunks_are_half_a_kilobyte() {
        let m = Meter::FREE;
        assert_eq!(m.chunk_bytes(), 512);
        assert_eq!(m.twin_read(512), 1);
        assert_eq!(m.twin_read(513), 2);
        assert_eq!(m.twin_read(8 * KB), 16);
        assert_eq!(m.direct_method(0, 0), 2);
        assert_eq!(m.query_page(10 * KB), 20);
    }

    #[test]
    fn the_quota_resets_at_the_next_utc_midnight() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            next_quota_reset(at("2026-03-01T12:34:56.789Z")),
            at("2026-03-02T00:00:00Z")
        );
        assert_eq!(
            next_quota_reset(at("2026-03-01T00:00:00Z")),
            at("2026-03-02T00:00:00Z"),
            "at midnight the new day's quota is fresh; the next reset is a day away"
        );
        assert_eq!(
            next_quota_reset(at("2026-02-28T23:59:59Z")),
            at("2026-03-01T00:00:00Z")
        );
    }

    #[test]
    fn charge_dispatches_on_the_operation() {
        let m = Meter::default();
        assert_eq!(m.charge(BilledOperation::TwinRead, 999, 12_000), 3);
        assert_eq!(m.charge(BilledOperation::QueryPage, 0, 8193), 3);
        assert_eq!(m.charge(BilledOperation::DirectMethod, 2, 4), 2);
        assert_eq!(m.charge(BilledOperation::Registry, 10_000, 10_000), 0);
        let odd = Meter::with_chunk_bytes(NonZeroU64::new(1000).unwrap());
        assert_eq!(odd.twin_read(2001), 3);
    }

    #[test]
    fn a_refusal_just_after_our_midnight_is_retried_within_minutes() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        // The hub's clock may lag ours: at 00:00:10 by our clock it may still be 23:59.
        assert_eq!(
            quota_refusal_lasts_until(at("2026-03-02T00:00:10Z")),
            at("2026-03-02T00:01:10Z")
        );
        assert_eq!(
            quota_refusal_lasts_until(at("2026-03-02T00:04:59Z")),
            at("2026-03-02T00:05:59Z")
        );
        // Later in the day it is a used-up quota: wait for the next midnight.
        assert_eq!(
            quota_refusal_lasts_until(at("2026-03-02T00:05:00Z")),
            at("2026-03-03T00:00:00Z")
        );
        assert_eq!(
            quota_refusal_lasts_until(at("2026-03-02T23:59:59Z")),
            at("2026-03-03T00:00:00Z")
        );
    }
}
