//! The running controller against the Kubernetes API stand-in: watches drive reconciles,
//! a Secret appearing re-reconciles the watches that use it, and only the Lease holder
//! writes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use edgewatch::api::EdgeDeviceWatch;
use edgewatch::controller::{
    Context, ControllerOptions, Leadership, LeaseSettings, Observations, PreparedWatch,
    SweepFailure, Sweeper, WatchState, run_controller,
};
use edgewatch::health::report::{
    ConditionStatus, ConditionType, DeviceCondition, DeviceReport, Reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;
use kube::runtime::events::{Recorder, Reporter};
use support::k8s_standin::StandIn;
use tokio::sync::oneshot;

/// Every device healthy.
#[derive(Clone, Default)]
struct HealthyFleet;

impl Sweeper for HealthyFleet {
    async fn sweep(
        &self,
        watch: &PreparedWatch<'_>,
        _state: &WatchState,
    ) -> Result<Observations, SweepFailure> {
        let reports = watch.spec.devices.iter().map(|d| healthy(d)).collect();
        Ok(Observations::from_reports(
            "plant-a.azure-devices.net",
            reports,
        ))
    }
}

fn healthy(device: &str) -> DeviceReport {
    let c = |type_, reason| DeviceCondition {
        type_,
        status: ConditionStatus::True,
        reason,
        message: String::new(),
    };
    DeviceReport {
        device_id: device.to_owned(),
        conditions: vec![
            c(ConditionType::Ready, Reason::Ready),
            c(ConditionType::Reachable, Reason::AgentResponded),
            c(ConditionType::ModulesHealthy, Reason::AllModulesHealthy),
            c(ConditionType::InSync, Reason::InSync),
            c(ConditionType::Fresh, Reason::ReportCurrent),
        ],
        modules: vec![],
        drift: vec![],
        ping_latency_ms: Some(5),
        reported_at: None,
        disconnected_clients: vec![],
    }
}

const WATCH: &str = r#"
apiVersion: edgewatch.dev/v1alpha1
kind: EdgeDeviceWatch
metadata: {name: plant-a, namespace: iot}
spec:
  hub: {connectionStringSecretRef: {name: plant-a-iothub, key: connectionString}}
  devices: [line1-gw]
"#;

fn secret() -> Secret {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "plant-a-iothub", "namespace": "iot"},
        "data": {"connectionString": "SG9zdE5hbWU9cGxhbnQtYS5henVyZS1kZXZpY2VzLm5ldDtTaGFyZWRBY2Nlc3NLZXlOYW1lPXA7U2hhcmVkQWNjZXNzS2V5PWMyVmpjbVYw"}
    }))
    .unwrap()
}

fn context(
    standin: &StandIn,
    leader: tokio::sync::watch::Receiver<bool>,
) -> Arc<Context<HealthyFleet>> {
    let client = standin.client();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "edgewatch".into(),
            instance: Some("test".into()),
        },
    );
    let mut ctx = Context::new(
        client,
        recorder,
        HealthyFleet,
        Box::new(move || *leader.borrow()),
    );
    ctx.follower_requeue = Duration::from_millis(200);
    Arc::new(ctx)
}

fn ready_reason(standin: &StandIn) -> Option<String> {
    let watch = standin.get_object::<EdgeDeviceWatch>(Some("iot"), "plant-a")?;
    watch
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_creation_re_reconciles_the_watch_that_uses_it() {
    let standin = StandIn::start().await;
    standin.install_crd(&EdgeDeviceWatch::crd());
    standin.apply_object(&serde_saphyr::from_str::<EdgeDeviceWatch>(WATCH).unwrap());
    let (_keep, leader) = tokio::sync::watch::channel(true);
    let (stop, stopped) = oneshot::channel::<()>();
    let controller = tokio::spawn(run_controller(
        context(&standin, leader),
        ControllerOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));

    let stalled = standin
        .wait_for(Duration::from_secs(10), |s| {
            ready_reason(s).as_deref() == Some("SecretNotFound")
        })
        .await;
    assert!(stalled, "the watch reports its missing Secret");

    // The backoff after SecretNotFound is several seconds; the Secret watch must not wait for it.
    standin.apply_object(&secret());
    let ready = standin
        .wait_for(Duration::from_secs(3), |s| {
            ready_reason(s).as_deref() == Some("Ready")
        })
        .await;
    assert!(ready, "creating the Secret re-reconciled the watch");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller shuts down gracefully")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_writes_and_a_successor_takes_over() {
    let standin = StandIn::start().await;
    standin.install_crd(&EdgeDeviceWatch::crd());
    standin.apply_object(&secret());
    let settings = |identity: &str| LeaseSettings {
        name: "edgewatch".into(),
        namespace: "iot".into(),
        identity: identity.into(),
        duration: Duration::from_secs(3),
        grace: Duration::from_secs(1),
    };
    let first = Leadership::elect(standin.client(), &settings("first"))
        .await
        .unwrap();
    let mut first_leads = first.subscribe();
    tokio::time::timeout(Duration::from_secs(5), first_leads.wait_for(|l| *l))
        .await
        .expect("the first replica acquires the Lease")
        .unwrap();
    let second = Leadership::elect(standin.client(), &settings("second"))
        .await
        .unwrap();

    let (stop_second, second_stopped) = oneshot::channel::<()>();
    let follower = tokio::spawn(run_controller(
        context(&standin, second.subscribe()),
        ControllerOptions::default(),
        async move {
            let _ = second_stopped.await;
        },
    ));
    standin.apply_object(&serde_saphyr::from_str::<EdgeDeviceWatch>(WATCH).unwrap());
    let wrote = standin
        .wait_for(Duration::from_secs(2), |s| {
            s.status_patches("edgedevicewatches", "iot", "plant-a") > 0
        })
        .await;
    assert!(
        !wrote,
        "the follower wrote while the first replica held the Lease"
    );
    assert!(!second.is_leader());

    // The leader goes away (releasing its Lease, as on SIGTERM): the follower takes over.
    first.resign().await;
    let took_over = standin
        .wait_for(Duration::from_secs(8), |s| {
            ready_reason(s).as_deref() == Some("Ready")
        })
        .await;
    assert!(
        took_over,
        "the follower took over and reconciled within the lease duration"
    );
    assert!(second.is_leader());

    stop_second.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .unwrap()
        .unwrap();
    second.resign().await;
}
