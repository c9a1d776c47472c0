//! Step 2, sweep: which devices the watch covers, their twins, their pings, and the
//! evaluator's verdict on each.
//!
//! A sweep reads the watch's state (last pings, restart memory, last verdicts) but never
//! changes it: it returns [`Observations`], and `decide` folds them into the state. The
//! production [`Sweeper`] is [`hub_sweeper::HubSweeper`]; tests script their own.

pub(crate) mod devices;
pub(crate) mod hub_clients;
pub(crate) mod hub_errors;
pub(crate) mod hub_sweeper;
pub(crate) mod read_plan;
pub(crate) mod reads;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchSpec;
use crate::health::DeviceMemory;
use crate::health::report::DeviceReport;

use super::error::ReconcileError;
use super::key::WatchKey;
use super::prepare::credentials::HubCredentials;
use super::prepare::settings::WatchSettings;
use super::state::WatchState;
use super::state::pings::PingRecord;

/// The watch as the prepare step hands it to the sweep.
#[derive(Debug, Clone, Copy)]
pub struct PreparedWatch<'a> {
    pub key: &'a WatchKey,
    pub spec: &'a EdgeDeviceWatchSpec,
    pub settings: &'a WatchSettings,
    pub credentials: &'a HubCredentials,
    /// The instant the sweep judges by.
    pub now: Timestamp,
}

/// What one sweep observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    /// The hub's host name.
    pub hub: String,
    /// The devices the watch covers, sorted and unique.
    pub devices: Vec<String>,
    /// The pings made by this sweep.
    pub pings: Vec<(String, PingRecord)>,
    /// One verdict per device in `devices`.
    pub verdicts: Vec<Verdict>,
    /// What the sweep cost the hub.
    pub cost: SweepCost,
}

impl Observations {
    /// Observations of devices judged elsewhere (a scripted sweep): no pings, no restart
    /// memory, nothing costed.
    pub fn from_reports(hub: impl Into<String>, reports: Vec<DeviceReport>) -> Self {
        Self {
            hub: hub.into(),
            devices: reports.iter().map(|r| r.device_id.clone()).collect(),
            pings: Vec::new(),
            verdicts: reports
                .into_iter()
                .map(|report| Verdict {
                    report,
                    memory: None,
                })
                .collect(),
            cost: SweepCost::default(),
        }
    }

    /// The verdicts' reports.
    pub fn reports(&self) -> impl Iterator<Item = &DeviceReport> {
        self.verdicts.iter().map(|v| &v.report)
    }
}

/// The evaluator's verdict on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub report: DeviceReport,
    /// The restart memory to keep; `None` when the device kept its previous verdict (its
    /// twins could not be read) and its memory stays as it was.
    pub memory: Option<DeviceMemory>,
}

/// What a sweep cost the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepCost {
    /// The hub read quota time the sweep needs (estimated): when it exceeds the interval,
    /// the status says so instead of silently running late.
    pub quota_time: Duration,
}

/// A sweep that could not finish, and the pings it made before it stopped (they are
/// answers about devices, worth keeping).
#[derive(Debug)]
pub struct SweepFailure {
    pub error: ReconcileError,
    pub pings: Vec<(String, PingRecord)>,
}

impl From<ReconcileError> for SweepFailure {
    fn from(error: ReconcileError) -> Self {
        Self {
            error,
            pings: Vec::new(),
        }
    }
}

/// Reads the devices of a watch and judges them. The production sweeper talks to IoT Hub
/// and runs the evaluator; tests script it.
pub trait Sweeper: Send + Sync + 'static {
    /// Sweeps once. `state` is what the watch remembers (last pings, restart memory,
    /// last verdicts); the sweep reads it and reports what it saw.
    fn sweep(
        &self,
        watch: &PreparedWatch<'_>,
        state: &WatchState,
    ) -> impl Future<Output = Result<Observations, SweepFailure>> + Send;

    /// Drops whatever the sweeper keeps for watches that no longer exist (`live` holds
    /// the keys of those that do).
    fn retain_watches(&self, live: &HashSet<WatchKey>) {
        let _ = live;
    }
}
