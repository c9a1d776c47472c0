//! Every printer column's JSONPath yields a value on a realistic status: a column that
//! shows nothing in `kubectl get edw` is a defect.

use edgewatch::api::{
    AspectState, DeviceCounts, DeviceEntry, EdgeDeviceWatch, EdgeDeviceWatchStatus, FailingModule,
};
use edgewatch::health::report::{ConditionStatus, Reason};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResourceExt;
use serde_json::Value;

/// Evaluates the JSONPath subset kubectl printer columns use here: `.a.b` steps and
/// `[?(@.key=="value")]` filters on arrays.
fn evaluate(path: &str, root: &Value) -> Vec<Value> {
    let mut current = vec![root.clone()];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[?(@.") {
            let end = after.find(")]").expect("closed filter");
            let (key, wanted) = after[..end].split_once("==").expect("== filter");
            let wanted = wanted.trim_matches('"');
            current = current
                .iter()
                .filter_map(Value::as_array)
                .flatten()
                .filter(|item| item.get(key).and_then(Value::as_str) == Some(wanted))
                .cloned()
                .collect();
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            current = current
                .iter()
                .filter_map(|v| v.get(field))
                .cloned()
                .collect();
            rest = &after[end..];
        } else {
            panic!("unsupported JSONPath syntax at {rest:?}");
        }
    }
    current
}

fn condition(type_: &str, status: &str, reason: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: format!("{type_} is {status}"),
        last_transition_time: Time("2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap()),
        observed_generation: Some(3),
    }
}

fn realistic_watch() -> EdgeDeviceWatch {
    let mut watch: EdgeDeviceWatch =
        serde_saphyr::from_str(include_str!("../examples/watch-minimal.yaml")).unwrap();
    watch.metadata.creation_timestamp =
        Some(Time("2026-11-26T11:00:00Z".parse::<Timestamp>().unwrap()));
    let failing = AspectState {
        status: ConditionStatus::False,
        reason: Reason::ModuleFailed,
    };
    let ok = |reason| AspectState {
        status: ConditionStatus::True,
        reason,
    };
    watch.status = Some(EdgeDeviceWatchStatus {
        observed_generation: Some(3),
        conditions: vec![
            condition("Ready", "False", "ModuleFailed"),
            condition("Reachable", "True", "AgentResponded"),
            condition("ModulesHealthy", "False", "ModuleFailed"),
            condition("InSync", "True", "InSync"),
            condition("Fresh", "True", "ReportCurrent"),
        ],
        hub: Some("plant-a.azure-devices.net".into()),
        summary: DeviceCounts {
            devices: 2,
            ready: 1,
            unreachable: 0,
            unhealthy: 1,
            drifted: 0,
            stale: 0,
        },
        devices: vec![DeviceEntry {
            device_id: "line1-gw".into(),
            ready: failing,
            reachable: ok(Reason::AgentResponded),
            modules_healthy: failing,
            in_sync: ok(Reason::InSync),
            fresh: ok(Reason::ReportCurrent),
            message: "module SimulatedTemperatureSensor failed (exit code 1)".into(),
            failing_modules: vec![FailingModule {
                name: "SimulatedTemperatureSensor".into(),
                reason: Reason::ModuleFailed,
                runtime_status: Some("failed".into()),
                exit_code: Some(1),
                restart_count: Some(4),
            }],
            drift: vec![],
            ping_latency_ms: Some(42),
        }],
        devices_truncated: false,
        memory: Default::default(),
    });
    watch
}

#[test]
fn every_printer_column_yields_a_value() {
    let object = serde_json::to_value(realistic_watch()).unwrap();
    let crd = EdgeDeviceWatch::crd();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    assert_eq!(columns.len(), 8);
    for column in columns {
        let values = evaluate(&column.json_path, &object);
        assert_eq!(
            values.len(),
            1,
            "column {} ({}) yields {values:?}",
            column.name,
            column.json_path
        );
        assert!(!values[0].is_null(), "column {} is null", column.name);
    }
}

#[test]
fn status_column_shows_the_ready_reason() {
    let object = serde_json::to_value(realistic_watch()).unwrap();
    let values = evaluate(r#".status.conditions[?(@.type=="Ready")].reason"#, &object);
    assert_eq!(values, vec![Value::from("ModuleFailed")]);
}

#[test]
fn counts_are_serialised_even_when_zero() {
    let object = serde_json::to_value(realistic_watch()).unwrap();
    assert_eq!(
        evaluate(".status.summary.drifted", &object),
        vec![Value::from(0)]
    );
}
