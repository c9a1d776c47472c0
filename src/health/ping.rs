//! The `Reachable` aspect: what the `ping` direct method on `$edgeAgent` told us.

use std::fmt;

use super::report::{ConditionStatus, ConditionType, DeviceCondition, Reason};
use super::text::condition;

/// The result of invoking `ping` on `$edgeAgent` (or of not doing so). The one ping
/// type: the sweep makes it from IoT Hub's answer, the watch state keeps it, the
/// evaluator judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// HTTP 200: the agent is up and connected.
    Responded { latency_ms: u64 },
    /// 404103: the agent is not connected (device offline, runtime down).
    NotOnline(PingError),
    /// 504101 or the client's own timeout: connected but no answer in time.
    Timeout(PingError),
    /// 404001: IoT Hub does not know the device id (on the ping or the device's twins).
    DeviceNotFound(PingError),
    /// Ping disabled or not due this round.
    Skipped,
    /// The call itself failed (throttled, server error, network).
    Failed(PingError),
}

/// What IoT Hub answered to a ping that did not succeed: its numeric error code, the
/// error's name and its message. It is shown in conditions and Events, so it must never
/// hold a secret (IoT Hub's error texts do not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingError {
    /// IoT Hub's `errorCode`, for example 404103, 429001 or 500001.
    pub code: Option<u32>,
    /// The error's name, for example `DeviceNotOnline`.
    pub name: Option<String>,
    /// The service's message, or what failed on the way (timeout, connection).
    pub message: String,
}

impl PingError {
    /// An error as IoT Hub reports it.
    pub fn new(code: Option<u32>, name: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            name: name.map(str::to_owned),
            message: message.into(),
        }
    }

    /// True when there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.name.is_none() && self.message.is_empty()
    }
}

/// `404103 DeviceNotOnline: <message>`, leaving out what is unknown.
impl fmt::Display for PingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.map(|c| c.to_string());
        let head: Vec<&str> = [code.as_deref(), self.name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let head = head.join(" ");
        match (head.is_empty(), self.message.is_empty()) {
            (false, false) => write!(f, "{head}: {}", self.message),
            (false, true) => f.write_str(&head),
            (true, _) => f.write_str(&self.message),
        }
    }
}

/// `text`, followed by ` (ping: <error>)` when the error says anything.
fn with_detail(text: &str, error: &PingError) -> String {
    if error.is_empty() {
        text.to_owned()
    } else {
        format!("{text} (ping: {error})")
    }
}

pub(crate) fn reachability(device_id: &str, ping: &PingOutcome) -> DeviceCondition {
    let (status, reason, message) = match ping {
        PingOutcome::Responded { latency_ms: 0 } => (
            ConditionStatus::True,
            Reason::AgentResponded,
            "$edgeAgent answered ping".to_owned(),
        ),
        PingOutcome::Responded { latency_ms } => (
            ConditionStatus::True,
            Reason::AgentResponded,
            format!("$edgeAgent answered ping in {latency_ms} ms"),
        ),
        PingOutcome::NotOnline(error) => (
            ConditionStatus::False,
            Reason::DeviceNotOnline,
            with_detail("$edgeAgent is not connected to IoT Hub", error),
        ),
        PingOutcome::Timeout(error) => (
            ConditionStatus::False,
            Reason::PingTimeout,
            with_detail("$edgeAgent did not answer ping in time", error),
        ),
        PingOutcome::DeviceNotFound(error) => (
            ConditionStatus::False,
            Reason::DeviceNotFound,
            not_found_message(device_id, error),
        ),
        PingOutcome::Skipped => (
            ConditionStatus::Unknown,
            Reason::PingSkipped,
            "ping not attempted".to_owned(),
        ),
        PingOutcome::Failed(error) if error.is_empty() => (
            ConditionStatus::Unknown,
            Reason::PingFailed,
            "ping could not be sent".to_owned(),
        ),
        PingOutcome::Failed(error) => (
            ConditionStatus::Unknown,
            Reason::PingFailed,
            format!("ping could not be sent: {error}"),
        ),
    };
    condition(ConditionType::Reachable, status, reason, message)
}

fn not_found_message(device_id: &str, error: &PingError) -> String {
    let head = format!("IoT Hub does not know device {device_id:?}");
    if error.is_empty() {
        return format!("{head}; check the id in spec.devices");
    }
    format!("{head} ({error}); check the id in spec.devices")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_code_name_and_message() {
        let full = PingError::new(Some(500_001), Some("ServerError"), "try again");
        assert_eq!(full.to_string(), "500001 ServerError: try again");
        let code_only = PingError::new(Some(404_103), Some("DeviceNotOnline"), "");
        assert_eq!(code_only.to_string(), "404103 DeviceNotOnline");
        let text_only = PingError::new(None, None, "no answer within 10s");
        assert_eq!(text_only.to_string(), "no answer within 10s");
        assert!(PingError::default().is_empty());
    }

    #[test]
    fn the_failure_detail_reaches_the_message() {
        let failed = reachability(
            "gw",
            &PingOutcome::Failed(PingError::new(
                Some(429_001),
                Some("ThrottlingException"),
                "",
            )),
        );
        assert_eq!(failed.reason, Reason::PingFailed);
        assert_eq!(
            failed.message,
            "ping could not be sent: 429001 ThrottlingException"
        );
        let offline = reachability(
            "gw",
            &PingOutcome::NotOnline(PingError::new(Some(404_103), Some("DeviceNotOnline"), "")),
        );
        assert_eq!(
            offline.message,
            "$edgeAgent is not connected to IoT Hub (ping: 404103 DeviceNotOnline)"
        );
        let unknown = reachability(
            "line9-gw",
            &PingOutcome::DeviceNotFound(PingError::new(Some(404_001), Some("DeviceNotFound"), "")),
        );
        assert_eq!(
            (unknown.status, unknown.reason),
            (ConditionStatus::False, Reason::DeviceNotFound)
        );
        assert!(
            unknown.message.contains("\"line9-gw\""),
            "{}",
            unknown.message
        );
        assert!(unknown.message.contains("404001"), "{}", unknown.message);
    }
}
