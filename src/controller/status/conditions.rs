//! Watch-level conditions: device verdicts aggregated, and `metav1.Condition` bookkeeping.
//!
//! A watch-level aspect is True only when it is True for every device; otherwise it takes
//! the reason of the worst device (False before Unknown, worst device first) and its
//! message names how many devices and which. `lastTransitionTime` moves only when the
//! status moves, and `Stalled` appears only while True.

use std::cmp::Reverse;
use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

/// The condition type published only while the watch cannot progress.
pub(crate) const STALLED: &str = "Stalled";
/// Longest condition message; `metav1` allows 32 KiB, `kubectl describe` needs far less.
pub(crate) const MAX_MESSAGE_CHARS: usize = 1024;
/// Devices named in a condition message before "and N more".
pub(crate) const MAX_NAMED_DEVICES: usize = 5;
/// The watch-level types, in the order they are published.
pub(crate) const WATCH_TYPES: [ConditionType; 5] = [
    ConditionType::Ready,
    ConditionType::Reachable,
    ConditionType::ModulesHealthy,
    ConditionType::InSync,
    ConditionType::Fresh,
];

/// A watch-level condition before bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WatchCondition {
    pub type_: String,
    pub status: ConditionStatus,
    pub reason: Reason,
    pub message: String,
}

/// Sorts device reports worst first: Ready False, then Unknown, then True; more False
/// aspects before fewer; then by device id for a stable order.
pub(crate) fn sort_worst_first(reports: &mut [&DeviceReport]) {
    reports.sort_by_key(|r| {
        (
            status_rank(r.condition(ConditionType::Ready).map(|c| c.status)),
            Reverse(count_aspects(r, ConditionStatus::False)),
            Reverse(count_aspects(r, ConditionStatus::Unknown)),
            r.device_id.clone(),
        )
    });
}

fn status_rank(status: Option<ConditionStatus>) -> u8 {
    match status {
        Some(ConditionStatus::False) => 0,
        Some(ConditionStatus::Unknown) | None => 1,
        Some(ConditionStatus::True) => 2,
    }
}

fn count_aspects(report: &DeviceReport, status: ConditionStatus) -> usize {
    ConditionType::ASPECTS
        .iter()
        .filter(|t| report.condition(**t).is_some_and(|c| c.status == status))
        .count()
}

/// The five watch-level conditions from device reports (already sorted worst first).
pub(crate) fn aggregate(reports: &[&DeviceReport]) -> Vec<WatchCondition> {
    WATCH_TYPES
        .iter()
        .map(|t| aggregate_one(*t, reports))
        .collect()
}

fn aggregate_one(type_: ConditionType, reports: &[&DeviceReport]) -> WatchCondition {
    let name = type_.as_str();
    if reports.is_empty() {
        return watch_condition(
            type_,
            ConditionStatus::Unknown,
            Reason::NoDevicesMatched,
            "no devices are watched: spec.devices is empty and the selector matched no IoT Edge device".into(),
        );
    }
    let with = |status| -> Vec<(&str, Reason)> {
        reports
            .iter()
            .filter_map(|r| {
                let c = r.condition(type_)?;
                (c.status == status).then_some((r.device_id.as_str(), c.reason))
            })
            .collect()
    };
    let missing: Vec<(&str, Reason)> = reports
        .iter()
        .filter(|r| r.condition(type_).is_none())
        .map(|r| (r.device_id.as_str(), Reason::NoReportedState))
        .collect();
    let false_ = with(ConditionStatus::False);
    let mut unknown = with(ConditionStatus::Unknown);
    unknown.extend(missing);
    let total = reports.len();
    if let Some((_, reason)) = false_.first() {
        let mut message = describe(&false_, total, &format!("not {name}"));
        if !unknown.is_empty() {
            message.push_str("; ");
            message.push_str(&describe(&unknown, total, &format!("{name} unknown")));
        }
        return watch_condition(type_, ConditionStatus::False, *reason, message);
    }
    if let Some((_, reason)) = unknown.first() {
        let message = describe(&unknown, total, &format!("{name} unknown"));
        return watch_condition(type_, ConditionStatus::Unknown, *reason, message);
    }
    let reason = reports[0]
        .condition(type_)
        .map_or(Reason::Ready, |c| c.reason);
    let message = format!("all {total} devices {name}");
    watch_condition(type_, ConditionStatus::True, reason, message)
}

/// "2 of 5 devices not Ready: gw-1 (ModuleFailed), gw-2 (DeviceNotOnline)[, and 3 more]".
fn describe(devices: &[(&str, Reason)], total: usize, what: &str) -> String {
    let named: Vec<String> = devices
        .iter()
        .take(MAX_NAMED_DEVICES)
        .map(|(id, reason)| format!("{id} ({reason})"))
        .collect();
    let mut text = format!(
        "{} of {total} devices {what}: {}",
        devices.len(),
        named.join(", ")
    );
    if devices.len() > MAX_NAMED_DEVICES {
        let _ = write!(text, ", and {} more", devices.len() - MAX_NAMED_DEVICES);
    }
    text
}

fn watch_condition(
    type_: ConditionType,
    status: ConditionStatus,
    reason: Reason,
    message: String,
) -> WatchCondition {
    WatchCondition {
        type_: type_.as_str().to_owned(),
        status,
        reason,
        message: truncate(&message, MAX_MESSAGE_CHARS),
    }
}

/// `metav1.Condition`s from watch conditions: `lastTransitionTime` is kept from the
/// previous condition of the same type unless the status changed.
pub(crate) fn with_bookkeeping(
    conditions: &[WatchCondition],
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    conditions
        .iter()
        .map(|c| {
            let carried = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status.as_str())
                .map(|p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.clone(),
                status: c.status.as_str().to_owned(),
                reason: c.reason.as_str().to_owned(),
                message: c.message.clone(),
                last_transition_time: carried.unwrap_or(Time(now)),
                observed_generation: generation,
            }
        })
        .collect()
}

/// The conditions of a watch that cannot progress: the aspects keep their last known
/// values, `Ready` turns False with the stall reason, and `Stalled` is True.
pub(crate) fn stalled(
    previous: &[Condition],
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let message = truncate(message, MAX_MESSAGE_CHARS);
    let fresh = [
        WatchCondition {
            type_: ConditionType::Ready.as_str().to_owned(),
            status: ConditionStatus::False,
            reason,
            message: message.clone(),
        },
        WatchCondition {
            type_: STALLED.to_owned(),
            status: ConditionStatus::True,
            reason,
            message,
        },
    ];
    let mut out = with_bookkeeping(&fresh[..1], previous, generation, now);
    out.extend(
        previous
            .iter()
            .filter(|p| p.type_ != ConditionType::Ready.as_str() && p.type_ != STALLED)
            .cloned(),
    );
    out.extend(with_bookkeeping(&fresh[1..], previous, generation, now));
    out
}

/// Prefixes the `Ready` message with a note (throttled, suspended), replacing an earlier
/// note, so repeated reconciles produce the same text.
pub(crate) fn annotate_ready(conditions: &mut [Condition], note: &str) {
    if let Some(ready) = conditions
        .iter_mut()
        .find(|c| c.type_ == ConditionType::Ready.as_str())
    {
        let base = strip_note(&ready.message);
        ready.message = truncate(&format!("{note}{NOTE_SEPARATOR}{base}"), MAX_MESSAGE_CHARS);
    }
}

/// Adds a remark to the end of the `Ready` message (deterministic text, so repeated
/// reconciles produce the same status).
pub(crate) fn append_to_ready(conditions: &mut [Condition], remark: &str) {
    if let Some(ready) = conditions
        .iter_mut()
        .find(|c| c.type_ == ConditionType::Ready.as_str())
    {
        ready.message = truncate(&format!("{}; {remark}", ready.message), MAX_MESSAGE_CHARS);
    }
}

/// Separates a note from the message it annotates.
pub(crate) const NOTE_SEPARATOR: &str = " | last known: ";

fn strip_note(message: &str) -> &str {
    message
        .split_once(NOTE_SEPARATOR)
        .map_or(message, |(_, base)| base)
}

/// Cuts `text` to at most `max` characters on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_reports::{drifted, healthy, module_bad, set, unreachable};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn by_type<'a>(conditions: &'a [WatchCondition], t: &str) -> &'a WatchCondition {
        conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn all_true_devices_give_true_conditions() {
        let (a, b) = (healthy("a"), healthy("b"));
        let conditions = aggregate(&[&a, &b]);
        assert_eq!(conditions.len(), 5);
        assert!(conditions.iter().all(|c| c.status == ConditionStatus::True));
        assert_eq!(by_type(&conditions, "Ready").reason, Reason::Ready);
        assert_eq!(
            by_type(&conditions, "Reachable").reason,
            Reason::AgentResponded
        );
        assert_eq!(by_type(&conditions, "Ready").message, "all 2 devices Ready");
    }

    #[test]
    fn one_false_device_makes_the_watch_false_with_its_reason_and_name() {
        let (a, b) = (
            healthy("a"),
            module_bad("b", "sensor", Reason::ModuleFailed),
        );
        let mut reports = vec![&a, &b];
        sort_worst_first(&mut reports);
        assert_eq!(reports[0].device_id, "b");
        let conditions = aggregate(&reports);
        let modules = by_type(&conditions, "ModulesHealthy");
        assert_eq!(modules.status, ConditionStatus::False);
        assert_eq!(modules.reason, Reason::ModuleFailed);
        assert_eq!(
            modules.message,
            "1 of 2 devices not ModulesHealthy: b (ModuleFailed)"
        );
        assert_eq!(by_type(&conditions, "Ready").reason, Reason::ModuleFailed);
        assert_eq!(
            by_type(&conditions, "Reachable").status,
            ConditionStatus::True
        );
    }

    #[test]
    fn false_wins_over_unknown_and_both_are_described() {
        let a = unreachable("a");
        let mut b = healthy("b");
        set(
            &mut b,
            ConditionType::Reachable,
            ConditionStatus::Unknown,
            Reason::PingFailed,
        );
        let conditions = aggregate(&[&a, &b]);
        let reachable = by_type(&conditions, "Reachable");
        assert_eq!(reachable.status, ConditionStatus::False);
        assert_eq!(reachable.reason, Reason::DeviceNotOnline);
        assert!(
            reachable
                .message
                .contains("1 of 2 devices not Reachable: a (DeviceNotOnline)")
        );
        assert!(
            reachable
                .message
                .contains("1 of 2 devices Reachable unknown: b (PingFailed)")
        );
    }

    #[test]
    fn unknown_only_gives_unknown() {
        let mut a = healthy("a");
        set(
            &mut a,
            ConditionType::Reachable,
            ConditionStatus::Unknown,
            Reason::PingSkipped,
        );
        let conditions = aggregate(&[&a]);
        assert_eq!(
            by_type(&conditions, "Reachable").status,
            ConditionStatus::Unknown
        );
        assert_eq!(
            by_type(&conditions, "Reachable").reason,
            Reason::PingSkipped
        );
        assert_eq!(by_type(&conditions, "Ready").status, ConditionStatus::True);
    }

    #[test]
    fn many_failing_devices_are_named_up_to_a_limit() {
        let reports: Vec<_> = (0..8).map(|i| drifted(&format!("gw-{i}"))).collect();
        let refs: Vec<_> = reports.iter().collect();
        let in_sync = aggregate(&refs).remove(3);
        assert_eq!(in_sync.type_, "InSync");
        assert!(
            in_sync
                .message
                .starts_with("8 of 8 devices not InSync: gw-0 (DeploymentPending)")
        );
        assert!(
            in_sync.message.ends_with(", and 3 more"),
            "{}",
            in_sync.message
        );
    }

    #[test]
    fn no_devices_is_unknown_no_devices_matched() {
        let conditions = aggregate(&[]);
        assert!(
            conditions
                .iter()
                .all(|c| c.status == ConditionStatus::Unknown)
        );
        assert!(
            conditions
                .iter()
                .all(|c| c.reason == Reason::NoDevicesMatched)
        );
        assert!(
            by_type(&conditions, "Ready")
                .message
                .contains("selector matched no")
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = at("2026-01-01T00:00:00Z");
        let t1 = at("2026-01-01T00:01:00Z");
        let t2 = at("2026-01-01T00:02:00Z");
        let ok = healthy("a");
        let first = with_bookkeeping(&aggregate(&[&ok]), &[], Some(1), t0);
        assert!(first.iter().all(|c| c.last_transition_time.0 == t0));
        assert!(first.iter().all(|c| c.observed_generation == Some(1)));

        let bad = module_bad("a", "sensor", Reason::ModuleFailed);
        let second = with_bookkeeping(&aggregate(&[&bad]), &first, Some(2), t1);
        let time_of = |cs: &[Condition], t: &str| {
            cs.iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .last_transition_time
                .0
        };
        assert_eq!(time_of(&second, "ModulesHealthy"), t1);
        assert_eq!(time_of(&second, "Ready"), t1);
        assert_eq!(time_of(&second, "Reachable"), t0);
        assert!(second.iter().all(|c| c.observed_generation == Some(2)));

        // Same status, different reason: the transition time stays.
        let backoff = module_bad("a", "sensor", Reason::ModuleBackoff);
        let third = with_bookkeeping(&aggregate(&[&backoff]), &second, Some(2), t2);
        assert_eq!(time_of(&third, "ModulesHealthy"), t1);
        assert_eq!(
            third
                .iter()
                .find(|c| c.type_ == "ModulesHealthy")
                .unwrap()
                .reason,
            "ModuleBackoff"
        );
    }

    #[test]
    fn stalled_keeps_last_known_aspects_and_adds_stalled() {
        let t0 = at("2026-01-01T00:00:00Z");
        let ok = healthy("a");
        let before = with_bookkeeping(&aggregate(&[&ok]), &[], Some(1), t0);
        let t1 = at("2026-01-01T00:05:00Z");
        let after = stalled(
            &before,
            Reason::SecretNotFound,
            "Secret iot/x not found",
            Some(1),
            t1,
        );
        let find = |t: &str| after.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(find("Stalled").status, "True");
        assert_eq!(find("Stalled").reason, "SecretNotFound");
        assert_eq!(find("Ready").status, "False");
        assert_eq!(find("Ready").last_transition_time.0, t1);
        assert_eq!(
            find("Reachable"),
            before.iter().find(|c| c.type_ == "Reachable").unwrap()
        );
        assert_eq!(after.len(), 6);
        // Stalled again later: its transition time holds.
        let again = stalled(
            &after,
            Reason::SecretNotFound,
            "Secret iot/x not found",
            Some(1),
            at("2026-01-01T00:09:00Z"),
        );
        assert_eq!(again, after);
    }

    #[test]
    fn stalled_without_history_publishes_only_ready_and_stalled() {
        let conditions = stalled(
            &[],
            Reason::AuthenticationFailed,
            "401",
            None,
            at("2026-01-01T00:00:00Z"),
        );
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Stalled"]);
    }

    #[test]
    fn notes_replace_each_other_instead_of_piling_up() {
        let ok = healthy("a");
        let mut conditions =
            with_bookkeeping(&aggregate(&[&ok]), &[], None, at("2026-01-01T00:00:00Z"));
        annotate_ready(&mut conditions, "Throttled by IoT Hub");
        annotate_ready(&mut conditions, "Throttled by IoT Hub");
        let ready = &conditions[0];
        assert_eq!(
            ready.message,
            "Throttled by IoT Hub | last known: all 1 devices Ready"
        );
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate("äöü", 5), "äöü");
        assert_eq!(truncate("äöüß", 3), "äö…");
        assert_eq!(
            truncate(&"x".repeat(5000), MAX_MESSAGE_CHARS)
                .chars()
                .count(),
            MAX_MESSAGE_CHARS
        );
    }
}
