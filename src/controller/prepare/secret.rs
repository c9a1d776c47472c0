//! Reading the connection string a watch references, with failures that name the Secret
//! and key but never the value.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::api::SecretKeyRef;
use crate::iothub::Secret as SecretText;

use crate::controller::error::ReconcileError;

/// Reads `reference` from the Secrets of `namespace`.
pub async fn read_secret_key(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<SecretText, ReconcileError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret =
        secrets
            .get_opt(&reference.name)
            .await?
            .ok_or_else(|| ReconcileError::SecretNotFound {
                namespace: namespace.to_owned(),
                name: reference.name.clone(),
            })?;
    value_of(&secret, namespace, reference)
}

/// The key's value from a fetched Secret (`data`, or `stringData` as some stores echo it).
pub fn value_of(
    secret: &Secret,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<SecretText, ReconcileError> {
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
        Some(Ok(text)) if !text.trim().is_empty() => Ok(SecretText::new(text.trim())),
        Some(Ok(_)) => Err(ReconcileError::BadConnectionString {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            problem: format!("key {:?} is empty", reference.key),
        }),
        Some(Err(_)) => Err(ReconcileError::BadConnectionString {
            namespace: namespace.to_owned(),
            name: reference.name.clone(),
            problem: format!("key {:?} is not UTF-8 text", reference.key),
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
        assert_eq!(
            value.expose(),
            "HostName=h;SharedAccessKeyName=p;SharedAccessKey=c2VjcmV0"
        );
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
    fn empty_or_binary_values_are_refused_without_showing_them() {
        let empty =
            value_of(&secret_with("connectionString", b"  "), "iot", &reference()).unwrap_err();
        assert!(empty.to_string().contains("is empty"));
        let binary = value_of(
            &secret_with("connectionString", &[0xff, 0xfe, 0x01]),
            "iot",
            &reference(),
        )
        .unwrap_err();
        assert!(binary.to_string().contains("not UTF-8"));
    }
}
