//! The production sweeper against the in-process IoT Hub simulator over real HTTP: device
//! resolution, batched reads, GET confirmation, ping cadence and hub-level failures. The
//! watch's state is folded by `decide`, as in every reconcile.

use std::time::Duration;

use jiff::SignedDuration;

use super::hub_clients::HubClientTemplate;
use super::hub_sweeper::HubSweeper;
use super::read_plan::QuotaBudget;
use super::{Observations, PreparedWatch, Sweeper};
use crate::api::EdgeDeviceWatchSpec;
use crate::controller::decide::{Attempt, Decision, Facts, decide};
use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::credentials::HubCredentials;
use crate::controller::prepare::settings::WatchSettings;
use crate::controller::state::WatchState;
use crate::controller::status::build::StatusLimits;
use crate::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};
use crate::iothub::ConnectionString;
use crate::sim::{self, Action, ClockMode, Scenario, SimConfig, SimHandle};

const SCENARIO: &str = "\
devices:
  - id: line1-gw
    tags: {site: plant-a}
  - id: line2-gw
    tags: {site: plant-a}
  - id: other-gw
    tags: {site: plant-b}
";

async fn simulator() -> SimHandle {
    sim::start(SimConfig {
        scenario: Scenario::from_yaml(SCENARIO).unwrap(),
        devices: 0,
        clock: ClockMode::Manual {
            start: "2026-03-01T12:00:00Z".parse().unwrap(),
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn sweeper(sim: &SimHandle, budget: QuotaBudget) -> HubSweeper {
    HubSweeper::new(
        HubClientTemplate {
            endpoint: Some(sim.base_url()),
            ..HubClientTemplate::default()
        },
        budget,
    )
}

/// A budget under which batched queries are cheaper than GETs.
fn query_budget() -> QuotaBudget {
    QuotaBudget {
        queries_per_minute: 1_000_000.0,
        page_size: 1000,
        ..QuotaBudget::default()
    }
}

fn spec(extra: &str) -> EdgeDeviceWatchSpec {
    serde_saphyr::from_str(&format!(
        "hub: {{connectionStringSecretRef: {{name: s, key: k}}}}\n{extra}"
    ))
    .unwrap()
}

/// Sweeps once and folds what it saw into `state` through `decide`.
async fn sweep(
    sweeper: &HubSweeper,
    sim: &SimHandle,
    spec: &EdgeDeviceWatchSpec,
    credentials: &HubCredentials,
    state: &mut WatchState,
) -> Result<Observations, ReconcileError> {
    let settings = WatchSettings::from_spec(spec).unwrap();
    let key = WatchKey {
        namespace: "iot".into(),
        name: "plant-a".into(),
    };
    let now = sim.clock().now();
    let watch = PreparedWatch {
        key: &key,
        spec,
        settings: &settings,
        credentials,
        now,
    };
    let observations = sweeper.sweep(&watch, state).await.map_err(|f| f.error)?;
    fold(state, observations.clone(), now);
    Ok(observations)
}

/// What `decide` makes of `observations` (and the state after it).
fn fold(state: &mut WatchState, observations: Observations, now: jiff::Timestamp) -> Decision {
    let facts = Facts {
        generation: Some(1),
        host_name: None,
        previous: None,
        now,
        limits: &StatusLimits::default(),
    };
    let attempt = Attempt::Swept {
        observations,
        interval: Duration::from_secs(60),
    };
    let mut decision = decide(&facts, attempt, std::mem::take(state));
    std::mem::swap(state, &mut decision.state);
    decision
}

fn sas(sim: &SimHandle) -> HubCredentials {
    HubCredentials::ConnectionString(ConnectionString::parse(&sim.connection_string()).unwrap())
}

fn aspect(report: &DeviceReport, type_: ConditionType) -> (ConditionStatus, Reason) {
    let c = report.condition(type_).unwrap();
    (c.status, c.reason)
}

fn report<'a>(output: &'a Observations, device: &str) -> &'a DeviceReport {
    output.reports().find(|r| r.device_id == device).unwrap()
}

#[tokio::test]
async fn explicit_devices_are_read_pinged_and_judged() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("devices: [line1-gw, line2-gw]\n");
    let mut state = WatchState::default();
    let output = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(output.hub, sim.host_name());
    assert_eq!(output.verdicts.len(), 2);
    assert_eq!(output.pings.len(), 2);
    for r in output.reports() {
        assert!(r.is_ready(), "{:#?}", r.conditions);
        assert_eq!(
            aspect(r, ConditionType::Reachable),
            (ConditionStatus::True, Reason::AgentResponded)
        );
    }
    let counts = sim.request_counts();
    assert_eq!(
        counts.twin_reads, 4,
        "two module twins per device by GET on S1"
    );
    assert_eq!(counts.queries, 0);
    assert_eq!(counts.methods, 2);
}

#[tokio::test]
async fn the_selector_adds_only_matching_edge_devices() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("selector: {query: \"tags.site = 'plant-a'\"}\n");
    let output = sweep(
        &sweeper,
        &sim,
        &spec,
        &sas(&sim),
        &mut WatchState::default(),
    )
    .await
    .unwrap();
    let ids: Vec<&str> = output.reports().map(|r| r.device_id.as_str()).collect();
    assert_eq!(ids, ["line1-gw", "line2-gw"]);
}

#[tokio::test]
async fn a_selector_the_hub_refuses_is_an_invalid_spec() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("selector: {query: \"COUNT(tags.site) > 1\"}\n");
    let error = sweep(
        &sweeper,
        &sim,
        &spec,
        &sas(&sim),
        &mut WatchState::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.stall_reason(), Some(Reason::InvalidSpec), "{error}");
}

#[tokio::test]
async fn pings_follow_their_own_cadence() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("devices: [line1-gw]\ninterval: 10s\nping: {interval: 5m}\n");
    let mut state = WatchState::default();
    sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    sim.clock().advance(SignedDuration::from_mins(1)).unwrap();
    sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(
        sim.request_counts().methods,
        1,
        "not due again after one minute"
    );
    sim.clock().advance(SignedDuration::from_mins(5)).unwrap();
    sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(
        sim.request_counts().methods,
        2,
        "due after the ping interval"
    );
}

#[tokio::test]
async fn an_offline_device_is_unreachable_once_pinged() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("devices: [line1-gw, line2-gw]\nping: {interval: 10s}\n");
    let mut state = WatchState::default();
    sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    sim.apply("line2-gw", Action::Offline {}).unwrap();
    sim.clock().advance(SignedDuration::from_secs(11)).unwrap();
    let output = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(
        aspect(report(&output, "line2-gw"), ConditionType::Reachable),
        (ConditionStatus::False, Reason::DeviceNotOnline)
    );
    assert!(report(&output, "line1-gw").is_ready());
    assert_eq!(state.memory().ping_failures.len(), 1);
    assert!(output.pings.iter().any(|(d, _)| d == "line2-gw"));
}

#[tokio::test]
async fn batched_queries_read_the_fleet_and_a_changed_verdict_is_confirmed_by_get() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, query_budget());
    let spec = spec("devices: [line1-gw, line2-gw, other-gw]\n");
    let mut state = WatchState::default();
    sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    let after_first = sim.request_counts();
    assert_eq!(after_first.queries, 1, "one query covers every twin");
    assert_eq!(
        after_first.twin_reads, 0,
        "healthy first sight needs no confirmation"
    );

    sim.apply(
        "line1-gw",
        Action::Crash {
            module: "SimulatedTemperatureSensor".into(),
            exit_code: 1,
        },
    )
    .unwrap();
    let second = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    let crashed = report(&second, "line1-gw");
    assert_eq!(
        aspect(crashed, ConditionType::ModulesHealthy).0,
        ConditionStatus::False
    );
    let after_second = sim.request_counts();
    assert_eq!(after_second.queries, 2);
    assert_eq!(
        after_second.twin_reads, 2,
        "only the changed device is re-read, by GET"
    );
}

#[tokio::test]
async fn a_wrong_key_is_authentication_failed() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let wrong = sim
        .connection_string()
        .split(';')
        .map(|part| {
            if part.starts_with("SharedAccessKey=") {
                "SharedAccessKey=d3Jvbmc="
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(";");
    let credentials = HubCredentials::ConnectionString(ConnectionString::parse(&wrong).unwrap());
    let spec = spec("devices: [line1-gw]\n");
    let error = sweep(
        &sweeper,
        &sim,
        &spec,
        &credentials,
        &mut WatchState::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.stall_reason(),
        Some(Reason::AuthenticationFailed),
        "{error}"
    );
    assert!(!error.to_string().contains("d3Jvbmc="));
}

#[tokio::test]
async fn a_device_that_cannot_be_read_keeps_its_previous_verdict() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("devices: [line1-gw]\n");
    let mut state = WatchState::default();
    let first = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    sim.set_faults(sim::FaultRates {
        server_error: 1.0,
        ..Default::default()
    })
    .unwrap();
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state),
    )
    .await
    .expect("retries end")
    .expect("a failing device does not fail the sweep");
    assert_eq!(
        second.reports().collect::<Vec<_>>(),
        first.reports().collect::<Vec<_>>()
    );
    assert!(
        second.verdicts.iter().all(|v| v.memory.is_none()),
        "kept, not re-judged"
    );
}

#[tokio::test]
async fn a_device_the_hub_does_not_know_is_device_not_found() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    for tail in ["", "ping: {enabled: false}\n"] {
        let spec = spec(&format!("devices: [line1-gw, line9-gw]\n{tail}"));
        let output = sweep(
            &sweeper,
            &sim,
            &spec,
            &sas(&sim),
            &mut WatchState::default(),
        )
        .await
        .unwrap();
        let unknown = report(&output, "line9-gw");
        assert_eq!(
            aspect(unknown, ConditionType::Reachable),
            (ConditionStatus::False, Reason::DeviceNotFound),
            "{tail}"
        );
        assert_eq!(
            aspect(unknown, ConditionType::Ready),
            (ConditionStatus::False, Reason::DeviceNotFound)
        );
        let message = &unknown.condition(ConditionType::Reachable).unwrap().message;
        assert!(
            message.contains("\"line9-gw\"") && message.contains("404001"),
            "{message}"
        );
        let known = report(&output, "line1-gw");
        assert_ne!(
            aspect(known, ConditionType::Reachable).1,
            Reason::DeviceNotFound,
            "{tail}"
        );
    }
}

#[tokio::test]
async fn a_failed_deployment_is_in_progress_within_grace_and_failed_after() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("devices: [line1-gw]\ndeploymentGracePeriod: 2m\n");
    sim.apply(
        "line1-gw",
        Action::Deploy {
            images: [(
                "SimulatedTemperatureSensor".to_owned(),
                "example/sensor:2.0".to_owned(),
            )]
            .into(),
            outcome: sim::DeployOutcome::Failed,
            delay: SignedDuration::from_secs(5),
        },
    )
    .unwrap();
    sim.clock().advance(SignedDuration::from_secs(30)).unwrap();
    let mut state = WatchState::default();
    let early = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(
        aspect(report(&early, "line1-gw"), ConditionType::InSync),
        (ConditionStatus::Unknown, Reason::DeploymentInProgress)
    );
    sim.clock().advance(SignedDuration::from_mins(2)).unwrap();
    let late = sweep(&sweeper, &sim, &spec, &sas(&sim), &mut state)
        .await
        .unwrap();
    assert_eq!(
        aspect(report(&late, "line1-gw"), ConditionType::InSync),
        (ConditionStatus::False, Reason::DeploymentFailed)
    );
}

#[tokio::test]
async fn a_selector_matching_no_device_is_no_devices_matched() {
    let sim = simulator().await;
    let sweeper = sweeper(&sim, QuotaBudget::default());
    let spec = spec("selector: {query: \"tags.site = 'plant-z'\"}\n");
    let settings = WatchSettings::from_spec(&spec).unwrap();
    let key = WatchKey {
        namespace: "iot".into(),
        name: "plant-z".into(),
    };
    let credentials = sas(&sim);
    let watch = PreparedWatch {
        key: &key,
        spec: &spec,
        settings: &settings,
        credentials: &credentials,
        now: sim.clock().now(),
    };
    let mut state = WatchState::default();
    let output = sweeper.sweep(&watch, &state).await.unwrap();
    assert!(output.verdicts.is_empty());
    let decision = fold(&mut state, output, sim.clock().now());
    let status = decision.status.unwrap();
    let ready = status.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("Unknown", "NoDevicesMatched")
    );
    assert_eq!(status.summary.devices, 0);
}
