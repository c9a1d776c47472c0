//! The evaluator: twins + ping outcome + previous observation + now → a device verdict.
//! Pure: no I/O, no clock, no randomness.
//!
//! [`evaluate`] judges the four aspects of the status contract in `docs/contract.md`
//! (`Reachable`, `ModulesHealthy`, `InSync`, `Fresh`) and sums them up in `Ready`. Each
//! aspect has its own module; the precedence used when several things are wrong is
//! documented there.

mod deployment;
mod freshness;
mod memory;
mod modules;
mod ping;
mod policy;
mod properties;
pub mod report;
mod summary;
mod text;

use jiff::Timestamp;

pub use memory::{DeviceMemory, ModuleRestarts};
pub use ping::{PingError, PingOutcome};
pub use policy::{Policy, PropertyCheck, PropertySelection, RestartLoopPolicy};
use report::{ClientReport, DeviceReport};

use crate::twin::{EdgeAgentTwin, EdgeHubTwin, ModuleTwin, TwinTime};

/// Everything read from IoT Hub about one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceTwins {
    pub device_id: String,
    /// An absent `$edgeAgent` twin is `EdgeAgentTwin::default()`: no reported state.
    pub edge_agent: EdgeAgentTwin,
    pub edge_hub: Option<EdgeHubTwin>,
    /// Custom module twins whose properties are compared (see [`Policy::property_checks`]).
    pub modules: Vec<ModuleTwin>,
}

impl DeviceTwins {
    /// A device known by its agent twin alone; the device id comes from that twin.
    pub fn new(edge_agent: EdgeAgentTwin) -> DeviceTwins {
        DeviceTwins {
            device_id: edge_agent.identity.device_id.clone().unwrap_or_default(),
            edge_agent,
            edge_hub: None,
            modules: Vec::new(),
        }
    }
}

/// The verdict, and what to hand back as `previous` next time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub report: DeviceReport,
    pub memory: DeviceMemory,
}

/// Judges one device.
///
/// `previous` is the memory returned by the last evaluation of the same device (`None`
/// the first time); `now` is the evaluation time, so tests and replays drive time.
pub fn evaluate(
    twins: &DeviceTwins,
    ping: &PingOutcome,
    previous: Option<&DeviceMemory>,
    policy: &Policy,
    now: Timestamp,
) -> Evaluation {
    let agent = &twins.edge_agent;
    let state = AgentState::of(agent);
    let memory = memory::observe(agent, previous, &policy.restart_loop, now);
    let reachable = ping::reachability(&twins.device_id, ping);
    let (healthy, modules) = modules::judge(agent, state, &memory, policy.restart_loop.restarts);
    let (in_sync, drift) = deployment::judge(twins, state, policy, now);
    let fresh = freshness::judge(agent, state, ping, policy, now);
    let aspects = [reachable, healthy, in_sync, fresh];
    let ready = summary::ready(&aspects);
    let mut conditions = Vec::with_capacity(5);
    conditions.push(ready);
    conditions.extend(aspects);
    let report = DeviceReport {
        device_id: twins.device_id.clone(),
        conditions,
        modules,
        drift,
        ping_latency_ms: match ping {
            PingOutcome::Responded { latency_ms } => Some(*latency_ms),
            _ => None,
        },
        reported_at: agent.reported.last_updated.and_then(TwinTime::timestamp),
        disconnected_clients: disconnected_clients(twins.edge_hub.as_ref()),
    };
    Evaluation { report, memory }
}

/// What the agent's report allows us to judge at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentState {
    /// The reported section holds nothing: the runtime never connected.
    NoReportedState,
    /// `lastDesiredStatus.code` 406: the agent is down; its module states are void.
    NotRunning,
    Reporting,
}

impl AgentState {
    fn of(agent: &EdgeAgentTwin) -> AgentState {
        let code = agent.last_desired_status.as_ref().and_then(|s| s.code);
        if !agent.reported.has_content {
            AgentState::NoReportedState
        } else if code == Some(406) {
            AgentState::NotRunning
        } else {
            AgentState::Reporting
        }
    }
}

fn no_reported_state_message(agent: &EdgeAgentTwin) -> String {
    let version = agent
        .reported
        .version
        .map_or(String::new(), |v| format!(" (reported $version {v})"));
    format!(
        "$edgeAgent has no reported properties{version}: the IoT Edge runtime has not reported yet"
    )
}

/// `unknown` names what the 406 leaves unknown for the aspect at hand.
fn agent_not_running_message(agent: &EdgeAgentTwin, unknown: &str) -> String {
    let description = agent
        .last_desired_status
        .as_ref()
        .and_then(|s| s.description.as_deref())
        .filter(|d| !d.is_empty())
        .unwrap_or("Agent is not running");
    let since = agent
        .reported
        .last_updated
        .and_then(TwinTime::timestamp)
        .map_or(String::new(), |t| format!(" since {t}"));
    format!("$edgeAgent reports code 406 ({description}){since}: {unknown}")
}

fn disconnected_clients(hub: Option<&EdgeHubTwin>) -> Vec<ClientReport> {
    let Some(hub) = hub else { return Vec::new() };
    hub.clients
        .iter()
        .filter(|c| c.is_disconnected())
        .map(|c| ClientReport {
            name: c.id.clone(),
            status: c.status.clone().unwrap_or_default(),
            last_connected: c.last_connected.and_then(TwinTime::timestamp),
            last_disconnected: c.last_disconnected.and_then(TwinTime::timestamp),
        })
        .collect()
}
