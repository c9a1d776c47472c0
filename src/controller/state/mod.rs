//! What the controller remembers about one watch between reconciles, in memory.
//!
//! It is rebuilt from the status after an operator restart (`seed`), and the parts a
//! restart must not lose are written back into `status.memory` (`memory`).

pub(crate) mod pings;
pub(crate) mod restarts;

use std::collections::HashMap;

use crate::api::{EdgeDeviceWatchStatus, WatchMemory};
use crate::health::report::DeviceReport;

use crate::controller::decide::events::{Faults, carried_faults, faults_of_entry};
use crate::health::DeviceMemory;
use pings::{PingLedger, PingRecord};

/// In-memory state of one watch: opaque outside the controller, which seeds it from the
/// status, lends it to the sweep and changes it only in `decide`.
#[derive(Debug, Clone, Default)]
pub struct WatchState {
    /// Last ping per device.
    pub(crate) pings: PingLedger,
    /// The evaluator's restart memory per device.
    pub(crate) restarts: HashMap<String, DeviceMemory>,
    /// Faults announced per device, so Events fire on transitions only.
    pub(crate) faults: HashMap<String, Faults>,
    /// The last published verdict per device (to decide when query data needs a GET).
    pub(crate) reports: HashMap<String, DeviceReport>,
    /// When the last sweep succeeded, and for which generation: a reconcile triggered
    /// sooner by the watch's own status write must not sweep the hub again.
    pub(crate) last_success: Option<(jiff::Timestamp, Option<i64>)>,
}

impl WatchState {
    /// State for a watch first seen by this process, from what its status recorded.
    pub(crate) fn seed(status: Option<&EdgeDeviceWatchStatus>) -> Self {
        let Some(status) = status else {
            return Self::default();
        };
        Self {
            pings: PingLedger::from_memory(&status.memory),
            restarts: restarts::from_status(&status.memory.restarts),
            faults: status
                .devices
                .iter()
                .map(|entry| (entry.device_id.clone(), faults_of_entry(entry)))
                .collect(),
            reports: HashMap::new(),
            last_success: None,
        }
    }

    /// Records a sweep's verdicts (after its Events were planned from the old faults).
    pub(crate) fn remember(&mut self, reports: &[DeviceReport]) {
        let faults = reports
            .iter()
            .map(|r| {
                (
                    r.device_id.clone(),
                    carried_faults(self.faults.get(&r.device_id), r),
                )
            })
            .collect();
        self.faults = faults;
        self.reports = reports
            .iter()
            .map(|r| (r.device_id.clone(), r.clone()))
            .collect();
    }

    /// Remembers the pings a sweep made.
    pub(crate) fn record_pings(&mut self, pings: Vec<(String, PingRecord)>) {
        for (device, record) in pings {
            self.pings.record(&device, record);
        }
    }

    /// The last sweep does not count: its status could not be published, so the next
    /// reconcile sweeps again instead of waiting out the interval.
    pub(crate) fn forget_success(&mut self) {
        self.last_success = None;
    }

    /// Forgets devices that left the watch.
    pub(crate) fn retain_devices(&mut self, devices: &[String]) {
        let keep: std::collections::HashSet<&str> = devices.iter().map(String::as_str).collect();
        self.pings.retain_devices(devices);
        self.restarts.retain(|d, _| keep.contains(d.as_str()));
        self.faults.retain(|d, _| keep.contains(d.as_str()));
        self.reports.retain(|d, _| keep.contains(d.as_str()));
    }

    /// The part of the state persisted in `status.memory`.
    pub(crate) fn memory(&self) -> WatchMemory {
        WatchMemory {
            last_ping_at: self.pings.last_ping_at(),
            ping_failures: self.pings.failures(),
            restarts: restarts::to_status(&self.restarts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::events::plan_events;
    use crate::controller::status::build::{StatusLimits, Sweep, build_status};
    use crate::controller::test_reports::{healthy, module_bad};
    use crate::health::report::Reason;

    #[test]
    fn a_restarted_operator_does_not_repeat_warnings_it_already_published() {
        let reports = vec![
            healthy("a"),
            module_bad("b", "sensor", Reason::ModuleFailed),
        ];
        let sweep = Sweep {
            generation: Some(1),
            hub: "h",
            reports: &reports,
            memory: WatchMemory::default(),
        };
        let status = build_status(
            &sweep,
            None,
            "2026-01-01T00:00:00Z".parse().unwrap(),
            &StatusLimits::default(),
        );
        let state = WatchState::seed(Some(&status));
        assert!(plan_events(&state.faults, &reports).is_empty());
    }

    #[test]
    fn remembering_a_sweep_replaces_faults_and_reports() {
        let mut state = WatchState::default();
        state.remember(&[module_bad("b", "m", Reason::ModuleFailed)]);
        assert_eq!(state.faults["b"].len(), 1);
        state.remember(&[healthy("b")]);
        assert!(state.faults["b"].is_empty());
        assert!(state.reports["b"].is_ready());
    }
}
