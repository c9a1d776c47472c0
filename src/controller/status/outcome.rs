//! The status after a reconcile that did not complete a sweep: stalled, throttled,
//! suspended. Each keeps the last known device state and says why it is not current.

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchStatus;
use crate::health::report::{ConditionStatus, ConditionType, Reason};

use crate::controller::error::ReconcileError;
use crate::controller::status::conditions::{
    WatchCondition, annotate_ready, stalled, with_bookkeeping,
};

/// The note on `Ready` while IoT Hub throttles the watch.
pub(crate) const THROTTLED_NOTE: &str = "Throttled: IoT Hub is throttling requests; backing off";
/// The note on `Ready` while the watch is suspended.
pub(crate) const SUSPENDED_NOTE: &str = "Suspended: spec.suspend is true, IoT Hub is not polled";

/// The status to publish after `error`, or `None` to leave the status as it is
/// (transient failures: the next attempt will tell).
pub(crate) fn status_after_failure(
    previous: Option<&EdgeDeviceWatchStatus>,
    error: &ReconcileError,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<EdgeDeviceWatchStatus> {
    if let Some(reason) = error.stall_reason() {
        let mut status = previous.cloned().unwrap_or_default();
        status.conditions = stalled(
            &status.conditions,
            reason,
            &crate::errors::chain(error),
            generation,
            now,
        );
        status.observed_generation = generation;
        return Some(status);
    }
    if error.is_throttled() {
        let mut status = previous?.clone();
        annotate_ready(&mut status.conditions, THROTTLED_NOTE);
        return Some(status);
    }
    None
}

/// The status of a suspended watch: last known state, `Ready` saying it is suspended.
pub(crate) fn status_when_suspended(
    previous: Option<&EdgeDeviceWatchStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> EdgeDeviceWatchStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status
        .conditions
        .retain(|c| c.type_ != crate::controller::status::conditions::STALLED);
    let has_ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == ConditionType::Ready.as_str());
    if !has_ready {
        let ready = WatchCondition {
            type_: ConditionType::Ready.as_str().to_owned(),
            status: ConditionStatus::Unknown,
            reason: Reason::NoReportedState,
            message: "no sweep has completed yet".into(),
        };
        status
            .conditions
            .extend(with_bookkeeping(&[ready], &[], generation, now));
    }
    annotate_ready(&mut status.conditions, SUSPENDED_NOTE);
    status.observed_generation = generation;
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::prepare::settings::InvalidSpec;
    use crate::iothub::{ErrorKind, IotHubError, Operation};

    fn hub_error(kind: ErrorKind) -> IotHubError {
        IotHubError::new(kind, Operation::GetModuleTwin, "detail")
    }
    use crate::controller::status::build::{StatusLimits, Sweep, build_status};
    use crate::controller::test_reports::healthy;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ready_status() -> EdgeDeviceWatchStatus {
        let reports = vec![healthy("a")];
        let sweep = Sweep {
            generation: Some(1),
            hub: "h.azure-devices.net",
            reports: &reports,
            memory: Default::default(),
        };
        build_status(
            &sweep,
            None,
            at("2026-01-01T00:00:00Z"),
            &StatusLimits::default(),
        )
    }

    fn condition<'a>(
        s: &'a EdgeDeviceWatchStatus,
        t: &str,
    ) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
        s.conditions.iter().find(|c| c.type_ == t)
    }

    #[test]
    fn a_missing_secret_stalls_and_keeps_device_state() {
        let before = ready_status();
        let error = ReconcileError::SecretNotFound {
            namespace: "iot".into(),
            name: "hub".into(),
        };
        let after =
            status_after_failure(Some(&before), &error, Some(2), at("2026-01-01T00:01:00Z"))
                .unwrap();
        assert_eq!(
            condition(&after, "Stalled").unwrap().reason,
            "SecretNotFound"
        );
        assert_eq!(condition(&after, "Ready").unwrap().status, "False");
        assert!(
            condition(&after, "Ready")
                .unwrap()
                .message
                .contains("Secret iot/hub not found")
        );
        assert_eq!(after.devices, before.devices);
        assert_eq!(after.summary, before.summary);
        assert_eq!(after.observed_generation, Some(2));
    }

    #[test]
    fn each_stall_reason_reaches_the_status() {
        let cases = [
            (
                ReconcileError::from_hub("h", hub_error(ErrorKind::Unauthorized)),
                "AuthenticationFailed",
            ),
            (
                ReconcileError::InvalidSpec(InvalidSpec::one("spec.interval", "x")),
                "InvalidSpec",
            ),
            (
                ReconcileError::from_hub(
                    "nohub.azure-devices.net",
                    hub_error(ErrorKind::HubNotFound),
                ),
                "HubNotFound",
            ),
            (
                ReconcileError::from_hub("h", hub_error(ErrorKind::DailyQuotaExceeded)),
                "DailyQuotaExceeded",
            ),
        ];
        for (error, reason) in cases {
            let status =
                status_after_failure(None, &error, Some(1), at("2026-01-01T00:00:00Z")).unwrap();
            assert_eq!(condition(&status, "Stalled").unwrap().reason, reason);
            assert_eq!(condition(&status, "Ready").unwrap().reason, reason);
        }
    }

    #[test]
    fn throttling_keeps_the_last_known_state_and_says_throttled() {
        let before = ready_status();
        let error = ReconcileError::from_hub("h", hub_error(ErrorKind::Throttled));
        let after =
            status_after_failure(Some(&before), &error, Some(1), at("2026-01-01T00:01:00Z"))
                .unwrap();
        let ready = condition(&after, "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert!(ready.message.starts_with("Throttled"));
        assert_eq!(after.devices, before.devices);
        // Throttled twice in a row gives the same status: no second write.
        let again = status_after_failure(Some(&after), &error, Some(1), at("2026-01-01T00:02:00Z"))
            .unwrap();
        assert_eq!(again, after);
        // Without any earlier state there is nothing to keep.
        assert!(status_after_failure(None, &error, Some(1), at("2026-01-01T00:00:00Z")).is_none());
    }

    #[test]
    fn transient_failures_leave_the_status_alone() {
        let error = ReconcileError::from_hub("h", hub_error(ErrorKind::Server));
        assert!(
            status_after_failure(
                Some(&ready_status()),
                &error,
                Some(1),
                at("2026-01-01T00:00:00Z")
            )
            .is_none()
        );
    }

    #[test]
    fn suspension_is_stated_on_ready_and_clears_stalled() {
        let stalled = status_after_failure(
            Some(&ready_status()),
            &ReconcileError::from_hub("h", hub_error(ErrorKind::Unauthorized)),
            Some(1),
            at("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        let suspended = status_when_suspended(Some(&stalled), Some(2), at("2026-01-01T00:01:00Z"));
        assert!(condition(&suspended, "Stalled").is_none());
        assert!(
            condition(&suspended, "Ready")
                .unwrap()
                .message
                .starts_with("Suspended")
        );
        assert_eq!(suspended.observed_generation, Some(2));

        let fresh = status_when_suspended(None, Some(1), at("2026-01-01T00:00:00Z"));
        let ready = condition(&fresh, "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert!(ready.message.starts_with("Suspended"));
    }
}
