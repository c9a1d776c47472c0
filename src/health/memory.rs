//! What the evaluator remembers between two looks at a device: the restarts it has seen,
//! so the restart-loop rule also catches a module whose `restartCount` the agent keeps
//! resetting (it clears the count after 10 minutes of running).
//!
//! Size: only modules with a restart inside the window are kept, each with at most
//! `restartLoop.restarts` timestamps. As JSON that is about 90 bytes plus 30 bytes per
//! kept timestamp per module: 180 bytes for a looping module under the default policy,
//! `{}` for a quiet device.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::policy::RestartLoopPolicy;
use super::text::before;
use crate::twin::{EdgeAgentTwin, ReportedModule};

/// Restart observations of one device, carried from one evaluation to the next (the
/// controller keeps it in the resource status so it survives an operator restart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceMemory {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<ModuleRestarts>,
}

/// Restarts of one module seen within the restart-loop window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleRestarts {
    pub module: String,
    /// `restartCount` at the last observation.
    pub restart_count: i64,
    /// `lastRestartTimeUtc` at the last observation.
    pub last_restart: Timestamp,
    /// Restart times inside the window, oldest first. Several restarts that happened
    /// between two observations are all dated at the later `lastRestartTimeUtc` (the
    /// agent reports only the last one).
    pub recent: Vec<Timestamp>,
}

impl DeviceMemory {
    /// The restarts remembered for a module.
    pub fn module(&self, name: &str) -> Option<&ModuleRestarts> {
        self.restarts.iter().find(|m| m.module == name)
    }

    /// Number of restarts of a module inside the window as of the last observation.
    pub fn recent_restarts(&self, name: &str) -> usize {
        self.module(name).map_or(0, |m| m.recent.len())
    }
}

/// Folds the agent's current report into the previous memory.
pub(crate) fn observe(
    agent: &EdgeAgentTwin,
    previous: Option<&DeviceMemory>,
    policy: &RestartLoopPolicy,
    now: Timestamp,
) -> DeviceMemory {
    if policy.restarts == 0 {
        return DeviceMemory::default();
    }
    let reported = agent.reported_modules.as_deref().unwrap_or_default();
    let restarts = reported
        .iter()
        .filter_map(|module| {
            let before = previous.and_then(|memory| memory.module(&module.name));
            observe_module(module, before, policy, now)
        })
        .collect();
    DeviceMemory { restarts }
}

fn observe_module(
    module: &ReportedModule,
    previous: Option<&ModuleRestarts>,
    policy: &RestartLoopPolicy,
    now: Timestamp,
) -> Option<ModuleRestarts> {
    let count = module.restart_count.unwrap_or(0).max(0);
    let last = module.last_restart_time.and_then(|t| t.timestamp());
    let mut recent = previous.map(|p| p.recent.clone()).unwrap_or_default();
    let (count_seen, last_seen) = match (last, previous) {
        (Some(last), None) => {
            push_copies(&mut recent, last, count);
            (count, last)
        }
        (Some(last), Some(p)) if last > p.last_restart => {
            // A count that did not grow was reset in between: all of it is new.
            let new = if count > p.restart_count {
                count - p.restart_count
            } else {
                count.max(1)
            };
            push_copies(&mut recent, last, new);
            (count, last)
        }
        (Some(last), Some(_)) => (count, last),
        (None, Some(p)) => (count, p.last_restart),
        (None, None) => return None,
    };
    let cutoff = before(now, policy.window);
    recent.retain(|t| *t >= cutoff);
    let keep = policy.restarts as usize;
    if recent.len() > keep {
        recent.drain(..recent.len() - keep);
    }
    (!recent.is_empty()).then(|| ModuleRestarts {
        module: module.name.clone(),
        restart_count: count_seen,
        last_restart: last_seen,
        recent,
    })
}

fn push_copies(recent: &mut Vec<Timestamp>, at: Timestamp, copies: i64) {
    let copies = usize::try_from(copies).unwrap_or(0).min(64);
    recent.extend(std::iter::repeat_n(at, copies));
    recent.sort();
}
