//! Twin documents as IoT Hub stores them: desired/reported sections with a parallel
//! `$metadata` tree and `$version`, and the twin-level `version`/`etag` envelope.
//!
//! Sections are replaced wholesale by the simulated agent and modules; the diff against
//! the stored document decides which `$metadata` nodes get a new `$lastUpdated`, so a
//! timestamp moves only when its value really changed and `$version` counts real patches.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::timefmt::NEVER_Z;

/// When and (for desired sections) at which version a patch was written.
struct Stamp<'a> {
    at: &'a str,
    version: Option<i64>,
}

impl Stamp<'_> {
    fn write(&self, meta: &mut Map<String, Value>) {
        meta.insert("$lastUpdated".into(), Value::String(self.at.to_string()));
        if let Some(v) = self.version {
            meta.insert("$lastUpdatedVersion".into(), Value::from(v));
        }
    }

    fn fresh(&self, value: &Value) -> Value {
        let mut meta = Map::new();
        self.write(&mut meta);
        if let Value::Object(children) = value {
            for (k, v) in children {
                meta.insert(k.clone(), self.fresh(v));
            }
        }
        Value::Object(meta)
    }
}

/// One of `properties.desired` / `properties.reported`.
#[derive(Debug, Clone)]
pub struct Section {
    data: Map<String, Value>,
    meta: Map<String, Value>,
    version: i64,
    desired: bool,
}

impl Section {
    /// A section nobody has written yet: `$version` 1, `$lastUpdated` "never".
    pub fn empty(desired: bool) -> Self {
        let mut meta = Map::new();
        meta.insert("$lastUpdated".into(), Value::String(NEVER_Z.into()));
        if desired {
            meta.insert("$lastUpdatedVersion".into(), Value::from(1));
        }
        Section {
            data: Map::new(),
            meta,
            version: 1,
            desired,
        }
    }

    /// The properties without `$metadata` / `$version`.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// `$metadata.$lastUpdated` of the whole section.
    pub fn last_updated(&self) -> Option<&str> {
        self.meta.get("$lastUpdated").and_then(Value::as_str)
    }

    /// Makes the section equal to `doc`; returns whether anything changed (then
    /// `$version` is bumped and the changed nodes and their ancestors get `at`).
    pub fn replace(&mut self, doc: Map<String, Value>, at: &str) -> bool {
        let stamp = Stamp {
            at,
            version: self.desired.then_some(self.version + 1),
        };
        let changed = merge_object(&mut self.data, &mut self.meta, &doc, &stamp);
        if changed {
            self.version += 1;
        }
        changed
    }
}

fn merge_object(
    data: &mut Map<String, Value>,
    meta: &mut Map<String, Value>,
    new: &Map<String, Value>,
    stamp: &Stamp<'_>,
) -> bool {
    let mut changed = false;
    let removed: Vec<String> = data
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    for key in removed {
        data.remove(&key);
        meta.remove(&key);
        changed = true;
    }
    for (key, new_value) in new {
        match (data.get_mut(key), new_value) {
            (Some(Value::Object(old)), Value::Object(new_obj)) => {
                let node = meta
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                if let Value::Object(node) = node
                    && merge_object(old, node, new_obj, stamp)
                {
                    changed = true;
                }
            }
            (Some(old), _) if old == new_value => {}
            _ => {
                data.insert(key.clone(), new_value.clone());
                meta.insert(key.clone(), stamp.fresh(new_value));
                changed = true;
            }
        }
    }
    if changed {
        stamp.write(meta);
    }
    changed
}

impl Serialize for Section {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.data.len() + 2))?;
        for (k, v) in &self.data {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("$metadata", &self.meta)?;
        map.serialize_entry("$version", &self.version)?;
        map.end()
    }
}

/// A device or module twin.
#[derive(Debug, Clone)]
pub struct TwinDoc {
    pub device_id: String,
    pub module_id: Option<String>,
    /// Twin-level version: +1 on every change to tags, desired or reported.
    pub version: i64,
    pub device_etag: String,
    pub connection_state: &'static str,
    pub last_activity_time: String,
    /// Device twins only.
    pub tags: Option<Map<String, Value>>,
    /// Device twins only: `capabilities.iotEdge`.
    pub iot_edge: Option<bool>,
    /// Device twins of edge devices only.
    pub device_scope: Option<String>,
    pub desired: Section,
    pub reported: Section,
}

impl TwinDoc {
    pub fn new(device_id: &str, module_id: Option<&str>, device_etag: &str) -> Self {
        TwinDoc {
            device_id: device_id.to_string(),
            module_id: module_id.map(str::to_string),
            version: 1,
            device_etag: device_etag.to_string(),
            connection_state: "Disconnected",
            last_activity_time: NEVER_Z.to_string(),
            tags: None,
            iot_edge: None,
            device_scope: None,
            desired: Section::empty(true),
            reported: Section::empty(false),
        }
    }

    /// `etag`: base64 of the twin version as a big-endian int64, like `AAAAAAAAAAU=`.
    pub fn etag(&self) -> String {
        BASE64.encode(self.version.to_be_bytes())
    }

    /// Replaces the desired section; returns whether it changed.
    pub fn set_desired(&mut self, doc: Map<String, Value>, at: &str) -> bool {
        let changed = self.desired.replace(doc, at);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Replaces the reported section; returns whether it changed.
    pub fn set_reported(&mut self, doc: Map<String, Value>, at: &str) -> bool {
        let changed = self.reported.replace(doc, at);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// The value at a query path such as `tags.site`, `properties.reported.x` or `deviceId`;
    /// `None` when the path does not exist (the query language's "undefined").
    pub fn lookup(&self, path: &[String]) -> Option<Cow<'_, Value>> {
        let (head, rest) = path.split_first()?;
        let scalar = |v: Value| rest.is_empty().then_some(Cow::Owned(v));
        match head.as_str() {
            "deviceId" => scalar(Value::String(self.device_id.clone())),
            "moduleId" => scalar(Value::String(self.module_id.clone()?)),
            "etag" => scalar(Value::String(self.etag())),
            "version" => scalar(Value::from(self.version)),
            "status" => scalar(Value::String("enabled".into())),
            "connectionState" => scalar(Value::String(self.connection_state.into())),
            "tags" => walk(self.tags.as_ref()?, rest),
            "capabilities" => match rest {
                [k] if k == "iotEdge" => Some(Cow::Owned(Value::Bool(self.iot_edge?))),
                _ => None,
            },
            "properties" => {
                let (which, rest) = rest.split_first()?;
                let section = match which.as_str() {
                    "desired" => &self.desired,
                    "reported" => &self.reported,
                    _ => return None,
                };
                if let [k] = rest
                    && k == "$version"
                {
                    return Some(Cow::Owned(Value::from(section.version)));
                }
                walk(&section.data, rest)
            }
            _ => None,
        }
    }
}

fn walk<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<Cow<'a, Value>> {
    let (first, rest) = path.split_first()?;
    let mut current = map.get(first)?;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(Cow::Borrowed(current))
}

impl Serialize for TwinDoc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("deviceId", &self.device_id)?;
        if let Some(m) = &self.module_id {
            map.serialize_entry("moduleId", m)?;
        }
        map.serialize_entry("etag", &self.etag())?;
        map.serialize_entry("deviceEtag", &self.device_etag)?;
        map.serialize_entry("status", "enabled")?;
        map.serialize_entry("statusUpdateTime", NEVER_Z)?;
        map.serialize_entry("connectionState", self.connection_state)?;
        map.serialize_entry("lastActivityTime", &self.last_activity_time)?;
        map.serialize_entry("cloudToDeviceMessageCount", &0)?;
        map.serialize_entry("authenticationType", "sas")?;
        map.serialize_entry(
            "x509Thumbprint",
            &json!({"primaryThumbprint": null, "secondaryThumbprint": null}),
        )?;
        map.serialize_entry("modelId", "")?;
        map.serialize_entry("version", &self.version)?;
        if let Some(tags) = &self.tags {
            map.serialize_entry("tags", tags)?;
        }
        map.serialize_entry(
            "properties",
            &json!({"desired": &self.desired, "reported": &self.reported}),
        )?;
        if let Some(edge) = self.iot_edge {
            map.serialize_entry("capabilities", &json!({"iotEdge": edge}))?;
        }
        if let Some(scope) = &self.device_scope {
            map.serialize_entry("deviceScope", scope)?;
            map.serialize_entry("parentScopes", &Vec::<String>::new())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn only_changed_leaves_and_their_ancestors_get_a_new_timestamp() {
        let mut s = Section::empty(false);
        assert!(s.replace(obj(json!({"a": {"x": 1, "y": 2}, "b": 3})), "T1"));
        assert_eq!(s.version(), 2);
        assert!(!s.replace(obj(json!({"a": {"x": 1, "y": 2}, "b": 3})), "T2"));
        assert_eq!(s.version(), 2, "an identical report is not a patch");
        assert!(s.replace(obj(json!({"a": {"x": 1, "y": 5}, "b": 3})), "T3"));
        let out = serde_json::to_value(&s).unwrap();
        let meta = &out["$metadata"];
        assert_eq!(meta["$lastUpdated"], "T3");
        assert_eq!(meta["a"]["$lastUpdated"], "T3");
        assert_eq!(meta["a"]["y"]["$lastUpdated"], "T3");
        assert_eq!(meta["a"]["x"]["$lastUpdated"], "T1");
        assert_eq!(meta["b"]["$lastUpdated"], "T1");
        assert_eq!(out["$version"], 3);
    }

    #[test]
    fn removed_keys_disappear_with_their_metadata() {
        let mut s = Section::empty(true);
        s.replace(obj(json!({"a": 1, "b": 2})), "T1");
        assert!(s.replace(obj(json!({"a": 1})), "T2"));
        let out = serde_json::to_value(&s).unwrap();
        assert!(out.get("b").is_none());
        assert!(out["$metadata"].get("b").is_none());
        assert_eq!(out["$metadata"]["$lastUpdatedVersion"], 3);
        assert_eq!(out["$metadata"]["a"]["$lastUpdatedVersion"], 2);
    }

    #[test]
    fn etag_is_base64_of_the_big_endian_version() {
        let mut t = TwinDoc::new("d", None, "x");
        t.version = 5;
        assert_eq!(t.etag(), "AAAAAAAAAAU=");
    }

    #[test]
    fn lookup_walks_tags_properties_and_envelope_fields() {
        let mut t = TwinDoc::new("dev1", Some("$edgeAgent"), "x");
        t.tags = Some(obj(json!({"site": {"name": "a"}})));
        t.iot_edge = Some(true);
        t.set_reported(obj(json!({"lastDesiredVersion": 4})), "T");
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            t.lookup(&p("tags.site.name")).unwrap().as_ref(),
            &json!("a")
        );
        assert_eq!(
            t.lookup(&p("moduleId")).unwrap().as_ref(),
            &json!("$edgeAgent")
        );
        assert_eq!(
            t.lookup(&p("capabilities.iotEdge")).unwrap().as_ref(),
            &json!(true)
        );
        assert_eq!(
            t.lookup(&p("properties.reported.lastDesiredVersion"))
                .unwrap()
                .as_ref(),
            &json!(4)
        );
        assert_eq!(
            t.lookup(&p("properties.reported.$version"))
                .unwrap()
                .as_ref(),
            &json!(2)
        );
        assert!(t.lookup(&p("tags.missing")).is_none());
        assert!(t.lookup(&p("deviceId.x")).is_none());
    }
}
