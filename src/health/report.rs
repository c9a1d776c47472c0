//! The evaluator's output: the per-device status entry.
//!
//! These types are API. `edgewatch evaluate -o json`, `edgewatch check -o json` and the
//! `status.devices[]` entries of an `EdgeDeviceWatch` all serialise them, and users'
//! scripts and alert rules read the condition types and reason names. Names follow the
//! status contract in `docs/contract.md`: change them only together with it.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The aspects a device is judged on, plus the `Ready` summary.
///
/// The declaration order is the order `Ready` consults the aspects in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ConditionType {
    Reachable,
    ModulesHealthy,
    InSync,
    Fresh,
    Ready,
}

impl ConditionType {
    /// The four aspects, in the order `Ready` consults them.
    pub const ASPECTS: [ConditionType; 4] = [
        ConditionType::Reachable,
        ConditionType::ModulesHealthy,
        ConditionType::InSync,
        ConditionType::Fresh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Reachable => "Reachable",
            ConditionType::ModulesHealthy => "ModulesHealthy",
            ConditionType::InSync => "InSync",
            ConditionType::Fresh => "Fresh",
            ConditionType::Ready => "Ready",
        }
    }
}

/// `metav1.Condition` status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// Every condition reason edgewatch can publish (the contract table, plus `Stalled`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Reason {
    // Reachable
    AgentResponded,
    DeviceNotOnline,
    PingTimeout,
    PingSkipped,
    PingFailed,
    DeviceNotFound,
    // ModulesHealthy
    AllModulesHealthy,
    ModuleFailed,
    ModuleBackoff,
    ModuleUnhealthy,
    ModuleStopped,
    ModuleNotStopped,
    RestartLoop,
    AgentNotRunning,
    ModuleStatusUnknown,
    NoReportedState,
    // InSync
    InSync,
    DeploymentPending,
    DeploymentRejected,
    DeploymentFailed,
    ModuleMissing,
    ModuleUnexpected,
    ImageDrift,
    PropertyDrift,
    DeploymentInProgress,
    // Fresh
    ReportCurrent,
    ReportedStateStale,
    // Ready
    Ready,
    // Watch level only: a watch whose device set is empty
    NoDevicesMatched,
    // Stalled (watch level only)
    InvalidSpec,
    SecretNotFound,
    AuthenticationFailed,
    HubNotFound,
    DailyQuotaExceeded,
}

impl Reason {
    /// The CamelCase name, exactly as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AgentResponded => "AgentResponded",
            Reason::DeviceNotOnline => "DeviceNotOnline",
            Reason::PingTimeout => "PingTimeout",
            Reason::PingSkipped => "PingSkipped",
            Reason::PingFailed => "PingFailed",
            Reason::DeviceNotFound => "DeviceNotFound",
            Reason::AllModulesHealthy => "AllModulesHealthy",
            Reason::ModuleFailed => "ModuleFailed",
            Reason::ModuleBackoff => "ModuleBackoff",
            Reason::ModuleUnhealthy => "ModuleUnhealthy",
            Reason::ModuleStopped => "ModuleStopped",
            Reason::ModuleNotStopped => "ModuleNotStopped",
            Reason::RestartLoop => "RestartLoop",
            Reason::AgentNotRunning => "AgentNotRunning",
            Reason::ModuleStatusUnknown => "ModuleStatusUnknown",
            Reason::NoReportedState => "NoReportedState",
            Reason::InSync => "InSync",
            Reason::DeploymentPending => "DeploymentPending",
            Reason::DeploymentRejected => "DeploymentRejected",
            Reason::DeploymentFailed => "DeploymentFailed",
            Reason::ModuleMissing => "ModuleMissing",
            Reason::ModuleUnexpected => "ModuleUnexpected",
            Reason::ImageDrift => "ImageDrift",
            Reason::PropertyDrift => "PropertyDrift",
            Reason::DeploymentInProgress => "DeploymentInProgress",
            Reason::ReportCurrent => "ReportCurrent",
            Reason::ReportedStateStale => "ReportedStateStale",
            Reason::Ready => "Ready",
            Reason::NoDevicesMatched => "NoDevicesMatched",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::AuthenticationFailed => "AuthenticationFailed",
            Reason::HubNotFound => "HubNotFound",
            Reason::DailyQuotaExceeded => "DailyQuotaExceeded",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition of one device, without the bookkeeping (`lastTransitionTime`,
/// `observedGeneration`) that only the watch-level `metav1.Condition`s carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceCondition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    pub reason: Reason,
    pub message: String,
}

/// What the evaluator saw of one module and what it concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleReport {
    /// Module name as in the deployment (`edgeAgent`, `edgeHub` for the system modules).
    pub name: String,
    /// `running` or `stopped`; `running` when the deployment does not say.
    pub desired_status: Option<String>,
    pub runtime_status: Option<String>,
    pub exit_code: Option<i64>,
    pub restart_count: Option<i64>,
    /// `null` when the agent reports "never" (`0001-01-01T00:00:00`).
    pub last_start_time: Option<Timestamp>,
    /// `null` when the agent reports "never" (`0001-01-01T00:00:00`).
    pub last_exit_time: Option<Timestamp>,
    pub last_restart_time: Option<Timestamp>,
    pub image_desired: Option<String>,
    pub image_reported: Option<String>,
    /// `AllModulesHealthy` for a module in the state its deployment asks for, otherwise
    /// the `ModulesHealthy` reason this module alone would give.
    pub verdict: Reason,
    /// Human sentence naming the module and the values seen.
    pub message: String,
}

/// One difference between what the deployment asks for and what the device reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftItem {
    /// `ModuleMissing`, `ModuleUnexpected`, `ImageDrift`, `PropertyDrift`,
    /// `DeploymentPending`, `DeploymentInProgress`, `DeploymentRejected` or `DeploymentFailed`.
    pub reason: Reason,
    /// The module concerned, when there is one (`$edgeHub` for its version drift).
    pub module: Option<String>,
    /// The property path concerned, for `PropertyDrift`.
    pub property: Option<String>,
    pub desired: Option<String>,
    pub reported: Option<String>,
    pub message: String,
}

/// The per-device status entry: the evaluator's verdict on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    pub device_id: String,
    /// Always five: `Ready`, then `Reachable`, `ModulesHealthy`, `InSync`, `Fresh`.
    pub conditions: Vec<DeviceCondition>,
    pub modules: Vec<ModuleReport>,
    pub drift: Vec<DriftItem>,
    /// Round trip of the last successful ping, when one was made.
    pub ping_latency_ms: Option<u64>,
    /// `$metadata.$lastUpdated` of the `$edgeAgent` reported section, `null` for never.
    pub reported_at: Option<Timestamp>,
    /// Downstream clients `$edgeHub` lists as Disconnected. Informational: shown to
    /// users, never changes a condition (modules come and go; leaf devices sleep).
    #[serde(default)]
    pub disconnected_clients: Vec<ClientReport>,
}

/// A downstream client of `$edgeHub` (module, leaf or child device) as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientReport {
    /// Client id, decoded (`device/module`, `leaf`, `child/$edgeHub`).
    pub name: String,
    pub status: String,
    /// `null` when never or not reported.
    pub last_connected: Option<Timestamp>,
    /// `null` when never or not reported.
    pub last_disconnected: Option<Timestamp>,
}

impl DeviceReport {
    /// The condition of the given type (the evaluator always emits all five).
    pub fn condition(&self, type_: ConditionType) -> Option<&DeviceCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// True when the `Ready` condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition(ConditionType::Ready)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}
