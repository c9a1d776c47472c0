//! Which Events a sweep announces: transitions only, never steady state.
//!
//! A device's *faults* are its False aspects, with `ModulesHealthy` split per failing
//! module, and a ping that failed (`Reachable` Unknown `PingFailed`: the note carries
//! IoT Hub's error). A fault that appears (or changes reason) is a Warning; a fault that
//! clears while its aspect is True again is a Normal recovery. A fault whose aspect
//! turned Unknown (the device went quiet) is carried, not cleared: nobody knows it
//! recovered. The Event reason is the condition reason; the note names the device and
//! module.

use std::collections::{BTreeMap, HashMap};

use crate::api::DeviceEntry;
use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

use crate::controller::status::conditions::truncate;

/// Events one reconcile publishes before summarising the rest in one Event.
pub(crate) const MAX_EVENTS_PER_SWEEP: usize = 20;
/// `events.k8s.io/v1` caps the note at 1 kB.
pub(crate) const MAX_NOTE_CHARS: usize = 1000;

/// What is wrong with a device: (aspect, module) → reason.
pub(crate) type Faults = BTreeMap<(ConditionType, Option<String>), Reason>;

/// Normal or Warning, as in `events.k8s.io/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventSeverity {
    Normal,
    Warning,
}

/// An Event to publish about the watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedEvent {
    pub severity: EventSeverity,
    pub reason: Reason,
    /// The `action` field: what edgewatch did when it noticed.
    pub action: &'static str,
    pub note: String,
    /// The device concerned (`None` for a summary).
    pub device: Option<String>,
    /// The module concerned, for module faults.
    pub module: Option<String>,
}

impl PlannedEvent {
    /// The part of the watch the Event is about, as `regarding.fieldPath`. It also keeps
    /// kube's Recorder from folding the same reason on two devices into one series.
    pub(crate) fn field_path(&self) -> Option<String> {
        let device = self.device.as_ref()?;
        Some(match &self.module {
            Some(module) => format!("status.devices{{{device}}}.failingModules{{{module}}}"),
            None => format!("status.devices{{{device}}}"),
        })
    }
}

/// The faults of a device as the evaluator judged it.
pub(crate) fn faults_of(report: &DeviceReport) -> Faults {
    let mut faults = Faults::new();
    for type_ in ConditionType::ASPECTS {
        let Some(c) = report.condition(type_) else {
            continue;
        };
        if !is_fault(c.status, c.reason) {
            continue;
        }
        if type_ == ConditionType::ModulesHealthy {
            let before = faults.len();
            for m in report
                .modules
                .iter()
                .filter(|m| m.verdict != Reason::AllModulesHealthy)
            {
                faults.insert((type_, Some(m.name.clone())), m.verdict);
            }
            if faults.len() > before {
                continue;
            }
        }
        faults.insert((type_, None), c.reason);
    }
    faults
}

/// False aspects, and a failed ping: announced as Warnings.
fn is_fault(status: ConditionStatus, reason: Reason) -> bool {
    status == ConditionStatus::False || reason == Reason::PingFailed
}

/// The faults a previous status recorded for a device (used after an operator restart).
pub(crate) fn faults_of_entry(entry: &DeviceEntry) -> Faults {
    let mut faults = Faults::new();
    let aspects = [
        (ConditionType::Reachable, entry.reachable),
        (ConditionType::ModulesHealthy, entry.modules_healthy),
        (ConditionType::InSync, entry.in_sync),
        (ConditionType::Fresh, entry.fresh),
    ];
    for (type_, state) in aspects {
        if !is_fault(state.status, state.reason) {
            continue;
        }
        if type_ == ConditionType::ModulesHealthy && !entry.failing_modules.is_empty() {
            for m in &entry.failing_modules {
                faults.insert((type_, Some(m.name.clone())), m.reason);
            }
        } else {
            faults.insert((type_, None), state.reason);
        }
    }
    faults
}

/// Faults to remember after this sweep: the current ones, plus earlier ones whose aspect
/// is now Unknown (not known to have recovered).
pub(crate) fn carried_faults(previous: Option<&Faults>, report: &DeviceReport) -> Faults {
    let mut faults = faults_of(report);
    for (key, reason) in previous.into_iter().flatten() {
        if aspect_status(report, key.0) == ConditionStatus::Unknown {
            faults.entry(key.clone()).or_insert(*reason);
        }
    }
    faults
}

fn aspect_status(report: &DeviceReport, type_: ConditionType) -> ConditionStatus {
    report
        .condition(type_)
        .map_or(ConditionStatus::Unknown, |c| c.status)
}

/// The Events of one sweep, given each device's previous faults (`None`: never seen).
pub(crate) fn plan_events(
    previous: &HashMap<String, Faults>,
    reports: &[DeviceReport],
) -> Vec<PlannedEvent> {
    let mut events = Vec::new();
    for report in reports {
        let before = previous.get(&report.device_id);
        device_events(before, report, &mut events);
    }
    summarise_overflow(events)
}

fn device_events(before: Option<&Faults>, report: &DeviceReport, out: &mut Vec<PlannedEvent>) {
    let now = faults_of(report);
    let empty = Faults::new();
    let before = before.unwrap_or(&empty);
    for (key, reason) in &now {
        if before.get(key) != Some(reason) {
            out.push(warning(report, key, *reason));
        }
    }
    for key in before.keys().filter(|k| !now.contains_key(*k)) {
        if let Some(event) = recovery(report, key) {
            out.push(event);
        }
    }
}

fn warning(
    report: &DeviceReport,
    key: &(ConditionType, Option<String>),
    reason: Reason,
) -> PlannedEvent {
    let detail = match &key.1 {
        Some(module) => report
            .modules
            .iter()
            .find(|m| &m.name == module)
            .map_or_else(
                || format!("module {module}: {reason}"),
                |m| m.message.clone(),
            ),
        None => report
            .condition(key.0)
            .map_or_else(|| reason.to_string(), |c| c.message.clone()),
    };
    PlannedEvent {
        severity: EventSeverity::Warning,
        reason,
        action: "Detected",
        note: note(&report.device_id, key.1.as_deref(), &detail),
        device: Some(report.device_id.clone()),
        module: key.1.clone(),
    }
}

fn recovery(report: &DeviceReport, key: &(ConditionType, Option<String>)) -> Option<PlannedEvent> {
    let condition = report.condition(key.0)?;
    let module_recovered = key.1.as_ref().is_some_and(|name| {
        report
            .modules
            .iter()
            .any(|m| &m.name == name && m.verdict == Reason::AllModulesHealthy)
    });
    let aspect_true = condition.status == ConditionStatus::True;
    if !aspect_true && !module_recovered {
        return None;
    }
    let (reason, detail) = match &key.1 {
        Some(module) => (
            Reason::AllModulesHealthy,
            format!("module {module} is back in its desired state"),
        ),
        None => (
            condition.reason,
            format!("{} again: {}", key.0.as_str(), condition.message),
        ),
    };
    Some(PlannedEvent {
        severity: EventSeverity::Normal,
        reason,
        action: "Recovered",
        note: note(&report.device_id, key.1.as_deref(), &detail),
        device: Some(report.device_id.clone()),
        module: key.1.clone(),
    })
}

fn note(device: &str, module: Option<&str>, detail: &str) -> String {
    let subject = match module {
        Some(m) => format!("device {device}, module {m}"),
        None => format!("device {device}"),
    };
    truncate(&format!("{subject}: {detail}"), MAX_NOTE_CHARS)
}

fn summarise_overflow(mut events: Vec<PlannedEvent>) -> Vec<PlannedEvent> {
    if events.len() <= MAX_EVENTS_PER_SWEEP {
        return events;
    }
    let rest = events.split_off(MAX_EVENTS_PER_SWEEP - 1);
    let warnings = rest
        .iter()
        .filter(|e| e.severity == EventSeverity::Warning)
        .count();
    let first = &rest[0];
    events.push(PlannedEvent {
        severity: if warnings > 0 { EventSeverity::Warning } else { EventSeverity::Normal },
        reason: first.reason,
        action: "Summarised",
        note: format!(
            "{} more transitions ({warnings} turned bad, {} recovered); see the status for every device",
            rest.len(),
            rest.len() - warnings
        ),
        device: None,
        module: None,
    });
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_reports::{drifted, healthy, module_bad, set, unreachable};

    fn history(reports: &[DeviceReport]) -> HashMap<String, Faults> {
        reports
            .iter()
            .map(|r| (r.device_id.clone(), faults_of(r)))
            .collect()
    }

    #[test]
    fn steady_state_emits_nothing() {
        let reports = vec![healthy("a"), module_bad("b", "m", Reason::ModuleFailed)];
        assert!(plan_events(&history(&reports), &reports).is_empty());
    }

    #[test]
    fn a_module_failing_is_one_warning_naming_device_and_module() {
        let before = vec![healthy("a")];
        let after = vec![module_bad("a", "sensor", Reason::ModuleFailed)];
        let events = plan_events(&history(&before), &after);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.severity, EventSeverity::Warning);
        assert_eq!(e.reason, Reason::ModuleFailed);
        assert!(
            e.note.starts_with("device a, module sensor: "),
            "{}",
            e.note
        );
    }

    #[test]
    fn recovery_is_one_normal_event() {
        let before = vec![module_bad("a", "sensor", Reason::ModuleFailed)];
        let after = vec![healthy("a")];
        let events = plan_events(&history(&before), &after);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].severity, EventSeverity::Normal);
        assert_eq!(events[0].reason, Reason::AllModulesHealthy);
        assert!(events[0].note.contains("device a, module sensor"));
    }

    #[test]
    fn a_reason_change_is_a_new_warning() {
        let before = vec![module_bad("a", "sensor", Reason::ModuleBackoff)];
        let after = vec![module_bad("a", "sensor", Reason::ModuleFailed)];
        let events = plan_events(&history(&before), &after);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, Reason::ModuleFailed);
    }

    #[test]
    fn unreachable_and_drift_are_announced_per_aspect() {
        let before = vec![healthy("a"), healthy("b")];
        let after = vec![unreachable("a"), drifted("b")];
        let events = plan_events(&history(&before), &after);
        let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
        assert_eq!(
            reasons,
            [Reason::DeviceNotOnline, Reason::DeploymentPending]
        );
        assert!(events[0].note.starts_with("device a: "));
    }

    #[test]
    fn first_sight_of_a_bad_device_warns_and_of_a_good_one_says_nothing() {
        let reports = vec![healthy("a"), unreachable("b")];
        let events = plan_events(&HashMap::new(), &reports);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, Reason::DeviceNotOnline);
    }

    #[test]
    fn a_fault_turning_unknown_is_carried_not_recovered() {
        let bad = module_bad("a", "sensor", Reason::ModuleFailed);
        let mut quiet = healthy("a");
        set(
            &mut quiet,
            ConditionType::ModulesHealthy,
            ConditionStatus::Unknown,
            Reason::AgentNotRunning,
        );
        set(
            &mut quiet,
            ConditionType::Ready,
            ConditionStatus::Unknown,
            Reason::AgentNotRunning,
        );
        assert!(
            plan_events(
                &history(std::slice::from_ref(&bad)),
                std::slice::from_ref(&quiet)
            )
            .is_empty()
        );
        let carried = carried_faults(Some(&faults_of(&bad)), &quiet);
        assert_eq!(carried, faults_of(&bad));
        // When it is healthy again, the recovery is announced once.
        let mut previous = HashMap::new();
        previous.insert("a".to_owned(), carried);
        let events = plan_events(&previous, &[healthy("a")]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].severity, EventSeverity::Normal);
    }

    #[test]
    fn a_failed_ping_warns_with_its_detail_and_recovers() {
        let before = vec![healthy("a")];
        let mut failed = healthy("a");
        set(
            &mut failed,
            ConditionType::Reachable,
            ConditionStatus::Unknown,
            Reason::PingFailed,
        );
        failed
            .conditions
            .iter_mut()
            .find(|c| c.type_ == ConditionType::Reachable)
            .unwrap()
            .message = "ping could not be sent: 500001 ServerError: try again".into();
        let events = plan_events(&history(&before), std::slice::from_ref(&failed));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].severity, EventSeverity::Warning);
        assert_eq!(events[0].reason, Reason::PingFailed);
        assert!(
            events[0].note.contains("500001 ServerError"),
            "{}",
            events[0].note
        );
        let events = plan_events(&history(&[failed]), &before);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].severity, EventSeverity::Normal);
        assert_eq!(events[0].reason, Reason::AgentResponded);
    }

    #[test]
    fn faults_from_a_status_entry_match_faults_from_the_report() {
        use crate::controller::status::build::{StatusLimits, device_entry};
        let mut ping_failed = healthy("a");
        set(
            &mut ping_failed,
            ConditionType::Reachable,
            ConditionStatus::Unknown,
            Reason::PingFailed,
        );
        for report in [
            healthy("a"),
            module_bad("a", "m", Reason::ModuleFailed),
            unreachable("a"),
            drifted("a"),
            ping_failed,
        ] {
            let entry = device_entry(&report, &StatusLimits::default());
            assert_eq!(
                faults_of_entry(&entry),
                faults_of(&report),
                "{}",
                report.device_id
            );
        }
    }

    #[test]
    fn a_fleet_wide_failure_is_summarised() {
        let before: Vec<_> = (0..100).map(|i| healthy(&format!("gw-{i:03}"))).collect();
        let after: Vec<_> = (0..100)
            .map(|i| unreachable(&format!("gw-{i:03}")))
            .collect();
        let events = plan_events(&history(&before), &after);
        assert_eq!(events.len(), MAX_EVENTS_PER_SWEEP);
        let last = events.last().unwrap();
        assert_eq!(last.action, "Summarised");
        assert!(
            last.note
                .starts_with("81 more transitions (81 turned bad, 0 recovered)"),
            "{}",
            last.note
        );
    }
}
