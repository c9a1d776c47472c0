//! The resource types the stand-in serves: which URL segments map to which kind, and the few schema
//! facts the server needs (scope, status subresource, generation tracking, list-map keys).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};

/// A JSON path of object field names from the object root, e.g. `["status", "conditions"]`.
pub type JsonPath = Vec<String>;

/// A list whose elements are merged by key (`x-kubernetes-list-type: map`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMap {
    pub path: JsonPath,
    pub keys: Vec<String>,
}

/// One served resource (one group/version/plural).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// Custom resources bump `metadata.generation` on spec changes; most built-ins here do not.
    pub tracks_generation: bool,
    /// Custom resources reject strategic merge patches and PUTs without a resourceVersion.
    pub custom: bool,
    pub list_maps: Vec<ListMap>,
    /// Field selector keys accepted besides `metadata.name` and `metadata.namespace`.
    pub extra_field_selectors: Vec<String>,
    /// The CRD's structural schema, when installed from a CRD: unknown fields are pruned by it.
    pub schema: Option<JSONSchemaProps>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Where in the object a list-map lives, if `path` is one.
    pub fn list_map_at(&self, path: &[String]) -> Option<&ListMap> {
        self.list_maps.iter().find(|m| m.path == path)
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced: true,
            status_subresource: false,
            tracks_generation: false,
            custom: false,
            list_maps: Vec::new(),
            extra_field_selectors: Vec::new(),
            schema: None,
        }
    }

    /// The resources of a CRD, one per served version, with list-map keys read from its schema.
    pub fn from_crd(crd: &CustomResourceDefinition) -> Vec<Self> {
        let spec = &crd.spec;
        spec.versions
            .iter()
            .filter(|v| v.served)
            .map(|version| {
                let mut list_maps = Vec::new();
                let schema = version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.clone());
                if let Some(schema) = &schema {
                    collect_list_maps(schema, &mut Vec::new(), &mut list_maps);
                }
                Self {
                    group: spec.group.clone(),
                    version: version.name.clone(),
                    plural: spec.names.plural.clone(),
                    kind: spec.names.kind.clone(),
                    namespaced: spec.scope == "Namespaced",
                    status_subresource: version
                        .subresources
                        .as_ref()
                        .is_some_and(|s| s.status.is_some()),
                    tracks_generation: true,
                    custom: true,
                    list_maps,
                    extra_field_selectors: version
                        .selectable_fields
                        .iter()
                        .flatten()
                        .map(|f| f.json_path.trim_start_matches('.').to_string())
                        .collect(),
                    schema,
                }
            })
            .collect()
    }
}

fn collect_list_maps(schema: &JSONSchemaProps, path: &mut JsonPath, out: &mut Vec<ListMap>) {
    if schema.x_kubernetes_list_type.as_deref() == Some("map") {
        out.push(ListMap {
            path: path.clone(),
            keys: schema
                .x_kubernetes_list_map_keys
                .clone()
                .unwrap_or_default(),
        });
    }
    for (name, child) in schema.properties.iter().flatten() {
        path.push(name.clone());
        collect_list_maps(child, path, out);
        path.pop();
    }
    // List-maps nested inside list elements are not modelled (the operator has none).
}

/// Everything the stand-in serves out of the box.
pub fn default_resources() -> Vec<ResourceType> {
    let mut events = ResourceType::builtin("events.k8s.io", "v1", "events", "Event");
    events.extra_field_selectors = [
        "reason",
        "type",
        "reportingController",
        "regarding.kind",
        "regarding.name",
        "regarding.namespace",
        "regarding.uid",
    ]
    .map(String::from)
    .to_vec();
    let mut core_events = ResourceType::builtin("", "v1", "events", "Event");
    core_events.extra_field_selectors = [
        "reason",
        "type",
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
    ]
    .map(String::from)
    .to_vec();
    vec![
        ResourceType::builtin("", "v1", "secrets", "Secret"),
        ResourceType::builtin("", "v1", "configmaps", "ConfigMap"),
        core_events,
        events,
        ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease"),
        edge_device_watch(),
    ]
}

/// `edgewatch.dev/v1alpha1` `EdgeDeviceWatch`, pre-registered so tests need not install the CRD.
/// `StandIn::install_crd` replaces it with the real schema's facts.
fn edge_device_watch() -> ResourceType {
    ResourceType {
        group: "edgewatch.dev".into(),
        version: "v1alpha1".into(),
        plural: "edgedevicewatches".into(),
        kind: "EdgeDeviceWatch".into(),
        namespaced: true,
        status_subresource: true,
        tracks_generation: true,
        custom: true,
        list_maps: vec![ListMap {
            path: vec!["status".into(), "conditions".into()],
            keys: vec!["type".into()],
        }],
        extra_field_selectors: Vec::new(),
        schema: None,
    }
}
