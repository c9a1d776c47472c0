//! Mirrors what a reconcile concluded into the Prometheus registry, so alert rules see
//! exactly what `kubectl get edw` shows: the watch's conditions and counts from the status,
//! device and module gauges from the full list of verdicts (the status keeps only the
//! worst devices, the metrics keep all of them).

use jiff::Timestamp;

use crate::api::{EdgeDeviceWatchSpec, EdgeDeviceWatchStatus, parse_duration};
use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

use crate::ops::metrics::{Metrics, WatchDeviceCounts};

/// Publishes the watch-level conditions and device counts of `status`.
pub(crate) fn export_status(
    metrics: &Metrics,
    namespace: &str,
    watch: &str,
    status: &EdgeDeviceWatchStatus,
) {
    let conditions: Vec<(&str, ConditionStatus)> = status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), parse_status(&c.status)))
        .collect();
    metrics.set_watch_conditions(namespace, watch, &conditions);
    let transitions: Vec<(&str, ConditionStatus, &str, Timestamp)> = status
        .conditions
        .iter()
        .map(|c| {
            (
                c.type_.as_str(),
                parse_status(&c.status),
                c.reason.as_str(),
                c.last_transition_time.0,
            )
        })
        .collect();
    metrics.set_watch_condition_transitions(namespace, watch, &transitions);
    let counts = &status.summary;
    metrics.set_watch_device_counts(
        namespace,
        watch,
        WatchDeviceCounts {
            total: counts.devices.into(),
            ready: counts.ready.into(),
            unreachable: counts.unreachable.into(),
            unhealthy: counts.unhealthy.into(),
            drifted: counts.drifted.into(),
            stale: counts.stale.into(),
        },
    );
}

/// Publishes one gauge set per device and module, and drops series of devices that left
/// the watch; a device's `Ready` transition is dated `observed_at` when it is new.
pub(crate) fn export_devices<'a>(
    metrics: &Metrics,
    namespace: &str,
    watch: &str,
    reports: impl IntoIterator<Item = &'a DeviceReport> + Clone,
    observed_at: Timestamp,
) {
    for report in reports.clone() {
        let status_of = |type_| {
            report
                .condition(type_)
                .map_or(ConditionStatus::Unknown, |c| c.status)
        };
        metrics.set_device(
            namespace,
            watch,
            &report.device_id,
            status_of(ConditionType::Reachable),
            status_of(ConditionType::Ready),
        );
        let ready_reason = report
            .condition(ConditionType::Ready)
            .map_or(Reason::NoReportedState, |c| c.reason);
        metrics.set_device_ready_transition(
            namespace,
            watch,
            &report.device_id,
            status_of(ConditionType::Ready),
            ready_reason.as_str(),
            observed_at,
        );
        for module in &report.modules {
            metrics.set_module(
                namespace,
                watch,
                &report.device_id,
                &module.name,
                module.verdict == Reason::AllModulesHealthy,
                module.restart_count.unwrap_or(0),
            );
        }
    }
    metrics.retain_devices(
        namespace,
        watch,
        reports.into_iter().map(|r| r.device_id.as_str()),
    );
}

/// Publishes the watch's `spec.interval`, so sweep durations can be read against it.
pub(crate) fn export_interval(
    metrics: &Metrics,
    namespace: &str,
    watch: &str,
    spec: &EdgeDeviceWatchSpec,
) {
    if let Ok(interval) = parse_duration(&spec.interval) {
        metrics.set_watch_interval(namespace, watch, interval);
    }
}

/// `metav1.Condition.status` as written by the operator; anything else reads as Unknown.
fn parse_status(status: &str) -> ConditionStatus {
    match status {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_reports;

    fn t0() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn series(metrics: &Metrics, prefix: &str) -> Vec<String> {
        metrics
            .encode()
            .lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn devices_that_leave_the_watch_lose_their_series() {
        let metrics = Metrics::new(true);
        let a = test_reports::healthy("gw-a");
        let b = test_reports::healthy("gw-b");
        export_devices(&metrics, "iot", "plant", &[a.clone(), b], t0());
        assert_eq!(series(&metrics, "edgewatch_device_ready{").len(), 2);
        export_devices(&metrics, "iot", "plant", &[a], t0());
        let ready = series(&metrics, "edgewatch_device_ready{");
        assert_eq!(ready.len(), 1);
        assert!(ready[0].contains("device=\"gw-a\""), "{ready:?}");
    }

    #[test]
    fn a_healthy_device_reads_ready_and_its_modules_running() {
        let metrics = Metrics::new(true);
        export_devices(
            &metrics,
            "iot",
            "plant",
            &[test_reports::healthy("gw-a")],
            t0(),
        );
        let ready = series(&metrics, "edgewatch_device_ready{");
        assert!(ready[0].ends_with(" 1"), "{ready:?}");
        let running = series(&metrics, "edgewatch_module_running{");
        assert!(!running.is_empty());
        assert!(
            running.iter().all(|line| line.ends_with(" 1")),
            "{running:?}"
        );
    }

    #[test]
    fn a_device_keeps_its_ready_transition_time_until_its_status_changes() {
        let metrics = Metrics::new(true);
        let transitions = |m: &Metrics| series(m, "edgewatch_device_ready_last_transition");
        let bad = test_reports::module_bad("gw-a", "sensor", Reason::ModuleFailed);
        export_devices(&metrics, "iot", "plant", &[bad], t0());
        let later: Timestamp = "2026-03-01T12:05:00Z".parse().unwrap();
        let still_bad = test_reports::module_bad("gw-a", "sensor", Reason::ModuleBackoff);
        export_devices(&metrics, "iot", "plant", &[still_bad], later);
        let since_noon = t0().as_second().to_string();
        assert_eq!(
            transitions(&metrics),
            [format!(
                r#"edgewatch_device_ready_last_transition_timestamp_seconds{{namespace="iot",watch="plant",device="gw-a",status="False",reason="ModuleBackoff"}} {since_noon}"#
            )],
            "a new reason of the same status keeps the time"
        );
        export_devices(
            &metrics,
            "iot",
            "plant",
            &[test_reports::healthy("gw-a")],
            later,
        );
        assert_eq!(
            transitions(&metrics),
            [format!(
                r#"edgewatch_device_ready_last_transition_timestamp_seconds{{namespace="iot",watch="plant",device="gw-a",status="True",reason="Ready"}} {}"#,
                later.as_second()
            )]
        );
        export_devices(&metrics, "iot", "plant", &[], later);
        assert!(transitions(&metrics).is_empty());
    }

    #[test]
    fn watch_conditions_publish_their_reason_and_transition_time() {
        let metrics = Metrics::new(true);
        let status = crate::controller::status::outcome::status_after_failure(
            None,
            &crate::controller::error::ReconcileError::SecretNotFound {
                namespace: "iot".into(),
                name: "hub".into(),
            },
            Some(1),
            t0(),
        )
        .unwrap();
        export_status(&metrics, "iot", "plant", &status);
        let mut lines = series(&metrics, "edgewatch_watch_condition_last_transition");
        lines.sort();
        let noon = t0().as_second();
        assert_eq!(
            lines,
            [
                format!(
                    r#"edgewatch_watch_condition_last_transition_timestamp_seconds{{namespace="iot",watch="plant",type="Ready",status="False",reason="SecretNotFound"}} {noon}"#
                ),
                format!(
                    r#"edgewatch_watch_condition_last_transition_timestamp_seconds{{namespace="iot",watch="plant",type="Stalled",status="True",reason="SecretNotFound"}} {noon}"#
                ),
            ]
        );
    }

    #[test]
    fn condition_strings_map_to_statuses() {
        assert_eq!(parse_status("True"), ConditionStatus::True);
        assert_eq!(parse_status("False"), ConditionStatus::False);
        assert_eq!(parse_status("Unknown"), ConditionStatus::Unknown);
        assert_eq!(parse_status("garbage"), ConditionStatus::Unknown);
    }
}
