//! Why a reconcile could not finish, and what each reason means for the status.
//!
//! Every failure maps to one of three outcomes: the watch is `Stalled` (it cannot progress
//! until a human acts: bad spec, missing Secret, refused credentials, unknown hub; or
//! until the hub's daily message quota resets at 00:00 UTC), the watch is throttled (keep
//! the last known device state and back off), or a transient failure (retry with backoff,
//! keep the status). [`ReconcileError::stall_reason`] is the one place failures become
//! `Stalled` reasons. Variants with a `#[source]` do not repeat its text;
//! `crate::errors::chain` prints the whole chain. Messages never contain credentials.

use std::time::Duration;

use jiff::Timestamp;

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
    /// 403002: the hub refuses billable calls until its quota resets. The hub's answer is
    /// kept but not printed: its tracking id changes with every attempt, and the one line
    /// says everything a person needs.
    #[error(
        "IoT Hub {hub} has used up its daily message quota (403002 IotHubQuotaExceeded): it refuses twin reads, queries and direct methods until the quota resets at {} (00:00 UTC); monitoring resumes then",
        reset_time(.resets_at.as_ref())
    )]
    DailyQuotaExceeded {
        hub: String,
        /// The next 00:00 UTC by the client's clock (`None` only from scripted sweeps).
        resets_at: Option<Timestamp>,
        /// How long until then, as the client measured it when the hub refused.
        resets_in: Option<Duration>,
    },
    #[error("IoT Hub request failed")]
    IotHub(#[source] Box<IotHubError>),
    #[error("Kubernetes API request failed")]
    Kubernetes(#[source] Box<kube::Error>),
}

/// When a quota resets, as the messages say it.
pub(crate) fn reset_time(resets_at: Option<&Timestamp>) -> String {
    resets_at.map_or_else(|| "the next midnight".to_owned(), |at| at.to_string())
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
            ErrorKind::DailyQuotaExceeded => ReconcileError::DailyQuotaExceeded {
                hub: hub.to_owned(),
                resets_at: error.quota_resets_at(),
                resets_in: error.retry_after(),
            },
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
            ReconcileError::DailyQuotaExceeded { .. } => Some(Reason::DailyQuotaExceeded),
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
            Some(Reason::DailyQuotaExceeded) => "daily_quota_exceeded",
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
            ReconcileError::DailyQuotaExceeded { resets_in, .. } => *resets_in,
            _ => None,
        }
    }

    /// For a used-up daily quota: how long until it resets. Nothing is worth trying
    /// before then, and everything is worth trying right after.
    pub fn quota_resets_in(&self) -> Option<Duration> {
        match self {
            ReconcileError::DailyQuotaExceeded { resets_in, .. } => *resets_in,
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
            (
                ReconcileError::from_hub("h", quota_error()),
                Some(Reason::DailyQuotaExceeded),
                "daily_quota_exceeded",
            ),
        ]
    }

    /// 403002 as the client reports it at 21:30 UTC: the quota resets at midnight.
    fn quota_error() -> IotHubError {
        IotHubError::from_response(
            Operation::GetModuleTwin,
            true,
            403,
            Some("IotHubQuotaExceeded"),
            br#"{"Message":"ErrorCode:IotHubQuotaExceeded;Total number of messages on IotHub 'h' exceeded the allocated quota.","ExceptionMessage":"Tracking ID:t1-G:0-TimeStamp:03/01/2026 21:30:00"}"#,
        )
        .with_quota_reset(
            "2026-03-02T00:00:00Z".parse().unwrap(),
            "2026-03-01T21:30:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn a_used_up_quota_waits_for_its_reset_and_says_so_in_one_line() {
        let error = ReconcileError::from_hub("plant-a.azure-devices.net", quota_error());
        assert_eq!(
            error.quota_resets_in(),
            Some(Duration::from_secs(2 * 3600 + 30 * 60))
        );
        assert_eq!(error.minimum_delay(), error.quota_resets_in());
        assert!(!error.is_throttled());
        assert_eq!(
            chain(&error),
            "IoT Hub plant-a.azure-devices.net has used up its daily message quota (403002 IotHubQuotaExceeded): it refuses twin reads, queries and direct methods until the quota resets at 2026-03-02T00:00:00Z (00:00 UTC); monitoring resumes then"
        );
        // Other failures do not wait for a reset.
        let server = ReconcileError::from_hub("h", hub_error(ErrorKind::Server));
        assert_eq!(server.quota_resets_in(), None);
        // A scripted 403002 without a reset time still reads as a sentence.
        let bare = ReconcileError::from_hub("h", hub_error(ErrorKind::DailyQuotaExceeded));
        assert_eq!(bare.quota_resets_in(), None);
        assert!(chain(&bare).contains("until the quota resets at the next midnight (00:00 UTC)"));
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
