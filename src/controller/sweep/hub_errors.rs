//! IoT Hub failures seen from the controller: which stop the watch, which are answers
//! about a device.

use std::time::Duration;

use crate::health::{PingError, PingOutcome};
use crate::iothub::{ErrorKind, IotHubError};

use crate::controller::error::ReconcileError;

/// A failure of the selector query against `hub`: IoT Hub refusing the query text is a
/// spec problem.
pub(crate) fn selector_failure(hub: &str, error: IotHubError) -> ReconcileError {
    match error.kind() {
        ErrorKind::Rejected | ErrorKind::InvalidRequest => {
            ReconcileError::SelectorRefused(Box::new(error))
        }
        _ => ReconcileError::from_hub(hub, error),
    }
}

/// What a ping call says about the device, keeping IoT Hub's error code and message.
pub(crate) fn ping_outcome(result: &Result<Duration, IotHubError>) -> PingOutcome {
    let error = match result {
        Ok(latency) => {
            return PingOutcome::Responded {
                latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            };
        }
        Err(error) => error,
    };
    let detail = ping_error(error);
    match error.kind() {
        ErrorKind::DeviceNotOnline => PingOutcome::NotOnline(detail),
        ErrorKind::GatewayTimeout | ErrorKind::Timeout => PingOutcome::Timeout(detail),
        ErrorKind::DeviceNotFound => PingOutcome::DeviceNotFound(detail),
        _ => PingOutcome::Failed(detail),
    }
}

/// IoT Hub's error code, name and message (or what failed on the way there).
pub(crate) fn ping_error(error: &IotHubError) -> PingError {
    let message = if error.message().is_empty() && error.error_code().is_none() {
        error.kind().to_string()
    } else {
        error.message().to_owned()
    };
    PingError::new(error.error_code(), error.error_name(), message)
}

/// Whether a failure of one device's call means the whole sweep cannot go on
/// (credentials, hub, throttling, the daily quota) rather than something about that
/// device.
pub(crate) fn stops_the_sweep(error: &IotHubError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Unauthorized
            | ErrorKind::HubNotFound
            | ErrorKind::Throttled
            | ErrorKind::DailyQuotaExceeded
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
        let auth = ReconcileError::from_hub("h", error(ErrorKind::Unauthorized));
        assert_eq!(auth.stall_reason(), Some(Reason::AuthenticationFailed));
        let hub = ReconcileError::from_hub("h", error(ErrorKind::HubNotFound));
        assert_eq!(hub.stall_reason(), Some(Reason::HubNotFound));
        let throttled = ReconcileError::from_hub(
            "h",
            error(ErrorKind::Throttled).with_retry_after(Some(Duration::from_secs(9))),
        );
        assert!(throttled.is_throttled());
        assert_eq!(throttled.minimum_delay(), Some(Duration::from_secs(9)));
        let server = ReconcileError::from_hub("h", error(ErrorKind::Server));
        assert_eq!(server.stall_reason(), None);
        assert!(!server.is_throttled());
    }

    #[test]
    fn a_refused_selector_is_an_invalid_spec_keeping_the_hub_error() {
        let refused = selector_failure("h", error(ErrorKind::Rejected));
        assert_eq!(refused.stall_reason(), Some(Reason::InvalidSpec));
        let text = crate::errors::chain(&refused);
        assert!(
            text.starts_with("spec.selector.query: IoT Hub refused the query: "),
            "{text}"
        );
        assert!(text.ends_with("detail"), "{text}");
        let auth = selector_failure("h", error(ErrorKind::Unauthorized));
        assert_eq!(auth.stall_reason(), Some(Reason::AuthenticationFailed));
    }

    #[test]
    fn ping_answers_become_outcomes_keeping_code_and_message() {
        assert_eq!(
            ping_outcome(&Ok(Duration::from_millis(5))),
            PingOutcome::Responded { latency_ms: 5 }
        );
        let coded = |kind, code| Err(error(kind).with_code(code));
        assert!(matches!(
            ping_outcome(&coded(ErrorKind::DeviceNotOnline, 404_103)),
            PingOutcome::NotOnline(e) if e.code == Some(404_103) && e.message == "detail"
        ));
        assert!(matches!(
            ping_outcome(&coded(ErrorKind::GatewayTimeout, 504_101)),
            PingOutcome::Timeout(e) if e.code == Some(504_101)
        ));
        assert!(matches!(
            ping_outcome(&Err(error(ErrorKind::Timeout))),
            PingOutcome::Timeout(_)
        ));
        assert!(matches!(
            ping_outcome(&coded(ErrorKind::DeviceNotFound, 404_001)),
            PingOutcome::DeviceNotFound(e) if e.code == Some(404_001)
        ));
        let server = ping_outcome(&Err(error(ErrorKind::Server)
            .with_code(500_001)
            .with_name("ServerError")));
        assert_eq!(
            server,
            PingOutcome::Failed(PingError::new(Some(500_001), Some("ServerError"), "detail"))
        );
        let bare = IotHubError::new(ErrorKind::Connection, Operation::InvokeMethod, "");
        assert!(matches!(
            ping_outcome(&Err(bare)),
            PingOutcome::Failed(e) if e.message == "connection"
        ));
    }

    #[test]
    fn only_hub_wide_failures_stop_a_sweep() {
        assert!(stops_the_sweep(&error(ErrorKind::Unauthorized)));
        assert!(stops_the_sweep(&error(ErrorKind::Throttled)));
        assert!(stops_the_sweep(&error(ErrorKind::DailyQuotaExceeded)));
        assert!(!stops_the_sweep(&error(ErrorKind::ModuleNotFound)));
        assert!(!stops_the_sweep(&error(ErrorKind::DeviceNotOnline)));
    }
}
