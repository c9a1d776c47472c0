//! Unknown-field pruning against a CRD's structural schema, as kube-apiserver does on every write:
//! a field the schema does not declare is dropped silently, so the operator's tests notice when
//! it writes something the CRD cannot hold.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// Prune `object` (a whole custom resource) in place. `metadata` is the server's, never pruned here.
pub fn prune_object(object: &mut Value, schema: &JSONSchemaProps) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let properties = schema.properties.as_ref();
    map.retain(|key, _| {
        matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
            || properties.is_some_and(|p| p.contains_key(key))
            || schema.x_kubernetes_preserve_unknown_fields == Some(true)
    });
    for (key, value) in map.iter_mut().filter(|(k, _)| k.as_str() != "metadata") {
        if let Some(child) = properties.and_then(|p| p.get(key)) {
            prune(value, child);
        }
    }
}

fn prune(value: &mut Value, schema: &JSONSchemaProps) {
    if schema.x_kubernetes_preserve_unknown_fields == Some(true)
        || schema.x_kubernetes_int_or_string == Some(true)
    {
        return;
    }
    match value {
        Value::Object(map) => prune_map(map, schema),
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = &schema.items {
                items.iter_mut().for_each(|item| prune(item, item_schema));
            }
        }
        _ => {}
    }
}

fn prune_map(map: &mut serde_json::Map<String, Value>, schema: &JSONSchemaProps) {
    if let Some(properties) = &schema.properties {
        map.retain(|key, _| properties.contains_key(key));
        for (key, value) in map.iter_mut() {
            prune(value, &properties[key]);
        }
        return;
    }
    match &schema.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(value_schema)) => {
            map.values_mut()
                .for_each(|value| prune(value, value_schema));
        }
        Some(JSONSchemaPropsOrBool::Bool(true)) => {}
        _ => map.clear(),
    }
}
