//! The thresholds a watch judges its devices by (the CRD's spec fields, or CLI flags).

use std::time::Duration;

/// How strictly a device is judged. `Default` is the documented default of the CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A report older than this is stale when the agent did not answer a ping (15m).
    pub stale_after: Duration,
    /// How long after a desired change the device may take to apply it (10m).
    pub deployment_grace: Duration,
    pub restart_loop: RestartLoopPolicy,
    /// Which properties of which custom module twins to compare. A module twin handed to
    /// the evaluator without an entry here has all its desired keys compared.
    pub property_checks: Vec<PropertyCheck>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            stale_after: Duration::from_secs(15 * 60),
            deployment_grace: Duration::from_secs(10 * 60),
            restart_loop: RestartLoopPolicy::default(),
            property_checks: Vec::new(),
        }
    }
}

impl Policy {
    /// The keys to compare for a module twin.
    pub fn selection_for(&self, module: &str) -> &PropertySelection {
        self.property_checks
            .iter()
            .find(|check| check.module == module)
            .map(|check| &check.keys)
            .unwrap_or(&PropertySelection::AllDesired)
    }
}

/// A module restarted `restarts` times within `window` is in a restart loop (3 in 30m).
/// `restarts: 0` turns the rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLoopPolicy {
    pub restarts: u32,
    pub window: Duration,
}

impl Default for RestartLoopPolicy {
    fn default() -> RestartLoopPolicy {
        RestartLoopPolicy {
            restarts: 3,
            window: Duration::from_secs(30 * 60),
        }
    }
}

/// The properties of one custom module whose desired and reported values must agree
/// (`spec.modules[].compareProperties`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyCheck {
    /// Module id (the module twin's `moduleId`).
    pub module: String,
    pub keys: PropertySelection,
}

/// Which top-level properties to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertySelection {
    /// Every key of the desired section.
    AllDesired,
    /// Only these keys (keys absent from desired are not compared).
    Keys(Vec<String>),
}
