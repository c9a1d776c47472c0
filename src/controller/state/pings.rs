//! When each device is due for a `$edgeAgent` ping, and what the last ping said.
//!
//! Pings run on their own cadence (`spec.ping.interval`), slower than twin reads, because
//! each costs direct-method quota. Between pings a device keeps its last outcome. Only
//! failures are persisted in the status (`memory.pingFailures`): a restarted operator
//! re-pings every other device before calling it reachable, and never forgets, nor
//! falsely announces the recovery of, an unreachable one.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::{PingFailure, PingFailureKind, WatchMemory};
use crate::health::{PingError, PingOutcome};

/// The last ping of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingRecord {
    pub at: Timestamp,
    pub outcome: PingOutcome,
}

/// Last ping per device of one watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PingLedger {
    records: HashMap<String, PingRecord>,
}

impl PingLedger {
    /// Rebuilds what a previous run persisted: its failed pings.
    pub(crate) fn from_memory(memory: &WatchMemory) -> Self {
        let records = memory
            .ping_failures
            .iter()
            .map(|f| {
                let record = PingRecord {
                    at: f.at,
                    outcome: restored(f),
                };
                (f.device_id.clone(), record)
            })
            .collect();
        Self { records }
    }

    /// Devices of `devices` whose last ping is missing or at least `interval` old.
    pub(crate) fn due<'a>(
        &self,
        devices: &'a [String],
        now: Timestamp,
        interval: Duration,
    ) -> Vec<&'a str> {
        devices
            .iter()
            .filter(|d| {
                self.records
                    .get(*d)
                    .is_none_or(|r| age(r.at, now) >= interval)
            })
            .map(String::as_str)
            .collect()
    }

    /// Remembers a ping's outcome.
    pub(crate) fn record(&mut self, device_id: &str, record: PingRecord) {
        self.records.insert(device_id.to_owned(), record);
    }

    /// The last ping of a device.
    pub(crate) fn get(&self, device_id: &str) -> Option<&PingRecord> {
        self.records.get(device_id)
    }

    /// Forgets devices that left the watch.
    pub(crate) fn retain_devices(&mut self, devices: &[String]) {
        let keep: std::collections::HashSet<&str> = devices.iter().map(String::as_str).collect();
        self.records.retain(|d, _| keep.contains(d.as_str()));
    }

    /// When the most recent ping was made.
    pub(crate) fn last_ping_at(&self) -> Option<Timestamp> {
        self.records.values().map(|r| r.at).max()
    }

    /// Failed pings, sorted by device id, for `memory.pingFailures`.
    pub(crate) fn failures(&self) -> Vec<PingFailure> {
        let mut failures: Vec<PingFailure> = self
            .records
            .iter()
            .filter_map(|(d, r)| {
                let (outcome, error) = persisted(&r.outcome)?;
                Some(PingFailure {
                    device_id: d.clone(),
                    outcome,
                    at: r.at,
                    error_code: error.code,
                })
            })
            .collect();
        failures.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        failures
    }
}

/// How a ping outcome is remembered in `status.memory.pingFailures`; `None` for outcomes
/// that are not failures.
fn persisted(outcome: &PingOutcome) -> Option<(PingFailureKind, &PingError)> {
    match outcome {
        PingOutcome::NotOnline(e) => Some((PingFailureKind::NotOnline, e)),
        PingOutcome::Timeout(e) => Some((PingFailureKind::Timeout, e)),
        PingOutcome::DeviceNotFound(e) | PingOutcome::Failed(e) => {
            Some((PingFailureKind::Failed, e))
        }
        PingOutcome::Responded { .. } | PingOutcome::Skipped => None,
    }
}

/// The outcome a remembered failure stands for. Only the code survives a restart; the
/// well-known ones get their names back.
fn restored(failure: &PingFailure) -> PingOutcome {
    let name = match failure.error_code {
        Some(404_103) => Some("DeviceNotOnline"),
        Some(504_101) => Some("GatewayTimeout"),
        Some(404_001) => Some("DeviceNotFound"),
        _ => None,
    };
    let error = PingError::new(failure.error_code, name, "");
    match (failure.outcome, failure.error_code) {
        (PingFailureKind::NotOnline, _) => PingOutcome::NotOnline(error),
        (PingFailureKind::Timeout, _) => PingOutcome::Timeout(error),
        (PingFailureKind::Failed, Some(404_001)) => PingOutcome::DeviceNotFound(error),
        (PingFailureKind::Failed, _) => PingOutcome::Failed(error),
    }
}

/// `now - then`, zero when the clock went backwards.
pub(crate) fn age(then: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn devices() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn never_pinged_devices_are_due() {
        let ledger = PingLedger::default();
        assert_eq!(
            ledger.due(&devices(), at("2026-01-01T00:00:00Z"), FIVE_MIN),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn a_device_is_due_again_after_the_interval() {
        let mut ledger = PingLedger::default();
        let ok = |t| PingRecord {
            at: at(t),
            outcome: PingOutcome::Responded { latency_ms: 30 },
        };
        ledger.record("a", ok("2026-01-01T00:00:00Z"));
        ledger.record("b", ok("2026-01-01T00:03:00Z"));
        ledger.record("c", ok("2026-01-01T00:04:59Z"));
        assert_eq!(
            ledger.due(&devices(), at("2026-01-01T00:05:00Z"), FIVE_MIN),
            ["a"]
        );
        assert_eq!(
            ledger.due(&devices(), at("2026-01-01T00:08:00Z"), FIVE_MIN),
            ["a", "b"]
        );
        assert!(
            ledger
                .due(&devices(), at("2025-12-31T00:00:00Z"), FIVE_MIN)
                .is_empty()
        );
    }

    #[test]
    fn only_failures_are_persisted_and_they_survive_a_restart() {
        let mut ledger = PingLedger::default();
        ledger.record(
            "b",
            PingRecord {
                at: at("2026-01-01T00:00:00Z"),
                outcome: PingOutcome::NotOnline(PingError::new(
                    Some(404_103),
                    Some("DeviceNotOnline"),
                    "the device is not online",
                )),
            },
        );
        ledger.record(
            "a",
            PingRecord {
                at: at("2026-01-01T00:01:00Z"),
                outcome: PingOutcome::Responded { latency_ms: 12 },
            },
        );
        let memory = WatchMemory {
            ping_failures: ledger.failures(),
            ..WatchMemory::default()
        };
        assert_eq!(memory.ping_failures.len(), 1);
        assert_eq!(ledger.last_ping_at(), Some(at("2026-01-01T00:01:00Z")));

        let restarted = PingLedger::from_memory(&memory);
        assert_eq!(
            restarted.get("b").map(|r| r.outcome.clone()),
            Some(PingOutcome::NotOnline(PingError::new(
                Some(404_103),
                Some("DeviceNotOnline"),
                ""
            )))
        );
        // The reachable device is pinged again before it is trusted.
        assert_eq!(
            restarted.due(&devices(), at("2026-01-01T00:02:00Z"), FIVE_MIN),
            ["a", "c"]
        );
    }

    #[test]
    fn an_unknown_device_survives_a_restart_as_failed_with_its_code() {
        let mut ledger = PingLedger::default();
        let unknown = PingOutcome::DeviceNotFound(PingError::new(
            Some(404_001),
            Some("DeviceNotFound"),
            "no such device",
        ));
        ledger.record(
            "typo-gw",
            PingRecord {
                at: at("2026-01-01T00:00:00Z"),
                outcome: unknown,
            },
        );
        let persisted = ledger.failures();
        assert_eq!(persisted[0].outcome, PingFailureKind::Failed);
        assert_eq!(persisted[0].error_code, Some(404_001));
        let json = serde_json::to_value(&persisted[0]).unwrap();
        assert_eq!(json["outcome"], "Failed");
        assert_eq!(json["errorCode"], 404_001);
        let memory = WatchMemory {
            ping_failures: persisted,
            ..WatchMemory::default()
        };
        let restored = PingLedger::from_memory(&memory);
        assert!(matches!(
            restored.get("typo-gw").map(|r| &r.outcome),
            Some(PingOutcome::DeviceNotFound(e)) if e.code == Some(404_001)
        ));
    }

    #[test]
    fn statuses_written_before_error_codes_still_read() {
        let memory: WatchMemory = serde_json::from_value(serde_json::json!({
            "lastPingAt": "2026-01-01T00:00:00Z",
            "pingFailures": [
                {"deviceId": "a", "outcome": "NotOnline", "at": "2026-01-01T00:00:00Z"},
                {"deviceId": "b", "outcome": "Timeout", "at": "2026-01-01T00:00:00Z"},
                {"deviceId": "c", "outcome": "Failed", "at": "2026-01-01T00:00:00Z"}
            ]
        }))
        .unwrap();
        let ledger = PingLedger::from_memory(&memory);
        assert!(matches!(
            ledger.get("a").unwrap().outcome,
            PingOutcome::NotOnline(_)
        ));
        assert!(matches!(
            ledger.get("b").unwrap().outcome,
            PingOutcome::Timeout(_)
        ));
        assert!(matches!(
            ledger.get("c").unwrap().outcome,
            PingOutcome::Failed(_)
        ));
        assert_eq!(ledger.failures(), memory.ping_failures);
    }

    #[test]
    fn devices_leaving_the_watch_are_forgotten() {
        let mut ledger = PingLedger::default();
        let record = PingRecord {
            at: at("2026-01-01T00:00:00Z"),
            outcome: PingOutcome::Timeout(PingError::default()),
        };
        ledger.record("gone", record.clone());
        ledger.record("a", record);
        ledger.retain_devices(&devices());
        assert!(ledger.get("gone").is_none());
        assert_eq!(ledger.failures().len(), 1);
    }
}
