//! Builders of evaluator reports for the controller's unit tests.

use crate::health::report::{
    ConditionStatus, ConditionType, DeviceCondition, DeviceReport, DriftItem, ModuleReport, Reason,
};

/// A device whose every aspect is True.
pub(super) fn healthy(device_id: &str) -> DeviceReport {
    DeviceReport {
        device_id: device_id.to_owned(),
        conditions: vec![
            cond(ConditionType::Ready, ConditionStatus::True, Reason::Ready),
            cond(
                ConditionType::Reachable,
                ConditionStatus::True,
                Reason::AgentResponded,
            ),
            cond(
                ConditionType::ModulesHealthy,
                ConditionStatus::True,
                Reason::AllModulesHealthy,
            ),
            cond(ConditionType::InSync, ConditionStatus::True, Reason::InSync),
            cond(
                ConditionType::Fresh,
                ConditionStatus::True,
                Reason::ReportCurrent,
            ),
        ],
        modules: vec![
            module("edgeAgent", Reason::AllModulesHealthy),
            module("edgeHub", Reason::AllModulesHealthy),
        ],
        drift: vec![],
        ping_latency_ms: Some(25),
        reported_at: None,
        disconnected_clients: vec![],
    }
}

/// A device with `module` in the given bad state (`ModulesHealthy` and `Ready` False).
pub(super) fn module_bad(device_id: &str, module_name: &str, reason: Reason) -> DeviceReport {
    let mut report = healthy(device_id);
    let mut bad = module(module_name, reason);
    bad.runtime_status = Some("failed".into());
    bad.exit_code = Some(1);
    bad.restart_count = Some(4);
    report.modules.push(bad);
    set(
        &mut report,
        ConditionType::ModulesHealthy,
        ConditionStatus::False,
        reason,
    );
    set(
        &mut report,
        ConditionType::Ready,
        ConditionStatus::False,
        reason,
    );
    report
}

/// A device whose agent did not answer ping.
pub(super) fn unreachable(device_id: &str) -> DeviceReport {
    let mut report = healthy(device_id);
    report.ping_latency_ms = None;
    set(
        &mut report,
        ConditionType::Reachable,
        ConditionStatus::False,
        Reason::DeviceNotOnline,
    );
    set(
        &mut report,
        ConditionType::Ready,
        ConditionStatus::False,
        Reason::DeviceNotOnline,
    );
    report
}

/// A device with a deployment pending past its grace period.
pub(super) fn drifted(device_id: &str) -> DeviceReport {
    let mut report = healthy(device_id);
    report.drift.push(DriftItem {
        reason: Reason::DeploymentPending,
        module: None,
        property: None,
        desired: Some("7".into()),
        reported: Some("6".into()),
        message: "desired $version 7, agent reports 6".into(),
    });
    set(
        &mut report,
        ConditionType::InSync,
        ConditionStatus::False,
        Reason::DeploymentPending,
    );
    set(
        &mut report,
        ConditionType::Ready,
        ConditionStatus::False,
        Reason::DeploymentPending,
    );
    report
}

/// Sets one condition of a report.
pub(super) fn set(
    report: &mut DeviceReport,
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
) {
    let c = report
        .conditions
        .iter_mut()
        .find(|c| c.type_ == type_)
        .expect("all five conditions");
    c.status = status;
    c.reason = reason;
    c.message = format!("{} {reason}", type_.as_str());
}

fn cond(type_: ConditionType, status: ConditionStatus, reason: Reason) -> DeviceCondition {
    DeviceCondition {
        type_,
        status,
        reason,
        message: format!("{} {reason}", type_.as_str()),
    }
}

fn module(name: &str, verdict: Reason) -> ModuleReport {
    ModuleReport {
        name: name.to_owned(),
        desired_status: Some("running".into()),
        runtime_status: Some("running".into()),
        exit_code: Some(0),
        restart_count: Some(0),
        last_start_time: None,
        last_exit_time: None,
        last_restart_time: None,
        image_desired: None,
        image_reported: None,
        verdict,
        message: format!("module {name}: {verdict}"),
    }
}
