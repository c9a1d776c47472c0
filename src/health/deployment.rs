//! The `InSync` aspect: has the device applied what its deployment asks for?
//!
//! Follows the IoT Edge team's deployment-health algorithm: a deployment whose desired
//! `$version` the agent has not processed is pending (in progress within the grace
//! period); a processed one is judged by `lastDesiredStatus.code`; only a deployment
//! processed with success is compared module by module (missing, unexpected, image),
//! since before that differences are expected. The `$edgeHub` twin's own desired version
//! and status count too, and custom module twins are compared property by property.
//!
//! When several things drift the condition names the worst, in this order:
//! rejected/failed > pending > missing > unexpected > image > property > in progress.

use jiff::Timestamp;
use std::fmt::Write as _;

use super::properties;
use super::report::{ConditionStatus, ConditionType, DeviceCondition, DriftItem, Reason};
use super::text::{after, condition, count, human, twin_time};
use super::{AgentState, DeviceTwins, Policy};
use crate::twin::{DeploymentStatus, EdgeAgentTwin, EdgeHubTwin, SectionMeta, TwinTime};

/// Judges the deployment state and lists every difference found.
pub(crate) fn judge(
    twins: &DeviceTwins,
    state: AgentState,
    policy: &Policy,
    now: Timestamp,
) -> (DeviceCondition, Vec<DriftItem>) {
    let agent = &twins.edge_agent;
    match state {
        AgentState::NoReportedState => {
            let message = super::no_reported_state_message(agent);
            return (unknown(Reason::NoReportedState, message), Vec::new());
        }
        AgentState::NotRunning => {
            let message = super::agent_not_running_message(
                agent,
                "whether the deployment is applied is unknown",
            );
            return (unknown(Reason::AgentNotRunning, message), Vec::new());
        }
        AgentState::Reporting => {}
    }
    let mut drift = agent_drift(agent, policy, now);
    if let Some(hub) = &twins.edge_hub {
        drift.extend(hub_drift(hub, policy, now));
    }
    for module in &twins.modules {
        let selection = policy.selection_for(module.name());
        drift.extend(properties::drift(module, selection, policy, now));
    }
    (summarise(agent, &drift), drift)
}

fn unknown(reason: Reason, message: String) -> DeviceCondition {
    condition(
        ConditionType::InSync,
        ConditionStatus::Unknown,
        reason,
        message,
    )
}

fn agent_drift(agent: &EdgeAgentTwin, policy: &Policy, now: Timestamp) -> Vec<DriftItem> {
    if let Some(item) = pending(
        None,
        &agent.desired,
        agent.last_desired_version,
        policy,
        now,
    ) {
        return vec![item];
    }
    let status = agent.last_desired_status.as_ref();
    if let Some(item) = status.and_then(|s| status_drift(None, s, &agent.desired, policy, now)) {
        return vec![item];
    }
    module_drift(agent)
}

fn hub_drift(hub: &EdgeHubTwin, policy: &Policy, now: Timestamp) -> Vec<DriftItem> {
    let module = Some("$edgeHub");
    if let Some(item) = pending(module, &hub.desired, hub.last_desired_version, policy, now) {
        return vec![item];
    }
    hub.last_desired_status
        .as_ref()
        .and_then(|s| status_drift(module, s, &hub.desired, policy, now))
        .into_iter()
        .collect()
}

/// Desired `$version` not yet processed: in progress within the grace period after the
/// desired change, pending beyond it (or when the change time is unknown).
fn pending(
    module: Option<&str>,
    desired: &SectionMeta,
    last_desired_version: Option<i64>,
    policy: &Policy,
    now: Timestamp,
) -> Option<DriftItem> {
    let wanted = desired.version?;
    if last_desired_version == Some(wanted) {
        return None;
    }
    let who = module.unwrap_or("$edgeAgent");
    let seen = last_desired_version.map_or("none".to_owned(), |v| v.to_string());
    let head = format!(
        "{who} has not applied desired $version {wanted} yet (lastDesiredVersion {seen}); desired changed at {}",
        twin_time(desired.last_updated)
    );
    let (reason, message) = grace(desired.last_updated, policy, now, head);
    Some(DriftItem {
        reason,
        module: module.map(str::to_owned),
        property: None,
        desired: Some(wanted.to_string()),
        reported: last_desired_version.map(|v| v.to_string()),
        message,
    })
}

/// In progress while `now` is within the grace period after `changed`, else pending.
fn grace(
    changed: Option<TwinTime>,
    policy: &Policy,
    now: Timestamp,
    head: String,
) -> (Reason, String) {
    let grace = human(policy.deployment_grace);
    match changed.and_then(TwinTime::timestamp) {
        Some(at) if now < after(at, policy.deployment_grace) => (
            Reason::DeploymentInProgress,
            format!("{head}, within the {grace} grace period"),
        ),
        _ => (
            Reason::DeploymentPending,
            format!("{head}, beyond the {grace} grace period"),
        ),
    }
}

/// `lastDesiredStatus.code`: 400/412/417 rejected; 500 in progress within the grace
/// period after the desired change (a slow image pull ends in a transient 500 "The
/// operation was canceled"), failed after it; anything else fine.
fn status_drift(
    module: Option<&str>,
    status: &DeploymentStatus,
    desired: &SectionMeta,
    policy: &Policy,
    now: Timestamp,
) -> Option<DriftItem> {
    let code = status.code?;
    let who = module.unwrap_or("$edgeAgent");
    let description = status
        .description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let (reason, message) = match code {
        400 | 412 | 417 => (
            Reason::DeploymentRejected,
            format!("{who} rejected the deployment (code {code}{description})"),
        ),
        500 => {
            let head = format!(
                "{who} failed to apply the deployment (code 500{description}); desired changed at {}",
                twin_time(desired.last_updated)
            );
            match grace(desired.last_updated, policy, now, head) {
                (Reason::DeploymentInProgress, message) => (
                    Reason::DeploymentInProgress,
                    format!("{message}: a slow image pull ends like this and clears by itself"),
                ),
                (_, message) => (Reason::DeploymentFailed, message),
            }
        }
        _ => return None,
    };
    Some(DriftItem {
        reason,
        module: module.map(str::to_owned),
        property: None,
        desired: desired.version.map(|v| v.to_string()),
        reported: Some(code.to_string()),
        message,
    })
}

/// Module by module, once the agent has applied the deployment.
fn module_drift(agent: &EdgeAgentTwin) -> Vec<DriftItem> {
    let (Some(desired), Some(reported)) = (
        agent.desired_modules.as_deref(),
        agent.reported_modules.as_deref(),
    ) else {
        return Vec::new();
    };
    let mut drift = Vec::new();
    for d in desired {
        let Some(r) = reported.iter().find(|r| r.name == d.name) else {
            drift.push(DriftItem {
                reason: Reason::ModuleMissing,
                module: Some(d.name.clone()),
                property: None,
                desired: d.image.clone(),
                reported: None,
                message: format!(
                    "module {} is in the deployment but not on the device",
                    d.name
                ),
            });
            continue;
        };
        if let (Some(want), Some(have)) = (&d.image, &r.image)
            && normalize_image(want) != normalize_image(have)
        {
            drift.push(DriftItem {
                reason: Reason::ImageDrift,
                module: Some(d.name.clone()),
                property: None,
                desired: Some(want.clone()),
                reported: Some(have.clone()),
                message: format!(
                    "module {} runs image {have}, deployment asks for {want}",
                    d.name
                ),
            });
        }
    }
    for r in reported.iter().filter(|r| !r.system) {
        if !desired.iter().any(|d| d.name == r.name) {
            drift.push(DriftItem {
                reason: Reason::ModuleUnexpected,
                module: Some(r.name.clone()),
                property: None,
                desired: None,
                reported: r.image.clone(),
                message: format!(
                    "module {} runs on the device but is not in the deployment",
                    r.name
                ),
            });
        }
    }
    drift
}

/// An image reference without tag or digest means `:latest`; compare with that made explicit.
fn normalize_image(image: &str) -> String {
    let image = image.trim();
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last_segment.contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Rank of a drift reason; lower is worse.
fn severity(reason: Reason) -> u8 {
    match reason {
        Reason::DeploymentRejected | Reason::DeploymentFailed => 0,
        Reason::DeploymentPending => 1,
        Reason::ModuleMissing => 2,
        Reason::ModuleUnexpected => 3,
        Reason::ImageDrift => 4,
        Reason::PropertyDrift => 5,
        _ => 6,
    }
}

fn summarise(agent: &EdgeAgentTwin, drift: &[DriftItem]) -> DeviceCondition {
    let Some(worst) = drift.iter().min_by_key(|d| severity(d.reason)) else {
        let version = agent
            .desired
            .version
            .map_or(String::new(), |v| format!(" $version {v}"));
        return condition(
            ConditionType::InSync,
            ConditionStatus::True,
            Reason::InSync,
            format!("deployment{version} applied as desired"),
        );
    };
    let mut message = worst.message.clone();
    let rest = drift.len() - 1;
    if rest > 0 {
        let _ = write!(
            message,
            "; {}",
            count(rest, "more difference", "more differences")
        );
    }
    let status = if worst.reason == Reason::DeploymentInProgress {
        ConditionStatus::Unknown
    } else {
        ConditionStatus::False
    };
    condition(ConditionType::InSync, status, worst.reason, message)
}

#[cfg(test)]
mod tests {
    use super::normalize_image;

    #[test]
    fn untagged_image_means_latest() {
        assert_eq!(
            normalize_image("mcr.microsoft.com/a"),
            "mcr.microsoft.com/a:latest"
        );
        assert_eq!(
            normalize_image("mcr.microsoft.com/a:1.1"),
            "mcr.microsoft.com/a:1.1"
        );
        assert_eq!(
            normalize_image("localhost:5000/a"),
            "localhost:5000/a:latest"
        );
        assert_eq!(normalize_image("a@sha256:00"), "a@sha256:00");
    }
}
