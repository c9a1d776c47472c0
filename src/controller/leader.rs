//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//!
//! Every replica runs the controller's watches (warm caches make a takeover quick), but
//! only the Lease holder reconciles; the others requeue and wait.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
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
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// A replica that always leads (leader election turned off, a single replica).
    pub fn always() -> Self {
        let (_, receiver) = watch::channel(true);
        Self {
            receiver,
            task: None,
        }
    }

    /// Starts competing for the Lease; fails when the Lease cannot be read or created.
    pub async fn elect(
        client: Client,
        settings: &LeaseSettings,
    ) -> Result<Self, kube_lease_manager::LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, settings.name.clone())
            .with_namespace(settings.namespace.clone())
            .with_identity(settings.identity.clone())
            .with_duration(settings.duration.as_secs().max(2))
            .with_grace(
                settings
                    .grace
                    .as_secs()
                    .clamp(1, settings.duration.as_secs().max(2) - 1),
            )
            .with_field_manager(format!("edgewatch-lease-{}", settings.identity))
            .build()
            .await?;
        let (receiver, handle) = manager.watch().await;
        let task = tokio::spawn(async move {
            match handle.await {
                Ok(Ok(manager)) => {
                    if let Err(error) = manager.release().await {
                        tracing::warn!(%error, "releasing the leader Lease failed");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "leader election stopped"),
                Err(error) => tracing::error!(%error, "leader election task failed"),
            }
        });
        Ok(Self {
            receiver,
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
    pub async fn resign(self) {
        drop(self.receiver);
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}
