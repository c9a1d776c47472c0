//! A custom module's twin: its desired properties (from the deployment) and the ones the
//! module reports back, so the evaluator can tell whether the module applied its settings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::envelope::{Expect, SectionMeta, open};
use super::extract::{last_updated, sub_object};
use super::{TwinError, TwinIdentity, TwinTime, parse_json};

/// A top-level property with the `$lastUpdated` of its own `$metadata` node.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyValue {
    pub value: Value,
    pub last_updated: Option<TwinTime>,
}

/// The top-level (non-`$`) properties of one section, by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertySet(pub BTreeMap<String, PropertyValue>);

impl PropertySet {
    fn read(section: Option<&Map<String, Value>>) -> PropertySet {
        let Some(section) = section else {
            return PropertySet::default();
        };
        let metadata = sub_object(Some(section), "$metadata");
        let entries = section
            .iter()
            .filter(|(key, _)| !key.starts_with('$'))
            .map(|(key, value)| {
                let node = sub_object(metadata, key);
                let entry = PropertyValue {
                    value: value.clone(),
                    last_updated: last_updated(node),
                };
                (key.clone(), entry)
            })
            .collect();
        PropertySet(entries)
    }

    pub fn get(&self, key: &str) -> Option<&PropertyValue> {
        self.0.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A custom module's twin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleTwin {
    pub identity: TwinIdentity,
    pub desired: SectionMeta,
    pub reported: SectionMeta,
    pub desired_properties: PropertySet,
    pub reported_properties: PropertySet,
}

impl ModuleTwin {
    pub fn from_slice(bytes: &[u8]) -> Result<ModuleTwin, TwinError> {
        ModuleTwin::from_value(&parse_json(bytes)?)
    }

    /// Refuses `$edgeAgent` and `$edgeHub` twins: they have their own views.
    pub fn from_value(value: &Value) -> Result<ModuleTwin, TwinError> {
        let twin = open(value, Expect::CustomModule)?;
        Ok(ModuleTwin {
            identity: twin.identity,
            desired: SectionMeta::read(twin.desired),
            reported: SectionMeta::read(twin.reported),
            desired_properties: PropertySet::read(twin.desired),
            reported_properties: PropertySet::read(twin.reported),
        })
    }

    /// The module id, or `"(unnamed module)"` for a fragment without one.
    pub fn name(&self) -> &str {
        self.identity
            .module_id
            .as_deref()
            .unwrap_or("(unnamed module)")
    }
}

impl std::str::FromStr for ModuleTwin {
    type Err = TwinError;

    fn from_str(text: &str) -> Result<ModuleTwin, TwinError> {
        ModuleTwin::from_slice(text.as_bytes())
    }
}
