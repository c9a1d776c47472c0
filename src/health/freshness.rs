//! The `Fresh` aspect: is the agent's report current?
//!
//! The agent reports on change only, so an old report from a quiet, connected device is
//! still current. A report older than `staleAfter` is therefore stale only when ping did
//! not confirm the agent is connected: it answered → current; not online or timed out →
//! stale; ping skipped or failed → the age alone decides (stale), because nothing else
//! says the device is still there. Choose `staleAfter` accordingly when ping is off.

use jiff::Timestamp;

use super::ping::PingOutcome;
use super::report::{ConditionStatus, ConditionType, DeviceCondition, Reason};
use super::text::{condition, elapsed, human};
use super::{AgentState, Policy};
use crate::twin::{EdgeAgentTwin, TwinTime};

pub(crate) fn judge(
    agent: &EdgeAgentTwin,
    state: AgentState,
    ping: &PingOutcome,
    policy: &Policy,
    now: Timestamp,
) -> DeviceCondition {
    let unknown = |message: String| {
        condition(
            ConditionType::Fresh,
            ConditionStatus::Unknown,
            Reason::NoReportedState,
            message,
        )
    };
    if state == AgentState::NoReportedState {
        return unknown(super::no_reported_state_message(agent));
    }
    let at = match agent.reported.last_updated {
        Some(TwinTime::At(at)) => at,
        Some(TwinTime::Never) => {
            return unknown("$edgeAgent reported $metadata.$lastUpdated is never".to_owned());
        }
        Some(TwinTime::Unparseable) => {
            return unknown("$edgeAgent reported $metadata.$lastUpdated is unreadable".to_owned());
        }
        None => return unknown("$edgeAgent reported $metadata.$lastUpdated is missing".to_owned()),
    };
    let age = elapsed(at, now);
    let head = format!("$edgeAgent last reported at {at}, {} ago", human(age));
    let limit = human(policy.stale_after);
    if age <= policy.stale_after {
        return current(format!("{head}, within staleAfter {limit}"));
    }
    let why = match ping {
        PingOutcome::Responded { .. } => {
            return current(format!(
                "{head}, older than staleAfter {limit}, but the agent answered ping (it reports only on change)"
            ));
        }
        PingOutcome::NotOnline(_) | PingOutcome::Timeout(_) | PingOutcome::DeviceNotFound(_) => {
            "and the agent did not answer ping"
        }
        PingOutcome::Skipped => "and no ping confirms the agent is connected (ping skipped)",
        PingOutcome::Failed(_) => "and no ping confirms the agent is connected (ping failed)",
    };
    condition(
        ConditionType::Fresh,
        ConditionStatus::False,
        Reason::ReportedStateStale,
        format!("{head}, older than staleAfter {limit}, {why}"),
    )
}

fn current(message: String) -> DeviceCondition {
    condition(
        ConditionType::Fresh,
        ConditionStatus::True,
        Reason::ReportCurrent,
        message,
    )
}
