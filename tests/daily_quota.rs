//! The hub's daily message quota runs out in the middle of a sweep (403002
//! IotHubQuotaExceeded): `edgewatch check` exits 2 with one line saying what happened and
//! when the quota resets; the operator shows `Stalled`/`DailyQuotaExceeded`, keeps every
//! earlier finding, sends the hub nothing more, and resumes by itself once the simulator's
//! clock has passed 00:00 UTC.
//!
//! Cost: `check` sweeps 20 devices against a quota of 30 messages (it is refused after
//! about 30); the operator sweeps 6 devices once in full (6 × ($edgeAgent 3 + $edgeHub 1) +
//! 6 pings × 2 = 36 messages), is refused after 3 more, and sweeps again after midnight
//! (about 24 messages, pings not due yet).

mod sim_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use edgewatch::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};
use edgewatch::controller::{
    Context, ControllerOptions, HubClientTemplate, HubSweeper, QuotaBudget, run_controller,
};
use edgewatch::iothub::billing::next_quota_reset;
use edgewatch::ops::metrics::Metrics;
use edgewatch::sim::{
    self, Action, ClockMode, DailyQuota, QuotaSettings, Scenario, SimConfig, SimHandle,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::runtime::events::{Recorder, Reporter};
use support::k8s_standin::StandIn;
use tokio::sync::oneshot;

// --- edgewatch check ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_exits_2_with_one_line_when_the_quota_runs_out_mid_sweep() {
    let sim = sim::start(SimConfig {
        devices: 20,
        daily_quota: Some(DailyQuota::parse("30").unwrap()),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.yaml");
    let devices = sim.device_ids().join(", ");
    std::fs::write(
        &file,
        format!(
            "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {{name: fleet}}\nspec:\n  hub: {{connectionStringSecretRef: {{name: hub, key: connectionString}}}}\n  devices: [{devices}]\n"
        ),
    )
    .unwrap();
    let before = next_quota_reset(Timestamp::now());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .args(["check", "-f"])
        .arg(&file)
        .args(["--hub-url", &sim.base_url()])
        .args(["--connection-string-env", "EW_QUOTA_TEST_CS"])
        .env("EW_QUOTA_TEST_CS", sim.connection_string())
        .output()
        .await
        .unwrap();
    let after = next_quota_reset(Timestamp::now());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing was judged, nothing printed");

    // One line: what happened, when it resets; no stack of repeated causes.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    let expected = |reset: Timestamp| {
        format!(
            "edgewatch check: IoT Hub {} has used up its daily message quota (403002 IotHubQuotaExceeded), so the watch could not be judged; the hub refuses twin reads, queries and direct methods until the quota resets at {reset} (00:00 UTC)",
            sim.host_name()
        )
    };
    assert!(
        line == expected(before) || line == expected(after),
        "{line}"
    );
    assert!(!line.contains(&sim.policies()[0].key), "no secret");

    // The sweep stopped at the first refusal: only calls already in flight were refused,
    // and no ping was sent after it.
    let billing = sim.billing_counts();
    assert!(billing.messages.total >= 30, "{billing:?}");
    let refused = billing.quota_exceeded.total;
    assert!((1..=16).contains(&refused), "{refused} calls refused");
    assert_eq!(
        billing.requests.methods, 0,
        "no ping after the quota ran out"
    );
    sim.shutdown().await;
}

// --- the operator -------------------------------------------------------------------------

const NS: &str = "iot";
const NAME: &str = "plant-a";
/// Twenty seconds before midnight on the simulator's clock: the quota resets soon.
const START: &str = "2026-03-01T23:59:40Z";

const SCENARIO: &str = "\
devices:
  - id: good-gw
  - id: bad-gw
    modules:
      - {name: worker, image: 'example.azurecr.io/worker:1.0', restartPolicy: never}
  - id: offline-gw
";

struct Rig {
    sim: SimHandle,
    standin: StandIn,
    metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    controller: Option<tokio::task::JoinHandle<()>>,
}

impl Rig {
    async fn start() -> Rig {
        let sim = sim::start(SimConfig {
            scenario: Scenario::from_yaml(SCENARIO).unwrap(),
            devices: 3,
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

        let standin = StandIn::start().await;
        standin.install_crd(&EdgeDeviceWatch::crd());
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hub", "namespace": NS},
            "stringData": {"connectionString": sim.connection_string()},
        }))
        .unwrap();
        standin.apply_object(&secret);
        let mut ids = sim.device_ids();
        ids.sort();
        let watch: EdgeDeviceWatch = serde_saphyr::from_str(&format!(
            "apiVersion: edgewatch.dev/v1alpha1
kind: EdgeDeviceWatch
metadata: {{name: {NAME}, namespace: {NS}}}
spec:
  hub: {{connectionStringSecretRef: {{name: hub, key: connectionString}}}}
  devices: [{}]
  interval: 10s
  ping: {{interval: 5m, timeoutSeconds: 5}}
",
            ids.join(", ")
        ))
        .unwrap();
        standin.apply_object(&watch);

        let metrics = Metrics::new(true);
        let sim_clock = Arc::new(sim.clock().clone());
        let template = HubClientTemplate {
            endpoint: Some(sim.base_url()),
            observer: Some(Arc::new(metrics.clone())),
            clock: Some(sim_clock.clone()),
            ..HubClientTemplate::default()
        };
        let client = standin.client();
        let reporter = Reporter {
            controller: "edgewatch".into(),
            instance: Some("quota".into()),
        };
        let mut ctx = Context::new(
            client.clone(),
            Recorder::new(client, reporter),
            HubSweeper::new(template, QuotaBudget::default()),
            Box::new(|| true),
        );
        let clock = sim.clock().clone();
        ctx.clock = Arc::new(move || clock.now());
        ctx.metrics = metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let controller = tokio::spawn(run_controller(
            Arc::new(ctx),
            ControllerOptions::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Rig {
            sim,
            standin,
            metrics,
            stop: Some(stop),
            controller: Some(controller),
        }
    }

    fn status(&self) -> Option<EdgeDeviceWatchStatus> {
        self.standin
            .get_object::<EdgeDeviceWatch>(Some(NS), NAME)?
            .status
    }

    async fn wait_for_status(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&EdgeDeviceWatchStatus) -> bool,
    ) -> EdgeDeviceWatchStatus {
        let reached = self
            .standin
            .wait_for(timeout, |s| {
                s.get_object::<EdgeDeviceWatch>(Some(NS), NAME)
                    .and_then(|w| w.status)
                    .is_some_and(|status| predicate(&status))
            })
            .await;
        assert!(reached, "{what}: {:#?}", self.status());
        self.status().unwrap()
    }

    /// Touches the watch's metadata: a reconcile without a spec change.
    fn poke(&self, n: u32) {
        let mut watch = self
            .standin
            .get_object::<EdgeDeviceWatch>(Some(NS), NAME)
            .unwrap();
        watch
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("test/poke".into(), n.to_string());
        self.standin.apply_object(&watch);
    }

    fn advance(&self, seconds: i64) {
        self.sim
            .clock()
            .advance(SignedDuration::from_secs(seconds))
            .unwrap();
    }

    /// Service requests the simulator answered, any status.
    fn hub_requests(&self) -> u64 {
        self.sim.billing_counts().requests.total
    }

    /// Reconciles that ended on the used-up quota, as the operator counts them.
    fn quota_reconciles(&self) -> u64 {
        let text = self.metrics.encode();
        text.lines()
            .find(|l| {
                l.starts_with("edgewatch_reconcile_errors_total{")
                    && l.contains(r#"error="daily_quota_exceeded""#)
            })
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |v| v.parse().unwrap())
    }

    /// Quota reconciles once none has run for two seconds: whatever the last trigger was
    /// (a poke, the watch's own status write) has been reconciled.
    async fn settled_quota_reconciles(&self) -> u64 {
        let mut seen = self.quota_reconciles();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = self.quota_reconciles();
            if now == seen {
                return now;
            }
            seen = now;
        }
    }

    /// The sum of `edgewatch_iothub_billed_messages_total`.
    fn billed(&self) -> u64 {
        self.metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("edgewatch_iothub_billed_messages_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.controller.take().unwrap())
            .await
            .expect("the controller stops")
            .unwrap();
        self.sim.shutdown().await;
    }
}

/// The findings of a status, without the ping round trips (measured, not decided).
fn findings(status: &EdgeDeviceWatchStatus) -> serde_json::Value {
    let mut status = status.clone();
    for device in &mut status.devices {
        device.ping_latency_ms = None;
    }
    status
        .conditions
        .retain(|c| c.type_ != "Ready" && c.type_ != "Stalled");
    serde_json::json!({
        "conditions": status.conditions,
        "devices": status.devices,
        "summary": status.summary,
        "hub": status.hub,
    })
}

fn condition<'a>(status: &'a EdgeDeviceWatchStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let c = status
        .condition(type_)
        .unwrap_or_else(|| panic!("no {type_}"));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_stalls_on_the_quota_keeps_its_findings_and_resumes_after_midnight() {
    let rig = Rig::start().await;
    let first = rig
        .wait_for_status("the first sweep", Duration::from_secs(30), |s| {
            s.summary.devices == 6 && s.condition("Ready").is_some()
        })
        .await;
    assert_eq!(condition(&first, "Ready").1, "DeviceNotOnline");
    assert_eq!(first.summary.unhealthy, 1);

    // The quota: what the first sweep used, plus 3 messages. The next sweep, ten simulated
    // seconds later, runs out in the middle of its twin reads.
    let used = rig.sim.billing_counts().days.last().unwrap().used;
    rig.sim.set_quota(QuotaSettings {
        daily_quota: Some(DailyQuota::parse(&(used + 3).to_string()).unwrap()),
        fleet_messages_per_device_day: 0,
    });
    rig.advance(15);
    rig.poke(1);
    let stalled = rig
        .wait_for_status("the stall", Duration::from_secs(30), |s| {
            s.condition("Stalled")
                .is_some_and(|c| c.reason == "DailyQuotaExceeded")
        })
        .await;
    let (status, _, message) = condition(&stalled, "Stalled");
    assert_eq!(status, "True");
    assert!(
        message.contains(
            "until the quota resets at 2026-03-02T00:00:00Z (00:00 UTC); monitoring resumes then"
        ),
        "{message}"
    );
    assert!(!message.contains("Tracking ID"), "{message}");
    assert_eq!(
        condition(&stalled, "Ready"),
        ("False", "DailyQuotaExceeded", message)
    );
    assert_eq!(
        findings(&stalled),
        findings(&first),
        "no earlier finding is lost"
    );
    let billing = rig.sim.billing_counts();
    assert!(billing.quota_exceeded.total >= 1, "{billing:?}");
    assert!(
        rig.standin
            .wait_for(Duration::from_secs(10), |s| {
                s.events(Some(NS)).iter().any(|e| {
                    e.reason.as_deref() == Some("DailyQuotaExceeded")
                        && e.type_.as_deref() == Some("Warning")
                })
            })
            .await,
        "a Warning Event announces the stall"
    );

    // Until midnight the hub hears nothing more, however often the watch is reconciled.
    let requests = rig.hub_requests();
    let reconciles = rig.settled_quota_reconciles().await;
    rig.poke(2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rig.quota_reconciles() <= reconciles {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poke was reconciled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.settled_quota_reconciles().await;
    assert_eq!(
        rig.hub_requests(),
        requests,
        "no call while the quota is used up"
    );
    assert_eq!(rig.status().as_ref(), Some(&stalled), "nothing rewritten");

    // 23:59:55 → 00:00:05, with no reconcile pending (each requeue is at least the 10 s
    // margin away). Nobody touches the watch: the operator's own requeue, just after the
    // reset, sweeps again and clears the stall.
    rig.advance(10);
    let resumed = rig
        .wait_for_status("the resumption", Duration::from_secs(60), |s| {
            s.condition("Stalled").is_none() && s.condition("Ready").is_some()
        })
        .await;
    assert_eq!(condition(&resumed, "Ready").1, "DeviceNotOnline");
    assert_eq!(
        findings(&resumed),
        findings(&first),
        "the fleet is judged as before"
    );
    let billing = rig.sim.billing_counts();
    let today = billing.days.last().unwrap();
    assert_eq!(today.date.to_string(), "2026-03-02");
    assert!(today.messages.twin_reads > 0, "{billing:?}");
    assert_eq!(
        rig.billed(),
        billing.messages.total,
        "the operator's metric agrees with what the hub billed"
    );
    rig.stop().await;
}
