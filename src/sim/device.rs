//! One simulated IoT Edge device: its deployment, its module processes as the edge
//! agent runs them, and the twins the agent and modules report from them.
//!
//! Time moves only through [`SimDevice::advance_to`]: it fires every due event (scripted
//! actions, restarts after back-off, delayed deployments, crash-loop crashes, counter
//! resets) at its exact time, in order, and reports after each, so a clock jump of an
//! hour yields the same twins as living through that hour.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::scenario::{Action, DeployOutcome, DesiredStatus, ModuleSpec, RestartPolicy};
use super::timefmt::{NEVER_Z, agent_naive, agent_naive_or_never, with_z};
use super::twin::TwinDoc;

/// The agent gives up restarting a module after this many restarts.
pub const MAX_RESTART_COUNT: u32 = 20;
/// Back-off unit: the n-th restart waits `min(unit × 2^n, cap)`.
pub const COOL_OFF_UNIT_SECS: i64 = 10;
pub const COOL_OFF_CAP_SECS: i64 = 300;
/// A module running this long gets its restart counter cleared.
pub const INTENSIVE_CARE: SignedDuration = SignedDuration::from_mins(10);

const AGENT_VERSION: &str = "1.5.0";
const AGENT_BUILD: &str = "20240701.1";
const AGENT_COMMIT: &str = "5a1f3c0e8d2b4c6a9e7f1b3d5c7e9a0b2d4f6e8a";
const SUPPORTED_COMMANDS: &str =
    "ping,RestartModule,GetModuleLogs,UploadModuleLogs,UploadSupportBundle,GetTaskStatus";

/// The back-off before restart number `restart_count + 1`.
pub fn cool_off(restart_count: u32) -> SignedDuration {
    let factor = 1i64 << restart_count.min(10);
    SignedDuration::from_secs((COOL_OFF_UNIT_SECS * factor).min(COOL_OFF_CAP_SECS))
}

/// `runtimeStatus` values of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeStatus {
    Running,
    Backoff,
    Stopped,
    Failed,
    Unhealthy,
}

impl RuntimeStatus {
    fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Running => "running",
            RuntimeStatus::Backoff => "backoff",
            RuntimeStatus::Stopped => "stopped",
            RuntimeStatus::Failed => "failed",
            RuntimeStatus::Unhealthy => "unhealthy",
        }
    }
}

/// A module container as the agent manages it.
#[derive(Debug, Clone)]
struct ModuleProc {
    image: String,
    desired_status: DesiredStatus,
    restart_policy: RestartPolicy,
    status: RuntimeStatus,
    exit_code: i64,
    last_start: Option<Timestamp>,
    last_exit: Option<Timestamp>,
    restart_count: u32,
    last_restart: Option<Timestamp>,
    running_since: Option<Timestamp>,
    next_restart: Option<Timestamp>,
    crash_loop: Option<(SignedDuration, i64)>,
    crash_at: Option<Timestamp>,
    stop_exit_code: i64,
    /// Custom modules: the desired properties are not applied while set.
    lagging: bool,
}

impl ModuleProc {
    fn started(
        image: &str,
        spec_status: DesiredStatus,
        policy: RestartPolicy,
        at: Timestamp,
    ) -> Self {
        let mut p = ModuleProc {
            image: image.to_string(),
            desired_status: spec_status,
            restart_policy: policy,
            status: RuntimeStatus::Stopped,
            exit_code: 0,
            last_start: None,
            last_exit: None,
            restart_count: 0,
            last_restart: None,
            running_since: None,
            next_restart: None,
            crash_loop: None,
            crash_at: None,
            stop_exit_code: 137,
            lagging: false,
        };
        if spec_status == DesiredStatus::Running {
            p.start(at);
        }
        p
    }

    fn is_up(&self) -> bool {
        matches!(
            self.status,
            RuntimeStatus::Running | RuntimeStatus::Unhealthy
        )
    }

    fn start(&mut self, at: Timestamp) {
        self.status = RuntimeStatus::Running;
        self.exit_code = 0;
        self.last_start = Some(at);
        self.running_since = Some(at);
        self.next_restart = None;
        self.crash_at = self.crash_loop.map(|(run_for, _)| at + run_for);
    }

    fn crash(&mut self, at: Timestamp, exit_code: i64) {
        self.exit_code = exit_code;
        self.last_exit = Some(at);
        self.running_since = None;
        self.crash_at = None;
        // The agent restarts failed modules under any policy but `never`, and modules
        // that exited cleanly only under `always`.
        let failed = exit_code != 0;
        let restarts = self.restart_policy == RestartPolicy::Always
            || (self.restart_policy > RestartPolicy::Never && failed);
        self.next_restart = None;
        self.status = if restarts && self.restart_count < MAX_RESTART_COUNT {
            self.next_restart = Some(at + cool_off(self.restart_count));
            RuntimeStatus::Backoff
        } else if failed || restarts {
            RuntimeStatus::Failed
        } else {
            RuntimeStatus::Stopped
        };
    }

    fn restart(&mut self, at: Timestamp) {
        self.restart_count += 1;
        self.last_restart = Some(at);
        self.start(at);
    }

    fn stop(&mut self, at: Timestamp) {
        self.status = RuntimeStatus::Stopped;
        self.exit_code = self.stop_exit_code;
        self.last_exit = Some(at);
        self.running_since = None;
        self.next_restart = None;
        self.crash_at = None;
    }

    fn status_description(&self) -> &'static str {
        if self.is_up() { "running" } else { "exited" }
    }
}

/// What the module twin side of a deployment holds.
#[derive(Debug, Clone)]
struct Deployment {
    agent_image: String,
    hub_image: String,
    modules: BTreeMap<String, ModuleSpec>,
}

/// A time-driven transition of one device.
#[derive(Debug, Clone, PartialEq)]
enum Due {
    Event,
    /// IoT Hub notices the device's connection change and updates `connectionState`.
    ConnectionState,
    Deployment,
    Restart(String),
    Crash(String),
    ResetCounters(String),
}

/// The answer to a direct method call, as IoT Hub relays it.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodOutcome {
    /// The module answered: HTTP 200 with this `status` and `payload`.
    Answer { status: i64, payload: Value },
    /// 404103: the target is not connected or has no method handler.
    NotOnline,
    /// 504101: connected but no answer within `responseTimeoutInSeconds`.
    Timeout,
}

/// Why an action could not be applied to a device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("device {device} has no module {module:?}")]
    UnknownModule { device: String, module: String },
    #[error("{0}")]
    Invalid(String),
}

/// Options for building a device.
pub struct DeviceSeed<'a> {
    pub id: &'a str,
    pub tags: Map<String, Value>,
    pub modules: &'a [ModuleSpec],
    pub online: bool,
    /// When the runtime booted (before the simulator started).
    pub boot: Timestamp,
    pub scope_suffix: u64,
    /// How late IoT Hub's `connectionState` may follow the device going offline or
    /// online: each change is noticed after a delay drawn from `[0, lag]`.
    pub connection_state_lag: SignedDuration,
    /// Seeds this device's draws (connection-state delays), so a fleet is reproducible.
    pub rng_seed: u64,
}

/// One simulated edge device.
#[derive(Debug)]
pub struct SimDevice {
    id: String,
    device_twin: TwinDoc,
    agent_twin: TwinDoc,
    hub_twin: TwinDoc,
    module_twins: BTreeMap<String, TwinDoc>,
    desired: Deployment,
    agent_started: Timestamp,
    hub: ModuleProc,
    procs: BTreeMap<String, ModuleProc>,
    agent_running: bool,
    online: bool,
    slow: bool,
    /// The agent process hangs: no answers to methods, no reports, device still connected.
    hung: bool,
    /// The connection state IoT Hub reports (follows `online` after a delay).
    hub_sees_online: bool,
    /// When IoT Hub will notice the pending connection change.
    connection_noticed_at: Option<Timestamp>,
    connection_state_lag: SignedDuration,
    rng: StdRng,
    last_desired_version: i64,
    last_desired_status: (i64, String),
    pending: Option<(Timestamp, DeployOutcome)>,
    events: VecDeque<(Timestamp, Action)>,
    /// Time up to which the device has lived.
    now: Timestamp,
}

impl SimDevice {
    /// A device whose runtime booted at `seed.boot` with its deployment applied.
    pub fn new(seed: DeviceSeed<'_>) -> Self {
        let etag = device_etag(seed.id);
        let mut device_twin = TwinDoc::new(seed.id, None, &etag);
        device_twin.tags = Some(seed.tags);
        device_twin.iot_edge = Some(true);
        device_twin.device_scope = Some(format!(
            "ms-azure-iot-edge://{}-{}",
            seed.id, seed.scope_suffix
        ));
        let desired = Deployment {
            agent_image: "mcr.microsoft.com/azureiotedge-agent:1.5".into(),
            hub_image: "mcr.microsoft.com/azureiotedge-hub:1.5".into(),
            modules: seed
                .modules
                .iter()
                .map(|m| (m.name.clone(), m.clone()))
                .collect(),
        };
        let boot = seed.boot;
        let hub = ModuleProc::started(
            &desired.hub_image,
            DesiredStatus::Running,
            RestartPolicy::Always,
            boot,
        );
        let mut dev = SimDevice {
            id: seed.id.to_string(),
            device_twin,
            agent_twin: TwinDoc::new(seed.id, Some("$edgeAgent"), &etag),
            hub_twin: TwinDoc::new(seed.id, Some("$edgeHub"), &etag),
            module_twins: BTreeMap::new(),
            desired,
            agent_started: boot,
            hub,
            procs: BTreeMap::new(),
            agent_running: true,
            online: seed.online,
            slow: false,
            hung: false,
            hub_sees_online: seed.online,
            connection_noticed_at: None,
            connection_state_lag: seed.connection_state_lag,
            rng: StdRng::seed_from_u64(seed.rng_seed),
            last_desired_version: 0,
            last_desired_status: (200, String::new()),
            pending: None,
            events: VecDeque::new(),
            now: boot,
        };
        let deployed = boot - SignedDuration::from_secs(60);
        dev.publish_desired(deployed);
        dev.hub_twin.set_desired(hub_desired_doc(), deployed);
        dev.apply_deployment(boot, DeployOutcome::Applied);
        dev.set_connection_states();
        dev.report(boot);
        dev
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Whether IoT Hub reports the device `Connected` (it notices changes late).
    pub fn hub_sees_online(&self) -> bool {
        self.hub_sees_online
    }

    /// Scripted events not yet fired.
    pub fn scheduled_events(&self) -> usize {
        self.events.len()
    }

    /// Queues scripted events (absolute times); they fire in time order.
    pub fn schedule(&mut self, at: Timestamp, action: Action) {
        let pos = self.events.partition_point(|(t, _)| *t <= at);
        self.events.insert(pos, (at, action));
    }

    /// The device twin.
    pub fn device_twin(&self) -> &TwinDoc {
        &self.device_twin
    }

    /// A module twin by module id (`$edgeAgent`, `$edgeHub` or a custom module).
    pub fn module_twin(&self, module_id: &str) -> Option<&TwinDoc> {
        match module_id {
            "$edgeAgent" => Some(&self.agent_twin),
            "$edgeHub" => Some(&self.hub_twin),
            other => self.module_twins.get(other),
        }
    }

    /// All module twins in id order (`$edgeAgent`, `$edgeHub`, then custom modules).
    pub fn module_twins(&self) -> impl Iterator<Item = &TwinDoc> {
        [&self.agent_twin, &self.hub_twin]
            .into_iter()
            .chain(self.module_twins.values())
    }

    /// Module identities as `GET /devices/{id}/modules` lists them.
    pub fn module_identities(&self) -> Vec<Value> {
        self.module_twins()
            .map(|t| {
                let module_id = t.module_id.as_deref().unwrap_or_default();
                let managed_by = if module_id.starts_with('$') {
                    Value::Null
                } else {
                    Value::from("IotEdge")
                };
                json!({
                    "moduleId": module_id,
                    "managedBy": managed_by,
                    "deviceId": self.id,
                    "generationId": generation_id(&self.id, module_id),
                    "etag": "MQ==",
                    "connectionState": t.connection_state,
                    "connectionStateUpdatedTime": with_z(self.agent_started),
                    "lastActivityTime": NEVER_Z,
                    "cloudToDeviceMessageCount": 0,
                    "authentication": {
                        "symmetricKey": {"primaryKey": null, "secondaryKey": null},
                        "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null},
                        "type": "sas"
                    }
                })
            })
            .collect()
    }

    /// Lives through every due transition up to `now`.
    pub fn advance_to(&mut self, now: Timestamp) {
        while let Some((at, due)) = self.next_due() {
            if at > now {
                break;
            }
            self.fire(at, due);
        }
        if now > self.now {
            self.now = now;
        }
    }

    /// Applies an action at `at` (normally "now") and reports the result.
    pub fn apply(&mut self, action: &Action, at: Timestamp) -> Result<(), ActionError> {
        self.advance_to(at);
        self.apply_action(action, at)?;
        self.report(at);
        Ok(())
    }

    /// A direct method call on a module of this device.
    pub fn invoke(
        &mut self,
        module_id: &str,
        method: &str,
        payload: &Value,
        at: Timestamp,
    ) -> MethodOutcome {
        self.advance_to(at);
        match module_id {
            "$edgeAgent" => self.invoke_agent(method, payload, at),
            "$edgeHub" => {
                if !self.online || !self.agent_running || !self.hub.is_up() {
                    MethodOutcome::NotOnline
                } else if method.eq_ignore_ascii_case("RefreshDeviceScopeIdentityCache") {
                    MethodOutcome::Answer {
                        status: 200,
                        payload: Value::Null,
                    }
                } else {
                    MethodOutcome::Answer {
                        status: 404,
                        payload: json!({"message": format!("Method {method} is not supported")}),
                    }
                }
            }
            // Custom modules of the simulated fleet register no method handlers.
            _ => MethodOutcome::NotOnline,
        }
    }

    fn invoke_agent(&mut self, method: &str, payload: &Value, at: Timestamp) -> MethodOutcome {
        if !self.online || !self.agent_running {
            return MethodOutcome::NotOnline;
        }
        if self.slow || self.hung {
            return MethodOutcome::Timeout;
        }
        let answer = |status: i64, payload: Value| MethodOutcome::Answer { status, payload };
        match method.to_ascii_lowercase().as_str() {
            "ping" => answer(200, Value::Null),
            "restartmodule" => match self.restart_by_request(payload, at) {
                Ok(()) => answer(200, Value::Null),
                Err((status, message)) => answer(status, json!({ "message": message })),
            },
            "getmodulelogs" | "uploadmodulelogs" | "uploadsupportbundle" | "gettaskstatus" => {
                answer(
                    500,
                    json!({"message": format!("The simulated agent does not implement {method}")}),
                )
            }
            _ => answer(
                400,
                json!({"message": format!(
                    "Command '{method}' not found. The supported commands are - {SUPPORTED_COMMANDS}"
                )}),
            ),
        }
    }

    fn restart_by_request(&mut self, payload: &Value, at: Timestamp) -> Result<(), (i64, String)> {
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or((400, "Payload is missing the module id ('id')".to_string()))?;
        match id {
            "edgeAgent" => self.agent_started = at,
            "edgeHub" => self.hub.start(at),
            name => match self.procs.get_mut(name) {
                Some(p) => p.start(at),
                None => {
                    return Err((
                        500,
                        format!("Module {name} not found in the current environment"),
                    ));
                }
            },
        }
        self.report(at);
        Ok(())
    }

    fn next_due(&self) -> Option<(Timestamp, Due)> {
        let mut best: Option<(Timestamp, Due)> = None;
        let mut consider = |at: Timestamp, due: Due| {
            if best.as_ref().is_none_or(|(t, _)| at < *t) {
                best = Some((at, due));
            }
        };
        if let Some((at, _)) = self.events.front() {
            consider(*at, Due::Event);
        }
        if let Some((at, _)) = self.pending {
            consider(at, Due::Deployment);
        }
        if let Some(at) = self.connection_noticed_at {
            consider(at, Due::ConnectionState);
        }
        if self.agent_running {
            for (name, p) in std::iter::once(("edgeHub", &self.hub))
                .chain(self.procs.iter().map(|(n, p)| (n.as_str(), p)))
            {
                if let Some(at) = p.next_restart {
                    consider(at, Due::Restart(name.into()));
                }
                if let Some(at) = p.crash_at {
                    consider(at, Due::Crash(name.into()));
                }
                if let (true, Some(since)) = (p.restart_count > 0 && p.is_up(), p.running_since) {
                    consider(since + INTENSIVE_CARE, Due::ResetCounters(name.into()));
                }
            }
        }
        best
    }

    fn proc_mut(&mut self, name: &str) -> Option<&mut ModuleProc> {
        if name == "edgeHub" {
            Some(&mut self.hub)
        } else {
            self.procs.get_mut(name)
        }
    }

    fn fire(&mut self, at: Timestamp, due: Due) {
        match due {
            Due::Event => {
                if let Some((_, action)) = self.events.pop_front()
                    && let Err(e) = self.apply_action(&action, at)
                {
                    tracing::warn!(device = %self.id, error = %e, "scripted event skipped");
                }
            }
            Due::Deployment => {
                if let Some((_, outcome)) = self.pending.take() {
                    self.apply_deployment(at, outcome);
                }
            }
            Due::ConnectionState => {
                self.connection_noticed_at = None;
                self.hub_sees_online = self.online;
            }
            Due::Restart(name) => {
                if let Some(p) = self.proc_mut(&name) {
                    p.restart(at);
                }
            }
            Due::Crash(name) => {
                if let Some(p) = self.proc_mut(&name) {
                    let code = p.crash_loop.map_or(1, |(_, c)| c);
                    p.crash(at, code);
                }
            }
            Due::ResetCounters(name) => {
                if let Some(p) = self.proc_mut(&name) {
                    p.restart_count = 0;
                }
            }
        }
        self.set_connection_states();
        self.report(at);
    }

    fn known_proc(&mut self, module: &str) -> Result<&mut ModuleProc, ActionError> {
        let device = self.id.clone();
        self.proc_mut(module).ok_or(ActionError::UnknownModule {
            device,
            module: module.to_string(),
        })
    }

    fn desired_module(&mut self, module: &str) -> Result<&mut ModuleSpec, ActionError> {
        let device = self.id.clone();
        self.desired
            .modules
            .get_mut(module)
            .ok_or(ActionError::UnknownModule {
                device,
                module: module.to_string(),
            })
    }

    fn apply_action(&mut self, action: &Action, at: Timestamp) -> Result<(), ActionError> {
        match action {
            Action::Crash { module, exit_code } => self.known_proc(module)?.crash(at, *exit_code),
            Action::CrashLoop {
                module,
                exit_code,
                run_for,
            } => {
                if !run_for.is_positive() {
                    return Err(ActionError::Invalid("runFor must be positive".into()));
                }
                let p = self.known_proc(module)?;
                p.crash_loop = Some((*run_for, *exit_code));
                p.crash(at, *exit_code);
            }
            Action::Unhealthy { module } => {
                let p = self.known_proc(module)?;
                if p.is_up() {
                    p.status = RuntimeStatus::Unhealthy;
                }
            }
            Action::Recover { module } => {
                let p = self.known_proc(module)?;
                p.crash_loop = None;
                p.crash_at = None;
                p.lagging = false;
                if p.desired_status == DesiredStatus::Running && !p.is_up() {
                    p.start(at);
                } else if p.status == RuntimeStatus::Unhealthy {
                    p.status = RuntimeStatus::Running;
                }
            }
            Action::StopModule { module, exit_code } => {
                if ![137, 143].contains(exit_code) {
                    return Err(ActionError::Invalid(
                        "a deliberate stop exits with 137 (SIGKILL) or 143 (SIGTERM)".into(),
                    ));
                }
                self.known_proc(module)?.stop_exit_code = *exit_code;
                self.desired_module(module)?.status = DesiredStatus::Stopped;
                self.change_deployment(at, DeployOutcome::Applied, SignedDuration::ZERO);
            }
            Action::StartModule { module } => {
                self.desired_module(module)?.status = DesiredStatus::Running;
                self.change_deployment(at, DeployOutcome::Applied, SignedDuration::ZERO);
            }
            Action::Offline {} => self.set_online(false, at),
            Action::Online {} => self.set_online(true, at),
            Action::Slow {} => self.slow = true,
            Action::Responsive {} => {
                self.slow = false;
                self.hung = false;
            }
            Action::AgentHang {} => self.hung = true,
            Action::Deploy {
                images,
                outcome,
                delay,
            } => self.deploy(images, *outcome, *delay, at)?,
            Action::ImageDrift { module, image } => self.known_proc(module)?.image = image.clone(),
            Action::SetDesiredProperty {
                module,
                property,
                value,
                lag,
            } => {
                self.desired_module(module)?
                    .desired_properties
                    .insert(property.clone(), value.clone());
                if *lag {
                    self.known_proc(module)?.lagging = true;
                }
                self.publish_module_desired(module, at);
            }
            Action::AgentShutdown {} => {
                self.agent_running = false;
                if self.online {
                    let doc = self.agent_reported_doc();
                    if self.agent_twin.set_reported(doc, at) {
                        self.note_activity(at);
                    }
                }
            }
            Action::AgentStart {} => {
                if !self.agent_running || self.hung {
                    self.agent_running = true;
                    self.hung = false;
                    self.agent_started = at;
                }
            }
        }
        self.set_connection_states();
        Ok(())
    }

    fn deploy(
        &mut self,
        images: &BTreeMap<String, String>,
        outcome: DeployOutcome,
        delay: SignedDuration,
        at: Timestamp,
    ) -> Result<(), ActionError> {
        if images.is_empty() {
            return Err(ActionError::Invalid(
                "a deployment change needs at least one new image".into(),
            ));
        }
        if delay.is_negative() {
            return Err(ActionError::Invalid("delay must not be negative".into()));
        }
        for (module, image) in images {
            match module.as_str() {
                "edgeAgent" => self.desired.agent_image = image.clone(),
                "edgeHub" => self.desired.hub_image = image.clone(),
                name => self.desired_module(name)?.settings_image(image),
            }
        }
        self.change_deployment(at, outcome, delay);
        Ok(())
    }

    fn change_deployment(&mut self, at: Timestamp, outcome: DeployOutcome, delay: SignedDuration) {
        self.publish_desired(at);
        self.pending = match outcome {
            DeployOutcome::NeverApplied => None,
            other => Some((at + delay, other)),
        };
    }

    fn publish_desired(&mut self, at: Timestamp) {
        let doc = agent_desired_doc(&self.desired);
        self.agent_twin.set_desired(doc, at);
        let names: Vec<String> = self.desired.modules.keys().cloned().collect();
        for name in names {
            self.publish_module_desired(&name, at);
        }
    }

    fn publish_module_desired(&mut self, module: &str, at: Timestamp) {
        let Some(spec) = self.desired.modules.get(module) else {
            return;
        };
        if let Some(twin) = self.module_twins.get_mut(module) {
            twin.set_desired(spec.desired_properties.clone(), at);
        }
    }

    fn apply_deployment(&mut self, at: Timestamp, outcome: DeployOutcome) {
        self.last_desired_version = self.agent_twin.desired.version();
        self.last_desired_status = match outcome {
            DeployOutcome::Applied | DeployOutcome::NeverApplied => (200, String::new()),
            DeployOutcome::Rejected => (
                400,
                "Error while parsing the deployment: the desired properties are not a valid configuration".into(),
            ),
            DeployOutcome::SchemaRejected => (
                412,
                "The desired schemaVersion is not supported by this edge agent".into(),
            ),
            DeployOutcome::Failed => (
                500,
                "Failed to pull the module image: The operation was canceled.".into(),
            ),
        };
        if outcome != DeployOutcome::Applied {
            return;
        }
        if self.hub.image != self.desired.hub_image {
            self.hub.image = self.desired.hub_image.clone();
            self.hub.start(at);
        }
        self.procs
            .retain(|name, _| self.desired.modules.contains_key(name));
        self.module_twins
            .retain(|name, _| self.desired.modules.contains_key(name));
        let specs: Vec<ModuleSpec> = self.desired.modules.values().cloned().collect();
        for spec in specs {
            self.sync_module(&spec, at);
        }
    }

    fn sync_module(&mut self, spec: &ModuleSpec, at: Timestamp) {
        let etag = self.device_twin.device_etag.clone();
        let proc = self.procs.entry(spec.name.clone()).or_insert_with(|| {
            ModuleProc::started(&spec.image, spec.status, spec.restart_policy, at)
        });
        let image_changed = proc.image != spec.image;
        proc.image = spec.image.clone();
        proc.restart_policy = spec.restart_policy;
        proc.desired_status = spec.status;
        match spec.status {
            DesiredStatus::Stopped if proc.is_up() || proc.status == RuntimeStatus::Backoff => {
                proc.stop(at)
            }
            DesiredStatus::Running
                if image_changed || !proc.is_up() && proc.status == RuntimeStatus::Stopped =>
            {
                proc.start(at)
            }
            _ => {}
        }
        if !self.module_twins.contains_key(&spec.name) {
            let mut twin = TwinDoc::new(&self.id, Some(&spec.name), &etag);
            twin.set_desired(spec.desired_properties.clone(), at);
            self.module_twins.insert(spec.name.clone(), twin);
        }
    }

    /// The device's network connection changes now; IoT Hub notices after a delay drawn
    /// from `[0, connection_state_lag]`. A change undone before the hub noticed it is
    /// never seen (a short blip keeps the twin `Connected`).
    fn set_online(&mut self, online: bool, at: Timestamp) {
        if online == self.online {
            return;
        }
        self.online = online;
        // The device was active up to the moment it dropped, and is again when it connects.
        self.note_activity(at);
        if online == self.hub_sees_online {
            self.connection_noticed_at = None;
            return;
        }
        let lag_ms = self.connection_state_lag.as_millis().max(0) as i64;
        let delay = SignedDuration::from_millis(self.rng.random_range(0..=lag_ms));
        self.connection_noticed_at = Some(at + delay);
    }

    /// IoT Hub heard from the device at `at` (`lastActivityTime` of the device twin).
    fn note_activity(&mut self, at: Timestamp) {
        self.device_twin.last_activity_time = with_z(at);
    }

    fn set_connection_states(&mut self) {
        let up = self.hub_sees_online && self.agent_running;
        self.device_twin.connection_state = if self.hub_sees_online {
            "Connected"
        } else {
            "Disconnected"
        };
        // The agent sends no device-to-cloud messages: its twin always reads Disconnected.
        self.agent_twin.connection_state = "Disconnected";
        self.hub_twin.connection_state = if up && self.hub.is_up() {
            "Connected"
        } else {
            "Disconnected"
        };
        for (name, twin) in self.module_twins.iter_mut() {
            let running = self.procs.get(name).is_some_and(ModuleProc::is_up);
            twin.connection_state = if up && running {
                "Connected"
            } else {
                "Disconnected"
            };
        }
    }

    /// The agent, edgeHub and modules patch their reported properties (only while the
    /// device is connected; a disconnected device's reports freeze).
    fn report(&mut self, at: Timestamp) {
        if !self.online || !self.agent_running {
            return;
        }
        let mut changed = false;
        if !self.hung {
            let agent_doc = self.agent_reported_doc();
            changed |= self.agent_twin.set_reported(agent_doc, at);
        }
        if self.hub.is_up() {
            let hub_doc = self.hub_reported_doc();
            changed |= self.hub_twin.set_reported(hub_doc, at);
        }
        for (name, twin) in self.module_twins.iter_mut() {
            let Some(p) = self.procs.get(name) else {
                continue;
            };
            if p.is_up() && !p.lagging {
                let props = self
                    .desired
                    .modules
                    .get(name)
                    .map(|s| s.desired_properties.clone())
                    .unwrap_or_default();
                changed |= twin.set_reported(props, at);
            }
        }
        if changed {
            self.note_activity(at);
        }
    }

    fn agent_reported_doc(&self) -> Map<String, Value> {
        let status_of = |p: &ModuleProc| {
            if self.agent_running {
                p.status.as_str()
            } else {
                "unknown"
            }
        };
        let (code, description) = if self.agent_running {
            self.last_desired_status.clone()
        } else {
            (406, "Agent is not running".to_string())
        };
        let agent = json!({
            "type": "docker",
            "startupOrder": 0,
            "exitCode": 0,
            "statusDescription": "running",
            "lastStartTimeUtc": agent_naive(self.agent_started),
            "lastExitTimeUtc": agent_naive_or_never(None),
            "runtimeStatus": if self.agent_running { "running" } else { "unknown" },
            "imagePullPolicy": "on-create",
            "settings": {
                "image": self.desired.agent_image,
                "imageHash": image_hash(&self.desired.agent_image),
                "createOptions": "{}"
            }
        });
        let mut hub = module_entry(&self.hub, status_of(&self.hub));
        hub.remove("version");
        let modules: Map<String, Value> = self
            .procs
            .iter()
            .map(|(name, p)| (name.clone(), Value::Object(module_entry(p, status_of(p)))))
            .collect();
        let doc = json!({
            "schemaVersion": "1.0",
            "version": {"version": AGENT_VERSION, "build": AGENT_BUILD, "commit": AGENT_COMMIT},
            "lastDesiredVersion": self.last_desired_version,
            "lastDesiredStatus": {"code": code, "description": description},
            "runtime": {
                "type": "docker",
                "settings": {"minDockerVersion": "v1.25", "registryCredentials": {}},
                "platform": {"os": "linux", "architecture": "x86_64", "version": AGENT_VERSION}
            },
            "systemModules": {"edgeAgent": agent, "edgeHub": hub},
            "modules": modules
        });
        into_map(doc)
    }

    fn hub_reported_doc(&self) -> Map<String, Value> {
        let clients: Map<String, Value> = self
            .procs
            .iter()
            .filter_map(|(name, p)| {
                let key = format!("{}/{}", encode_client_key(&self.id), encode_client_key(name));
                let entry = if p.is_up() {
                    json!({"status": "Connected", "lastConnectedTimeUtc": with_z(p.last_start?)})
                } else {
                    let mut e = json!({"status": "Disconnected", "lastDisconnectedTimeUtc": with_z(p.last_exit?)});
                    if let Some(s) = p.last_start {
                        e["lastConnectedTimeUtc"] = Value::from(with_z(s));
                    }
                    e
                };
                Some((key, entry))
            })
            .collect();
        into_map(json!({
            "schemaVersion": "1.0",
            "version": {"version": AGENT_VERSION, "build": AGENT_BUILD, "commit": AGENT_COMMIT},
            "lastDesiredVersion": self.hub_twin.desired.version(),
            "lastDesiredStatus": {"code": 200, "description": ""},
            "clients": clients
        }))
    }
}

impl ModuleSpec {
    fn settings_image(&mut self, image: &str) {
        self.image = image.to_string();
    }
}

fn module_entry(p: &ModuleProc, runtime_status: &str) -> Map<String, Value> {
    into_map(json!({
        "exitCode": p.exit_code,
        "statusDescription": p.status_description(),
        "lastStartTimeUtc": agent_naive_or_never(p.last_start),
        "lastExitTimeUtc": agent_naive_or_never(p.last_exit),
        "restartCount": p.restart_count,
        "lastRestartTimeUtc": p.last_restart.map_or_else(|| NEVER_Z.to_string(), with_z),
        "runtimeStatus": runtime_status,
        "version": "1.0",
        "status": p.desired_status.as_str(),
        "restartPolicy": p.restart_policy.as_str(),
        "imagePullPolicy": "on-create",
        "type": "docker",
        "settings": {"image": p.image, "imageHash": image_hash(&p.image), "createOptions": "{}"},
        "env": {}
    }))
}

fn agent_desired_doc(d: &Deployment) -> Map<String, Value> {
    let modules: Map<String, Value> = d
        .modules
        .values()
        .map(|m| {
            (
                m.name.clone(),
                json!({
                    "version": "1.0",
                    "type": "docker",
                    "status": m.status.as_str(),
                    "restartPolicy": m.restart_policy.as_str(),
                    "settings": {"image": m.image, "createOptions": "{}"}
                }),
            )
        })
        .collect();
    into_map(json!({
        "schemaVersion": "1.1",
        "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
        "systemModules": {
            "edgeAgent": {"type": "docker", "settings": {"image": d.agent_image, "createOptions": ""}},
            "edgeHub": {
                "type": "docker", "status": "running", "restartPolicy": "always",
                "settings": {"image": d.hub_image, "createOptions": "{\"HostConfig\":{\"PortBindings\":{\"443/tcp\":[{\"HostPort\":\"443\"}],\"5671/tcp\":[{\"HostPort\":\"5671\"}],\"8883/tcp\":[{\"HostPort\":\"8883\"}]}}}"}
            }
        },
        "modules": modules
    }))
}

fn hub_desired_doc() -> Map<String, Value> {
    into_map(json!({
        "schemaVersion": "1.1",
        "routes": {"upstream": {"route": "FROM /messages/* INTO $upstream", "priority": 0, "timeToLiveSecs": 7200}},
        "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}
    }))
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// edgeHub's encoding of client ids as twin keys (`.`, `$` and space are not allowed).
fn encode_client_key(id: &str) -> String {
    id.replace('.', "%2E")
        .replace('$', "%24")
        .replace(' ', "%20")
}

fn image_hash(image: &str) -> String {
    let digest = Sha256::digest(image.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn device_etag(id: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(id.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    base64::engine::general_purpose::STANDARD.encode(n.to_string())
}

fn generation_id(device: &str, module: &str) -> String {
    let digest = Sha256::digest(format!("{device}/{module}").as_bytes());
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    format!("63{:016}", n % 10_000_000_000_000_000)
}
