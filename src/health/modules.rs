//! The `ModulesHealthy` aspect: is every module in the state its deployment asks for?
//!
//! When several modules are bad the condition names the worst, in this order:
//! failed > restart loop > backoff > unhealthy > stopped > not stopped > unknown,
//! and counts the rest.

use super::AgentState;
use super::memory::DeviceMemory;
use super::report::{ConditionStatus, ConditionType, DeviceCondition, ModuleReport, Reason};
use super::text::{condition, count, twin_time};
use crate::twin::{DesiredModule, EdgeAgentTwin, ReportedModule, RuntimeStatus, TwinTime};
use std::fmt::Write as _;

/// Exit codes of a container stopped on purpose (SIGKILL, SIGTERM).
const DELIBERATE_STOP_EXIT_CODES: [i64; 2] = [137, 143];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Running,
    Stopped,
}

impl Wanted {
    fn parse(status: Option<&str>) -> Wanted {
        match status {
            Some(s) if s.eq_ignore_ascii_case("stopped") => Wanted::Stopped,
            _ => Wanted::Running,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Wanted::Running => "running",
            Wanted::Stopped => "stopped",
        }
    }
}

/// A module the verdict is about: what the deployment wants and what the agent says.
struct Subject<'a> {
    name: &'a str,
    desired: Option<&'a DesiredModule>,
    reported: Option<&'a ReportedModule>,
    wanted: Wanted,
}

/// The modules to judge: the deployment's (plus edgeAgent, which is always there); when
/// the twin carries no desired section, the agent's own list with its echoed `status`.
fn subjects(agent: &EdgeAgentTwin) -> Vec<Subject<'_>> {
    let reported = |name: &str| agent.reported_module(name);
    match agent.desired_modules.as_deref() {
        Some(desired) => {
            let mut list: Vec<Subject<'_>> = Vec::with_capacity(desired.len() + 1);
            if !desired.iter().any(|d| d.name == "edgeAgent")
                && let Some(r) = reported("edgeAgent")
            {
                list.push(Subject {
                    name: &r.name,
                    desired: None,
                    reported: Some(r),
                    wanted: Wanted::Running,
                });
            }
            list.extend(desired.iter().map(|d| Subject {
                name: &d.name,
                desired: Some(d),
                reported: reported(&d.name),
                wanted: Wanted::parse(d.status.as_deref()),
            }));
            list
        }
        None => agent
            .reported_modules
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|r| Subject {
                name: &r.name,
                desired: None,
                reported: Some(r),
                wanted: Wanted::parse(r.status.as_deref()),
            })
            .collect(),
    }
}

/// Judges every module and sums them up into the `ModulesHealthy` condition.
pub(crate) fn judge(
    agent: &EdgeAgentTwin,
    state: AgentState,
    memory: &DeviceMemory,
    restart_threshold: u32,
) -> (DeviceCondition, Vec<ModuleReport>) {
    let reports: Vec<ModuleReport> = subjects(agent)
        .iter()
        .map(|s| {
            let restarts = memory.recent_restarts(s.name);
            let looping = restart_threshold > 0 && restarts >= restart_threshold as usize;
            let (verdict, message) = verdict(s, state, looping.then_some(restarts));
            module_report(s, verdict, message)
        })
        .collect();
    (summarise(agent, state, &reports), reports)
}

fn module_report(s: &Subject<'_>, verdict: Reason, message: String) -> ModuleReport {
    let r = s.reported;
    let time = |pick: fn(&ReportedModule) -> Option<TwinTime>| {
        r.and_then(pick).and_then(TwinTime::timestamp)
    };
    ModuleReport {
        name: s.name.to_owned(),
        desired_status: Some(s.wanted.as_str().to_owned()),
        runtime_status: r
            .and_then(|r| r.runtime_status.as_ref())
            .map(|x| x.to_string()),
        exit_code: r.and_then(|r| r.exit_code),
        restart_count: r.and_then(|r| r.restart_count),
        last_start_time: time(|r| r.last_start_time),
        last_exit_time: time(|r| r.last_exit_time),
        last_restart_time: time(|r| r.last_restart_time),
        image_desired: s.desired.and_then(|d| d.image.clone()),
        image_reported: r.and_then(|r| r.image.clone()),
        verdict,
        message,
    }
}

/// One module's verdict and the sentence explaining it. `looping` carries the number of
/// restarts seen inside the window when that reaches the threshold.
fn verdict(s: &Subject<'_>, state: AgentState, looping: Option<usize>) -> (Reason, String) {
    let name = s.name;
    match state {
        AgentState::NoReportedState => {
            return (
                Reason::NoReportedState,
                format!("module {name}: the agent has never reported"),
            );
        }
        AgentState::NotRunning => {
            return (
                Reason::AgentNotRunning,
                format!("module {name}: state unknown, the agent is not running"),
            );
        }
        AgentState::Reporting => {}
    }
    let Some(reported) = s.reported else {
        return (
            Reason::ModuleStatusUnknown,
            format!("module {name} is in the deployment but the agent does not report it"),
        );
    };
    let Some(runtime) = reported.runtime_status.as_ref() else {
        return (
            Reason::ModuleStatusUnknown,
            format!("module {name} has no runtimeStatus"),
        );
    };
    let exit = exit_details(reported);
    let deliberate_stop = s.wanted == Wanted::Stopped
        && reported
            .exit_code
            .is_some_and(|code| DELIBERATE_STOP_EXIT_CODES.contains(&code));
    match (runtime, looping) {
        (RuntimeStatus::Failed | RuntimeStatus::Dead, _) if deliberate_stop => (
            Reason::AllModulesHealthy,
            format!("module {name} is stopped as desired ({runtime}{exit})"),
        ),
        (RuntimeStatus::Failed, _) => (Reason::ModuleFailed, format!("module {name} failed{exit}")),
        (RuntimeStatus::Dead, _) => (Reason::ModuleFailed, format!("module {name} is dead{exit}")),
        (_, Some(restarts)) => (
            Reason::RestartLoop,
            format!(
                "module {name} restarted {restarts} times within the restart-loop window (now {runtime}{exit}, last restart {})",
                twin_time(reported.last_restart_time),
            ),
        ),
        (RuntimeStatus::Backoff, None) => (
            Reason::ModuleBackoff,
            format!(
                "module {name} is in backoff, waiting to be restarted{}",
                aside(&exit)
            ),
        ),
        (RuntimeStatus::Unhealthy, None) => (
            Reason::ModuleUnhealthy,
            format!("module {name} is unhealthy{}", aside(&exit)),
        ),
        (RuntimeStatus::Stopped, None) if s.wanted == Wanted::Running => (
            Reason::ModuleStopped,
            format!(
                "module {name} is stopped but the deployment wants it running{}",
                aside(&exit)
            ),
        ),
        (RuntimeStatus::Running, None) if s.wanted == Wanted::Stopped => (
            Reason::ModuleNotStopped,
            format!("module {name} is running but the deployment wants it stopped"),
        ),
        (RuntimeStatus::Running | RuntimeStatus::Stopped, None) => (
            Reason::AllModulesHealthy,
            format!("module {name} is {runtime} as desired"),
        ),
        (RuntimeStatus::Unknown | RuntimeStatus::Other(_), None) => (
            Reason::ModuleStatusUnknown,
            format!("module {name} reports runtimeStatus {runtime}"),
        ),
    }
}

/// ` with exit code 1, restarted 4 times, last exit 2024-…` — only the parts known.
/// Exit details after a full clause, in parentheses: `" (with exit code 1, last exit …)"`.
fn aside(details: &str) -> String {
    match details.trim() {
        "" => String::new(),
        inner => format!(" ({inner})"),
    }
}

fn exit_details(r: &ReportedModule) -> String {
    let mut parts = Vec::new();
    if let Some(code) = r.exit_code.filter(|c| *c != 0) {
        parts.push(format!("with exit code {code}"));
    }
    if let Some(n) = r.restart_count.filter(|n| *n > 0) {
        parts.push(format!("restarted {}", count(n as usize, "time", "times")));
    }
    if let Some(TwinTime::At(ts)) = r.last_exit_time {
        parts.push(format!("last exit {ts}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}", parts.join(", "))
    }
}

/// Rank of a module verdict; lower is worse.
fn severity(reason: Reason) -> u8 {
    match reason {
        Reason::ModuleFailed => 0,
        Reason::RestartLoop => 1,
        Reason::ModuleBackoff => 2,
        Reason::ModuleUnhealthy => 3,
        Reason::ModuleStopped => 4,
        Reason::ModuleNotStopped => 5,
        Reason::ModuleStatusUnknown => 6,
        _ => 7,
    }
}

fn summarise(
    agent: &EdgeAgentTwin,
    state: AgentState,
    reports: &[ModuleReport],
) -> DeviceCondition {
    let healthy = |r: &&ModuleReport| r.verdict == Reason::AllModulesHealthy;
    match state {
        AgentState::NoReportedState => {
            return condition(
                ConditionType::ModulesHealthy,
                ConditionStatus::Unknown,
                Reason::NoReportedState,
                super::no_reported_state_message(agent),
            );
        }
        AgentState::NotRunning => {
            return condition(
                ConditionType::ModulesHealthy,
                ConditionStatus::Unknown,
                Reason::AgentNotRunning,
                super::agent_not_running_message(agent, "module states are unknown"),
            );
        }
        AgentState::Reporting => {}
    }
    let worst = reports
        .iter()
        .filter(|r| !healthy(r))
        .min_by_key(|r| severity(r.verdict));
    let Some(worst) = worst else {
        return condition(
            ConditionType::ModulesHealthy,
            ConditionStatus::True,
            Reason::AllModulesHealthy,
            format!(
                "{} in the state the deployment asks for",
                count(reports.len(), "module", "modules")
            ),
        );
    };
    let others: Vec<&str> = reports
        .iter()
        .filter(|r| !healthy(r) && r.name != worst.name)
        .map(|r| r.name.as_str())
        .collect();
    let mut message = worst.message.clone();
    if !others.is_empty() {
        let _ = write!(
            message,
            "; {} not healthy ({})",
            count(others.len(), "more module", "more modules"),
            others.join(", ")
        );
    }
    let status = if worst.verdict == Reason::ModuleStatusUnknown {
        ConditionStatus::Unknown
    } else {
        ConditionStatus::False
    };
    condition(
        ConditionType::ModulesHealthy,
        status,
        worst.verdict,
        message,
    )
}
