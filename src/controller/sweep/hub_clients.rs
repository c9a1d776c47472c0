//! One IoT Hub client per watch, reused across reconciles (its token cache and pacing
//! state live in it) and rebuilt when the watch's credential changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::iothub::{
    ClientConfig, Clock, Credential, IotHubClient, RateLimits, RequestObserver,
    WorkloadIdentityConfig,
};

use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::credentials::HubCredentials;

/// Settings every hub client shares.
#[derive(Clone, Default)]
pub struct HubClientTemplate {
    /// Send all requests here instead of `https://<hub>` (the simulator, a private endpoint).
    pub endpoint: Option<String>,
    /// Extra CA certificates (PEM) to trust.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Where request metrics go.
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// The clock the client signs tokens and dates the daily quota's reset by (default:
    /// the system clock; tests pass the simulator's).
    pub clock: Option<Arc<dyn Clock>>,
    /// Client-side pacing (default: below one S1 unit's quotas).
    pub rate_limits: Option<RateLimits>,
}

impl HubClientTemplate {
    fn config(&self, host_name: &str) -> ClientConfig {
        let mut config = ClientConfig::new(host_name);
        config.endpoint = self.endpoint.clone();
        config.extra_ca_pem = self.extra_ca_pem.clone();
        if let Some(observer) = &self.observer {
            config.observer = Arc::clone(observer);
        }
        if let Some(clock) = &self.clock {
            config.clock = Arc::clone(clock);
        }
        if let Some(limits) = self.rate_limits {
            config.rate_limits = limits;
        }
        config
    }
}

/// Clients by watch key, with a fingerprint of the credential they were built from.
#[derive(Default)]
pub(crate) struct HubClients {
    template: HubClientTemplate,
    clients: Mutex<HashMap<WatchKey, ([u8; 32], IotHubClient)>>,
}

impl HubClients {
    pub(crate) fn new(template: HubClientTemplate) -> Self {
        Self {
            template,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `watch_key`, building a new one when the credential changed.
    pub(crate) fn client_for(
        &self,
        watch_key: &WatchKey,
        credentials: &HubCredentials,
    ) -> Result<IotHubClient, ReconcileError> {
        let fingerprint = fingerprint(credentials);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, client)) = clients.get(watch_key)
            && *known == fingerprint
        {
            return Ok(client.clone());
        }
        let client = self.build(credentials)?;
        clients.insert(watch_key.clone(), (fingerprint, client.clone()));
        Ok(client)
    }

    /// Drops clients of watches that no longer exist.
    pub(crate) fn retain(&self, live: &std::collections::HashSet<WatchKey>) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| live.contains(k));
    }

    fn build(&self, credentials: &HubCredentials) -> Result<IotHubClient, ReconcileError> {
        let (host_name, credential) = match credentials {
            HubCredentials::ConnectionString(parsed) => (
                parsed.host_name().to_owned(),
                Credential::SharedAccessKey(parsed.clone()),
            ),
            HubCredentials::WorkloadIdentity {
                host_name,
                client_id,
            } => {
                let mut identity = WorkloadIdentityConfig::from_env()
                    .map_err(ReconcileError::WorkloadIdentityUnavailable)?;
                if let Some(id) = client_id {
                    identity.client_id = id.clone();
                }
                (host_name.clone(), Credential::WorkloadIdentity(identity))
            }
        };
        IotHubClient::new(self.template.config(&host_name), credential).map_err(|source| {
            ReconcileError::ClientSetup {
                hub: host_name,
                source,
            }
        })
    }
}

fn fingerprint(credentials: &HubCredentials) -> [u8; 32] {
    let mut hash = Sha256::new();
    match credentials {
        HubCredentials::ConnectionString(parsed) => {
            hash.update(b"sas\0");
            hash.update(parsed.host_name().as_bytes());
            hash.update(b"\0");
            hash.update(parsed.key_name().as_bytes());
            hash.update(b"\0");
            hash.update(parsed.key().expose().as_bytes());
        }
        HubCredentials::WorkloadIdentity {
            host_name,
            client_id,
        } => {
            hash.update(b"wi\0");
            hash.update(host_name.as_bytes());
            hash.update(b"\0");
            hash.update(client_id.as_deref().unwrap_or_default().as_bytes());
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iothub::ConnectionString;

    fn iot_a() -> WatchKey {
        WatchKey {
            namespace: "iot".into(),
            name: "a".into(),
        }
    }

    fn sas(key: &str) -> HubCredentials {
        HubCredentials::ConnectionString(
            ConnectionString::parse(&format!(
                "HostName=plant-a.azure-devices.net;SharedAccessKeyName=edgewatch;SharedAccessKey={key}"
            ))
            .unwrap(),
        )
    }

    #[test]
    fn a_client_is_reused_until_the_credential_changes() {
        let clients = HubClients::default();
        let first = clients.client_for(&iot_a(), &sas("c2VjcmV0")).unwrap();
        assert_eq!(first.hub(), "plant-a.azure-devices.net");
        let _again = clients.client_for(&iot_a(), &sas("c2VjcmV0")).unwrap();
        assert_eq!(clients.clients.lock().unwrap().len(), 1);
        let before = clients.clients.lock().unwrap()[&iot_a()].0;
        clients.client_for(&iot_a(), &sas("b3RoZXI=")).unwrap();
        assert_ne!(clients.clients.lock().unwrap()[&iot_a()].0, before);
    }

    #[test]
    fn a_client_that_cannot_be_set_up_is_an_invalid_spec_naming_the_hub() {
        let clients = HubClients::new(HubClientTemplate {
            extra_ca_pem: Some(b"not a certificate".to_vec()),
            ..HubClientTemplate::default()
        });
        let error = clients.client_for(&iot_a(), &sas("c2VjcmV0")).unwrap_err();
        assert_eq!(
            error.stall_reason(),
            Some(crate::health::report::Reason::InvalidSpec)
        );
        let text = crate::errors::chain(&error);
        assert!(text.contains("plant-a.azure-devices.net"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }

    #[test]
    fn clients_of_deleted_watches_are_dropped() {
        let clients = HubClients::default();
        clients.client_for(&iot_a(), &sas("c2VjcmV0")).unwrap();
        clients.retain(&Default::default());
        assert!(clients.clients.lock().unwrap().is_empty());
    }
}
