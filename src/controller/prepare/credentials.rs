//! Which credential a watch uses for its hub: the one rule over `spec.hub`, and where the
//! credential comes from (a Kubernetes Secret for the operator, a value given on the
//! command line's side for `check` and `demo`).

use std::future::Future;

use crate::api::{HubSpec, SecretKeyRef};
use crate::controller::error::{ConnectionStringProblem, ReconcileError};
use crate::iothub::ConnectionString;

use super::settings::FieldError;

/// How a watch authenticates to its hub, as `spec.hub` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubAuth {
    /// A connection string (SAS policy) in a Secret of the watch's namespace.
    ConnectionString(SecretKeyRef),
    /// Microsoft Entra ID through Azure Workload Identity.
    WorkloadIdentity {
        host_name: String,
        client_id: Option<String>,
    },
}

impl HubAuth {
    /// The one credential rule: exactly one of `connectionStringSecretRef` and
    /// `workloadIdentity`, the latter with `hostName`, the former without. The messages
    /// are the CRD's CEL rules' own.
    pub fn of(hub: &HubSpec) -> Result<Self, FieldError> {
        let refuse = |message: &str| Err(FieldError::new("spec.hub", message));
        match (
            &hub.connection_string_secret_ref,
            &hub.workload_identity,
            &hub.host_name,
        ) {
            (Some(reference), None, None) => Ok(Self::ConnectionString(reference.clone())),
            (Some(_), None, Some(_)) => {
                refuse("hostName comes from the connection string; do not set both")
            }
            (None, Some(identity), Some(host_name)) => Ok(Self::WorkloadIdentity {
                host_name: host_name.clone(),
                client_id: identity.client_id.clone(),
            }),
            (None, Some(_), None) => {
                refuse("workloadIdentity needs hostName (for example my-hub.azure-devices.net)")
            }
            _ => refuse(
                "set exactly one credential source: connectionStringSecretRef or workloadIdentity",
            ),
        }
    }
}

/// How to authenticate to a watch's hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubCredentials {
    /// A parsed connection string (SAS policy).
    ConnectionString(ConnectionString),
    /// Microsoft Entra ID through Azure Workload Identity.
    WorkloadIdentity {
        host_name: String,
        client_id: Option<String>,
    },
}

impl HubCredentials {
    /// Workload identity needs nothing read: the pod's federated token is used.
    fn for_workload_identity(auth: &HubAuth) -> Option<Self> {
        match auth {
            HubAuth::WorkloadIdentity {
                host_name,
                client_id,
            } => Some(Self::WorkloadIdentity {
                host_name: host_name.clone(),
                client_id: client_id.clone(),
            }),
            HubAuth::ConnectionString(_) => None,
        }
    }
}

/// Where a watch's credential comes from. The pipeline asks only when it sweeps, so a
/// suspended watch needs none.
pub trait CredentialSource: Send + Sync {
    /// The credential for a watch in `namespace` that authenticates as `auth` says.
    fn credentials(
        &self,
        namespace: &str,
        auth: &HubAuth,
    ) -> impl Future<Output = Result<HubCredentials, ReconcileError>> + Send;
}

/// A connection string handed in from outside Kubernetes (an environment variable for
/// `edgewatch check`, the simulator's for `edgewatch demo`), used for every watch that
/// references a Secret.
#[derive(Clone)]
pub struct GivenConnectionString {
    /// Where it came from, for messages: `environment variable IOTHUB_CONNECTION_STRING`.
    origin: String,
    value: Option<crate::iothub::Secret>,
}

impl GivenConnectionString {
    /// `value` is `None` (or blank) when nothing was given.
    pub fn new(origin: impl Into<String>, value: Option<String>) -> Self {
        Self {
            origin: origin.into(),
            value: value
                .filter(|v| !v.trim().is_empty())
                .map(crate::iothub::Secret::new),
        }
    }
}

impl CredentialSource for GivenConnectionString {
    async fn credentials(
        &self,
        _namespace: &str,
        auth: &HubAuth,
    ) -> Result<HubCredentials, ReconcileError> {
        if let Some(identity) = HubCredentials::for_workload_identity(auth) {
            return Ok(identity);
        }
        let value = self
            .value
            .as_ref()
            .ok_or_else(|| ReconcileError::ConnectionStringNotGiven(self.origin.clone()))?;
        parse_connection_string(value.expose(), &self.origin)
    }
}

/// Parses a connection string read from `origin` (named in the error, the value never).
pub(crate) fn parse_connection_string(
    text: &str,
    origin: &str,
) -> Result<HubCredentials, ReconcileError> {
    let bad = |problem| ReconcileError::BadConnectionString {
        origin: origin.to_owned(),
        problem,
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad(ConnectionStringProblem::Empty));
    }
    ConnectionString::parse(text)
        .map(HubCredentials::ConnectionString)
        .map_err(|e| bad(ConnectionStringProblem::Unparsable(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WorkloadIdentitySpec;
    use crate::health::report::Reason;

    fn reference() -> SecretKeyRef {
        SecretKeyRef {
            name: "s".into(),
            key: "k".into(),
        }
    }

    #[test]
    fn exactly_one_credential_source_in_one_place() {
        let sas = HubSpec {
            connection_string_secret_ref: Some(reference()),
            ..HubSpec::default()
        };
        assert_eq!(
            HubAuth::of(&sas),
            Ok(HubAuth::ConnectionString(reference()))
        );
        let identity = HubSpec {
            host_name: Some("h.azure-devices.net".into()),
            workload_identity: Some(WorkloadIdentitySpec {
                client_id: Some("abc".into()),
            }),
            ..HubSpec::default()
        };
        assert_eq!(
            HubAuth::of(&identity),
            Ok(HubAuth::WorkloadIdentity {
                host_name: "h.azure-devices.net".into(),
                client_id: Some("abc".into())
            })
        );
        let refused = [
            HubSpec::default(),
            HubSpec {
                workload_identity: Some(WorkloadIdentitySpec::default()),
                ..HubSpec::default()
            },
            HubSpec {
                host_name: Some("h".into()),
                ..sas.clone()
            },
            HubSpec {
                workload_identity: Some(WorkloadIdentitySpec::default()),
                ..sas
            },
        ];
        for hub in refused {
            let error = HubAuth::of(&hub).unwrap_err();
            assert_eq!(error.field, "spec.hub", "{hub:?}");
        }
    }

    #[tokio::test]
    async fn a_given_connection_string_is_parsed_and_never_shown() {
        let auth = HubAuth::ConnectionString(reference());
        let good = GivenConnectionString::new(
            "environment variable CS",
            Some(
                " HostName=h.azure-devices.net;SharedAccessKeyName=p;SharedAccessKey=c2VjcmV0 "
                    .into(),
            ),
        );
        let Ok(HubCredentials::ConnectionString(parsed)) = good.credentials("iot", &auth).await
        else {
            panic!("parses");
        };
        assert_eq!(parsed.host_name(), "h.azure-devices.net");

        let missing = GivenConnectionString::new("environment variable CS", Some("  ".into()))
            .credentials("iot", &auth)
            .await
            .unwrap_err();
        assert!(matches!(
            missing,
            ReconcileError::ConnectionStringNotGiven(_)
        ));
        assert_eq!(missing.stall_reason(), Some(Reason::SecretNotFound));

        let bad = GivenConnectionString::new(
            "environment variable CS",
            Some("SharedAccessKey=c2VjcmV0".into()),
        )
        .credentials("iot", &auth)
        .await
        .unwrap_err();
        let text = crate::errors::chain(&bad);
        assert!(
            text.starts_with("the connection string in environment variable CS is not usable: "),
            "{text}"
        );
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert_eq!(bad.stall_reason(), Some(Reason::InvalidSpec));
    }

    #[tokio::test]
    async fn workload_identity_needs_no_connection_string() {
        let auth = HubAuth::WorkloadIdentity {
            host_name: "h.azure-devices.net".into(),
            client_id: None,
        };
        let found = GivenConnectionString::new("environment variable CS", None)
            .credentials("iot", &auth)
            .await
            .unwrap();
        assert_eq!(
            found,
            HubCredentials::WorkloadIdentity {
                host_name: "h.azure-devices.net".into(),
                client_id: None
            }
        );
    }
}
