//! `Reachable`, `Fresh` and the `Ready` summary.

mod common;

use common::*;
use edgewatch::health::report::ConditionStatus::{False, True, Unknown};
use edgewatch::health::report::ConditionType::{Fresh, ModulesHealthy, Reachable, Ready};
use edgewatch::health::report::{ConditionType, Reason};
use edgewatch::health::{PingError, PingOutcome, Policy, evaluate};
use serde_json::json;

#[test]
fn ping_outcomes_map_to_reachable() {
    let doc = fixture(HEALTHY_AGENT);
    let cases = [
        (responded(), True, Reason::AgentResponded),
        (not_online(), False, Reason::DeviceNotOnline),
        (
            PingOutcome::Timeout(PingError::default()),
            False,
            Reason::PingTimeout,
        ),
        (PingOutcome::Skipped, Unknown, Reason::PingSkipped),
        (
            PingOutcome::Failed(PingError::new(
                Some(429_001),
                Some("ThrottlingException"),
                "throttled",
            )),
            Unknown,
            Reason::PingFailed,
        ),
    ];
    for (ping, status, reason) in cases {
        let r = report(&doc, ping.clone());
        assert_eq!(cond(&r, Reachable), (status, reason), "{ping:?}");
    }
}

#[test]
fn ping_latency_and_failure_detail_are_reported() {
    let doc = fixture(HEALTHY_AGENT);
    assert_eq!(report(&doc, responded()).ping_latency_ms, Some(42));
    let r = report(
        &doc,
        PingOutcome::Failed(PingError::new(
            Some(429_001),
            Some("ThrottlingException"),
            "throttled",
        )),
    );
    assert_eq!(
        message(&r, Reachable),
        "ping could not be sent: 429001 ThrottlingException: throttled"
    );
    assert_eq!(r.ping_latency_ms, None);
}

#[test]
fn a_device_the_hub_does_not_know_is_unreachable_and_not_ready() {
    let doc = fixture(HEALTHY_AGENT);
    let unknown = PingOutcome::DeviceNotFound(PingError::new(
        Some(404_001),
        Some("DeviceNotFound"),
        "the device does not exist",
    ));
    let r = report(&doc, unknown);
    assert_eq!(cond(&r, Reachable), (False, Reason::DeviceNotFound));
    assert_eq!(cond(&r, Ready), (False, Reason::DeviceNotFound));
    let text = message(&r, Reachable);
    assert!(text.contains(&format!("{:?}", r.device_id)), "{text}");
    assert!(text.contains("404001 DeviceNotFound"), "{text}");
}

#[test]
fn five_conditions_ready_first() {
    let r = report(&fixture(HEALTHY_AGENT), responded());
    let types: Vec<ConditionType> = r.conditions.iter().map(|c| c.type_).collect();
    assert_eq!(
        types,
        [
            Ready,
            Reachable,
            ModulesHealthy,
            ConditionType::InSync,
            Fresh
        ]
    );
}

#[test]
fn healthy_device_that_answers_ping_is_ready() {
    let r = report(&fixture(HEALTHY_AGENT), responded());
    assert_eq!(cond(&r, Ready), (True, Reason::Ready));
    assert!(r.is_ready());
}

#[test]
fn ping_skipped_alone_does_not_hold_ready_back() {
    let r = report(&fixture(HEALTHY_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, Ready), (True, Reason::Ready));
    assert!(message(&r, Ready).contains("ping skipped"));
}

#[test]
fn ping_failed_makes_ready_unknown() {
    let r = report(
        &fixture(HEALTHY_AGENT),
        PingOutcome::Failed(PingError::new(Some(401_002), None, "unauthorized")),
    );
    assert_eq!(cond(&r, Ready), (Unknown, Reason::PingFailed));
}

#[test]
fn first_false_aspect_decides_ready_in_contract_order() {
    // Unreachable and a failed module: Reachable comes first.
    let r = report(&fixture(FAILED_AGENT), not_online());
    assert_eq!(cond(&r, Ready), (False, Reason::DeviceNotOnline));
    assert!(message(&r, Ready).starts_with("Reachable: "));
}

#[test]
fn false_outranks_an_earlier_unknown() {
    // Reachable Unknown (ping failed) but ModulesHealthy False: Ready takes the False one.
    let r = report(
        &fixture(FAILED_AGENT),
        PingOutcome::Failed(PingError::new(None, None, "x")),
    );
    assert_eq!(cond(&r, Ready), (False, Reason::ModuleFailed));
}

#[test]
fn first_unknown_aspect_decides_when_none_is_false() {
    let r = report(&fixture(FULL_AGENT), responded());
    // Reachable True, ModulesHealthy Unknown (406), InSync Unknown, Fresh True (ping answered).
    assert_eq!(cond(&r, Ready), (Unknown, Reason::AgentNotRunning));
}

#[test]
fn recent_report_is_current() {
    let r = report(&fixture(HEALTHY_AGENT), PingOutcome::Skipped);
    assert_eq!(cond(&r, Fresh), (True, Reason::ReportCurrent));
    assert_eq!(r.reported_at, Some(ts("2021-06-28T21:48:59.8705097Z")));
    assert!(message(&r, Fresh).contains("6m"), "{}", message(&r, Fresh));
}

fn at(now: &str, ping: PingOutcome) -> edgewatch::health::report::DeviceReport {
    let twins = twins(&fixture(HEALTHY_AGENT));
    evaluate(&twins, &ping, None, &Policy::default(), ts(now)).report
}

#[test]
fn old_report_is_current_when_the_agent_answers_ping() {
    let r = at("2021-06-29T09:00:00Z", responded());
    assert_eq!(cond(&r, Fresh), (True, Reason::ReportCurrent));
    assert!(message(&r, Fresh).contains("answered ping"));
}

#[test]
fn old_report_is_stale_when_the_agent_does_not_answer() {
    for ping in [not_online(), PingOutcome::Timeout(PingError::default())] {
        let r = at("2021-06-29T09:00:00Z", ping);
        assert_eq!(cond(&r, Fresh), (False, Reason::ReportedStateStale));
    }
}

#[test]
fn with_ping_skipped_or_failed_the_age_alone_decides() {
    let stale = at("2021-06-28T22:05:00Z", PingOutcome::Skipped);
    assert_eq!(cond(&stale, Fresh), (False, Reason::ReportedStateStale));
    assert_eq!(cond(&stale, Ready), (False, Reason::ReportedStateStale));
    let failed = at(
        "2021-06-28T22:05:00Z",
        PingOutcome::Failed(PingError::new(None, None, "x")),
    );
    assert_eq!(cond(&failed, Fresh), (False, Reason::ReportedStateStale));
    let just_inside = at("2021-06-28T22:03:59Z", PingOutcome::Skipped);
    assert_eq!(cond(&just_inside, Fresh), (True, Reason::ReportCurrent));
}

#[test]
fn report_from_the_future_is_current() {
    let r = at("2021-06-28T21:00:00Z", not_online());
    assert_eq!(cond(&r, Fresh), (True, Reason::ReportCurrent));
}

#[test]
fn never_missing_or_unreadable_last_updated_is_no_reported_state() {
    for value in [
        json!("0001-01-01T00:00:00Z"),
        json!("soon"),
        serde_json::Value::Null,
    ] {
        let mut doc = fixture(HEALTHY_AGENT);
        set(
            &mut doc,
            "/properties/reported/$metadata/$lastUpdated",
            value.clone(),
        );
        let r = report(&doc, not_online());
        assert_eq!(
            cond(&r, Fresh),
            (Unknown, Reason::NoReportedState),
            "{value}"
        );
        assert_eq!(r.reported_at, None);
    }
}

#[test]
fn empty_reported_section_is_no_reported_state_for_fresh() {
    let doc = fixture("edgeAgent-properties_v1.2-deployment_iotedge.json");
    let r = report(&doc, not_online());
    assert_eq!(cond(&r, Fresh), (Unknown, Reason::NoReportedState));
}

#[test]
fn agent_twin_connection_state_is_ignored() {
    let mut connected = fixture(HEALTHY_AGENT);
    set(&mut connected, "/connectionState", json!("Connected"));
    let disconnected = fixture(HEALTHY_AGENT);
    assert_eq!(disconnected["connectionState"], "Disconnected");
    for ping in [responded(), PingOutcome::Skipped, not_online()] {
        assert_eq!(
            report(&connected, ping.clone()),
            report(&disconnected, ping)
        );
    }
    assert!(report(&disconnected, responded()).is_ready());
}

#[test]
fn never_times_are_null_in_the_module_list() {
    let r = report(&fixture(HEALTHY_AGENT), responded());
    let agent = r.modules.iter().find(|m| m.name == "edgeAgent").unwrap();
    assert_eq!(agent.last_exit_time, None);
    assert_eq!(
        agent.last_start_time,
        Some(ts("2021-06-28T21:20:53.5804142Z"))
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["modules"][0]["lastExitTime"], serde_json::Value::Null);
}
