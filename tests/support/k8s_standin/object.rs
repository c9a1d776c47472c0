//! The rules the server applies to every object it stores: system metadata it sets and protects,
//! request validation, subresource scoping, schema pruning and Secret `stringData` folding.

use serde_json::{Value, json};

use super::error::ApiError;
use super::prune;
use super::registry::ResourceType;
use super::store::Scope;

/// What the server does to every object it stores: prune by the CRD schema, and fold a
/// Secret's write-only `stringData` into base64 `data`.
pub(super) fn normalise(object: &mut Value, rt: &ResourceType) {
    if let Some(schema) = &rt.schema {
        prune::prune_object(object, schema);
    }
    if rt.group.is_empty() && rt.kind == "Secret" {
        fold_string_data(object);
    }
}

pub(super) fn fold_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(string_data) = secret.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(entries) = string_data.as_object() else {
        return;
    };
    if !secret.get("data").is_some_and(Value::is_object) {
        secret["data"] = json!({});
    }
    for (key, value) in entries {
        let plain = value.as_str().unwrap_or_default();
        secret["data"][key] = json!(base64::engine::general_purpose::STANDARD.encode(plain));
    }
}

pub(super) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub(super) fn new_uid() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(super) fn initialise_metadata(
    object: &mut Value,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
) {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let metadata = &mut object["metadata"];
    metadata["name"] = json!(name);
    if rt.namespaced {
        metadata["namespace"] = json!(namespace);
    }
    metadata["uid"] = json!(new_uid());
    metadata["creationTimestamp"] = json!(now());
    if let Some(m) = metadata.as_object_mut() {
        m.remove("deletionTimestamp");
        m.remove("managedFields");
    }
    if rt.tracks_generation {
        metadata["generation"] = json!(1);
    }
    object["apiVersion"] = json!(rt.api_version());
    object["kind"] = json!(rt.kind);
}

pub(super) fn keep_system_metadata(next: &mut Value, old: &Value, rt: &ResourceType) {
    if !next.get("metadata").is_some_and(Value::is_object) {
        next["metadata"] = json!({});
    }
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "resourceVersion",
        "generateName",
    ] {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(value) => next["metadata"][field] = value.clone(),
            None => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    if let Some(m) = next["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    next["apiVersion"] = old
        .get("apiVersion")
        .cloned()
        .unwrap_or_else(|| json!(rt.api_version()));
    next["kind"] = json!(rt.kind);
}

/// What counts as "spec" for generation: everything except metadata, status and type fields.
pub(super) fn spec_of(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(m) = out.as_object_mut() {
        for field in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(field);
        }
    }
    out
}

/// The candidate object restricted to what `scope` may change; the rest comes from `old`.
pub(super) fn scoped(candidate: &Value, old: &Value, rt: &ResourceType, scope: Scope) -> Value {
    match scope {
        Scope::Main if rt.status_subresource => {
            let mut out = candidate.clone();
            if let Some(m) = out.as_object_mut() {
                match old.get("status") {
                    Some(status) => {
                        m.insert("status".into(), status.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
            out
        }
        Scope::Main => candidate.clone(),
        Scope::Status => {
            let mut out = if old.is_null() {
                json!({})
            } else {
                old.clone()
            };
            match candidate.get("status") {
                Some(status) => out["status"] = status.clone(),
                None => {
                    if let Some(m) = out.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            out
        }
    }
}

pub(super) fn check_type(object: &Value, rt: &ResourceType) -> Result<(), ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    let group_of = |av: &str| {
        av.rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    if api_version.is_some_and(|av| group_of(av) != rt.group) || kind.is_some_and(|k| k != rt.kind)
    {
        return Err(ApiError::bad_request(format!(
            "the object's apiVersion/kind ({}/{}) does not match the request ({}/{})",
            api_version.unwrap_or(""),
            kind.unwrap_or(""),
            rt.api_version(),
            rt.kind
        )));
    }
    Ok(())
}

pub(super) fn check_apply_body(
    body: &Value,
    rt: &ResourceType,
    name: &str,
) -> Result<(), ApiError> {
    let has = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    if !has("apiVersion") || !has("kind") {
        return Err(ApiError::bad_request(
            "invalid object type: apply patches must set apiVersion and kind",
        ));
    }
    check_type(body, rt)?;
    check_name(body, name)
}

pub(super) fn check_name(body: &Value, name: &str) -> Result<(), ApiError> {
    match body.pointer("/metadata/name").and_then(Value::as_str) {
        Some(given) if given != name => Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        ))),
        _ => Ok(()),
    }
}

pub(super) fn check_namespace(body: &Value, namespace: &str) -> Result<(), ApiError> {
    match body.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

pub(super) fn check_precondition(
    body: &Value,
    current: &Value,
    rt: &ResourceType,
    name: &str,
) -> Result<(), ApiError> {
    let wanted = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let actual = current
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    match wanted {
        Some(w) if Some(w) != actual => Err(ApiError::conflict(
            &rt.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )),
        _ => Ok(()),
    }
}

/// The object's name, generated from `generateName` when absent.
pub(super) fn assign_name(object: &mut Value) -> Result<String, ApiError> {
    if let Some(name) = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Ok(name.to_string());
    }
    let prefix = object
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("metadata.name: Required value: name or generateName is required")
        })?;
    let suffix: String = (0..5)
        .map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[rand::random_range(0..27)]))
        .collect();
    let name = format!("{prefix}{suffix}");
    object["metadata"]["name"] = json!(name);
    Ok(name)
}
