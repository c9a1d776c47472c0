//! The status on the real kube-apiserver 1.35, written as the operator writes it (server-side
//! apply on the status subresource, field manager `edgewatch`, forced): every field
//! survives the schema, `kubectl get edw` shows it in the printer columns, `kubectl wait
//! --for=condition=Ready` sees Ready, and the apply owns exactly the status (a condition
//! the next apply leaves out is removed).

#[path = "support/kube_cluster/mod.rs"]
mod kube_cluster;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use edgewatch::api::{
    AspectState, DeviceCounts, DeviceEntry, DriftEntry, EdgeDeviceWatch, EdgeDeviceWatchSpec,
    EdgeDeviceWatchStatus, FailingModule, PingFailure, PingFailureKind, RestartObservation,
    WatchMemory,
};
use edgewatch::health::report::{ConditionStatus, Reason};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use kube_cluster::{KubeCluster, shared};
use serde_json::json;

/// The operator's field manager: part of the contract (users see it in managedFields).
const FIELD_MANAGER: &str = "edgewatch";
const HUB: &str = "plant-a.azure-devices.net";

fn at(text: &str) -> Timestamp {
    text.parse().expect("test timestamp")
}

fn condition(type_: &str, status: ConditionStatus, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: Time(at("2026-11-26T11:58:00Z")),
        observed_generation: Some(1),
    }
}

fn aspect(status: ConditionStatus, reason: Reason) -> AspectState {
    AspectState { status, reason }
}

/// One device that is fine and one whose agent is not online, with every optional field
/// of the status filled, so a field the schema does not declare would show as missing.
fn status(ready: bool, stalled: bool) -> EdgeDeviceWatchStatus {
    use ConditionStatus::{False, True};
    let (ready_status, ready_reason) = if ready {
        (True, "Ready")
    } else {
        (False, "DeviceNotOnline")
    };
    let mut conditions = vec![
        condition(
            "Ready",
            ready_status,
            ready_reason,
            "1 of 12 devices not ready: line2-gw",
        ),
        condition(
            "Reachable",
            ready_status,
            "AgentResponded",
            "all agents answered",
        ),
        condition(
            "ModulesHealthy",
            True,
            "AllModulesHealthy",
            "all modules healthy",
        ),
        condition("InSync", True, "InSync", "all devices in sync"),
        condition("Fresh", True, "ReportCurrent", "all reports current"),
    ];
    if stalled {
        conditions.push(condition(
            "Stalled",
            True,
            "SecretNotFound",
            "secret hub missing",
        ));
    }
    let unreachable = DeviceEntry {
        device_id: "line2-gw".into(),
        ready: aspect(False, Reason::DeviceNotOnline),
        reachable: aspect(False, Reason::DeviceNotOnline),
        modules_healthy: aspect(False, Reason::ModuleFailed),
        in_sync: aspect(False, Reason::ImageDrift),
        fresh: aspect(True, Reason::ReportCurrent),
        message: "the agent is not connected".into(),
        failing_modules: vec![FailingModule {
            name: "tempSensor".into(),
            reason: Reason::ModuleFailed,
            runtime_status: Some("failed".into()),
            exit_code: Some(1),
            restart_count: Some(4),
        }],
        drift: vec![DriftEntry {
            reason: Reason::ImageDrift,
            module: Some("tempSensor".into()),
            property: Some("image".into()),
            desired: Some("sensor:1.1".into()),
            reported: Some("sensor:1.0".into()),
        }],
        ping_latency_ms: Some(42),
    };
    EdgeDeviceWatchStatus {
        observed_generation: Some(1),
        conditions,
        hub: Some(HUB.into()),
        summary: DeviceCounts {
            devices: 12,
            ready: 5,
            unreachable: 1,
            unhealthy: 2,
            drifted: 3,
            stale: 4,
        },
        devices: vec![unreachable],
        devices_truncated: true,
        memory: WatchMemory {
            last_ping_at: Some(at("2026-11-26T11:59:00Z")),
            ping_failures: vec![PingFailure {
                device_id: "line2-gw".into(),
                outcome: PingFailureKind::NotOnline,
                at: at("2026-11-26T11:59:00Z"),
                error_code: Some(404103),
            }],
            restarts: vec![RestartObservation {
                device_id: "line2-gw".into(),
                module: "tempSensor".into(),
                restart_count: 4,
                last_restart: at("2026-11-26T11:50:00Z"),
                restarts_at: vec![at("2026-11-26T11:40:00Z"), at("2026-11-26T11:50:00Z")],
            }],
        },
    }
}

/// Server-side apply of `status` on the status subresource, forced, as field manager
/// `edgewatch`: the request the operator's status writer sends.
async fn apply_status(api: &Api<EdgeDeviceWatch>, name: &str, status: &EdgeDeviceWatchStatus) {
    let body = json!({
        "apiVersion": EdgeDeviceWatch::api_version(&()),
        "kind": EdgeDeviceWatch::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap_or_else(|e| panic!("status apply refused: {e}"));
}

fn spec() -> EdgeDeviceWatchSpec {
    serde_json::from_value(json!({
        "hub": {"connectionStringSecretRef": {"name": "plant-a-iothub", "key": "connectionString"}},
        "devices": ["line1-gw", "line2-gw"],
    }))
    .unwrap()
}

/// A namespace with one watch in it (the CRD installed); returns its API and namespace.
async fn watch_in_new_namespace(
    cluster: &KubeCluster,
    prefix: &str,
    name: &str,
) -> (Api<EdgeDeviceWatch>, String) {
    cluster.install_crd();
    let namespace = cluster.create_namespace(prefix).await;
    let api = Api::namespaced(cluster.client().await, &namespace);
    api.create(&PostParams::default(), &EdgeDeviceWatch::new(name, spec()))
        .await
        .unwrap();
    (api, namespace)
}

#[tokio::test]
async fn every_status_field_survives_the_schema() {
    let (api, _) = watch_in_new_namespace(shared(), "status-schema", "plant-a").await;
    let sent = status(false, true);
    apply_status(&api, "plant-a", &sent).await;
    let stored = api.get_status("plant-a").await.unwrap();
    assert_eq!(stored.status, Some(sent));
}

/// The rows of a `kubectl get` table, split on whitespace (no value here has spaces).
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

const COLUMNS: [&str; 9] = [
    "NAME",
    "HUB",
    "DEVICES",
    "READY",
    "UNREACHABLE",
    "UNHEALTHY",
    "DRIFTED",
    "STATUS",
    "AGE",
];

#[tokio::test]
async fn kubectl_get_edw_shows_the_status_in_the_printer_columns() {
    let cluster = shared();
    let (api, namespace) = watch_in_new_namespace(cluster, "columns", "plant-a").await;
    apply_status(&api, "plant-a", &status(false, false)).await;

    for extra in [&[][..], &["-o", "wide"][..]] {
        let mut args = vec!["get", "edw", "-n", &namespace];
        args.extend_from_slice(extra);
        let out = cluster.kubectl().ok(&args);
        let rows = table(&out);
        assert_eq!(rows.len(), 2, "{out}");
        assert_eq!(rows[0], COLUMNS, "{out}");
        let expected = ["plant-a", HUB, "12", "5", "1", "2", "3", "DeviceNotOnline"];
        assert_eq!(rows[1][..8], expected, "{out}");
        assert!(rows[1][8].ends_with('s'), "AGE of a new watch: {out}");
    }
}

#[tokio::test]
async fn a_watch_without_status_shows_empty_columns_not_an_error() {
    let cluster = shared();
    let (_, namespace) = watch_in_new_namespace(cluster, "no-status", "fresh").await;
    let out = cluster
        .kubectl()
        .ok(&["get", "edw", "fresh", "-n", &namespace]);
    let rows = table(&out);
    assert_eq!(rows[0], COLUMNS, "{out}");
    assert_eq!(rows[1][0], "fresh", "{out}");
}

#[tokio::test]
async fn kubectl_wait_for_ready_returns_once_ready_is_true() {
    let cluster = shared();
    let (api, namespace) = watch_in_new_namespace(cluster, "wait", "plant-a").await;
    apply_status(&api, "plant-a", &status(false, false)).await;
    let wait = |timeout: &str| {
        let mut command = cluster.kubectl().command();
        command.args([
            "wait",
            "--for=condition=Ready",
            &format!("--timeout={timeout}"),
            "-n",
            &namespace,
            "edw/plant-a",
        ]);
        command
    };

    let not_ready = wait("2s").output().unwrap();
    assert!(
        !not_ready.status.success(),
        "Ready is False, yet wait returned"
    );
    let stderr = String::from_utf8_lossy(&not_ready.stderr);
    assert!(stderr.contains("timed out"), "{stderr}");

    let mut waiting = tokio::process::Command::from(wait("120s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    if waiting.try_wait().unwrap().is_some() {
        let early = waiting.wait_with_output().await.unwrap();
        panic!(
            "kubectl wait returned before Ready was True: {early:?} {}",
            String::from_utf8_lossy(&early.stderr)
        );
    }
    apply_status(&api, "plant-a", &status(true, false)).await;
    let done = tokio::time::timeout(Duration::from_secs(120), waiting.wait_with_output())
        .await
        .expect("kubectl wait returns after Ready turned True")
        .unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "edgedevicewatch.edgewatch.dev/plant-a condition met"
    );
}

fn condition_types(watch: &EdgeDeviceWatch) -> BTreeSet<String> {
    let status = watch.status.as_ref().expect("a status");
    status.conditions.iter().map(|c| c.type_.clone()).collect()
}

#[tokio::test]
async fn the_status_apply_owns_only_status_and_removes_what_it_stops_sending() {
    let (api, _) = watch_in_new_namespace(shared(), "ownership", "plant-a").await;
    let created = api.get("plant-a").await.unwrap();
    apply_status(&api, "plant-a", &status(false, true)).await;

    let applied = api.get("plant-a").await.unwrap();
    assert!(condition_types(&applied).contains("Stalled"));
    assert_eq!(
        applied.spec, created.spec,
        "a status write changed the spec"
    );
    assert_eq!(
        applied.metadata.generation,
        Some(1),
        "a status write bumped generation"
    );
    let managed = applied.metadata.managed_fields.clone().unwrap_or_default();
    let ours: Vec<_> = managed
        .iter()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER))
        .collect();
    assert_eq!(ours.len(), 1, "{managed:#?}");
    assert_eq!(ours[0].operation.as_deref(), Some("Apply"));
    assert_eq!(ours[0].subresource.as_deref(), Some("status"));
    let fields = &ours[0].fields_v1.as_ref().expect("fieldsV1").0;
    let owned: Vec<&String> = fields.as_object().unwrap().keys().collect();
    assert_eq!(owned, ["f:status"], "{fields:#}");
    let conditions = &fields["f:status"]["f:conditions"];
    assert!(
        conditions
            .as_object()
            .unwrap()
            .contains_key(r#"k:{"type":"Stalled"}"#),
        "conditions are a list-map keyed by type: {conditions:#}"
    );

    apply_status(&api, "plant-a", &status(false, false)).await;
    let after = api.get("plant-a").await.unwrap();
    let expected: BTreeSet<String> = ["Fresh", "InSync", "ModulesHealthy", "Reachable", "Ready"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(condition_types(&after), expected);
}
