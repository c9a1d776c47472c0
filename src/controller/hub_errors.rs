//! IoT Hub failures seen from the controller: which stop the watch, which are answers
//! about a device.

use std::time::Duration;

use crate::api::PingOutcome;
use crate::iothub::{ErrorKind, IotHubError};

use super::error::ReconcileError;

impl From<IotHubError> for ReconcileError {
    fn from(error: IotHubError) -> Self {
        match error.kind() {
            ErrorKind::Unauthorized => ReconcileError::AuthenticationFailed(error.to_string()),
            ErrorKind::HubNotFound => ReconcileError::HubNotFound(error.to_string()),
            ErrorKind::Throttled => ReconcileError::Throttled {
                retry_after: error.retry_after(),
            },
            _ => ReconcileError::IotHub(error.to_string()),
        }
    }
}

/// A failure of the selector query: IoT Hub refusing the query text is a spec problem.
pub fn selector_failure(error: IotHubError) -> ReconcileError {
    match error.kind() {
        ErrorKind::Rejected | ErrorKind::InvalidRequest => {
            ReconcileError::InvalidSpec(super::settings::InvalidSpec(format!(
                "spec.selector.query was refused by IoT Hub: {error}"
            )))
        }
        _ => error.into(),
    }
}

/// What a ping call says about the device.
pub fn ping_outcome(result: &Result<Duration, IotHubError>) -> PingOutcome {
    match result {
        Ok(_) => PingOutcome::Responded,
        Err(e) => match e.kind() {
            ErrorKind::DeviceNotOnline => PingOutcome::NotOnline,
            ErrorKind::GatewayTimeout | ErrorKind::Timeout => PingOutcome::Timeout,
            _ => PingOutcome::Failed,
        },
    }
}

/// Whether a failure of one device's call means the whole sweep cannot go on
/// (credentials, hub, throttling) rather than something about that device.
pub fn stops_the_sweep(error: &IotHubError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Unauthorized | ErrorKind::HubNotFound | ErrorKind::Throttled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::report::Reason;
    use crate::iothub::Operation;

    fn error(kind: ErrorKind) -> IotHubError {
        IotHubError::new(kind, Operation::GetModuleTwin, "detail")
    }

    #[test]
    fn watch_level_failures_map_to_stall_reasons() {
        let auth: ReconcileError = error(ErrorKind::Unauthorized).into();
        assert_eq!(auth.stall_reason(), Some(Reason::AuthenticationFailed));
        let hub: ReconcileError = error(ErrorKind::HubNotFound).into();
        assert_eq!(hub.stall_reason(), Some(Reason::HubNotFound));
        let throttled: ReconcileError = error(ErrorKind::Throttled)
            .with_retry_after(Some(Duration::from_secs(9)))
            .into();
        assert!(throttled.is_throttled());
        assert_eq!(throttled.minimum_delay(), Some(Duration::from_secs(9)));
        let server: ReconcileError = error(ErrorKind::Server).into();
        assert_eq!(server.stall_reason(), None);
        assert!(!server.is_throttled());
    }

    #[test]
    fn a_refused_selector_is_an_invalid_spec() {
        let refused = selector_failure(error(ErrorKind::Rejected));
        assert_eq!(refused.stall_reason(), Some(Reason::InvalidSpec));
        assert!(refused.to_string().contains("spec.selector.query"));
        let auth = selector_failure(error(ErrorKind::Unauthorized));
        assert_eq!(auth.stall_reason(), Some(Reason::AuthenticationFailed));
    }

    #[test]
    fn ping_answers_become_outcomes() {
        assert_eq!(
            ping_outcome(&Ok(Duration::from_millis(5))),
            PingOutcome::Responded
        );
        assert_eq!(
            ping_outcome(&Err(error(ErrorKind::DeviceNotOnline))),
            PingOutcome::NotOnline
        );
        assert_eq!(
            ping_outcome(&Err(error(ErrorKind::GatewayTimeout))),
            PingOutcome::Timeout
        );
        assert_eq!(
            ping_outcome(&Err(error(ErrorKind::Timeout))),
            PingOutcome::Timeout
        );
        assert_eq!(
            ping_outcome(&Err(error(ErrorKind::Server))),
            PingOutcome::Failed
        );
    }

    #[test]
    fn only_hub_wide_failures_stop_a_sweep() {
        assert!(stops_the_sweep(&error(ErrorKind::Unauthorized)));
        assert!(stops_the_sweep(&error(ErrorKind::Throttled)));
        assert!(!stops_the_sweep(&error(ErrorKind::ModuleNotFound)));
        assert!(!stops_the_sweep(&error(ErrorKind::DeviceNotOnline)));
    }
}
