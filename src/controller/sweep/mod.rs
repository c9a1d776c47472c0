//! Step 2, sweep: which devices the watch covers, their twins, their pings, and the
//! evaluator's verdict on each. The production [`Sweeper`] is [`hub_sweeper::HubSweeper`];
//! tests script their own.

pub mod devices;
pub mod hub_clients;
pub mod hub_errors;
pub mod hub_sweeper;
pub mod read_plan;
pub mod reads;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchSpec;
use crate::health::report::DeviceReport;

use super::error::ReconcileError;
use super::key::WatchKey;
use super::prepare::credentials::HubCredentials;
use super::prepare::settings::WatchSettings;
use super::state::WatchState;

/// What a sweep needs to know about the watch.
#[derive(Debug, Clone)]
pub struct SweepRequest<'a> {
    pub key: &'a WatchKey,
    pub spec: &'a EdgeDeviceWatchSpec,
    pub settings: &'a WatchSettings,
    pub credentials: &'a HubCredentials,
    pub now: Timestamp,
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOutput {
    /// The hub's host name.
    pub hub: String,
    /// One verdict per watched device.
    pub reports: Vec<DeviceReport>,
    /// The hub quota time one sweep needs (estimated): when it exceeds the interval the
    /// status says so instead of silently running late.
    pub quota_time: Duration,
}

/// Reads the devices of a watch and judges them. The production sweeper talks to IoT Hub
/// and runs the evaluator; tests script it.
pub trait Sweeper: Send + Sync + 'static {
    /// Sweeps once, updating the watch's pings and restart history in `state`.
    fn sweep(
        &self,
        request: SweepRequest<'_>,
        state: &mut WatchState,
    ) -> impl Future<Output = Result<SweepOutput, ReconcileError>> + Send;

    /// Drops whatever the sweeper keeps for watches that no longer exist (`live` holds
    /// the keys of those that do).
    fn retain_watches(&self, live: &HashSet<WatchKey>) {
        let _ = live;
    }
}
