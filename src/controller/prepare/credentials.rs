//! Which credential a watch uses for its hub, resolved from its spec and Secret.

use kube::Client;

use crate::api::HubSpec;

use crate::controller::error::ReconcileError;
use crate::controller::prepare::secret::read_secret_key;
use crate::controller::prepare::settings::InvalidSpec;
use crate::iothub::Secret;

/// How to authenticate to a watch's hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubCredentials {
    /// A connection string (SAS policy) read from the referenced Secret.
    ConnectionString(Secret),
    /// Microsoft Entra ID through Azure Workload Identity.
    WorkloadIdentity {
        host_name: String,
        client_id: Option<String>,
    },
}

/// Reads the watch's credential; a missing Secret or key is a typed failure.
pub async fn resolve_credentials(
    client: &Client,
    namespace: &str,
    hub: &HubSpec,
) -> Result<HubCredentials, ReconcileError> {
    match (&hub.connection_string_secret_ref, &hub.workload_identity, &hub.host_name) {
        (Some(reference), None, _) => Ok(HubCredentials::ConnectionString(
            read_secret_key(client, namespace, reference).await?,
        )),
        (None, Some(identity), Some(host_name)) => Ok(HubCredentials::WorkloadIdentity {
            host_name: host_name.clone(),
            client_id: identity.client_id.clone(),
        }),
        _ => Err(InvalidSpec(
            "set exactly one of spec.hub.connectionStringSecretRef or spec.hub.workloadIdentity (with hostName)".into(),
        )
        .into()),
    }
}
