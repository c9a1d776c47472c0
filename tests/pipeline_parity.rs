//! One reconcile pipeline: the operator (`reconcile` against the Kubernetes API stand-in)
//! and `edgewatch check` / `edgewatch demo` (without Kubernetes) run the same watch over
//! the same simulated fleet and write the same status: conditions with their reasons and
//! messages, summary, devices, memory. Also for a suspended watch and one not due yet.
//!
//! IoT Hub cost per full sweep of this fleet: 8 twin GETs and 4 pings (4 devices, no
//! custom module), about 8 × 2 + 4 × 2 = 24 billed messages on a real hub.

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use edgewatch::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use edgewatch::cli::check::{CheckArgs, check};
use edgewatch::cli::render::OutputFormat;
use edgewatch::controller::{
    Context, GivenConnectionString, HubClientTemplate, HubSweeper, LocalWatch, QuotaBudget,
    reconcile,
};
use edgewatch::sim::{self, Action, ClockMode, Scenario, SimConfig, SimHandle};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Recorder, Reporter};
use support::k8s_standin::StandIn;

const NS: &str = "iot";
const NAME: &str = "plant-a";
const START: &str = "2026-03-01T12:00:00Z";

const SCENARIO: &str = "\
devices:
  - id: good-gw
  - id: bad-gw
    modules:
      - {name: worker, image: 'example.azurecr.io/worker:1.0', restartPolicy: never}
  - id: offline-gw
  - id: slow-gw
";

fn watch_yaml(generation: i64, spec_tail: &str) -> String {
    format!(
        "apiVersion: edgewatch.dev/v1alpha1
kind: EdgeDeviceWatch
metadata: {{name: {NAME}, namespace: {NS}, generation: {generation}}}
spec:
  hub: {{connectionStringSecretRef: {{name: hub, key: connectionString}}}}
  devices: [good-gw, bad-gw, offline-gw, slow-gw, typo-gw]
  ping: {{interval: 30s, timeoutSeconds: 5}}
{spec_tail}"
    )
}

struct Rig {
    sim: SimHandle,
    standin: StandIn,
    ctx: Arc<Context<HubSweeper>>,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let sim = sim::start(SimConfig {
            scenario: Scenario::from_yaml(SCENARIO).unwrap(),
            devices: 0,
            clock: ClockMode::Manual {
                start: START.parse().unwrap(),
            },
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let crash = Action::Crash {
            module: "worker".into(),
            exit_code: 1,
        };
        sim.apply("bad-gw", crash).unwrap();
        sim.apply("offline-gw", Action::Offline {}).unwrap();
        sim.apply("slow-gw", Action::Slow {}).unwrap();

        let standin = StandIn::start().await;
        standin.install_crd(&EdgeDeviceWatch::crd());
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hub", "namespace": NS},
            "stringData": {"connectionString": sim.connection_string()},
        }))
        .unwrap();
        standin.apply_object(&secret);
        let client = standin.client();
        let reporter = Reporter {
            controller: "edgewatch".into(),
            instance: Some("parity".into()),
        };
        let mut ctx = Context::new(
            client.clone(),
            Recorder::new(client, reporter),
            HubSweeper::new(template(&sim), QuotaBudget::default()),
            Box::new(|| true),
        );
        let clock = sim.clock().clone();
        ctx.clock = Arc::new(move || clock.now());
        Rig {
            sim,
            standin,
            ctx: Arc::new(ctx),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn now(&self) -> Timestamp {
        self.sim.clock().now()
    }

    fn advance(&self, seconds: i64) {
        self.sim
            .clock()
            .advance(SignedDuration::from_secs(seconds))
            .unwrap();
    }

    fn apply(&self, yaml: &str) {
        let watch: EdgeDeviceWatch = serde_saphyr::from_str(yaml).unwrap();
        self.standin.apply_object(&watch);
    }

    fn watch(&self) -> EdgeDeviceWatch {
        self.standin
            .get_object::<EdgeDeviceWatch>(Some(NS), NAME)
            .unwrap()
    }

    /// One reconcile of the operator; the status it wrote.
    async fn operator(&self) -> (Requeue, EdgeDeviceWatchStatus) {
        let action = reconcile(Arc::new(self.watch()), self.ctx.clone())
            .await
            .expect("no Kubernetes API error");
        (action, self.watch().status.expect("a status was written"))
    }

    /// `check` on a watch file, as the binary runs it but at the simulator's time.
    async fn check(&self, yaml: &str) -> EdgeDeviceWatchStatus {
        let cs = self.sim.connection_string();
        let checked = check(&self.check_args(yaml), |_| Some(cs.clone()), self.now())
            .await
            .expect("check judges the watch");
        serde_json::from_str(&checked.text).unwrap()
    }

    fn check_args(&self, yaml: &str) -> CheckArgs {
        let file = self.dir.path().join("watch.yaml");
        std::fs::write(&file, yaml).unwrap();
        CheckArgs {
            file,
            connection_string_env: "EW_PARITY_CS".into(),
            hub_url: Some(self.sim.base_url()),
            ca_file: None,
            output: OutputFormat::Json,
        }
    }

    /// `demo`'s runner on the same watch.
    fn local(&self, yaml: &str) -> LocalWatch<GivenConnectionString> {
        LocalWatch::new(
            serde_saphyr::from_str(yaml).unwrap(),
            GivenConnectionString::new("the simulator", Some(self.sim.connection_string())),
            template(&self.sim),
        )
    }
}

fn template(sim: &SimHandle) -> HubClientTemplate {
    HubClientTemplate {
        endpoint: Some(sim.base_url()),
        ..HubClientTemplate::default()
    }
}

/// The status without the ping round trips, the one thing measured rather than decided.
fn decided(mut status: EdgeDeviceWatchStatus) -> EdgeDeviceWatchStatus {
    for device in &mut status.devices {
        device.ping_latency_ms = None;
    }
    status
}

fn reasons(status: &EdgeDeviceWatchStatus) -> BTreeMap<String, String> {
    status
        .devices
        .iter()
        .map(|d| (d.device_id.clone(), d.ready.reason.as_str().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_check_and_demo_write_the_same_status() {
    let rig = Rig::start().await;
    let yaml = watch_yaml(1, "");
    rig.apply(&yaml);
    let (action, operator) = rig.operator().await;
    assert_eq!(action, Requeue::requeue(Duration::from_secs(60)));
    let checked = rig.check(&yaml).await;
    assert_eq!(decided(checked), decided(operator.clone()));

    // The fleet is judged, not merely equal: every kind of device got its reason.
    assert_eq!(
        reasons(&operator),
        BTreeMap::from(
            [
                ("bad-gw", "ModuleFailed"),
                ("good-gw", "Ready"),
                ("offline-gw", "DeviceNotOnline"),
                ("slow-gw", "PingTimeout"),
                ("typo-gw", "DeviceNotFound"),
            ]
            .map(|(d, r)| (d.to_owned(), r.to_owned()))
        )
    );
    let ready = operator.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DeviceNotOnline")
    );
    assert_eq!(operator.summary.devices, 5);
    assert_eq!(operator.summary.unreachable, 3);

    // demo's runner, reconciled at the same instant, agrees too.
    let mut local = rig.local(&yaml);
    local.reconcile(rig.now()).await.unwrap();
    assert_eq!(
        decided(local.watch().status.clone().unwrap()),
        decided(operator)
    );
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_not_due_yet_is_left_alone_by_every_path() {
    let rig = Rig::start().await;
    let yaml = watch_yaml(1, "");
    rig.apply(&yaml);
    let mut local = rig.local(&yaml);
    let (_, first) = rig.operator().await;
    local.reconcile(rig.now()).await.unwrap();
    let swept = rig.sim.request_counts();

    // Ten seconds later the 60s interval has not passed: nothing is read, nothing
    // changes, the operator waits out the rest of the interval.
    rig.advance(10);
    let (action, operator) = rig.operator().await;
    local.reconcile(rig.now()).await.unwrap();
    assert_eq!(action, Requeue::requeue(Duration::from_secs(50)));
    assert_eq!(
        rig.sim.request_counts(),
        swept,
        "not due: no IoT Hub request"
    );
    assert_eq!(operator, first);
    assert_eq!(
        decided(local.watch().status.clone().unwrap()),
        decided(operator)
    );

    // Past the interval both sweep again and still agree.
    rig.advance(60);
    let (_, operator) = rig.operator().await;
    local.reconcile(rig.now()).await.unwrap();
    assert!(rig.sim.request_counts().twin_reads > swept.twin_reads);
    assert_eq!(
        decided(local.watch().status.clone().unwrap()),
        decided(operator)
    );
    rig.sim.shutdown().await;
}

fn run_check(rig: &Rig, yaml: &str) -> Output {
    let args = rig.check_args(yaml);
    std::process::Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .args(["check", "-o", "json", "--hub-url", &rig.sim.base_url()])
        .arg("-f")
        .arg(&args.file)
        .env_remove("IOTHUB_CONNECTION_STRING")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_watch_shows_the_same_status_in_check_and_the_operator() {
    let rig = Rig::start().await;
    rig.apply(&watch_yaml(1, ""));
    let (_, swept) = rig.operator().await;

    // Suspended later: the last known state stays, Ready says so.
    rig.advance(120);
    let mut suspended = rig.watch();
    suspended.spec.suspend = true;
    rig.standin.apply_object(&suspended);
    assert_eq!(rig.watch().metadata.generation, Some(2));
    let suspended_yaml = watch_yaml(2, "  suspend: true\n");
    let (action, operator) = rig.operator().await;
    assert_eq!(action, Requeue::await_change());
    let ready = operator.condition("Ready").unwrap();
    assert!(
        ready.message.starts_with("Suspended: "),
        "{}",
        ready.message
    );
    assert_eq!(operator.devices, swept.devices);

    // The same watch file, with the status it had, through the real `check` binary:
    // suspended, so no IoT Hub request and no connection string are needed.
    let with_status = format!(
        "{suspended_yaml}status:\n{}",
        indent(&serde_saphyr::to_string(&swept).unwrap())
    );
    let before = rig.sim.request_counts();
    let out = run_check(&rig, &with_status);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not Ready, as the last known state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: EdgeDeviceWatchStatus = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, operator);
    assert_eq!(rig.sim.request_counts(), before);
    rig.sim.shutdown().await;
}

fn indent(yaml: &str) -> String {
    yaml.lines().map(|l| format!("  {l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_failures_error_code_reaches_the_finding_and_the_event() {
    let rig = Rig::start().await;
    rig.apply(&watch_yaml(1, ""));
    let (_, status) = rig.operator().await;
    let finding = |device: &str| {
        let entry = status.devices.iter().find(|d| d.device_id == device);
        entry.unwrap().message.clone()
    };
    let slow = finding("slow-gw");
    assert!(
        slow.contains("(ping: 504101 GatewayTimeout: Timed out waiting"),
        "{slow}"
    );
    let typo = finding("typo-gw");
    assert!(
        typo.contains("\"typo-gw\"") && typo.contains("404001"),
        "{typo}"
    );
    let events = rig.standin.events(Some(NS));
    let note_of = |device: &str| {
        events
            .iter()
            .filter_map(|e| e.note.clone())
            .find(|n| n.starts_with(&format!("device {device}: ")))
            .unwrap_or_else(|| panic!("no Event about {device}: {events:?}"))
    };
    assert!(note_of("slow-gw").contains("504101 GatewayTimeout"));
    assert!(note_of("offline-gw").contains("404103 DeviceNotOnline"));
    assert!(note_of("typo-gw").contains("404001"));
    rig.sim.shutdown().await;
}
