//! Mirrors what a reconcile concluded into the Prometheus registry, so alert rules see
//! exactly what `kubectl get edw` shows: the watch's conditions and counts from the status,
//! device and module gauges from the full list of verdicts (the status keeps only the
//! worst devices, the metrics keep all of them).

use crate::api::EdgeDeviceWatchStatus;
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
/// the watch.
pub(crate) fn export_devices<'a>(
    metrics: &Metrics,
    namespace: &str,
    watch: &str,
    reports: impl IntoIterator<Item = &'a DeviceReport> + Clone,
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
        export_devices(&metrics, "iot", "plant", &[a.clone(), b]);
        assert_eq!(series(&metrics, "edgewatch_device_ready{").len(), 2);
        export_devices(&metrics, "iot", "plant", &[a]);
        let ready = series(&metrics, "edgewatch_device_ready{");
        assert_eq!(ready.len(), 1);
        assert!(ready[0].contains("device=\"gw-a\""), "{ready:?}");
    }

    #[test]
    fn a_healthy_device_reads_ready_and_its_modules_running() {
        let metrics = Metrics::new(true);
        export_devices(&metrics, "iot", "plant", &[test_reports::healthy("gw-a")]);
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
    fn condition_strings_map_to_statuses() {
        assert_eq!(parse_status("True"), ConditionStatus::True);
        assert_eq!(parse_status("False"), ConditionStatus::False);
        assert_eq!(parse_status("Unknown"), ConditionStatus::Unknown);
        assert_eq!(parse_status("garbage"), ConditionStatus::Unknown);
    }
}
