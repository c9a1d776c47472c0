//! The device twin: the few fields that tell an IoT Edge device apart and group it.

use serde_json::{Map, Value};

use super::envelope::{Expect, open};
use super::extract::{field, sub_object};
use super::{TwinError, TwinIdentity, parse_json};

/// A device twin (not a module twin): identity, `capabilities.iotEdge` and `tags`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceTwin {
    pub identity: TwinIdentity,
    /// `capabilities.iotEdge`; `None` when the twin does not say.
    pub iot_edge: Option<bool>,
    /// `tags`, kept whole because selectors may address any tag (8 KB at most).
    pub tags: Map<String, Value>,
}

impl DeviceTwin {
    pub fn from_slice(bytes: &[u8]) -> Result<DeviceTwin, TwinError> {
        DeviceTwin::from_value(&parse_json(bytes)?)
    }

    pub fn from_value(value: &Value) -> Result<DeviceTwin, TwinError> {
        let twin = open(value, Expect::Device)?;
        let root = Some(twin.root);
        Ok(DeviceTwin {
            identity: twin.identity,
            iot_edge: field(sub_object(root, "capabilities"), "iotEdge").and_then(Value::as_bool),
            tags: sub_object(root, "tags").cloned().unwrap_or_default(),
        })
    }
}
