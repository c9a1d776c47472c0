//! The `EdgeDeviceWatch` status: what the operator publishes.
//!
//! Conditions follow `metav1.Condition` semantics (the contract table in docs/contract.md);
//! `summary` feeds the printer columns; `devices` holds per-device findings, worst first
//! and capped so the object stays far below etcd's request limit; `memory` is the little
//! state a restarted operator needs to judge the next observation the same way.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::health::report::{ConditionStatus, Reason};

/// What the operator observed, as of `observedGeneration`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceWatchStatus {
    /// The `metadata.generation` of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Reachable`, `ModulesHealthy`, `InSync`, `Fresh` aggregated over all
    /// devices, plus `Stalled` (present only while True) when the watch cannot progress.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Host name of the IoT Hub the devices were read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,

    /// Device counts per state (the printer columns).
    #[serde(default)]
    pub summary: DeviceCounts,

    /// Per-device findings, worst first, at most a fixed number of entries.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["deviceId".into()]))]
    pub devices: Vec<DeviceEntry>,

    /// True when `devices` was cut to its cap; `summary` still counts every device.
    #[serde(default)]
    pub devices_truncated: bool,

    /// Observations carried between reconciles (restart history, failed pings) so an
    /// operator restart judges the next observation exactly as before.
    #[serde(default)]
    pub memory: WatchMemory,
}

impl EdgeDeviceWatchStatus {
    /// The watch-level condition of type `type_`.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// True when the watch's `Ready` condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }
}

/// How many devices are in each state. Always serialised (zeros included) so printer
/// columns never show blanks.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceCounts {
    /// Devices watched.
    pub devices: u32,
    /// Devices whose `Ready` is True.
    pub ready: u32,
    /// Devices whose `Reachable` is False.
    pub unreachable: u32,
    /// Devices whose `ModulesHealthy` is False.
    pub unhealthy: u32,
    /// Devices whose `InSync` is False.
    pub drifted: u32,
    /// Devices whose `Fresh` is False.
    pub stale: u32,
}

/// One aspect of one device: its status and the reason for it.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AspectState {
    pub status: ConditionStatus,
    /// A reason from the status contract (a string in the schema so new reasons never
    /// make an older CRD refuse a status write).
    #[schemars(with = "String")]
    pub reason: Reason,
}

/// The findings for one device.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEntry {
    /// IoT Hub device id.
    pub device_id: String,
    /// The device's `Ready` summary.
    pub ready: AspectState,
    /// Whether `$edgeAgent` answered ping.
    pub reachable: AspectState,
    /// Whether every module is in the state its deployment asks for.
    pub modules_healthy: AspectState,
    /// Whether the reported deployment equals the desired one.
    pub in_sync: AspectState,
    /// Whether the reported state is current.
    pub fresh: AspectState,
    /// The message of the first aspect that is not True (empty when Ready), truncated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Modules not in the state their deployment asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_modules: Vec<FailingModule>,
    /// Differences between desired and reported deployment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftEntry>,
    /// Round trip of the last successful ping, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_latency_ms: Option<u64>,
}

/// A module that is not in the state its deployment asks for.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FailingModule {
    /// Module name (`edgeAgent`, `edgeHub` or a custom module).
    pub name: String,
    /// The `ModulesHealthy` reason this module gives.
    #[schemars(with = "String")]
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<i64>,
}

/// One difference between desired and reported deployment.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriftEntry {
    /// The `InSync` reason this difference gives.
    #[schemars(with = "String")]
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
}

/// Cross-reconcile observations, kept compact: only what a restarted operator could not
/// rebuild from one fresh observation.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WatchMemory {
    /// When the last ping was sent (informational; a restarted operator re-pings every
    /// device not listed in `pingFailures` before trusting it as reachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping_at: Option<Timestamp>,
    /// Devices whose last ping did not succeed, so a restart neither forgets them nor
    /// announces a recovery that did not happen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ping_failures: Vec<PingFailure>,
    /// Modules seen restarting within the restart-loop window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<RestartObservation>,
}

/// How a remembered ping failed. Only these three are written (a device IoT Hub does not
/// know is `Failed` with `errorCode` 404001), so a status stays readable by older
/// versions and valid under older CRDs.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PingFailureKind {
    /// IoT Hub says the device is not connected (404103).
    NotOnline,
    /// No answer in time (504101 or client timeout).
    Timeout,
    /// The call failed for another reason (unknown device, throttled, 5xx).
    Failed,
}

/// A failed ping remembered across reconciles.
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PingFailure {
    pub device_id: String,
    pub outcome: PingFailureKind,
    /// When the ping was made.
    pub at: Timestamp,
    /// IoT Hub's error code, when it gave one (absent in statuses of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
}

/// Restarts of one module seen by the operator, to detect restart loops across polls
/// (the evaluator's `ModuleRestarts`, with the device it belongs to).
#[derive(Serialize, Deserialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestartObservation {
    pub device_id: String,
    pub module: String,
    /// `restartCount` at the last observation.
    pub restart_count: i64,
    /// `lastRestartTimeUtc` at the last observation.
    pub last_restart: Timestamp,
    /// When restarts were seen (oldest first), only those inside the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts_at: Vec<Timestamp>,
}
