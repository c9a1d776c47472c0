//! Reconcile tests against the Kubernetes API stand-in, with a scripted sweeper standing
//! in for IoT Hub: what the status, the status writes and the Events do as the fleet moves.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgewatch::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use edgewatch::controller::{
    Context, Observations, PreparedWatch, ReconcileError, StatusLimits, SweepFailure, Sweeper,
    WatchKey, WatchState, reconcile,
};
use edgewatch::health::report::{
    ConditionStatus, ConditionType, DeviceCondition, DeviceReport, ModuleReport, Reason,
};
use edgewatch::iothub::{ErrorKind, IotHubError, Operation};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResourceExt;
use kube::runtime::events::{Recorder, Reporter};
use support::k8s_standin::StandIn;

const NS: &str = "iot";
const NAME: &str = "plant-a";
const HUB: &str = "plant-a.azure-devices.net";

// ---- what the scripted hub answers ------------------------------------------------------

#[derive(Clone)]
enum Answer {
    Reports(Vec<DeviceReport>),
    Unauthorized,
    Throttled(Duration),
}

#[derive(Clone, Default)]
struct ScriptedSweeper {
    answer: Arc<Mutex<Option<Answer>>>,
    sweeps: Arc<AtomicI64>,
    quota_time: Arc<Mutex<Duration>>,
}

impl ScriptedSweeper {
    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = Some(answer);
    }
}

impl Sweeper for ScriptedSweeper {
    async fn sweep(
        &self,
        _watch: &PreparedWatch<'_>,
        _state: &WatchState,
    ) -> Result<Observations, SweepFailure> {
        self.sweeps.fetch_add(1, Ordering::SeqCst);
        match self
            .answer
            .lock()
            .unwrap()
            .clone()
            .expect("the test scripts an answer")
        {
            Answer::Reports(reports) => {
                let mut observations = Observations::from_reports(HUB, reports);
                observations.cost.quota_time = *self.quota_time.lock().unwrap();
                Ok(observations)
            }
            Answer::Unauthorized => Err(ReconcileError::from_hub(
                HUB,
                IotHubError::new(
                    ErrorKind::Unauthorized,
                    Operation::GetModuleTwin,
                    "the SAS policy was revoked",
                )
                .with_status(401),
            )
            .into()),
            Answer::Throttled(after) => Err(ReconcileError::from_hub(
                HUB,
                IotHubError::new(ErrorKind::Throttled, Operation::GetModuleTwin, "slow down")
                    .with_retry_after(Some(after)),
            )
            .into()),
        }
    }
}

// ---- device reports ----------------------------------------------------------------------

fn condition(type_: ConditionType, status: ConditionStatus, reason: Reason) -> DeviceCondition {
    DeviceCondition {
        type_,
        status,
        reason,
        message: format!("{} {reason}", type_.as_str()),
    }
}

fn module(name: &str, verdict: Reason, runtime: &str, exit: i64) -> ModuleReport {
    ModuleReport {
        name: name.to_owned(),
        desired_status: Some("running".into()),
        runtime_status: Some(runtime.into()),
        exit_code: Some(exit),
        restart_count: Some(2),
        last_start_time: None,
        last_exit_time: None,
        last_restart_time: None,
        image_desired: None,
        image_reported: None,
        verdict,
        message: format!("module {name} is {runtime} (exit code {exit})"),
    }
}

fn healthy(device: &str) -> DeviceReport {
    DeviceReport {
        device_id: device.to_owned(),
        conditions: vec![
            condition(ConditionType::Ready, ConditionStatus::True, Reason::Ready),
            condition(
                ConditionType::Reachable,
                ConditionStatus::True,
                Reason::AgentResponded,
            ),
            condition(
                ConditionType::ModulesHealthy,
                ConditionStatus::True,
                Reason::AllModulesHealthy,
            ),
            condition(ConditionType::InSync, ConditionStatus::True, Reason::InSync),
            condition(
                ConditionType::Fresh,
                ConditionStatus::True,
                Reason::ReportCurrent,
            ),
        ],
        modules: vec![module(
            "SimulatedTemperatureSensor",
            Reason::AllModulesHealthy,
            "running",
            0,
        )],
        drift: vec![],
        ping_latency_ms: Some(20),
        reported_at: None,
        disconnected_clients: vec![],
    }
}

fn sensor_failed(device: &str) -> DeviceReport {
    let mut report = healthy(device);
    report.modules = vec![module(
        "SimulatedTemperatureSensor",
        Reason::ModuleFailed,
        "failed",
        1,
    )];
    for c in &mut report.conditions {
        if matches!(
            c.type_,
            ConditionType::Ready | ConditionType::ModulesHealthy
        ) {
            c.status = ConditionStatus::False;
            c.reason = Reason::ModuleFailed;
            c.message = "module SimulatedTemperatureSensor failed (exit code 1)".into();
        }
    }
    report
}

// ---- harness -----------------------------------------------------------------------------

struct Harness {
    standin: StandIn,
    sweeper: ScriptedSweeper,
    ctx: Arc<Context<ScriptedSweeper>>,
    minutes: Arc<AtomicI64>,
}

impl Harness {
    async fn start(watch_yaml: &str) -> Self {
        Self::start_with(watch_yaml, StatusLimits::default(), true).await
    }

    async fn start_with(watch_yaml: &str, limits: StatusLimits, leader: bool) -> Self {
        let standin = StandIn::start().await;
        standin.install_crd(&EdgeDeviceWatch::crd());
        let watch: EdgeDeviceWatch = serde_saphyr::from_str(watch_yaml).unwrap();
        standin.apply_object(&watch);
        let client = standin.client();
        let sweeper = ScriptedSweeper::default();
        let reporter = Reporter {
            controller: "edgewatch".into(),
            instance: Some("test".into()),
        };
        let mut ctx = Context::new(
            client.clone(),
            Recorder::new(client, reporter),
            sweeper.clone(),
            Box::new(move || leader),
        );
        let minutes = Arc::new(AtomicI64::new(0));
        let clock_minutes = minutes.clone();
        ctx.clock = Arc::new(move || {
            let base: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
            base + jiff::SignedDuration::from_mins(clock_minutes.load(Ordering::SeqCst))
        });
        ctx.limits = limits;
        Self {
            standin,
            sweeper,
            ctx: Arc::new(ctx),
            minutes,
        }
    }

    fn watch(&self) -> EdgeDeviceWatch {
        self.standin
            .get_object::<EdgeDeviceWatch>(Some(NS), NAME)
            .expect("the watch exists")
    }

    /// One reconcile, a few minutes after the previous one (past the 60s interval).
    async fn reconcile(&self) -> kube::runtime::controller::Action {
        self.minutes.fetch_add(2, Ordering::SeqCst);
        reconcile(Arc::new(self.watch()), self.ctx.clone())
            .await
            .expect("no Kubernetes API error")
    }

    fn status(&self) -> EdgeDeviceWatchStatus {
        self.watch().status.expect("a status was written")
    }

    fn status_writes(&self) -> usize {
        self.standin.status_patches("edgedevicewatches", NS, NAME)
    }

    fn events(&self) -> Vec<k8s_openapi::api::events::v1::Event> {
        self.standin.events(Some(NS))
    }
}

fn find<'a>(status: &'a EdgeDeviceWatchStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions))
}

const SAS_WATCH: &str = r#"
apiVersion: edgewatch.dev/v1alpha1
kind: EdgeDeviceWatch
metadata: {name: plant-a, namespace: iot}
spec:
  hub: {connectionStringSecretRef: {name: plant-a-iothub, key: connectionString}}
  devices: [line1-gw, line2-gw]
"#;

fn hub_secret() -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("plant-a-iothub".into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        string_data: None,
        data: Some(BTreeMap::from([(
            "connectionString".to_owned(),
            k8s_openapi::ByteString(
                format!("HostName={HUB};SharedAccessKeyName=edgewatch;SharedAccessKey=c2VjcmV0")
                    .into_bytes(),
            ),
        )])),
        ..Default::default()
    }
}

async fn ready_harness() -> Harness {
    let h = Harness::start(SAS_WATCH).await;
    h.standin.apply_object(&hub_secret());
    h.sweeper.answer(Answer::Reports(vec![
        healthy("line1-gw"),
        healthy("line2-gw"),
    ]));
    h
}

// ---- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn first_reconcile_publishes_every_condition() {
    let h = ready_harness().await;
    let action = h.reconcile().await;
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(60))
    );
    let status = h.status();
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "Reachable", "ModulesHealthy", "InSync", "Fresh"]
    );
    assert!(status.conditions.iter().all(|c| c.status == "True"));
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(1))
    );
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.hub.as_deref(), Some(HUB));
    assert_eq!(status.summary.devices, 2);
    assert_eq!(status.summary.ready, 2);
    assert_eq!(status.devices.len(), 2);
    assert_eq!(h.status_writes(), 1);
    assert!(
        h.events().is_empty(),
        "healthy devices seen first are no transition"
    );
}

#[tokio::test]
async fn an_unchanged_world_writes_no_status() {
    let h = ready_harness().await;
    h.reconcile().await;
    assert_eq!(h.status_writes(), 1);
    for _ in 0..5 {
        h.reconcile().await;
    }
    assert_eq!(
        h.sweeper.sweeps.load(Ordering::SeqCst),
        6,
        "every reconcile swept"
    );
    assert_eq!(h.status_writes(), 1, "nothing changed, nothing written");
}

#[tokio::test]
async fn a_reconcile_triggered_by_its_own_write_does_not_sweep_again() {
    let h = ready_harness().await;
    h.reconcile().await;
    let action = reconcile(Arc::new(h.watch()), h.ctx.clone()).await.unwrap();
    assert_eq!(h.sweeper.sweeps.load(Ordering::SeqCst), 1);
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(60))
    );
}

#[tokio::test]
async fn a_failing_module_flips_conditions_once_and_warns_once() {
    let h = ready_harness().await;
    h.reconcile().await;
    let before = h.status();

    h.sweeper.answer(Answer::Reports(vec![
        sensor_failed("line1-gw"),
        healthy("line2-gw"),
    ]));
    h.reconcile().await;
    let failed = h.status();
    for type_ in ["ModulesHealthy", "Ready"] {
        let c = find(&failed, type_);
        assert_eq!(c.status, "False", "{type_}");
        assert_eq!(c.reason, "ModuleFailed");
        assert!(
            c.message.contains("line1-gw (ModuleFailed)"),
            "{}",
            c.message
        );
        assert_ne!(
            c.last_transition_time,
            find(&before, type_).last_transition_time
        );
    }
    assert_eq!(
        find(&failed, "Reachable").last_transition_time,
        find(&before, "Reachable").last_transition_time
    );
    assert_eq!(failed.summary.unhealthy, 1);
    assert_eq!(failed.devices[0].device_id, "line1-gw");
    assert_eq!(failed.devices[0].failing_modules[0].exit_code, Some(1));

    // Still failing: no write, the transition time stays, no second Event.
    h.reconcile().await;
    h.reconcile().await;
    assert_eq!(h.status_writes(), 2);
    assert_eq!(
        find(&h.status(), "Ready").last_transition_time,
        find(&failed, "Ready").last_transition_time
    );
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let warning = &events[0];
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.reason.as_deref(), Some("ModuleFailed"));
    let note = warning.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("line1-gw") && note.contains("SimulatedTemperatureSensor"),
        "{note}"
    );
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some(NAME)
    );
}

#[tokio::test]
async fn recovery_emits_one_normal_event() {
    let h = ready_harness().await;
    h.sweeper.answer(Answer::Reports(vec![
        sensor_failed("line1-gw"),
        healthy("line2-gw"),
    ]));
    h.reconcile().await;
    h.sweeper.answer(Answer::Reports(vec![
        healthy("line1-gw"),
        healthy("line2-gw"),
    ]));
    h.reconcile().await;
    h.reconcile().await;
    let events = h.events();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("Warning".to_owned(), "ModuleFailed".to_owned()),
            ("Normal".to_owned(), "AllModulesHealthy".to_owned())
        ]
    );
    assert_eq!(find(&h.status(), "Ready").status, "True");
}

#[tokio::test]
async fn a_missing_secret_stalls_until_it_is_created() {
    let h = Harness::start(SAS_WATCH).await;
    h.sweeper.answer(Answer::Reports(vec![
        healthy("line1-gw"),
        healthy("line2-gw"),
    ]));
    h.reconcile().await;
    let stalled = h.status();
    assert_eq!(find(&stalled, "Stalled").status, "True");
    assert_eq!(find(&stalled, "Stalled").reason, "SecretNotFound");
    assert_eq!(find(&stalled, "Ready").reason, "SecretNotFound");
    assert!(
        find(&stalled, "Ready")
            .message
            .contains("iot/plant-a-iothub")
    );
    assert_eq!(h.sweeper.sweeps.load(Ordering::SeqCst), 0);
    assert_eq!(h.ctx.consecutive_failures(&WatchKey::of(&h.watch(), "")), 1);

    h.standin.apply_object(&hub_secret());
    h.reconcile().await;
    let recovered = h.status();
    assert!(
        recovered.conditions.iter().all(|c| c.type_ != "Stalled"),
        "{:?}",
        recovered.conditions
    );
    assert_eq!(find(&recovered, "Ready").status, "True");
    assert_eq!(
        h.ctx.consecutive_failures(&WatchKey::of(&h.watch(), "")),
        0,
        "success resets the backoff"
    );
}

#[tokio::test]
async fn a_secret_without_the_key_is_secret_not_found_naming_the_key() {
    let h = Harness::start(SAS_WATCH).await;
    let mut secret = hub_secret();
    secret.data = Some(BTreeMap::from([(
        "other".to_owned(),
        k8s_openapi::ByteString(b"x".to_vec()),
    )]));
    h.standin.apply_object(&secret);
    h.reconcile().await;
    let status = h.status();
    assert_eq!(find(&status, "Stalled").reason, "SecretNotFound");
    assert!(
        find(&status, "Stalled")
            .message
            .contains("connectionString")
    );
}

#[tokio::test]
async fn unauthorized_stalls_as_authentication_failed_without_secrets() {
    let h = ready_harness().await;
    h.reconcile().await;
    h.sweeper.answer(Answer::Unauthorized);
    h.reconcile().await;
    let status = h.status();
    assert_eq!(find(&status, "Stalled").reason, "AuthenticationFailed");
    assert_eq!(find(&status, "Ready").status, "False");
    let text = serde_json::to_string(&status).unwrap();
    assert!(!text.contains("c2VjcmV0"), "the key leaked into the status");
    assert_eq!(status.devices.len(), 2, "the last known devices stay");
    assert_eq!(h.ctx.consecutive_failures(&WatchKey::of(&h.watch(), "")), 1);
    h.reconcile().await;
    assert_eq!(
        h.ctx.consecutive_failures(&WatchKey::of(&h.watch(), "")),
        2,
        "failures count up"
    );
}

#[tokio::test]
async fn throttling_keeps_the_last_known_state_and_backs_off() {
    let h = ready_harness().await;
    h.sweeper.answer(Answer::Reports(vec![
        sensor_failed("line1-gw"),
        healthy("line2-gw"),
    ]));
    h.reconcile().await;
    let known = h.status();
    h.sweeper
        .answer(Answer::Throttled(Duration::from_secs(600)));
    let action = h.reconcile().await;
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(600))
    );
    let throttled = h.status();
    let ready = find(&throttled, "Ready");
    assert!(ready.message.starts_with("Throttled"), "{}", ready.message);
    assert_eq!(ready.status, "False");
    assert_eq!(throttled.devices, known.devices);
    assert_eq!(throttled.summary, known.summary);
    assert!(throttled.conditions.iter().all(|c| c.type_ != "Stalled"));
    h.reconcile().await;
    assert_eq!(h.status_writes(), 2, "throttled twice is one write");
}

#[tokio::test]
async fn entries_are_capped_and_the_cut_is_flagged() {
    let limits = StatusLimits {
        max_device_entries: 50,
        ..StatusLimits::default()
    };
    let h = Harness::start_with(SAS_WATCH, limits, true).await;
    h.standin.apply_object(&hub_secret());
    let mut reports: Vec<DeviceReport> = (0..300).map(|i| healthy(&format!("gw-{i:03}"))).collect();
    reports.push(sensor_failed("zz-bad"));
    h.sweeper.answer(Answer::Reports(reports));
    h.reconcile().await;
    let status = h.status();
    assert!(status.devices_truncated);
    assert_eq!(status.devices.len(), 50);
    assert_eq!(status.summary.devices, 301);
    assert_eq!(status.devices[0].device_id, "zz-bad");
}

#[tokio::test]
async fn a_follower_never_writes() {
    let h = Harness::start_with(SAS_WATCH, StatusLimits::default(), false).await;
    h.standin.apply_object(&hub_secret());
    h.sweeper.answer(Answer::Reports(vec![healthy("line1-gw")]));
    h.reconcile().await;
    h.reconcile().await;
    assert_eq!(h.status_writes(), 0);
    assert_eq!(h.sweeper.sweeps.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_suspended_watch_is_not_swept_and_says_so() {
    let h = Harness::start(&SAS_WATCH.replace(
        "devices: [line1-gw, line2-gw]",
        "devices: [line1-gw]\n  suspend: true",
    ))
    .await;
    h.standin.apply_object(&hub_secret());
    h.sweeper.answer(Answer::Reports(vec![healthy("line1-gw")]));
    let action = h.reconcile().await;
    assert_eq!(action, kube::runtime::controller::Action::await_change());
    assert_eq!(h.sweeper.sweeps.load(Ordering::SeqCst), 0);
    let ready = find(&h.status(), "Ready").clone();
    assert!(ready.message.starts_with("Suspended"), "{}", ready.message);
    h.reconcile().await;
    assert_eq!(h.status_writes(), 1);
}

#[tokio::test]
async fn an_invalid_spec_that_slipped_past_cel_stalls() {
    let h = Harness::start(&SAS_WATCH.replace(
        "devices: [line1-gw, line2-gw]",
        "devices: [line1-gw]\n  interval: 2s",
    ))
    .await;
    h.reconcile().await;
    let status = h.status();
    let stalled = find(&status, "Stalled");
    assert_eq!(stalled.reason, "InvalidSpec");
    assert_eq!(stalled.message, "spec.interval: must be at least 10s");
    assert_eq!(find(&status, "Ready").message, stalled.message);
    // The same text in one Warning, not repeated while the spec stays as it is.
    h.reconcile().await;
    let events = h.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert_eq!(events[0].reason.as_deref(), Some("InvalidSpec"));
    assert_eq!(events[0].note.as_deref(), Some(stalled.message.as_str()));
}

#[tokio::test]
async fn an_interval_shorter_than_the_quota_allows_is_stated_once() {
    let h = ready_harness().await;
    *h.sweeper.quota_time.lock().unwrap() = Duration::from_secs(95);
    h.reconcile().await;
    let ready = find(&h.status(), "Ready").clone();
    assert_eq!(ready.status, "True");
    assert!(
        ready.message.ends_with("interval 60s is shorter than the ~95s of IoT Hub read quota one sweep of 2 devices needs; sweeps run late"),
        "{}",
        ready.message
    );
    h.reconcile().await;
    assert_eq!(
        h.status_writes(),
        1,
        "the remark is stable, so it costs no extra writes"
    );
}
