//! One `EdgeDeviceWatch` reconciled outside Kubernetes, for `edgewatch check` and
//! `edgewatch demo`: the operator's own pipeline (prepare → sweep → decide) with a
//! credential handed in instead of a Secret, and the decided status kept in memory
//! instead of published.

use jiff::Timestamp;

use crate::api::EdgeDeviceWatch;
use crate::health::report::DeviceReport;

use super::decide::Outcome;
use super::error::ReconcileError;
use super::key::WatchKey;
use super::pipeline::{Pass, run};
use super::prepare::credentials::CredentialSource;
use super::state::WatchState;
use super::status::build::{StatusLimits, differs_meaningfully};
use super::sweep::hub_clients::HubClientTemplate;
use super::sweep::hub_sweeper::HubSweeper;
use super::sweep::read_plan::QuotaBudget;

/// The namespace a watch file without one is reconciled in (as `kubectl apply` would).
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// A watch, where its credential comes from, and what the last reconciles found.
pub struct LocalWatch<C> {
    watch: EdgeDeviceWatch,
    key: WatchKey,
    credentials: C,
    sweeper: HubSweeper,
    state: WatchState,
    limits: StatusLimits,
}

impl<C: CredentialSource> LocalWatch<C> {
    /// A watch as read from a file (its status, if any, is the previous one); hub clients
    /// are built from `template`.
    pub fn new(watch: EdgeDeviceWatch, credentials: C, template: HubClientTemplate) -> Self {
        let key = WatchKey::of(&watch, DEFAULT_NAMESPACE);
        let state = WatchState::seed(watch.status.as_ref());
        Self {
            watch,
            key,
            credentials,
            sweeper: HubSweeper::new(template, QuotaBudget::default()),
            state,
            limits: StatusLimits::default(),
        }
    }

    /// The watch as last reconciled (its status included).
    pub fn watch(&self) -> &EdgeDeviceWatch {
        &self.watch
    }

    /// The evaluator's last verdict on a device (richer than its status entry: it also
    /// carries `$edgeHub`'s disconnected clients).
    pub fn report(&self, device_id: &str) -> Option<&DeviceReport> {
        self.state.reports.get(device_id)
    }

    /// Runs the pipeline at `now` and keeps the status the operator would publish. A
    /// failure is returned after the status shows what the operator would show
    /// (`Stalled`, throttled).
    pub async fn reconcile(&mut self, now: Timestamp) -> Result<(), ReconcileError> {
        let state = std::mem::take(&mut self.state);
        let pass = Pass {
            watch: &self.watch,
            key: &self.key,
            sweeper: &self.sweeper,
            credentials: &self.credentials,
            now,
            limits: &self.limits,
        };
        let decision = run(pass, state).await;
        self.state = decision.state;
        // As the operator writes it: only when more than timestamps changed.
        if let Some(status) = decision.status
            && differs_meaningfully(self.watch.status.as_ref(), &status)
        {
            self.watch.status = Some(status);
        }
        match decision.outcome {
            Outcome::Failed(error) => Err(error),
            Outcome::Swept | Outcome::Suspended | Outcome::NotDue => Ok(()),
        }
    }
}
