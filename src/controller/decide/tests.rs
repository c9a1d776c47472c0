//! `decide` alone: pure, so every branch is checked without a server.

use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::controller::prepare::settings::InvalidSpec;
use crate::controller::state::pings::PingRecord;
use crate::controller::test_reports::{healthy, module_bad, unreachable};
use crate::health::{DeviceMemory, PingError, PingOutcome};
use crate::iothub::{ErrorKind, IotHubError, Operation};

const MINUTE: Duration = Duration::from_secs(60);

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn facts<'a>(previous: Option<&'a EdgeDeviceWatchStatus>, now: &str) -> Facts<'a> {
    Facts {
        generation: Some(3),
        host_name: Some("wi-hub.azure-devices.net"),
        previous,
        now: at(now),
        limits: &LIMITS,
    }
}

static LIMITS: StatusLimits = StatusLimits {
    max_device_entries: 100,
    max_modules_per_entry: 10,
    max_drift_per_entry: 10,
    max_value_chars: 256,
};

fn swept(reports: Vec<DeviceReport>) -> Attempt {
    Attempt::Swept {
        observations: Observations::from_reports("h.azure-devices.net", reports),
        interval: MINUTE,
    }
}

fn stall(error: ReconcileError) -> Attempt {
    Attempt::Failed(error.into())
}

fn hub_error(kind: ErrorKind) -> IotHubError {
    IotHubError::new(kind, Operation::GetModuleTwin, "detail")
}

#[test]
fn a_sweep_becomes_status_events_requeue_and_the_next_state() {
    let mut observations =
        Observations::from_reports("h.azure-devices.net", vec![healthy("a"), unreachable("b")]);
    observations.pings.push((
        "b".into(),
        PingRecord {
            at: at("2026-01-01T00:00:00Z"),
            outcome: PingOutcome::NotOnline(PingError::new(Some(404_103), None, "")),
        },
    ));
    observations.verdicts[0].memory = Some(DeviceMemory::default());
    let mut state = WatchState::default();
    state
        .restarts
        .insert("gone".into(), DeviceMemory::default());
    let attempt = Attempt::Swept {
        observations,
        interval: MINUTE,
    };
    let decision = decide(&facts(None, "2026-01-01T00:00:00Z"), attempt, state);
    let status = decision.status.unwrap();
    assert_eq!(status.summary.devices, 2);
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!(status.memory.ping_failures.len(), 1);
    assert_eq!(decision.requeue, Requeue::After(MINUTE));
    assert!(matches!(decision.outcome, Outcome::Swept));
    assert_eq!(decision.events.len(), 1, "b is unreachable at first sight");
    let state = decision.state;
    assert!(state.restarts.contains_key("a") && !state.restarts.contains_key("gone"));
    assert!(state.pings.get("b").is_some());
    assert_eq!(state.faults["b"].len(), 1);
    assert_eq!(
        state.last_success,
        Some((at("2026-01-01T00:00:00Z"), Some(3)))
    );
}

#[test]
fn a_sweep_that_needs_more_quota_than_the_interval_says_so() {
    let mut observations = Observations::from_reports("h", vec![healthy("a")]);
    observations.cost.quota_time = Duration::from_secs(95);
    let attempt = Attempt::Swept {
        observations,
        interval: MINUTE,
    };
    let decision = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        attempt,
        WatchState::default(),
    );
    let status = decision.status.unwrap();
    assert!(status.condition("Ready").unwrap().message.ends_with(
        "; interval 60s is shorter than the ~95s of IoT Hub read quota one sweep of 1 devices needs; sweeps run late"
    ));
}

#[test]
fn not_due_leaves_everything_but_the_requeue() {
    let decision = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        Attempt::NotDue(Duration::from_secs(42)),
        WatchState::default(),
    );
    assert!(decision.status.is_none() && decision.events.is_empty());
    assert_eq!(decision.requeue, Requeue::After(Duration::from_secs(42)));
    assert!(matches!(decision.outcome, Outcome::NotDue));
}

#[test]
fn a_suspended_watch_keeps_its_state_and_waits_for_a_change() {
    let before = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        swept(vec![module_bad("a", "m", Reason::ModuleFailed)]),
        WatchState::default(),
    );
    let previous = before.status.unwrap();
    let decision = decide(
        &facts(Some(&previous), "2026-01-01T00:05:00Z"),
        Attempt::Suspended,
        before.state,
    );
    let status = decision.status.unwrap();
    assert!(
        status
            .condition("Ready")
            .unwrap()
            .message
            .starts_with("Suspended: ")
    );
    assert_eq!(status.devices, previous.devices);
    assert_eq!(decision.requeue, Requeue::AwaitChange);
    assert_eq!(decision.state.last_success, None);
}

#[test]
fn a_stall_warns_once_with_the_condition_text_and_shows_the_spec_hub() {
    let error = || ReconcileError::from(InvalidSpec::one("spec.interval", "must be at least 10s"));
    let first = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        stall(error()),
        WatchState::default(),
    );
    let status = first.status.clone().unwrap();
    let stalled = status.condition("Stalled").unwrap();
    assert_eq!(stalled.reason, "InvalidSpec");
    assert_eq!(stalled.message, "spec.interval: must be at least 10s");
    assert_eq!(status.hub.as_deref(), Some("wi-hub.azure-devices.net"));
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].reason, Reason::InvalidSpec);
    assert_eq!(first.events[0].note, stalled.message);
    assert_eq!(first.events[0].field_path(), None);
    assert_eq!(first.requeue, Requeue::Retry { at_least: None });

    let again = decide(
        &facts(Some(&status), "2026-01-01T00:01:00Z"),
        stall(error()),
        first.state,
    );
    assert!(again.events.is_empty(), "the same stall is announced once");
    let reworded = decide(
        &facts(Some(&status), "2026-01-01T00:01:30Z"),
        stall(InvalidSpec::one("spec.staleAfter", "x").into()),
        WatchState::default(),
    );
    assert!(
        reworded.events.is_empty(),
        "a new message of the same stall is not news"
    );
    let other = decide(
        &facts(Some(&status), "2026-01-01T00:02:00Z"),
        stall(ReconcileError::from_hub(
            "h",
            hub_error(ErrorKind::Unauthorized),
        )),
        again.state,
    );
    assert_eq!(other.events[0].reason, Reason::AuthenticationFailed);
}

#[test]
fn throttling_asks_for_the_hubs_delay_and_keeps_the_pings_made() {
    let before = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        swept(vec![healthy("a")]),
        WatchState::default(),
    );
    let previous = before.status.unwrap();
    let throttled = ReconcileError::from_hub(
        "h",
        hub_error(ErrorKind::Throttled).with_retry_after(Some(Duration::from_secs(30))),
    );
    let failure = SweepFailure {
        error: throttled,
        pings: vec![(
            "a".into(),
            PingRecord {
                at: at("2026-01-01T00:01:00Z"),
                outcome: PingOutcome::Responded { latency_ms: 4 },
            },
        )],
    };
    let decision = decide(
        &facts(Some(&previous), "2026-01-01T00:01:00Z"),
        Attempt::Failed(failure),
        before.state,
    );
    assert!(
        decision
            .status
            .unwrap()
            .condition("Ready")
            .unwrap()
            .message
            .starts_with("Throttled")
    );
    assert!(decision.events.is_empty());
    assert_eq!(
        decision.requeue,
        Requeue::Retry {
            at_least: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(
        decision.state.pings.get("a").map(|r| r.at),
        Some(at("2026-01-01T00:01:00Z"))
    );
    assert_eq!(decision.state.last_success, None);
}

#[test]
fn a_transient_failure_leaves_the_status_alone() {
    let decision = decide(
        &facts(None, "2026-01-01T00:00:00Z"),
        stall(ReconcileError::from_hub("h", hub_error(ErrorKind::Server))),
        WatchState::default(),
    );
    assert!(decision.status.is_none() && decision.events.is_empty());
    assert!(matches!(
        decision.outcome,
        Outcome::Failed(ReconcileError::IotHub(_))
    ));
}

#[test]
fn a_used_up_quota_stalls_keeping_every_finding_and_looks_again_just_after_midnight() {
    let before = decide(
        &facts(None, "2026-01-01T21:00:00Z"),
        swept(vec![healthy("a"), unreachable("b")]),
        WatchState::default(),
    );
    let previous = before.status.unwrap();
    let quota = || {
        hub_error(ErrorKind::DailyQuotaExceeded)
            .with_quota_reset(at("2026-01-02T00:00:00Z"), at("2026-01-01T21:30:00Z"))
    };
    let decision = decide(
        &facts(Some(&previous), "2026-01-01T21:30:00Z"),
        stall(ReconcileError::from_hub("h.azure-devices.net", quota())),
        before.state,
    );
    let status = decision.status.clone().unwrap();
    let stalled = status.condition("Stalled").unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "DailyQuotaExceeded")
    );
    assert!(
        stalled.message.contains(
            "until the quota resets at 2026-01-02T00:00:00Z (00:00 UTC); monitoring resumes then"
        ),
        "{}",
        stalled.message
    );
    let ready = status.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DailyQuotaExceeded")
    );
    // Every earlier finding stays: devices, counts, the other conditions.
    assert_eq!(status.devices, previous.devices);
    assert_eq!(status.summary, previous.summary);
    for type_ in ["Reachable", "ModulesHealthy", "InSync", "Fresh"] {
        assert_eq!(
            status.condition(type_),
            previous.condition(type_),
            "{type_}"
        );
    }
    assert_eq!(decision.events.len(), 1);
    assert_eq!(decision.events[0].reason, Reason::DailyQuotaExceeded);
    // Back just after the reset: not a backoff, not a tight loop.
    assert_eq!(
        decision.requeue,
        Requeue::After(Duration::from_secs(2 * 3600 + 30 * 60) + QUOTA_RESET_MARGIN)
    );

    // Refused again (locally, later that night): the same status, no second Event.
    let again = decide(
        &facts(Some(&status), "2026-01-01T23:59:00Z"),
        stall(ReconcileError::from_hub(
            "h.azure-devices.net",
            hub_error(ErrorKind::DailyQuotaExceeded)
                .with_quota_reset(at("2026-01-02T00:00:00Z"), at("2026-01-01T23:59:00Z")),
        )),
        decision.state,
    );
    assert_eq!(again.status.as_ref(), Some(&status));
    assert!(again.events.is_empty());
    assert_eq!(
        again.requeue,
        Requeue::After(Duration::from_secs(60) + QUOTA_RESET_MARGIN)
    );

    // After the reset a sweep clears the stall.
    let resumed = decide(
        &facts(Some(&status), "2026-01-02T00:00:10Z"),
        swept(vec![healthy("a"), healthy("b")]),
        again.state,
    );
    let status = resumed.status.unwrap();
    assert!(status.condition("Stalled").is_none());
    assert_eq!(status.condition("Ready").unwrap().status, "True");
}
