//! What every twin shares: the identity envelope and the desired/reported section headers.

use serde_json::{Map, Value};

use super::TwinError;
use super::extract::{integer, kind, last_updated, string, sub_object};

/// The identity envelope of a twin document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TwinIdentity {
    pub device_id: Option<String>,
    /// `None` for device twins and for property fragments.
    pub module_id: Option<String>,
    /// Changes with every twin change; the controller uses it to skip unchanged twins.
    pub etag: Option<String>,
    /// Twin-level version (≥ both section `$version`s).
    pub version: Option<i64>,
}

/// Header of a `properties.desired` or `properties.reported` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SectionMeta {
    /// The section exists as an object.
    pub present: bool,
    /// It holds at least one key that is not a `$` system key.
    pub has_content: bool,
    /// `$version`.
    pub version: Option<i64>,
    /// `$metadata.$lastUpdated`.
    pub last_updated: Option<super::TwinTime>,
}

impl SectionMeta {
    pub(crate) fn read(section: Option<&Map<String, Value>>) -> SectionMeta {
        SectionMeta {
            present: section.is_some(),
            has_content: section.is_some_and(|s| s.keys().any(|k| !k.starts_with('$'))),
            version: integer(section, "$version"),
            last_updated: last_updated(sub_object(section, "$metadata")),
        }
    }
}

/// A twin document opened for reading: envelope plus the two property sections.
pub(crate) struct OpenTwin<'a> {
    pub identity: TwinIdentity,
    pub desired: Option<&'a Map<String, Value>>,
    pub reported: Option<&'a Map<String, Value>>,
    pub root: &'a Map<String, Value>,
}

/// Which `moduleId` a parser accepts (a missing `moduleId` is always accepted: fragments).
pub(crate) enum Expect {
    Module(&'static str),
    CustomModule,
    Device,
}

pub(crate) fn open(value: &Value, expect: Expect) -> Result<OpenTwin<'_>, TwinError> {
    let root = value
        .as_object()
        .ok_or(TwinError::NotAnObject { found: kind(value) })?;
    let root_opt = Some(root);
    let identity = TwinIdentity {
        device_id: string(root_opt, "deviceId"),
        module_id: string(root_opt, "moduleId"),
        etag: string(root_opt, "etag"),
        version: integer(root_opt, "version"),
    };
    check_module(identity.module_id.as_deref(), expect)?;
    let properties = sub_object(root_opt, "properties");
    Ok(OpenTwin {
        identity,
        desired: sub_object(properties, "desired"),
        reported: sub_object(properties, "reported"),
        root,
    })
}

fn check_module(found: Option<&str>, expect: Expect) -> Result<(), TwinError> {
    let Some(found) = found else { return Ok(()) };
    let (ok, expected) = match expect {
        Expect::Module(id) => (found == id, id),
        Expect::CustomModule => (
            found != super::EDGE_AGENT && found != super::EDGE_HUB,
            "a custom module",
        ),
        Expect::Device => (false, "a device (no moduleId)"),
    };
    if ok {
        Ok(())
    } else {
        Err(TwinError::WrongModule {
            expected,
            found: found.to_owned(),
        })
    }
}
