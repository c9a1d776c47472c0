//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//!
//! Every replica runs the controller's watches (warm caches make a takeover quick), but
//! only the Lease holder reconciles; the others requeue and wait.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Lease parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity, normally the pod name.
    pub identity: String,
    /// How long a holder keeps the Lease without renewing it.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

/// Whether this replica leads, as it changes.
pub struct Leadership {
    receiver: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// A replica that always leads (leader election turned off, a single replica).
    pub fn always() -> Self {
        let (_, receiver) = watch::channel(true);
        Self {
            receiver,
            stop: None,
            task: None,
        }
    }

    /// Starts competing for the Lease; fails when the Lease cannot be read or created.
    pub async fn elect(
        client: Client,
        settings: &LeaseSettings,
    ) -> Result<Self, kube_lease_manager::LeaseManagerError> {
        let duration = settings.duration.as_secs().max(2);
        let manager = LeaseManagerBuilder::new(client, settings.name.clone())
            .with_namespace(settings.namespace.clone())
            .with_identity(settings.identity.clone())
            .with_duration(duration)
            .with_grace(settings.grace.as_secs().clamp(1, duration - 1))
            .with_field_manager(format!("edgewatch-lease-{}", settings.identity))
            .build()
            .await?;
        let (sender, receiver) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(campaign(manager, sender, stopped));
        Ok(Self {
            receiver,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// True while this replica holds the Lease.
    pub fn is_leader(&self) -> bool {
        *self.receiver.borrow()
    }

    /// A receiver to wait on changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.receiver.clone()
    }

    /// Stops competing and releases the Lease if held (on shutdown, so a successor need
    /// not wait for it to expire).
    pub async fn resign(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Keeps the Lease (renewing it while held) and publishes every change of leadership,
/// until told to stop; then releases it.
async fn campaign(
    manager: LeaseManager,
    leading: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = manager.changed() => match changed {
                Ok(state) => {
                    if state != *leading.borrow() {
                        tracing::info!(leader = state, "leadership changed");
                    }
                    leading.send_replace(state);
                }
                Err(error) => {
                    tracing::warn!(error = %crate::errors::chain(&error), "leader election failed; following until it recovers");
                    leading.send_replace(false);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
    leading.send_replace(false);
    if let Err(error) = manager.release().await {
        tracing::warn!(error = %crate::errors::chain(&error), "releasing the leader Lease failed; it expires by itself");
    }
}
