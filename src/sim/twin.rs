//! Twin documents as IoT Hub stores them: desired/reported sections with a parallel
//! `$metadata` tree and `$version`, and the twin-level `version`/`etag` envelope.
//!
//! Sections are replaced wholesale by the simulated agent and modules; the diff against
//! the stored document decides which `$metadata` nodes get a new `$lastUpdated`, so a
//! timestamp moves only when its value really changed and `$version` counts real patches.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use super::timefmt::{NEVER_Z, with_z};

/// Property names are shared between all twins: a fleet of 10,000 devices repeats the
/// same few hundred keys, so each is stored once.
fn intern(key: &str) -> Arc<str> {
    static KEYS: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut keys = KEYS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(k) = keys.get(key) {
        return k.clone();
    }
    let k: Arc<str> = Arc::from(key);
    keys.insert(k.clone());
    k
}

/// When a node last changed and, in desired sections, at which `$version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    /// `None` is "never" (`0001-01-01T00:00:00Z`).
    at: Option<Timestamp>,
    /// 0 in reported sections, which carry no `$lastUpdatedVersion`.
    version: u32,
}

impl Stamp {
    fn at_text(&self) -> String {
        self.at.map_or_else(|| NEVER_Z.to_string(), with_z)
    }
}

/// A property and its metadata in one node: a leaf (scalar or array, as IoT Hub
/// treats arrays) or an object whose children keep their insertion order.
#[derive(Debug, Clone)]
enum Node {
    Leaf(Value, Stamp),
    Object(Vec<(Arc<str>, Node)>, Stamp),
}

impl Node {
    fn fresh(value: &Value, stamp: Stamp) -> Node {
        match value {
            Value::Object(children) => Node::Object(fresh_children(children, stamp), stamp),
            other => Node::Leaf(other.clone(), stamp),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Leaf(v, _) => v.clone(),
            Node::Object(children, _) => Value::Object(
                children
                    .iter()
                    .map(|(k, n)| (k.to_string(), n.to_value()))
                    .collect(),
            ),
        }
    }
}

fn fresh_children(map: &Map<String, Value>, stamp: Stamp) -> Vec<(Arc<str>, Node)> {
    let mut v: Vec<(Arc<str>, Node)> = map
        .iter()
        .map(|(k, v)| (intern(k), Node::fresh(v, stamp)))
        .collect();
    v.shrink_to_fit();
    v
}

/// Makes `children` equal to `new`; changed nodes get `stamp`. Returns whether anything changed.
fn merge(children: &mut Vec<(Arc<str>, Node)>, new: &Map<String, Value>, stamp: Stamp) -> bool {
    let before = children.len();
    children.retain(|(k, _)| new.contains_key(&**k));
    let mut changed = children.len() != before;
    for (key, value) in new {
        let existing = children.iter_mut().find(|(k, _)| **k == **key);
        match (existing, value) {
            (Some((_, Node::Object(kids, own))), Value::Object(obj)) => {
                if merge(kids, obj, stamp) {
                    *own = stamp;
                    changed = true;
                }
            }
            (Some((_, Node::Leaf(old, _))), _) if old == value => {}
            (Some((_, node)), _) => {
                *node = Node::fresh(value, stamp);
                changed = true;
            }
            (None, _) => {
                children.push((intern(key), Node::fresh(value, stamp)));
                changed = true;
            }
        }
    }
    changed
}

struct DataView<'a>(&'a [(Arc<str>, Node)]);

impl Serialize for DataView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, node) in self.0 {
            match node {
                Node::Leaf(v, _) => map.serialize_entry(&**k, v)?,
                Node::Object(kids, _) => map.serialize_entry(&**k, &DataView(kids))?,
            }
        }
        map.end()
    }
}

struct MetaView<'a>(&'a [(Arc<str>, Node)], Stamp);

impl Serialize for MetaView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        write_stamp(&mut map, self.1)?;
        for (k, node) in self.0 {
            match node {
                Node::Leaf(_, stamp) => map.serialize_entry(&**k, &MetaView(&[], *stamp))?,
                Node::Object(kids, stamp) => map.serialize_entry(&**k, &MetaView(kids, *stamp))?,
            }
        }
        map.end()
    }
}

fn write_stamp<M: SerializeMap>(map: &mut M, stamp: Stamp) -> Result<(), M::Error> {
    map.serialize_entry("$lastUpdated", &stamp.at_text())?;
    if stamp.version > 0 {
        map.serialize_entry("$lastUpdatedVersion", &stamp.version)?;
    }
    Ok(())
}

/// One of `properties.desired` / `properties.reported`.
#[derive(Debug, Clone)]
pub struct Section {
    children: Vec<(Arc<str>, Node)>,
    stamp: Stamp,
    version: i64,
    desired: bool,
}

impl Section {
    /// A section nobody has written yet: `$version` 1, `$lastUpdated` "never".
    pub fn empty(desired: bool) -> Self {
        Section {
            children: Vec::new(),
            stamp: Stamp {
                at: None,
                version: u32::from(desired),
            },
            version: 1,
            desired,
        }
    }

    /// The properties without `$metadata` / `$version`.
    pub fn data(&self) -> Map<String, Value> {
        self.children
            .iter()
            .map(|(k, n)| (k.to_string(), n.to_value()))
            .collect()
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// `$metadata.$lastUpdated` of the whole section (`None` for never).
    pub fn last_updated(&self) -> Option<Timestamp> {
        self.stamp.at
    }

    /// Makes the section equal to `doc`; returns whether anything changed (then
    /// `$version` is bumped and the changed nodes and their ancestors get `at`).
    pub fn replace(&mut self, doc: Map<String, Value>, at: Timestamp) -> bool {
        let next = self.version + 1;
        let stamp = Stamp {
            at: Some(at),
            version: if self.desired {
                u32::try_from(next).unwrap_or(u32::MAX)
            } else {
                0
            },
        };
        let changed = merge(&mut self.children, &doc, stamp);
        if changed {
            self.version = next;
            self.stamp = stamp;
        }
        changed
    }

    /// The value at `path` below the section: the whole section (with `$metadata` and
    /// `$version`) for an empty path, `$version`, `$metadata...`, or a property.
    pub fn lookup(&self, path: &[String]) -> Option<Cow<'_, Value>> {
        match path {
            [] => serde_json::to_value(self).ok().map(Cow::Owned),
            [v] if v == "$version" => Some(Cow::Owned(Value::from(self.version))),
            [m, rest @ ..] if m == "$metadata" => self.metadata(rest).map(Cow::Owned),
            _ => self.get(path),
        }
    }

    /// The `$metadata` node at `path`, or one of its `$lastUpdated` /
    /// `$lastUpdatedVersion` stamps.
    fn metadata(&self, path: &[String]) -> Option<Value> {
        let mut children: &[(Arc<str>, Node)] = &self.children;
        let mut stamp = self.stamp;
        for (i, key) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match key.as_str() {
                "$lastUpdated" if last => return Some(Value::String(stamp.at_text())),
                "$lastUpdatedVersion" if last && stamp.version > 0 => {
                    return Some(Value::from(stamp.version));
                }
                _ => {}
            }
            match &children.iter().find(|(k, _)| **k == **key)?.1 {
                Node::Leaf(_, s) => {
                    children = &[];
                    stamp = *s;
                }
                Node::Object(kids, s) => {
                    children = kids;
                    stamp = *s;
                }
            }
        }
        serde_json::to_value(MetaView(children, stamp)).ok()
    }

    /// The value at `path` below the section root.
    fn get(&self, path: &[String]) -> Option<Cow<'_, Value>> {
        let (first, rest) = path.split_first()?;
        let mut node = &self.children.iter().find(|(k, _)| **k == **first)?.1;
        for key in rest {
            match node {
                Node::Object(kids, _) => node = &kids.iter().find(|(k, _)| **k == **key)?.1,
                Node::Leaf(..) => return None,
            }
        }
        Some(match node {
            Node::Leaf(v, _) => Cow::Borrowed(v),
            object => Cow::Owned(object.to_value()),
        })
    }
}

impl Serialize for Section {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (k, node) in &self.children {
            match node {
                Node::Leaf(v, _) => map.serialize_entry(&**k, v)?,
                Node::Object(kids, _) => map.serialize_entry(&**k, &DataView(kids))?,
            }
        }
        map.serialize_entry("$metadata", &MetaView(&self.children, self.stamp))?;
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
    pub fn set_desired(&mut self, doc: Map<String, Value>, at: Timestamp) -> bool {
        let changed = self.desired.replace(doc, at);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Replaces the reported section; returns whether it changed.
    pub fn set_reported(&mut self, doc: Map<String, Value>, at: Timestamp) -> bool {
        let changed = self.reported.replace(doc, at);
        if changed {
            self.version += 1;
        }
        changed
    }

    /// The canonical spelling of a top-level twin field, matched case-insensitively
    /// (IoT Hub answers `SELECT DeviceId` with `deviceId`).
    pub fn canonical_field(name: &str) -> Option<&'static str> {
        TOP_LEVEL_FIELDS
            .iter()
            .copied()
            .find(|f| f.eq_ignore_ascii_case(name))
    }

    /// The value at a query path such as `tags.site`, `properties.reported.x`,
    /// `properties.reported.$metadata.x.$lastUpdated` or `deviceId`; `None` when the path
    /// does not exist (the query language's "undefined").
    pub fn lookup(&self, path: &[String]) -> Option<Cow<'_, Value>> {
        let (head, rest) = path.split_first()?;
        let scalar = |v: Value| rest.is_empty().then_some(Cow::Owned(v));
        match Self::canonical_field(head)? {
            "deviceId" => scalar(Value::String(self.device_id.clone())),
            "moduleId" => scalar(Value::String(self.module_id.clone()?)),
            "etag" => scalar(Value::String(self.etag())),
            "deviceEtag" => scalar(Value::String(self.device_etag.clone())),
            "status" => scalar(Value::String("enabled".into())),
            "statusUpdateTime" => scalar(Value::String(NEVER_Z.into())),
            "connectionState" => scalar(Value::String(self.connection_state.into())),
            "lastActivityTime" => scalar(Value::String(self.last_activity_time.clone())),
            "cloudToDeviceMessageCount" => scalar(Value::from(0)),
            "authenticationType" => scalar(Value::String("sas".into())),
            "modelId" => scalar(Value::String(String::new())),
            "version" => scalar(Value::from(self.version)),
            "x509Thumbprint" => walk_owned(
                json!({"primaryThumbprint": null, "secondaryThumbprint": null}),
                rest,
            ),
            "tags" => walk(self.tags.as_ref()?, rest),
            "capabilities" => walk_owned(json!({"iotEdge": self.iot_edge?}), rest),
            "deviceScope" => scalar(Value::String(self.device_scope.clone()?)),
            "parentScopes" => {
                self.device_scope.as_ref()?;
                scalar(Value::Array(Vec::new()))
            }
            "properties" => {
                let Some((which, rest)) = rest.split_first() else {
                    return serde_json::to_value(Properties {
                        desired: &self.desired,
                        reported: &self.reported,
                    })
                    .ok()
                    .map(Cow::Owned);
                };
                let section = if which.eq_ignore_ascii_case("desired") {
                    &self.desired
                } else if which.eq_ignore_ascii_case("reported") {
                    &self.reported
                } else {
                    return None;
                };
                section.lookup(rest)
            }
            _ => None,
        }
    }
}

/// The top-level fields of a twin document, as IoT Hub spells them.
const TOP_LEVEL_FIELDS: &[&str] = &[
    "deviceId",
    "moduleId",
    "etag",
    "deviceEtag",
    "status",
    "statusUpdateTime",
    "connectionState",
    "lastActivityTime",
    "cloudToDeviceMessageCount",
    "authenticationType",
    "x509Thumbprint",
    "modelId",
    "version",
    "tags",
    "properties",
    "capabilities",
    "deviceScope",
    "parentScopes",
];

/// The value at `path` below `map`; the map itself for an empty path.
fn walk<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<Cow<'a, Value>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(Cow::Owned(Value::Object(map.clone())));
    };
    let mut current = map.get(first)?;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(Cow::Borrowed(current))
}

fn walk_owned(value: Value, path: &[String]) -> Option<Cow<'static, Value>> {
    let mut current = value;
    for key in path {
        current = match current {
            Value::Object(mut m) => m.remove(key)?,
            _ => return None,
        };
    }
    Some(Cow::Owned(current))
}

#[derive(serde::Serialize)]
struct Properties<'a> {
    desired: &'a Section,
    reported: &'a Section,
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
            &Properties {
                desired: &self.desired,
                reported: &self.reported,
            },
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

    fn ts(n: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + n).unwrap()
    }

    fn z(n: i64) -> String {
        with_z(ts(n))
    }

    #[test]
    fn only_changed_leaves_and_their_ancestors_get_a_new_timestamp() {
        let mut s = Section::empty(false);
        assert!(s.replace(obj(json!({"a": {"x": 1, "y": 2}, "b": 3})), ts(1)));
        assert_eq!(s.version(), 2);
        assert!(!s.replace(obj(json!({"a": {"x": 1, "y": 2}, "b": 3})), ts(2)));
        assert_eq!(s.version(), 2, "an identical report is not a patch");
        assert!(s.replace(obj(json!({"a": {"x": 1, "y": 5}, "b": 3})), ts(3)));
        let out = serde_json::to_value(&s).unwrap();
        let meta = &out["$metadata"];
        assert_eq!(meta["$lastUpdated"], z(3));
        assert_eq!(meta["a"]["$lastUpdated"], z(3));
        assert_eq!(meta["a"]["y"]["$lastUpdated"], z(3));
        assert_eq!(meta["a"]["x"]["$lastUpdated"], z(1));
        assert_eq!(meta["b"]["$lastUpdated"], z(1));
        assert_eq!(out["$version"], 3);
    }

    #[test]
    fn removed_keys_disappear_with_their_metadata() {
        let mut s = Section::empty(true);
        s.replace(obj(json!({"a": 1, "b": 2})), ts(1));
        assert!(s.replace(obj(json!({"a": 1})), ts(2)));
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
        t.set_reported(obj(json!({"lastDesiredVersion": 4})), ts(0));
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

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            proptest::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        })
    }

    proptest::proptest! {
        #[test]
        fn a_section_holds_exactly_the_last_document_written(
            docs in proptest::collection::vec(
                proptest::collection::btree_map("[a-c]{1,2}", json_value(), 0..4), 1..5)
        ) {
            let mut s = Section::empty(false);
            let mut last_version = s.version();
            for (i, doc) in docs.iter().enumerate() {
                let doc: Map<String, Value> = doc.clone().into_iter().collect();
                let changed = s.replace(doc.clone(), ts(i as i64));
                proptest::prop_assert_eq!(&s.data(), &doc);
                proptest::prop_assert_eq!(s.version(), last_version + i64::from(changed));
                last_version = s.version();
            }
        }
    }
}
