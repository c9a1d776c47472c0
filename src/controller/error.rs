//! Why a reconcile could not finish, and what each reason means for the status.
//!
//! Every failure maps to one of three outcomes: the watch is `Stalled` (it cannot progress
//! until a human acts: bad spec, missing Secret, refused credentials, unknown hub), the
//! watch is throttled (keep the last known device state and back off), or a transient
//! failure (retry with backoff, keep the status). Messages never contain credentials.

use std::time::Duration;

use crate::health::report::Reason;

use crate::controller::prepare::settings::InvalidSpec;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    InvalidSpec(#[from] InvalidSpec),
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("the connection string in Secret {namespace}/{name} is not usable: {problem}")]
    BadConnectionString {
        namespace: String,
        name: String,
        /// What is wrong, without the value (for example "no SharedAccessKey").
        problem: String,
    },
    #[error("IoT Hub refused the credentials: {0}")]
    AuthenticationFailed(String),
    #[error("IoT Hub {0} does not exist or cannot be resolved")]
    HubNotFound(String),
    #[error("IoT Hub is throttling requests")]
    Throttled {
        /// The server's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    #[error("IoT Hub request failed: {0}")]
    IotHub(String),
    #[error("Kubernetes API request failed: {0}")]
    Kubernetes(#[source] Box<kube::Error>),
}

impl From<kube::Error> for ReconcileError {
    fn from(error: kube::Error) -> Self {
        ReconcileError::Kubernetes(Box::new(error))
    }
}

impl ReconcileError {
    /// The `Stalled` reason when the watch cannot progress without a human.
    pub fn stall_reason(&self) -> Option<Reason> {
        match self {
            ReconcileError::InvalidSpec(_) | ReconcileError::BadConnectionString { .. } => {
                Some(Reason::InvalidSpec)
            }
            ReconcileError::SecretNotFound { .. } | ReconcileError::SecretKeyMissing { .. } => {
                Some(Reason::SecretNotFound)
            }
            ReconcileError::AuthenticationFailed(_) => Some(Reason::AuthenticationFailed),
            ReconcileError::HubNotFound(_) => Some(Reason::HubNotFound),
            ReconcileError::Throttled { .. }
            | ReconcileError::IotHub(_)
            | ReconcileError::Kubernetes(_) => None,
        }
    }

    /// True when the status should keep the last known device state and say `Throttled`.
    pub fn is_throttled(&self) -> bool {
        matches!(self, ReconcileError::Throttled { .. })
    }

    /// The `error` label of `edgewatch_reconcile_errors_total` (docs/metrics.md).
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::InvalidSpec(_) | ReconcileError::BadConnectionString { .. } => {
                "invalid_spec"
            }
            ReconcileError::SecretNotFound { .. } | ReconcileError::SecretKeyMissing { .. } => {
                "secret_not_found"
            }
            ReconcileError::AuthenticationFailed(_) => "authentication_failed",
            ReconcileError::Throttled { .. } => "throttled",
            ReconcileError::HubNotFound(_) | ReconcileError::IotHub(_) => "iothub",
            ReconcileError::Kubernetes(_) => "kubernetes",
        }
    }

    /// The smallest delay before the next attempt that the failure itself asks for.
    pub fn minimum_delay(&self) -> Option<Duration> {
        match self {
            ReconcileError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stalling_failure_has_its_contract_reason() {
        let cases = [
            (
                ReconcileError::InvalidSpec(InvalidSpec("x".into())),
                Some(Reason::InvalidSpec),
            ),
            (
                ReconcileError::SecretNotFound {
                    namespace: "iot".into(),
                    name: "s".into(),
                },
                Some(Reason::SecretNotFound),
            ),
            (
                ReconcileError::SecretKeyMissing {
                    namespace: "iot".into(),
                    name: "s".into(),
                    key: "k".into(),
                },
                Some(Reason::SecretNotFound),
            ),
            (
                ReconcileError::AuthenticationFailed("401".into()),
                Some(Reason::AuthenticationFailed),
            ),
            (
                ReconcileError::HubNotFound("h.azure-devices.net".into()),
                Some(Reason::HubNotFound),
            ),
            (ReconcileError::Throttled { retry_after: None }, None),
            (ReconcileError::IotHub("503".into()), None),
        ];
        for (error, reason) in cases {
            assert_eq!(error.stall_reason(), reason, "{error}");
        }
    }

    #[test]
    fn throttling_is_recognised_and_carries_retry_after() {
        let error = ReconcileError::Throttled {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(error.is_throttled());
        assert_eq!(error.minimum_delay(), Some(Duration::from_secs(7)));
        assert_eq!(error.metric_label(), "throttled");
        assert!(!ReconcileError::IotHub("x".into()).is_throttled());
    }

    #[test]
    fn metric_labels_are_the_documented_ones() {
        let documented = [
            "secret_not_found",
            "authentication_failed",
            "throttled",
            "iothub",
            "kubernetes",
            "invalid_spec",
        ];
        let errors = [
            ReconcileError::SecretNotFound {
                namespace: "n".into(),
                name: "s".into(),
            },
            ReconcileError::AuthenticationFailed("x".into()),
            ReconcileError::HubNotFound("h".into()),
            ReconcileError::BadConnectionString {
                namespace: "n".into(),
                name: "s".into(),
                problem: "no HostName".into(),
            },
        ];
        for error in errors {
            assert!(documented.contains(&error.metric_label()));
        }
    }
}
