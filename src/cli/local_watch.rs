//! One `EdgeDeviceWatch` reconciled outside Kubernetes, for `edgewatch check` and
//! `edgewatch demo`.
//!
//! It runs the operator's own pieces (settings, [`HubSweeper`], status building, failure
//! outcomes) in the order the controller runs them; only the Kubernetes reads and writes
//! are left out: credentials come from the caller and the status stays in memory.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::credentials::HubCredentials;
use crate::controller::prepare::settings::WatchSettings;
use crate::controller::state::WatchState;
use crate::controller::status::build::{StatusLimits, Sweep, build_status};
use crate::controller::status::outcome::status_after_failure;
use crate::controller::sweep::hub_clients::HubClientTemplate;
use crate::controller::sweep::hub_sweeper::HubSweeper;
use crate::controller::sweep::read_plan::QuotaBudget;
use crate::controller::sweep::{SweepRequest, Sweeper};
use crate::health::report::DeviceReport;

/// The namespace a watch file without one is reconciled in (as `kubectl apply` would).
pub const DEFAULT_NAMESPACE: &str = "default";

/// A watch, its credentials and what the last reconciles found.
pub struct LocalWatch {
    watch: EdgeDeviceWatch,
    settings: WatchSettings,
    credentials: HubCredentials,
    sweeper: HubSweeper,
    state: WatchState,
    limits: StatusLimits,
    reports: Vec<DeviceReport>,
}

impl LocalWatch {
    /// Checks the spec as the controller does; a bad one is an `InvalidSpec` error.
    pub fn new(
        watch: EdgeDeviceWatch,
        credentials: HubCredentials,
        template: HubClientTemplate,
    ) -> Result<Self, ReconcileError> {
        let settings = WatchSettings::from_spec(&watch.spec)?;
        let state = WatchState::seed(watch.status.as_ref());
        Ok(Self {
            watch,
            settings,
            credentials,
            sweeper: HubSweeper::new(template, QuotaBudget::default()),
            state,
            limits: StatusLimits::default(),
            reports: Vec::new(),
        })
    }

    /// The watch as last reconciled (its status included).
    pub fn watch(&self) -> &EdgeDeviceWatch {
        &self.watch
    }

    /// The parsed spec.
    pub fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    /// The verdicts of the last completed sweep (richer than the status entries: they
    /// also carry `$edgeHub`'s disconnected clients).
    pub fn reports(&self) -> &[DeviceReport] {
        &self.reports
    }

    /// Sweeps once at `now` and updates the status as the controller would publish it.
    /// On failure the status shows what the operator would show (`Stalled`, throttled)
    /// and the error is returned as well.
    pub async fn reconcile(&mut self, now: Timestamp) -> Result<(), ReconcileError> {
        let key = WatchKey::of(&self.watch, DEFAULT_NAMESPACE);
        let generation = self.watch.metadata.generation;
        let request = SweepRequest {
            key: &key,
            spec: &self.watch.spec,
            settings: &self.settings,
            credentials: &self.credentials,
            now,
        };
        let previous = self.watch.status.as_ref();
        match self.sweeper.sweep(request, &mut self.state).await {
            Ok(output) => {
                let sweep = Sweep {
                    generation,
                    hub: &output.hub,
                    reports: &output.reports,
                    memory: self.state.memory(),
                };
                let status = build_status(&sweep, previous, now, &self.limits);
                self.state.remember(&output.reports);
                self.watch.status = Some(status);
                self.reports = output.reports;
                Ok(())
            }
            Err(error) => {
                if let Some(status) = status_after_failure(previous, &error, generation, now) {
                    self.watch.status = Some(status);
                }
                Err(error)
            }
        }
    }
}

/// The watch's `Ready` condition, when it has one.
pub fn ready_condition(status: Option<&EdgeDeviceWatchStatus>) -> Option<&Condition> {
    status?.conditions.iter().find(|c| c.type_ == "Ready")
}

/// True when the watch's `Ready` condition is True.
pub fn is_ready(status: Option<&EdgeDeviceWatchStatus>) -> bool {
    ready_condition(status).is_some_and(|c| c.status == "True")
}
