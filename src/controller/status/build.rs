//! The whole `EdgeDeviceWatch` status from one sweep, and the "did anything change" test
//! that keeps unchanged status from ever being written.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    AspectState, DeviceCounts, DeviceEntry, DriftEntry, EdgeDeviceWatchStatus, FailingModule,
    WatchMemory,
};
use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

use crate::controller::status::conditions::{
    aggregate, sort_worst_first, truncate, with_bookkeeping,
};

/// Bounds that keep the status small whatever the fleet size (etcd refuses objects over
/// 1.5 MiB; a readable `kubectl describe` wants far less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLimits {
    /// Per-device entries listed (worst first).
    pub max_device_entries: usize,
    /// Failing modules listed per device.
    pub max_modules_per_entry: usize,
    /// Drift items listed per device.
    pub max_drift_per_entry: usize,
    /// Longest desired/reported value or per-device message.
    pub max_value_chars: usize,
}

impl Default for StatusLimits {
    fn default() -> Self {
        Self {
            max_device_entries: 100,
            max_modules_per_entry: 10,
            max_drift_per_entry: 10,
            max_value_chars: 256,
        }
    }
}

/// What one sweep produced, plus what the status must carry over.
#[derive(Debug, Clone)]
pub(crate) struct Sweep<'a> {
    /// `metadata.generation` of the spec the sweep used.
    pub generation: Option<i64>,
    /// The hub's host name.
    pub hub: &'a str,
    /// One report per watched device.
    pub reports: &'a [DeviceReport],
    /// Restart and ping memory to persist.
    pub memory: WatchMemory,
}

/// Computes the status of a completed sweep.
pub(crate) fn build_status(
    sweep: &Sweep<'_>,
    previous: Option<&EdgeDeviceWatchStatus>,
    now: Timestamp,
    limits: &StatusLimits,
) -> EdgeDeviceWatchStatus {
    let mut ordered: Vec<&DeviceReport> = sweep.reports.iter().collect();
    sort_worst_first(&mut ordered);
    let previous_conditions = previous.map_or(&[][..], |p| p.conditions.as_slice());
    let conditions = with_bookkeeping(
        &aggregate(&ordered),
        previous_conditions,
        sweep.generation,
        now,
    );
    EdgeDeviceWatchStatus {
        observed_generation: sweep.generation,
        conditions,
        hub: Some(sweep.hub.to_owned()),
        summary: counts(sweep.reports),
        devices: ordered
            .iter()
            .take(limits.max_device_entries)
            .map(|r| device_entry(r, limits))
            .collect(),
        devices_truncated: ordered.len() > limits.max_device_entries,
        memory: sweep.memory.clone(),
    }
}

/// Device counts for the printer columns.
pub(crate) fn counts(reports: &[DeviceReport]) -> DeviceCounts {
    let count = |type_, status| {
        let n = reports
            .iter()
            .filter(|r| r.condition(type_).is_some_and(|c| c.status == status))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    DeviceCounts {
        devices: u32::try_from(reports.len()).unwrap_or(u32::MAX),
        ready: count(ConditionType::Ready, ConditionStatus::True),
        unreachable: count(ConditionType::Reachable, ConditionStatus::False),
        unhealthy: count(ConditionType::ModulesHealthy, ConditionStatus::False),
        drifted: count(ConditionType::InSync, ConditionStatus::False),
        stale: count(ConditionType::Fresh, ConditionStatus::False),
    }
}

/// The compact status entry of one device.
pub(crate) fn device_entry(report: &DeviceReport, limits: &StatusLimits) -> DeviceEntry {
    let aspect = |type_| {
        report.condition(type_).map_or(
            AspectState {
                status: ConditionStatus::Unknown,
                reason: Reason::NoReportedState,
            },
            |c| AspectState {
                status: c.status,
                reason: c.reason,
            },
        )
    };
    let first_problem = ConditionType::ASPECTS
        .iter()
        .filter_map(|t| report.condition(*t))
        .find(|c| c.status != ConditionStatus::True)
        .map(|c| c.message.as_str())
        .unwrap_or_default();
    DeviceEntry {
        device_id: report.device_id.clone(),
        ready: aspect(ConditionType::Ready),
        reachable: aspect(ConditionType::Reachable),
        modules_healthy: aspect(ConditionType::ModulesHealthy),
        in_sync: aspect(ConditionType::InSync),
        fresh: aspect(ConditionType::Fresh),
        message: truncate(first_problem, limits.max_value_chars),
        failing_modules: failing_modules(report, limits),
        drift: drift_entries(report, limits),
        ping_latency_ms: report.ping_latency_ms,
    }
}

fn failing_modules(report: &DeviceReport, limits: &StatusLimits) -> Vec<FailingModule> {
    report
        .modules
        .iter()
        .filter(|m| m.verdict != Reason::AllModulesHealthy)
        .take(limits.max_modules_per_entry)
        .map(|m| FailingModule {
            name: truncate(&m.name, limits.max_value_chars),
            reason: m.verdict,
            runtime_status: m.runtime_status.as_deref().map(|s| truncate(s, 32)),
            exit_code: m.exit_code,
            restart_count: m.restart_count,
        })
        .collect()
}

fn drift_entries(report: &DeviceReport, limits: &StatusLimits) -> Vec<DriftEntry> {
    let cut = |v: &Option<String>| v.as_deref().map(|s| truncate(s, limits.max_value_chars));
    report
        .drift
        .iter()
        .take(limits.max_drift_per_entry)
        .map(|d| DriftEntry {
            reason: d.reason,
            module: cut(&d.module),
            property: cut(&d.property),
            desired: cut(&d.desired),
            reported: cut(&d.reported),
        })
        .collect()
}

/// True when `new` differs from `old` in anything but timestamps and measurements
/// (`lastTransitionTime` without a status change, ping times, ping latency). Only then is
/// the status written: an unchanged world costs no API writes.
pub(crate) fn differs_meaningfully(
    old: Option<&EdgeDeviceWatchStatus>,
    new: &EdgeDeviceWatchStatus,
) -> bool {
    match old {
        None => true,
        Some(old) => without_time(old) != without_time(new),
    }
}

fn without_time(status: &EdgeDeviceWatchStatus) -> EdgeDeviceWatchStatus {
    let mut s = status.clone();
    for c in &mut s.conditions {
        c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
    }
    for d in &mut s.devices {
        d.ping_latency_ms = None;
    }
    s.memory.last_ping_at = None;
    for f in &mut s.memory.ping_failures {
        f.at = Timestamp::UNIX_EPOCH;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_reports::{drifted, healthy, module_bad, unreachable};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn sweep(reports: &[DeviceReport]) -> Sweep<'_> {
        Sweep {
            generation: Some(4),
            hub: "plant-a.azure-devices.net",
            reports,
            memory: WatchMemory::default(),
        }
    }

    #[test]
    fn first_status_publishes_all_conditions_counts_and_entries() {
        let reports = vec![
            healthy("a"),
            module_bad("b", "sensor", Reason::ModuleFailed),
            unreachable("c"),
            drifted("d"),
        ];
        let status = build_status(
            &sweep(&reports),
            None,
            at("2026-01-01T00:00:00Z"),
            &StatusLimits::default(),
        );
        let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            ["Ready", "Reachable", "ModulesHealthy", "InSync", "Fresh"]
        );
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(status.hub.as_deref(), Some("plant-a.azure-devices.net"));
        assert_eq!(
            status.summary,
            DeviceCounts {
                devices: 4,
                ready: 1,
                unreachable: 1,
                unhealthy: 1,
                drifted: 1,
                stale: 0
            }
        );
        let order: Vec<_> = status
            .devices
            .iter()
            .map(|d| d.device_id.as_str())
            .collect();
        assert_eq!(order, ["b", "c", "d", "a"], "worst first, then by id");
        let b = &status.devices[0];
        assert_eq!(b.failing_modules.len(), 1);
        assert_eq!(b.failing_modules[0].name, "sensor");
        assert_eq!(b.failing_modules[0].exit_code, Some(1));
        assert_eq!(b.modules_healthy.reason, Reason::ModuleFailed);
        assert!(!b.message.is_empty());
        assert_eq!(status.devices[2].drift[0].reason, Reason::DeploymentPending);
        assert!(status.devices[3].message.is_empty());
        assert!(!status.devices_truncated);
    }

    #[test]
    fn entries_are_capped_and_truncation_is_flagged() {
        let reports: Vec<_> = (0..250).map(|i| healthy(&format!("gw-{i:03}"))).collect();
        let mut with_bad = reports.clone();
        with_bad.push(module_bad("zz-last", "m", Reason::ModuleFailed));
        let limits = StatusLimits {
            max_device_entries: 100,
            ..StatusLimits::default()
        };
        let status = build_status(&sweep(&with_bad), None, at("2026-01-01T00:00:00Z"), &limits);
        assert_eq!(status.devices.len(), 100);
        assert!(status.devices_truncated);
        assert_eq!(status.summary.devices, 251);
        assert_eq!(
            status.devices[0].device_id, "zz-last",
            "the bad device survives the cut"
        );
    }

    #[test]
    fn long_values_are_truncated() {
        let mut report = drifted("a");
        report.drift[0].desired = Some("x".repeat(10_000));
        let limits = StatusLimits::default();
        let entry = device_entry(&report, &limits);
        assert_eq!(
            entry.drift[0].desired.as_ref().unwrap().chars().count(),
            limits.max_value_chars
        );
    }

    #[test]
    fn status_of_a_large_fleet_stays_small() {
        let reports: Vec<_> = (0..10_000)
            .map(|i| {
                module_bad(
                    &format!("device-{i:05}-{}", "x".repeat(100)),
                    &"m".repeat(200),
                    Reason::ModuleFailed,
                )
            })
            .collect();
        let status = build_status(
            &sweep(&reports),
            None,
            at("2026-01-01T00:00:00Z"),
            &StatusLimits::default(),
        );
        let bytes = serde_json::to_vec(&status).unwrap().len();
        assert!(bytes < 256 * 1024, "status is {bytes} bytes");
    }

    #[test]
    fn an_unchanged_world_is_not_a_change_even_with_new_times() {
        let reports = vec![healthy("a"), unreachable("b")];
        let limits = StatusLimits::default();
        let mut first_sweep = sweep(&reports);
        first_sweep.memory.last_ping_at = Some(at("2026-01-01T00:00:00Z"));
        let first = build_status(&first_sweep, None, at("2026-01-01T00:00:00Z"), &limits);

        let mut later_reports = reports.clone();
        later_reports[0].ping_latency_ms = Some(99);
        let mut later_sweep = sweep(&later_reports);
        later_sweep.memory.last_ping_at = Some(at("2026-01-01T00:05:00Z"));
        let second = build_status(
            &later_sweep,
            Some(&first),
            at("2026-01-01T00:05:00Z"),
            &limits,
        );
        assert!(!differs_meaningfully(Some(&first), &second));
        assert!(differs_meaningfully(None, &second));
    }

    #[test]
    fn a_real_change_is_a_change() {
        let limits = StatusLimits::default();
        let now = at("2026-01-01T00:00:00Z");
        let ok = vec![healthy("a")];
        let first = build_status(&sweep(&ok), None, now, &limits);
        let bad = vec![module_bad("a", "m", Reason::ModuleFailed)];
        let second = build_status(&sweep(&bad), Some(&first), now, &limits);
        assert!(differs_meaningfully(Some(&first), &second));
        // A new generation alone is a change too (observedGeneration must be published).
        let mut newer = sweep(&ok);
        newer.generation = Some(5);
        let third = build_status(&newer, Some(&first), now, &limits);
        assert!(differs_meaningfully(Some(&first), &third));
    }
}
