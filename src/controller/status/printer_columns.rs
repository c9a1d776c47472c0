//! Every printer column's JSONPath yields a value on a realistic status: a column that
//! shows nothing in `kubectl get edw` is a defect.

use super::build::{StatusLimits, Sweep, build_status};
use crate::api::EdgeDeviceWatch;
use crate::health::{DeviceTwins, PingError, PingOutcome, Policy, evaluate};
use crate::twin::EdgeAgentTwin;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResourceExt;
use serde_json::Value;

/// Evaluates the JSONPath subset kubectl printer columns use here: `.a.b` steps and
/// `[?(@.key=="value")]` filters on arrays.
fn json_path(path: &str, root: &Value) -> Vec<Value> {
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

/// A status exactly as the operator builds it: evaluator verdicts on real twin documents
/// (one healthy device, one whose agent is not online), aggregated by the controller.
fn realistic_watch() -> EdgeDeviceWatch {
    let mut watch: EdgeDeviceWatch =
        serde_saphyr::from_str(include_str!("../../../examples/watch-minimal.yaml")).unwrap();
    watch.metadata.creation_timestamp =
        Some(Time("2026-11-26T11:00:00Z".parse::<Timestamp>().unwrap()));
    watch.metadata.generation = Some(3);
    let twin: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/edgeAgent-module-twin-full_linux2_iotedge.json"
    ))
    .unwrap();
    let agent = EdgeAgentTwin::from_value(&twin).expect("fixture parses");
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let judge = |id: &str, ping: PingOutcome| {
        let mut twins = DeviceTwins::new(agent.clone());
        twins.device_id = id.to_owned();
        evaluate(&twins, &ping, None, &Policy::default(), now).report
    };
    let reports = vec![
        judge("line1-gw", PingOutcome::Responded { latency_ms: 31 }),
        judge(
            "line2-gw",
            PingOutcome::NotOnline(PingError::new(Some(404_103), Some("DeviceNotOnline"), "")),
        ),
    ];
    let sweep = Sweep {
        generation: watch.metadata.generation,
        hub: "plant-a.azure-devices.net",
        reports: &reports,
        memory: Default::default(),
    };
    watch.status = Some(build_status(&sweep, None, now, &StatusLimits::default()));
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
        let values = json_path(&column.json_path, &object);
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
    let values = json_path(r#".status.conditions[?(@.type=="Ready")].reason"#, &object);
    assert_eq!(values, vec![Value::from("DeviceNotOnline")]);
}

#[test]
fn counts_are_serialised_even_when_zero() {
    let object = serde_json::to_value(realistic_watch()).unwrap();
    assert_eq!(
        json_path(".status.summary.drifted", &object),
        vec![Value::from(0)]
    );
    assert_eq!(
        json_path(".status.summary.unreachable", &object),
        vec![Value::from(1)]
    );
}
