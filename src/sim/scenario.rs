//! Scenario files: the fleet and its scripted life, in YAML.
//!
//! A scenario names devices (or asks for N generated ones) and lists timed events such
//! as "at 30s, `SimulatedTemperatureSensor` on `gw-1` crashes with exit code 1". The
//! same [`Action`] type drives the admin API and [`super::SimHandle::apply`], so a test
//! can do at run time anything a scenario can script.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// A whole scenario file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Hub name shown in summaries and tracking ids.
    #[serde(default)]
    pub hub: Option<String>,
    /// Seed for generated devices and fault dice.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Extra generated devices beyond the named ones.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// How late IoT Hub's device `connectionState` may follow a device going offline or
    /// online (each change is noticed after a seeded delay in `[0, lag]`); 5 minutes
    /// when omitted. Devices may override it.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_state_lag: Option<SignedDuration>,
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    #[serde(default)]
    pub events: Vec<TimedEvent>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| ScenarioError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and validates scenario YAML; the error says what is wrong.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The connection-state lag of a device: its own, the scenario's, or the default.
    pub fn connection_state_lag_of(&self, device: Option<&DeviceSpec>) -> SignedDuration {
        device
            .and_then(|d| d.connection_state_lag)
            .or(self.connection_state_lag)
            .unwrap_or(DEFAULT_CONNECTION_STATE_LAG)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        let lags = self
            .devices
            .iter()
            .filter_map(|d| d.connection_state_lag)
            .chain(self.connection_state_lag);
        for lag in lags {
            if lag.is_negative() {
                return Err(format!("connectionStateLag {lag:#} must not be negative"));
            }
        }
        for d in &self.devices {
            validate_id(&d.id)?;
            if !seen.insert(d.id.as_str()) {
                return Err(format!("device {:?} is defined twice", d.id));
            }
            for m in &d.modules {
                validate_module_name(&m.name)?;
            }
        }
        for e in &self.events {
            if e.at.is_negative() {
                return Err(format!("event for {:?} has a negative time", e.device));
            }
            let Some(device) = self.devices.iter().find(|d| d.id == e.device) else {
                return Err(format!(
                    "event at {} names device {:?}, which the scenario does not define",
                    e.at, e.device
                ));
            };
            for module in e.action.modules() {
                let known = module == "edgeHub"
                    || module == "edgeAgent" && matches!(e.action, Action::Deploy { .. })
                    || device.modules.iter().any(|m| m.name == module);
                if !known {
                    return Err(format!(
                        "event at {} names module {module:?}, which device {:?} does not run",
                        e.at, e.device
                    ));
                }
            }
        }
        Ok(())
    }
}

/// IoT Hub documents `connectionState` as lagging by up to about 5 minutes.
pub const DEFAULT_CONNECTION_STATE_LAG: SignedDuration = SignedDuration::from_mins(5);

/// IoT Hub's device id rule: up to 128 ASCII letters, digits and `-.+%_#*?!(),:=@$'`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.+%_#*?!(),:=@$'".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a valid IoT Hub device id"))
    }
}

fn validate_module_name(name: &str) -> Result<(), String> {
    if name == "edgeAgent" || name == "edgeHub" || name.starts_with('$') {
        return Err(format!(
            "{name:?} is a system module; list only custom modules"
        ));
    }
    validate_id(name).map_err(|_| format!("{name:?} is not a valid module name"))
}

/// Generated devices: `count` devices `<idPrefix><n>` with seeded tags and modules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateSpec {
    pub count: usize,
    #[serde(default = "default_prefix")]
    pub id_prefix: String,
    /// Devices are spread over this many `tags.site` values.
    #[serde(default = "default_sites")]
    pub sites: usize,
}

fn default_prefix() -> String {
    "edge-".into()
}
fn default_sites() -> usize {
    10
}

/// One named device.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceSpec {
    pub id: String,
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Custom modules; the standard temperature-sensor module when omitted.
    #[serde(default = "default_modules")]
    pub modules: Vec<ModuleSpec>,
    /// Starts disconnected (ping answers 404103).
    #[serde(default)]
    pub offline: bool,
    /// Overrides the scenario's `connectionStateLag` for this device.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_state_lag: Option<SignedDuration>,
}

/// A custom module in the device's deployment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub status: DesiredStatus,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The module twin's desired properties (set by the deployment).
    #[serde(default)]
    pub desired_properties: Map<String, Value>,
}

/// The module every device gets unless told otherwise.
pub fn default_modules() -> Vec<ModuleSpec> {
    let mut props = Map::new();
    props.insert("SendInterval".into(), Value::from(5));
    vec![ModuleSpec {
        name: "SimulatedTemperatureSensor".into(),
        image: "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5".into(),
        status: DesiredStatus::Running,
        restart_policy: RestartPolicy::Always,
        desired_properties: props,
    }]
}

/// `status` in a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    #[default]
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "running",
            DesiredStatus::Stopped => "stopped",
        }
    }
}

/// `restartPolicy` in a deployment, in the agent's order never < on-failure < on-unhealthy < always.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum RestartPolicy {
    #[serde(rename = "never")]
    Never,
    #[serde(rename = "on-failure")]
    OnFailure,
    #[serde(rename = "on-unhealthy")]
    OnUnhealthy,
    #[default]
    #[serde(rename = "always")]
    Always,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::OnUnhealthy => "on-unhealthy",
            RestartPolicy::Always => "always",
        }
    }
}

/// A scripted event: `action` happens to `device` at `at` after the simulator started.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimedEvent {
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub at: SignedDuration,
    pub device: String,
    #[serde(flatten)]
    pub action: Action,
}

/// How a deployment change ends on the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeployOutcome {
    /// Reported catches up after the delay with code 200.
    #[default]
    Applied,
    /// The agent never processes it (reported `lastDesiredVersion` stays behind).
    NeverApplied,
    /// Code 400: the deployment could not be parsed.
    Rejected,
    /// Code 412: schema version not supported by this agent.
    SchemaRejected,
    /// Code 500: a step failed (e.g. the image pull timed out); modules keep old images.
    Failed,
}

/// Something that happens to one device. Used by scenarios, the admin API and
/// [`super::SimHandle::apply`]. Externally tagged: `{"crash": {"module": "m", "exitCode": 1}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// The module's process exits with `exitCode`; the agent's restart policy takes over.
    #[serde(rename_all = "camelCase")]
    Crash {
        module: String,
        #[serde(default = "one")]
        exit_code: i64,
    },
    /// Like `crash`, and after every restart the module crashes again `runFor` later.
    #[serde(rename_all = "camelCase")]
    CrashLoop {
        module: String,
        #[serde(default = "one")]
        exit_code: i64,
        #[serde(
            default = "five_seconds",
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        run_for: SignedDuration,
    },
    /// The module's health probe fails (runtimeStatus `unhealthy`).
    #[serde(rename_all = "camelCase")]
    Unhealthy { module: String },
    /// The module runs normally again (ends a crash loop, lag or unhealthiness).
    #[serde(rename_all = "camelCase")]
    Recover { module: String },
    /// A deployment sets the module to `stopped`; the agent stops it (exit 137 or 143).
    #[serde(rename_all = "camelCase")]
    StopModule {
        module: String,
        #[serde(default = "sigkill")]
        exit_code: i64,
    },
    /// A deployment sets the module back to `running`.
    #[serde(rename_all = "camelCase")]
    StartModule { module: String },
    /// The device loses its connection: ping answers 404103 and reports freeze.
    Offline {},
    /// The device reconnects and reports what changed meanwhile.
    Online {},
    /// The agent stops answering direct methods in time (504101).
    Slow {},
    /// The agent answers direct methods promptly again (ends `slow` and `agentHang`).
    Responsive {},
    /// The agent process hangs: direct methods time out (504101) and its reports
    /// freeze, while the device stays connected and IoT Hub keeps reporting `Connected`.
    AgentHang {},
    /// A new deployment: desired `$version` moves ahead; images given per module name
    /// (`edgeHub` and custom modules).
    #[serde(rename_all = "camelCase")]
    Deploy {
        #[serde(default)]
        images: BTreeMap<String, String>,
        #[serde(default)]
        outcome: DeployOutcome,
        #[serde(
            default = "ten_seconds",
            deserialize_with = "de_duration",
            serialize_with = "ser_duration"
        )]
        delay: SignedDuration,
    },
    /// The module runs another image than its deployment asks for.
    #[serde(rename_all = "camelCase")]
    ImageDrift { module: String, image: String },
    /// A desired property of a custom module twin changes; with `lag` the module does
    /// not apply it (its reported value stays behind).
    #[serde(rename_all = "camelCase")]
    SetDesiredProperty {
        module: String,
        property: String,
        value: Value,
        #[serde(default)]
        lag: bool,
    },
    /// The agent shuts down: code 406, every runtimeStatus `unknown`, ping 404103.
    AgentShutdown {},
    /// The agent starts again and reports the real module states.
    AgentStart {},
}

impl Action {
    /// The module names the action refers to.
    pub fn modules(&self) -> Vec<&str> {
        match self {
            Action::Crash { module, .. }
            | Action::CrashLoop { module, .. }
            | Action::Unhealthy { module }
            | Action::Recover { module }
            | Action::StopModule { module, .. }
            | Action::StartModule { module }
            | Action::ImageDrift { module, .. }
            | Action::SetDesiredProperty { module, .. } => vec![module.as_str()],
            Action::Deploy { images, .. } => images.keys().map(String::as_str).collect(),
            Action::Offline {}
            | Action::Online {}
            | Action::Slow {}
            | Action::Responsive {}
            | Action::AgentHang {}
            | Action::AgentShutdown {}
            | Action::AgentStart {} => Vec::new(),
        }
    }
}

fn one() -> i64 {
    1
}
fn sigkill() -> i64 {
    137
}
fn five_seconds() -> SignedDuration {
    SignedDuration::from_secs(5)
}
fn ten_seconds() -> SignedDuration {
    SignedDuration::from_secs(10)
}

/// Parses a scenario time with the one duration grammar (`crate::api::duration`), which
/// for scenarios also takes `1h 30m` and a bare number of seconds (`30`, `2.5`).
pub fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let parsed = crate::api::duration::parse_scenario_duration(text).map_err(|e| e.to_string())?;
    SignedDuration::try_from(parsed).map_err(|e| e.to_string())
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => parse_duration(&n.to_string()).map_err(serde::de::Error::custom),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SignedDuration>, D::Error> {
    de_duration(d).map(Some)
}

// serde's `serialize_with` hands over the field as it is: `&Option<_>`.
#[allow(clippy::ref_option)]
fn ser_opt_duration<S: serde::Serializer>(
    d: &Option<SignedDuration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

fn ser_duration<S: serde::Serializer>(d: &SignedDuration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{d:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_with_devices_and_events_parses() {
        let s = Scenario::from_yaml(
            r#"
hub: plant-a
seed: 7
devices:
  - id: gw-1
    tags: {site: plant-a}
  - id: gw-2
    modules:
      - name: filter
        image: example/filter:1.0
        restartPolicy: never
events:
  - at: 30s
    device: gw-1
    crash: {module: SimulatedTemperatureSensor, exitCode: 2}
  - at: 2m
    device: gw-2
    offline: {}
  - at: 90
    device: gw-2
    deploy: {images: {filter: "example/filter:2.0"}, outcome: rejected, delay: 5s}
"#,
        )
        .unwrap();
        assert_eq!(s.devices.len(), 2);
        assert_eq!(s.devices[0].modules, default_modules());
        assert_eq!(s.devices[1].modules[0].restart_policy, RestartPolicy::Never);
        assert_eq!(s.events[0].at, SignedDuration::from_secs(30));
        assert_eq!(
            s.events[0].action,
            Action::Crash {
                module: "SimulatedTemperatureSensor".into(),
                exit_code: 2
            }
        );
        assert_eq!(s.events[1].action, Action::Offline {});
        assert_eq!(s.events[2].at, SignedDuration::from_secs(90));
        assert!(matches!(
            s.events[2].action,
            Action::Deploy {
                outcome: DeployOutcome::Rejected,
                ..
            }
        ));
    }

    #[test]
    fn mistakes_are_reported_clearly() {
        let unknown_field = Scenario::from_yaml("devices: [{id: a, colour: red}]").unwrap_err();
        assert!(unknown_field.contains("colour"), "{unknown_field}");
        let dangling =
            Scenario::from_yaml("devices: [{id: a}]\nevents: [{at: 1s, device: b, offline: {}}]")
                .unwrap_err();
        assert!(dangling.contains("\"b\""), "{dangling}");
        let bad_time =
            Scenario::from_yaml("devices: [{id: a}]\nevents: [{at: soon, device: a, offline: {}}]")
                .unwrap_err();
        assert!(bad_time.contains("soon"), "{bad_time}");
        let ghost = Scenario::from_yaml(
            "devices: [{id: a}]\nevents: [{at: 1s, device: a, crash: {module: ghost}}]",
        )
        .unwrap_err();
        assert!(ghost.contains("\"ghost\""), "{ghost}");
        assert!(
            Scenario::from_yaml(
                "devices: [{id: a}]\nevents: [{at: 1s, device: a, crash: {module: edgeHub}}]"
            )
            .is_ok()
        );
        let twice = Scenario::from_yaml("devices: [{id: a}, {id: a}]").unwrap_err();
        assert!(twice.contains("twice"));
        let system =
            Scenario::from_yaml("devices: [{id: a, modules: [{name: edgeHub, image: x}]}]")
                .unwrap_err();
        assert!(system.contains("system module"));
        assert!(Scenario::from_yaml("devices: [{id: 'a b'}]").is_err());
    }

    #[test]
    fn durations_in_several_spellings() {
        assert_eq!(
            parse_duration("500ms").unwrap(),
            SignedDuration::from_millis(500)
        );
        assert_eq!(
            parse_duration("1h 30m").unwrap(),
            SignedDuration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("PT30S").unwrap(),
            SignedDuration::from_secs(30)
        );
        assert_eq!(
            parse_duration("2.5").unwrap(),
            SignedDuration::from_millis(2500)
        );
        assert!(parse_duration("later").is_err());
    }

    #[test]
    fn actions_round_trip_as_json_for_the_admin_api() {
        let a: Action =
            serde_json::from_str(r#"{"crashLoop": {"module": "m", "runFor": "3s"}}"#).unwrap();
        assert_eq!(
            a,
            Action::CrashLoop {
                module: "m".into(),
                exit_code: 1,
                run_for: SignedDuration::from_secs(3)
            }
        );
        let back: Action = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
