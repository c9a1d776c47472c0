//! The `EdgeDeviceWatch` spec: which hub, which devices, what to expect, how often.
//!
//! Field doc comments become the CRD's descriptions (what `kubectl explain` shows), and
//! the `x_kube(validation)` rules are enforced by the API server, so a bad spec is refused
//! at `kubectl apply` rather than discovered by the controller.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::status::EdgeDeviceWatchStatus;

/// Upper bound on explicitly listed device ids; larger fleets belong in `selector`.
pub const MAX_EXPLICIT_DEVICES: usize = 1000;
/// Upper bound on module expectations (IoT Edge allows 50 modules per device).
pub const MAX_MODULE_EXPECTATIONS: usize = 50;

/// Declares a set of Azure IoT Edge devices to watch and the expectations they are judged by.
// Several printer columns share `type_ = "integer"`; clippy reads that as a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "edgewatch.dev",
    version = "v1alpha1",
    kind = "EdgeDeviceWatch",
    plural = "edgedevicewatches",
    singular = "edgedevicewatch",
    shortname = "edw",
    category = "edgewatch",
    category = "iot",
    namespaced,
    cel,
    doc = "A set of Azure IoT Edge devices edgewatch reads through the IoT Hub service API, with the health it found as status conditions.",
    status = "EdgeDeviceWatchStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Hub",
        type_ = "string",
        json_path = ".status.hub",
        description = "IoT Hub host name"
    ),
    printcolumn(
        name = "Devices",
        type_ = "integer",
        json_path = ".status.summary.devices",
        description = "Devices watched"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.summary.ready",
        description = "Devices whose Ready condition is True"
    ),
    printcolumn(
        name = "Unreachable",
        type_ = "integer",
        json_path = ".status.summary.unreachable",
        description = "Devices whose $edgeAgent did not answer ping"
    ),
    printcolumn(
        name = "Unhealthy",
        type_ = "integer",
        json_path = ".status.summary.unhealthy",
        description = "Devices with a module not in its desired state"
    ),
    printcolumn(
        name = "Drifted",
        type_ = "integer",
        json_path = ".status.summary.drifted",
        description = "Devices whose reported deployment differs from the desired one"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    cel,
    validation = Rule::new("(has(self.devices) && size(self.devices) > 0) || has(self.selector)")
        .message("name at least one device in devices or a selector query")
        .reason(Reason::FieldValueRequired)
)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDeviceWatchSpec {
    /// The IoT Hub the devices are registered in, and how to authenticate to it.
    pub hub: HubSpec,

    /// Device ids to watch (case-sensitive, as registered in IoT Hub). Combined with the
    /// devices `selector` finds. List more than a few hundred devices through `selector`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_EXPLICIT_DEVICES), inner(length(min = 1, max = 128)))]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new(r#"self.all(d, d.matches("^[-A-Za-z0-9.+%_#*?!(),:=@$']{1,128}$"))"#)
            .message("device ids are 1-128 ASCII letters, digits or - . + % _ # * ? ! ( ) , : = @ $ '")
    )]
    pub devices: Vec<String>,

    /// Selects devices by an IoT Hub twin query condition over `devices`, for example
    /// `tags.site = 'plant-a' AND capabilities.iotEdge = true`. Only IoT Edge devices are
    /// kept. Evaluated every interval, so devices join and leave the watch by their tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorSpec>,

    /// Expectations beyond the deployment: custom modules whose module twin must have
    /// applied its desired properties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_MODULE_EXPECTATIONS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub modules: Vec<ModuleExpectation>,

    /// How often twins are read, as a duration: `60s`, `5m`, `1h30m` (h, m, s, ms, largest
    /// first) or ISO 8601 `PT5M`. At least 10s.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = super::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = at_least_10s())]
    pub interval: String,

    /// Reachability checks: a direct method `ping` on `$edgeAgent`.
    #[serde(default)]
    pub ping: PingSpec,

    /// A reported state older than this counts as stale, but only while `$edgeAgent` does
    /// not answer ping (a connected agent reports on change, so an old report is current).
    #[serde(default = "default_stale_after")]
    #[schemars(regex(pattern = super::duration::DURATION_PATTERN), length(max = 32))]
    pub stale_after: String,

    /// How long after a deployment changes a device may still be applying it before it
    /// counts as `DeploymentPending`.
    #[serde(default = "default_deployment_grace_period")]
    #[schemars(regex(pattern = super::duration::DURATION_PATTERN), length(max = 32))]
    pub deployment_grace_period: String,

    /// When a module restarting repeatedly counts as a `RestartLoop`, even while running.
    #[serde(default)]
    pub restart_loop: RestartLoopSpec,

    /// Stops polling IoT Hub for this watch; conditions keep their last values and say so.
    #[serde(default)]
    pub suspend: bool,
}

/// Where the hub is and how edgewatch authenticates: exactly one of a connection string
/// (SAS) or Azure Workload Identity (Microsoft Entra ID) with `hostName`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[x_kube(
    validation = Rule::new("has(self.connectionStringSecretRef) != has(self.workloadIdentity)")
        .message("set exactly one credential source: connectionStringSecretRef or workloadIdentity"),
    validation = Rule::new("!has(self.workloadIdentity) || has(self.hostName)")
        .message("workloadIdentity needs hostName (for example my-hub.azure-devices.net)"),
    validation = Rule::new("!has(self.connectionStringSecretRef) || !has(self.hostName)")
        .message("hostName comes from the connection string; do not set both")
)]
#[serde(rename_all = "camelCase")]
pub struct HubSpec {
    /// A Secret key holding an IoT Hub connection string
    /// (`HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`). The policy needs
    /// RegistryRead and ServiceConnect; nothing more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string_secret_ref: Option<SecretKeyRef>,

    /// The hub's host name, for example `plant-a.azure-devices.net`. Only with
    /// `workloadIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host_name: Option<String>,

    /// Authenticate with Microsoft Entra ID through Azure Workload Identity (the
    /// federated token the webhook mounts into the pod). For hubs that ban shared keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentitySpec>,
}

/// A key of a Secret in the watch's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace of the watch.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Azure Workload Identity settings; empty uses the identity the pod's service account is
/// federated with.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentitySpec {
    /// Client id of a different user-assigned identity than the one in `AZURE_CLIENT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// An IoT Hub twin query condition selecting devices.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SelectorSpec {
    /// The condition of a `SELECT * FROM devices WHERE ...` twin query, without `WHERE`.
    #[schemars(length(min = 1, max = 4000))]
    pub query: String,
}

/// Expectations for one custom module, beyond what the deployment says.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ModuleExpectation {
    /// Module name as in the deployment manifest.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// Desired properties of the module twin whose reported values must match
    /// (`PropertyDrift` names the keys that do not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 1024)))]
    pub compare_properties: Vec<String>,
}

/// Reachability checks through a direct method `ping` on `$edgeAgent`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PingSpec {
    /// Ping at all. When false, `Reachable` is Unknown (`PingSkipped`) and does not hold
    /// `Ready` back.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How often each device is pinged (each ping costs direct-method quota). At least 10s.
    #[serde(default = "default_ping_interval")]
    #[schemars(regex(pattern = super::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = at_least_10s())]
    pub interval: String,
    /// How long to wait for the answer before `PingTimeout`.
    #[serde(default = "default_ping_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: u32,
}

impl Default for PingSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_ping_interval(),
            timeout_seconds: default_ping_timeout(),
        }
    }
}

/// When repeated restarts count as a `RestartLoop`.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RestartLoopSpec {
    /// Restarts within `window` that make a loop.
    #[serde(default = "default_restarts")]
    #[schemars(range(min = 1, max = 1000))]
    pub restarts: u32,
    /// The sliding window restarts are counted in.
    #[serde(default = "default_restart_window")]
    #[schemars(regex(pattern = super::duration::DURATION_PATTERN), length(max = 32))]
    pub window: String,
}

impl Default for RestartLoopSpec {
    fn default() -> Self {
        Self {
            restarts: default_restarts(),
            window: default_restart_window(),
        }
    }
}

/// The CEL rule holding a duration field to the shortest interval edgewatch polls at
/// (the operator's own check says the same, in the same words).
fn at_least_10s() -> kube::core::Rule {
    kube::core::Rule::new(format!(
        "{} >= duration('10s')",
        super::duration::CEL_DURATION
    ))
    .message("must be at least 10s")
}

fn default_interval() -> String {
    "60s".to_owned()
}
fn default_stale_after() -> String {
    "15m".to_owned()
}
fn default_deployment_grace_period() -> String {
    "10m".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_ping_interval() -> String {
    "5m".to_owned()
}
fn default_ping_timeout() -> u32 {
    10
}
fn default_restarts() -> u32 {
    3
}
fn default_restart_window() -> String {
    "30m".to_owned()
}
