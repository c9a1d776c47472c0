//! Step 4, publish (the operator only): the status written when it changed, device
//! gauges exported, Events announced.

pub(crate) mod events;
pub(crate) mod metrics;
pub(crate) mod status;

use jiff::Timestamp;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource};

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use crate::ops::metrics::Metrics;

use super::decide::events::PlannedEvent;
use super::decide::{Decision, Outcome};
use super::key::WatchKey;

/// Where a decision is published.
pub(crate) struct Publisher<'a> {
    pub client: &'a Client,
    pub recorder: &'a Recorder,
    pub metrics: &'a Metrics,
    /// The instant the reconcile judged by (device transitions are dated by it).
    pub now: Timestamp,
}

impl Publisher<'_> {
    /// Publishes `decision` about `watch`. The Events go out even when the status write
    /// fails (the transitions were seen and are remembered); the write's error is
    /// returned for the backoff.
    pub(crate) async fn publish(
        &self,
        watch: &EdgeDeviceWatch,
        key: &WatchKey,
        decision: &Decision,
    ) -> Result<(), kube::Error> {
        let written = match &decision.status {
            Some(status) => self.write_status(watch, key, status).await,
            None => Ok(()),
        };
        if written.is_ok() && matches!(decision.outcome, Outcome::Swept) {
            metrics::export_devices(
                self.metrics,
                &key.namespace,
                &key.name,
                decision.state.reports.values(),
                self.now,
            );
            metrics::export_interval(self.metrics, &key.namespace, &key.name, &watch.spec);
        }
        self.announce(watch, key, &decision.events).await;
        written
    }

    /// Writes the status when it changed meaningfully, and mirrors it into the metrics.
    async fn write_status(
        &self,
        watch: &EdgeDeviceWatch,
        key: &WatchKey,
        new: &EdgeDeviceWatchStatus,
    ) -> Result<(), kube::Error> {
        let api: Api<EdgeDeviceWatch> = Api::namespaced(self.client.clone(), &key.namespace);
        if status::write_if_changed(&api, &key.name, watch.status.as_ref(), new).await? {
            self.metrics.status_written(&key.namespace, &key.name);
        }
        metrics::export_status(self.metrics, &key.namespace, &key.name, new);
        Ok(())
    }

    async fn announce(&self, watch: &EdgeDeviceWatch, key: &WatchKey, planned: &[PlannedEvent]) {
        if planned.is_empty() {
            return;
        }
        let reference = watch.object_ref(&());
        if let Err(error) = events::publish_all(self.recorder, &reference, planned).await {
            tracing::warn!(watch = %key, error = %crate::errors::chain(&error), "publishing Events failed; the status still shows every transition");
        }
    }
}
