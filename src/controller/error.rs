//! Why a reconcile could not finish, and what each reason means for the status.
//!
//! Every failure maps to one of three outcomes: the watch is `Stalled` (it cannot progress
//! until a human acts: bad spec, missing Secret, refused credentials, unknown hub), the
//! watch is throttled (keep the last known device state and back off), or a transient
//! failure (retry with backoff, keep the status). [`ReconcileError::stall_reason`] is the
//! one place failures become `Stalled` reasons. Variants with a `#[source]` do not repeat
//! its text; `crate::errors::chain` prints the whole chain. Messages never contain
//! credentials.

use std::time::Duration;

use crate::health::report::Reason;
use crate::iothub::{ConfigError, ErrorKind, IotHubError};

use super::prepare::settings::InvalidSpec;

/// A failed reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    InvalidSpec(#[from] InvalidSpec),
    #[error("spec.selector.query: IoT Hub refused the query")]
    SelectorRefused(#[source] Box<IotHubError>),
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    /// No connection string was handed in (`check`'s environment variable is unset).
    #[error("{0} is not set")]
    ConnectionStringNotGiven(String),
    #[error("the connection string in {origin} is not usable")]
    BadConnectionString {
        /// Where it was read from, never the value: `Secret iot/hub key "cs"`.
        origin: String,
        #[source]
        problem: ConnectionStringProblem,
    },
    #[error("cannot set up an IoT Hub client for {hub}")]
    ClientSetup {
        hub: String,
        #[source]
        source: ConfigError,
    },
    #[error("Azure Workload Identity is not set up for this pod")]
    WorkloadIdentityUnavailable(#[source] ConfigError),
    #[error("IoT Hub refused the credentials")]
    AuthenticationFailed(#[source] Box<IotHubError>),
    #[error("IoT Hub {hub} does not exist or cannot be resolved")]
    HubNotFound {
        hub: String,
        #[source]
        source: Box<IotHubError>,
    },
    #[error("IoT Hub is throttling requests")]
    Throttled(#[source] Box<IotHubError>),
    #[error("IoT Hub request failed")]
    IotHub(#[source] Box<IotHubError>),
    #[error("Kubernetes API request failed")]
    Kubernetes(#[source] Box<kube::Error>),
}

/// What is wrong with a connection string (never its value).
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStringProblem {
    #[error("the value is empty")]
    Empty,
    #[error("the value is not UTF-8 text")]
    NotUtf8,
    #[error(transparent)]
    Unparsable(ConfigError),
}

impl From<kube::Error> for ReconcileError {
    fn from(error: kube::Error) -> Self {
        ReconcileError::Kubernetes(Box::new(error))
    }
}

impl ReconcileError {
    /// A failed IoT Hub call of a sweep against `hub`, by what it means for the watch.
    pub fn from_hub(hub: &str, error: IotHubError) -> Self {
        let error = Box::new(error);
        match error.kind() {
            ErrorKind::Unauthorized => ReconcileError::AuthenticationFailed(error),
            ErrorKind::HubNotFound => ReconcileError::HubNotFound {
                hub: hub.to_owned(),
                source: error,
            },
            ErrorKind::Throttled => ReconcileError::Throttled(error),
            _ => ReconcileError::IotHub(error),
        }
    }

    /// The `Stalled` reason when the watch cannot progress without a human.
    pub fn stall_reason(&self) -> Option<Reason> {
        match self {
            ReconcileError::InvalidSpec(_)
            | ReconcileError::SelectorRefused(_)
            | ReconcileError::BadConnectionString { .. }
            | ReconcileError::ClientSetup { .. } => Some(Reason::InvalidSpec),
            ReconcileError::SecretNotFound { .. }
            | ReconcileError::SecretKeyMissing { .. }
            | ReconcileError::ConnectionStringNotGiven(_) => Some(Reason::SecretNotFound),
            ReconcileError::AuthenticationFailed(_)
            | ReconcileError::WorkloadIdentityUnavailable(_) => Some(Reason::AuthenticationFailed),
            ReconcileError::HubNotFound { .. } => Some(Reason::HubNotFound),
            ReconcileError::Throttled(_)
            | ReconcileError::IotHub(_)
            | ReconcileError::Kubernetes(_) => None,
        }
    }

    /// True when the status should keep the last known device state and say `Throttled`.
    pub fn is_throttled(&self) -> bool {
        matches!(self, ReconcileError::Throttled(_))
    }

    /// The `error` label of `edgewatch_reconcile_errors_total` (docs/metrics.md).
    pub fn metric_label(&self) -> &'static str {
        match self.stall_reason() {
            Some(Reason::InvalidSpec) => "invalid_spec",
            Some(Reason::SecretNotFound) => "secret_not_found",
            Some(Reason::AuthenticationFailed) => "authentication_failed",
            _ => match self {
                ReconcileError::Throttled(_) => "throttled",
                ReconcileError::Kubernetes(_) => "kubernetes",
                _ => "iothub",
            },
        }
    }

    /// The smallest delay before the next attempt that the failure itself asks for.
    pub fn minimum_delay(&self) -> Option<Duration> {
        match self {
            ReconcileError::Throttled(error) => error.retry_after(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::chain;
    use crate::iothub::Operation;

    fn hub_error(kind: ErrorKind) -> IotHubError {
        IotHubError::new(kind, Operation::GetModuleTwin, "detail")
    }

    fn every_kind() -> Vec<(ReconcileError, Option<Reason>, &'static str)> {
        vec![
            (
                InvalidSpec::one("spec.interval", "must be at least 10s").into(),
                Some(Reason::InvalidSpec),
                "invalid_spec",
            ),
            (
                ReconcileError::SelectorRefused(Box::new(hub_error(ErrorKind::Rejected))),
                Some(Reason::InvalidSpec),
                "invalid_spec",
            ),
            (
                ReconcileError::SecretNotFound {
                    namespace: "iot".into(),
                    name: "s".into(),
                },
                Some(Reason::SecretNotFound),
                "secret_not_found",
            ),
            (
                ReconcileError::SecretKeyMissing {
                    namespace: "iot".into(),
                    name: "s".into(),
                    key: "k".into(),
                },
                Some(Reason::SecretNotFound),
                "secret_not_found",
            ),
            (
                ReconcileError::ConnectionStringNotGiven("environment variable CS".into()),
                Some(Reason::SecretNotFound),
                "secret_not_found",
            ),
            (
                ReconcileError::BadConnectionString {
                    origin: "Secret iot/s key \"k\"".into(),
                    problem: ConnectionStringProblem::Empty,
                },
                Some(Reason::InvalidSpec),
                "invalid_spec",
            ),
            (
                ReconcileError::ClientSetup {
                    hub: "h".into(),
                    source: ConfigError::InvalidCaBundle,
                },
                Some(Reason::InvalidSpec),
                "invalid_spec",
            ),
            (
                ReconcileError::WorkloadIdentityUnavailable(ConfigError::MissingEnv(
                    "AZURE_CLIENT_ID",
                )),
                Some(Reason::AuthenticationFailed),
                "authentication_failed",
            ),
            (
                ReconcileError::from_hub("h", hub_error(ErrorKind::Unauthorized)),
                Some(Reason::AuthenticationFailed),
                "authentication_failed",
            ),
            (
                ReconcileError::from_hub("h.azure-devices.net", hub_error(ErrorKind::HubNotFound)),
                Some(Reason::HubNotFound),
                "iothub",
            ),
            (
                ReconcileError::from_hub("h", hub_error(ErrorKind::Throttled)),
                None,
                "throttled",
            ),
            (
                ReconcileError::from_hub("h", hub_error(ErrorKind::Server)),
                None,
                "iothub",
            ),
        ]
    }

    #[test]
    fn each_failure_has_its_contract_reason_and_documented_label() {
        for (error, reason, label) in every_kind() {
            assert_eq!(error.stall_reason(), reason, "{error}");
            assert_eq!(error.metric_label(), label, "{error}");
        }
    }

    #[test]
    fn throttling_is_recognised_and_carries_retry_after() {
        let error = ReconcileError::from_hub(
            "h",
            hub_error(ErrorKind::Throttled).with_retry_after(Some(Duration::from_secs(7))),
        );
        assert!(error.is_throttled());
        assert_eq!(error.minimum_delay(), Some(Duration::from_secs(7)));
        assert!(!ReconcileError::from_hub("h", hub_error(ErrorKind::Server)).is_throttled());
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        let error = ReconcileError::from_hub(
            "plant-a.azure-devices.net",
            hub_error(ErrorKind::HubNotFound),
        );
        let text = chain(&error);
        assert_eq!(
            text,
            "IoT Hub plant-a.azure-devices.net does not exist or cannot be resolved: get_module_twin: IoT hub not found: detail"
        );
        for (error, _, _) in every_kind() {
            let text = chain(&error);
            let causes: Vec<&str> = text.split(": ").collect();
            let mut unique = causes.clone();
            unique.dedup();
            assert_eq!(causes, unique, "{text}");
        }
    }
}
