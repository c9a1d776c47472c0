//! Helpers shared by the evaluator tests: real fixtures, derived variants, and a short
//! way to evaluate them at a fixed time.
#![allow(dead_code)]
// Shared by several test binaries, which reach it through `pub`: there is no crate API here.
#![allow(unreachable_pub)]

use std::path::PathBuf;

use edgewatch::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};
use edgewatch::health::{
    DeviceMemory, DeviceTwins, Evaluation, PingError, PingOutcome, Policy, evaluate,
};
use edgewatch::twin::{EdgeAgentTwin, EdgeHubTwin, ModuleTwin};
use jiff::Timestamp;
use serde_json::Value;

pub const FULL_AGENT: &str = "edgeAgent-module-twin-full_linux2_iotedge.json";
pub const HEALTHY_AGENT: &str = "variants/edgeAgent-healthy_linux2.json";
pub const FAILED_AGENT: &str = "variants/edgeAgent-module-failed_linux2.json";
pub const FIVE_MODULES_AGENT: &str = "variants/edgeAgent-five-modules_linux2.json";
pub const HEALTHY_HUB: &str = "variants/edgeHub-healthy_linux2.json";
pub const TEMP_SENSOR: &str = "custom-module-twin_tempSensor_azcli.json";

/// Six minutes after the variants' last report.
pub const NOW: &str = "2021-06-28T21:55:00Z";

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Value {
    let bytes = std::fs::read(fixture_path(name)).expect("fixture readable");
    serde_json::from_slice(&bytes).expect("fixture is JSON")
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("test timestamp")
}

pub fn now() -> Timestamp {
    ts(NOW)
}

/// Sets the value at a JSON pointer, creating the last key if needed.
pub fn set(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no parent at {parent}"));
    parent
        .as_object_mut()
        .unwrap_or_else(|| panic!("parent of {pointer} is not an object"))
        .insert(key.to_owned(), value);
}

/// Removes the value at a JSON pointer.
pub fn remove(doc: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    doc.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .remove(key)
        .unwrap_or_else(|| panic!("nothing at {pointer}"));
}

pub fn agent(doc: &Value) -> EdgeAgentTwin {
    EdgeAgentTwin::from_value(doc).expect("agent twin parses")
}

pub fn hub(doc: &Value) -> EdgeHubTwin {
    EdgeHubTwin::from_value(doc).expect("hub twin parses")
}

pub fn module(doc: &Value) -> ModuleTwin {
    ModuleTwin::from_value(doc).expect("module twin parses")
}

pub fn twins(agent_doc: &Value) -> DeviceTwins {
    DeviceTwins::new(agent(agent_doc))
}

pub fn run(twins: &DeviceTwins, ping: &PingOutcome, previous: Option<&DeviceMemory>) -> Evaluation {
    evaluate(twins, ping, previous, &Policy::default(), now())
}

pub fn report(agent_doc: &Value, ping: PingOutcome) -> DeviceReport {
    run(&twins(agent_doc), &ping, None).report
}

pub fn responded() -> PingOutcome {
    PingOutcome::Responded { latency_ms: 42 }
}

/// What IoT Hub answers when the agent is not connected (404103).
pub fn not_online() -> PingOutcome {
    PingOutcome::NotOnline(PingError::new(
        Some(404_103),
        Some("DeviceNotOnline"),
        "the device is not online",
    ))
}

/// `(status, reason)` of a condition.
pub fn cond(report: &DeviceReport, type_: ConditionType) -> (ConditionStatus, Reason) {
    let c = report
        .condition(type_)
        .expect("all five conditions present");
    (c.status, c.reason)
}

pub fn message(report: &DeviceReport, type_: ConditionType) -> String {
    report
        .condition(type_)
        .expect("condition present")
        .message
        .clone()
}

pub fn module_verdict(report: &DeviceReport, name: &str) -> Reason {
    report
        .modules
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("module {name} in report"))
        .verdict
}

pub const SIMTEMP: &str = "/properties/reported/modules/simtemp";
