//! Typed, tolerant views of IoT Hub twin documents.
//!
//! Twins arrive from `GET /twins/{device}/modules/{module}`, from query pages and from
//! `az iot hub module-twin show` (all the same JSON). Each view keeps only what the
//! health rules read, so memory grows with the number of devices and not with the size
//! of their twins. Parsing never fails on content: unknown fields are ignored, missing
//! or oddly typed fields become `None`/empty. It fails only when the document is not a
//! JSON object or belongs to a different module than the caller asked for.

mod device;
mod edge_agent;
mod edge_hub;
mod envelope;
mod extract;
mod module;
mod prune;
mod time;

pub use device::DeviceTwin;
pub use edge_agent::{
    DeploymentStatus, DesiredModule, EdgeAgentTwin, ReportedModule, RuntimeStatus,
};
pub use edge_hub::{EdgeHubTwin, HubClient};
pub use envelope::{SectionMeta, TwinIdentity};
pub use module::{ModuleTwin, PropertySet, PropertyValue};
pub use time::TwinTime;

/// Module id of the IoT Edge agent's twin.
pub const EDGE_AGENT: &str = "$edgeAgent";
/// Module id of the IoT Edge hub's twin.
pub const EDGE_HUB: &str = "$edgeHub";

/// Why a document cannot be read as the twin asked for.
#[derive(Debug, thiserror::Error)]
pub enum TwinError {
    /// The bytes are not JSON at all.
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// Valid JSON, but not an object (a query page is an array of twins, for example).
    #[error("expected a twin (a JSON object) but found {found}")]
    NotAnObject { found: &'static str },
    /// A twin of another module than the one asked for.
    #[error("expected the twin of {expected} but this is the twin of module {found:?}")]
    WrongModule {
        expected: &'static str,
        found: String,
    },
}

/// Parses bytes into a JSON value, the first step of every `from_slice`, leaving out
/// the `$metadata` nodes no rule reads.
fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, TwinError> {
    Ok(prune::parse(bytes)?)
}
