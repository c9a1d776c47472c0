//! The operator's credential source: the connection string in the Secret a watch
//! references, with failures that name the Secret and key but never the value.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::SecretKeyRef;
use crate::controller::error::{ConnectionStringProblem, ReconcileError};

use super::credentials::{CredentialSource, HubAuth, HubCredentials, parse_connection_string};

/// Reads connection strings from Secrets in the watch's namespace.
#[derive(Clone)]
pub(crate) struct KubernetesSecrets {
    client: Client,
}

impl KubernetesSecrets {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

impl CredentialSource for KubernetesSecrets {
    async fn credentials(
        &self,
        namespace: &str,
        auth: &HubAuth,
    ) -> Result<HubCredentials, ReconcileError> {
        let reference = match auth {
            HubAuth::ConnectionString(reference) => reference,
            HubAuth::WorkloadIdentity {
                host_name,
                client_id,
            } => {
                return Ok(HubCredentials::WorkloadIdentity {
                    host_name: host_name.clone(),
                    client_id: client_id.clone(),
                });
            }
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = secrets.get_opt(&reference.name).await?.ok_or_else(|| {
            ReconcileError::SecretNotFound {
                namespace: namespace.to_owned(),
                name: reference.name.clone(),
            }
        })?;
        value_of(&secret, namespace, reference)
    }
}

/// The key's connection string from a fetched Secret (`data`, or `stringData` as some
/// stores echo it).
pub(crate) fn value_of(
    secret: &Secret,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<HubCredentials, ReconcileError> {
    let origin = format!(
        "Secret {namespace}/{} key {:?}",
        reference.name, reference.key
    );
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .map(|bytes| String::from_utf8(bytes.0.clone()));
    let from_string_data = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .cloned()
        .map(Ok);
    match from_data.or(from_string_data) {
        Some(Ok(text)) => parse_connection_string(&text, &origin),
        Some(Err(_)) => Err(ReconcileError::BadConnectionString {
            origin,
            problem: ConnectionStringProblem::NotUtf8,
        }),
        None => Err(ReconcileError::SecretKeyMissing {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            key: reference.key.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::chain;
    use crate::health::report::Reason;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn reference() -> SecretKeyRef {
        SecretKeyRef {
            name: "hub".into(),
            key: "connectionString".into(),
        }
    }

    fn secret_with(key: &str, value: &[u8]) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_value_is_read_and_never_printed() {
        let secret = secret_with(
            "connectionString",
            b"HostName=h;SharedAccessKeyName=p;SharedAccessKey=c2VjcmV0\n",
        );
        let value = value_of(&secret, "iot", &reference()).unwrap();
        let HubCredentials::ConnectionString(parsed) = &value else {
            panic!("a connection string");
        };
        assert_eq!(parsed.host_name(), "h");
        assert_eq!(parsed.key().expose(), "c2VjcmV0");
        assert!(!format!("{value:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn a_missing_key_names_secret_and_key() {
        let error = value_of(&secret_with("other", b"x"), "iot", &reference()).unwrap_err();
        assert!(matches!(error, ReconcileError::SecretKeyMissing { .. }));
        assert_eq!(
            error.to_string(),
            "Secret iot/hub has no key \"connectionString\""
        );
    }

    #[test]
    fn empty_binary_or_malformed_values_are_refused_without_showing_them() {
        let empty =
            value_of(&secret_with("connectionString", b"  "), "iot", &reference()).unwrap_err();
        assert_eq!(
            chain(&empty),
            "the connection string in Secret iot/hub key \"connectionString\" is not usable: the value is empty"
        );
        let binary = value_of(
            &secret_with("connectionString", &[0xff, 0xfe, 0x01]),
            "iot",
            &reference(),
        )
        .unwrap_err();
        assert!(
            chain(&binary).ends_with("is not UTF-8 text"),
            "{}",
            chain(&binary)
        );
        let malformed = value_of(
            &secret_with("connectionString", b"SharedAccessKey=c2VjcmV0"),
            "iot",
            &reference(),
        )
        .unwrap_err();
        assert!(
            chain(&malformed).contains("missing HostName"),
            "{}",
            chain(&malformed)
        );
        assert!(!chain(&malformed).contains("c2VjcmV0"));
        for error in [empty, binary, malformed] {
            assert_eq!(error.stall_reason(), Some(Reason::InvalidSpec));
        }
    }
}
