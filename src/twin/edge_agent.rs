//! The `$edgeAgent` module twin: the deployment (desired) and the runtime state of every
//! module on the device (reported).

use std::fmt;

use serde_json::{Map, Value};

use super::envelope::{Expect, SectionMeta, open};
use super::extract::{integer, string, sub_object, time};
use super::{EDGE_AGENT, TwinError, TwinIdentity, TwinTime, parse_json};

/// `runtimeStatus` as the agent reports it (enum `ModuleStatus` of the agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeStatus {
    Unknown,
    Backoff,
    Running,
    Unhealthy,
    Stopped,
    Failed,
    Dead,
    /// A value this version of edgewatch does not know; judged as unknown.
    Other(String),
}

impl RuntimeStatus {
    /// Case-insensitive, as the agent's own deserialiser is.
    pub fn parse(text: &str) -> RuntimeStatus {
        match text.to_ascii_lowercase().as_str() {
            "unknown" => RuntimeStatus::Unknown,
            "backoff" => RuntimeStatus::Backoff,
            "running" => RuntimeStatus::Running,
            "unhealthy" => RuntimeStatus::Unhealthy,
            "stopped" => RuntimeStatus::Stopped,
            "failed" => RuntimeStatus::Failed,
            "dead" => RuntimeStatus::Dead,
            _ => RuntimeStatus::Other(text.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RuntimeStatus::Unknown => "unknown",
            RuntimeStatus::Backoff => "backoff",
            RuntimeStatus::Running => "running",
            RuntimeStatus::Unhealthy => "unhealthy",
            RuntimeStatus::Stopped => "stopped",
            RuntimeStatus::Failed => "failed",
            RuntimeStatus::Dead => "dead",
            RuntimeStatus::Other(text) => text,
        }
    }
}

impl fmt::Display for RuntimeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One module as the deployment (desired properties) asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredModule {
    /// `edgeAgent`, `edgeHub` or the key under `modules`.
    pub name: String,
    /// Listed under `systemModules`.
    pub system: bool,
    /// `running` or `stopped`; `None` when not given (which means running).
    pub status: Option<String>,
    pub image: Option<String>,
    pub restart_policy: Option<String>,
    pub version: Option<String>,
}

/// One module as the agent reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedModule {
    pub name: String,
    pub system: bool,
    pub runtime_status: Option<RuntimeStatus>,
    /// The desired status the agent echoes (`status`).
    pub status: Option<String>,
    pub exit_code: Option<i64>,
    pub status_description: Option<String>,
    pub restart_count: Option<i64>,
    pub last_start_time: Option<TwinTime>,
    pub last_exit_time: Option<TwinTime>,
    pub last_restart_time: Option<TwinTime>,
    pub image: Option<String>,
    pub version: Option<String>,
}

/// `lastDesiredStatus`: how the agent fared with the last deployment it processed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentStatus {
    pub code: Option<i64>,
    pub description: Option<String>,
}

/// The `$edgeAgent` twin, reduced to what the health rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeAgentTwin {
    pub identity: TwinIdentity,
    pub desired: SectionMeta,
    pub reported: SectionMeta,
    /// System modules first (`edgeAgent`, `edgeHub`), then custom modules by name.
    /// `None` when the desired section names no modules at all (a reported-only fragment).
    pub desired_modules: Option<Vec<DesiredModule>>,
    /// Same order; `None` when the reported section lists no modules at all.
    pub reported_modules: Option<Vec<ReportedModule>>,
    pub last_desired_version: Option<i64>,
    pub last_desired_status: Option<DeploymentStatus>,
}

impl EdgeAgentTwin {
    pub fn from_slice(bytes: &[u8]) -> Result<EdgeAgentTwin, TwinError> {
        EdgeAgentTwin::from_value(&parse_json(bytes)?)
    }

    pub fn from_value(value: &Value) -> Result<EdgeAgentTwin, TwinError> {
        let twin = open(value, Expect::Module(EDGE_AGENT))?;
        let status = sub_object(twin.reported, "lastDesiredStatus");
        Ok(EdgeAgentTwin {
            identity: twin.identity,
            desired: SectionMeta::read(twin.desired),
            reported: SectionMeta::read(twin.reported),
            desired_modules: module_entries(twin.desired, read_desired),
            reported_modules: module_entries(twin.reported, read_reported),
            last_desired_version: integer(twin.reported, "lastDesiredVersion"),
            last_desired_status: status.map(|s| DeploymentStatus {
                code: integer(Some(s), "code"),
                description: string(Some(s), "description"),
            }),
        })
    }

    /// The desired entry of a module, by name.
    pub fn desired_module(&self, name: &str) -> Option<&DesiredModule> {
        self.desired_modules
            .as_deref()?
            .iter()
            .find(|m| m.name == name)
    }

    /// The reported entry of a module, by name.
    pub fn reported_module(&self, name: &str) -> Option<&ReportedModule> {
        self.reported_modules
            .as_deref()?
            .iter()
            .find(|m| m.name == name)
    }
}

type Section<'a> = Option<&'a Map<String, Value>>;

/// Reads `systemModules.*` then `modules.*` with `read`; `None` when neither map exists.
fn module_entries<T>(
    section: Section<'_>,
    read: fn(String, bool, Section<'_>) -> T,
) -> Option<Vec<T>> {
    let system = sub_object(section, "systemModules");
    let custom = sub_object(section, "modules");
    if system.is_none() && custom.is_none() {
        return None;
    }
    let mut entries = Vec::new();
    for (map, is_system) in [(system, true), (custom, false)] {
        let Some(map) = map else { continue };
        let mut names: Vec<&String> = map.keys().collect();
        if is_system {
            names.sort_by_key(|name| system_rank(name));
        }
        for name in names {
            if let Some(module) = map.get(name).and_then(Value::as_object) {
                entries.push(read(name.clone(), is_system, Some(module)));
            }
        }
    }
    Some(entries)
}

fn system_rank(name: &str) -> (u8, &str) {
    match name {
        "edgeAgent" => (0, name),
        "edgeHub" => (1, name),
        _ => (2, name),
    }
}

fn image(module: Section<'_>) -> Option<String> {
    string(sub_object(module, "settings"), "image")
}

fn read_desired(name: String, system: bool, module: Section<'_>) -> DesiredModule {
    DesiredModule {
        name,
        system,
        status: string(module, "status"),
        image: image(module),
        restart_policy: string(module, "restartPolicy"),
        version: string(module, "version"),
    }
}

fn read_reported(name: String, system: bool, module: Section<'_>) -> ReportedModule {
    ReportedModule {
        name,
        system,
        runtime_status: string(module, "runtimeStatus").map(|s| RuntimeStatus::parse(&s)),
        status: string(module, "status"),
        exit_code: integer(module, "exitCode"),
        status_description: string(module, "statusDescription"),
        restart_count: integer(module, "restartCount"),
        last_start_time: time(module, "lastStartTimeUtc"),
        last_exit_time: time(module, "lastExitTimeUtc"),
        last_restart_time: time(module, "lastRestartTimeUtc"),
        image: image(module),
        version: string(module, "version"),
    }
}

impl std::str::FromStr for EdgeAgentTwin {
    type Err = TwinError;

    fn from_str(text: &str) -> Result<EdgeAgentTwin, TwinError> {
        EdgeAgentTwin::from_slice(text.as_bytes())
    }
}
