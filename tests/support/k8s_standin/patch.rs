//! The patch formats kube clients send: JSON merge patch (RFC 7386), strategic merge patch and the
//! apply merge (both merge list-maps by key), and JSON patch (RFC 6902).

use serde_json::Value;

use super::error::ApiError;
use super::fields::element_key;
use super::registry::ResourceType;

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let target_map = target.as_object_mut().expect("made an object above");
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Merge `patch` into `target` like a merge patch, except that list-maps merge element by element
/// on their keys instead of being replaced. Used for strategic merge patches and for apply.
pub fn keyed_merge(target: &mut Value, patch: &Value, rt: &ResourceType) {
    merge_at(target, patch, rt, &mut Vec::new());
}

fn merge_at(target: &mut Value, patch: &Value, rt: &ResourceType, names: &mut Vec<String>) {
    match patch {
        Value::Object(patch_map) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let target_map = target.as_object_mut().expect("made an object above");
            for (key, value) in patch_map {
                if value.is_null() {
                    target_map.remove(key);
                    continue;
                }
                names.push(key.clone());
                merge_at(
                    target_map.entry(key.clone()).or_insert(Value::Null),
                    value,
                    rt,
                    names,
                );
                names.pop();
            }
        }
        Value::Array(items) => match rt.list_map_at(names) {
            Some(list_map) if target.is_array() => {
                let list_map = list_map.clone();
                let existing = target.as_array_mut().expect("checked");
                for item in items {
                    let key = element_key(item, &list_map);
                    let found = key.as_ref().and_then(|k| {
                        existing
                            .iter_mut()
                            .find(|e| element_key(e, &list_map).as_ref() == Some(k))
                    });
                    match found {
                        Some(element) => merge_at(element, item, rt, names),
                        None => existing.push(item.clone()),
                    }
                }
            }
            _ => *target = patch.clone(),
        },
        _ => *target = patch.clone(),
    }
}

/// RFC 6902 JSON patch. A failed `test` or a bad pointer is a 422 like the real server.
pub fn json_patch(target: &mut Value, operations: &Value) -> Result<(), ApiError> {
    let ops = operations
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    for op in ops {
        apply_operation(target, op)?;
    }
    Ok(())
}

fn apply_operation(target: &mut Value, op: &Value) -> Result<(), ApiError> {
    let field = |name: &str| op.get(name).and_then(Value::as_str);
    let kind =
        field("op").ok_or_else(|| ApiError::bad_request("json patch operation lacks \"op\""))?;
    let path = field("path")
        .ok_or_else(|| ApiError::bad_request("json patch operation lacks \"path\""))?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| ApiError::bad_request(format!("json patch {kind} lacks \"value\"")))
    };
    match kind {
        "add" => add(target, path, value()?),
        "remove" => remove(target, path).map(|_| ()),
        "replace" => {
            remove(target, path)?;
            add(target, path, value()?)
        }
        "test" => {
            // Like the API server's json-patch library, a missing path tests equal to null.
            let expected = value()?;
            let actual = target.pointer(path);
            if actual == Some(&expected) || (actual.is_none() && expected.is_null()) {
                Ok(())
            } else {
                Err(ApiError::invalid(format!(
                    "the server rejected our request due to an error in our request: test failed at {path}"
                )))
            }
        }
        "move" | "copy" => {
            let from = field("from").ok_or_else(|| {
                ApiError::bad_request(format!("json patch {kind} lacks \"from\""))
            })?;
            let moved = if kind == "move" {
                remove(target, from)?
            } else {
                target.pointer(from).cloned().ok_or_else(|| missing(from))?
            };
            add(target, path, moved)
        }
        other => Err(ApiError::bad_request(format!(
            "unknown json patch operation {other:?}"
        ))),
    }
}

fn missing(path: &str) -> ApiError {
    ApiError::invalid(format!(
        "the server rejected our request due to an error in our request: path {path} does not exist"
    ))
}

/// Split a JSON pointer into its parent pointer and unescaped last token.
fn split_pointer(path: &str) -> Result<(&str, String), ApiError> {
    let index = path.rfind('/').ok_or_else(|| missing(path))?;
    let token = path[index + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..index], token))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, token) = split_pointer(path)?;
    match target.pointer_mut(parent).ok_or_else(|| missing(path))? {
        Value::Object(map) => {
            map.insert(token, value);
            Ok(())
        }
        Value::Array(items) if token == "-" => {
            items.push(value);
            Ok(())
        }
        Value::Array(items) => {
            let index: usize = token.parse().map_err(|_| missing(path))?;
            if index > items.len() {
                return Err(missing(path));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing(path)),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, token) = split_pointer(path)?;
    match target.pointer_mut(parent).ok_or_else(|| missing(path))? {
        Value::Object(map) => map.remove(&token).ok_or_else(|| missing(path)),
        Value::Array(items) => {
            let index: usize = token.parse().map_err(|_| missing(path))?;
            if index < items.len() {
                Ok(items.remove(index))
            } else {
                Err(missing(path))
            }
        }
        _ => Err(missing(path)),
    }
}
