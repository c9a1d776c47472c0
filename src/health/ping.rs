//! The `Reachable` aspect: what the `ping` direct method on `$edgeAgent` told us.

use super::report::{ConditionStatus, ConditionType, DeviceCondition, Reason};
use super::text::condition;

/// The result of invoking `ping` on `$edgeAgent` (or of not doing so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// HTTP 200: the agent is up and connected.
    Responded { latency_ms: u64 },
    /// 404103: the agent is not connected (device offline, runtime down).
    NotOnline,
    /// 504101 or the client's own timeout: connected but no answer in time.
    Timeout,
    /// Ping disabled or not due this round.
    Skipped,
    /// The call itself failed (throttled, unauthorized, network). `detail` is shown to
    /// users, so it must never hold a secret.
    Failed { detail: String },
}

pub(crate) fn reachability(ping: &PingOutcome) -> DeviceCondition {
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
        PingOutcome::NotOnline => (
            ConditionStatus::False,
            Reason::DeviceNotOnline,
            "$edgeAgent is not connected to IoT Hub (ping: 404103 DeviceNotOnline)".to_owned(),
        ),
        PingOutcome::Timeout => (
            ConditionStatus::False,
            Reason::PingTimeout,
            "$edgeAgent did not answer ping in time".to_owned(),
        ),
        PingOutcome::Skipped => (
            ConditionStatus::Unknown,
            Reason::PingSkipped,
            "ping not attempted".to_owned(),
        ),
        PingOutcome::Failed { detail } => (
            ConditionStatus::Unknown,
            Reason::PingFailed,
            format!("ping could not be sent: {detail}"),
        ),
    };
    condition(ConditionType::Reachable, status, reason, message)
}
