//! Field paths at leaf granularity, the unit of server-side-apply ownership. A list-map element is
//! addressed by its key (`k:{"type":"Ready"}`) like the real `fieldsV1` format; other lists are atomic.

use std::collections::BTreeMap;

use serde_json::Value;

use super::registry::{ListMap, ResourceType};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElem {
    Field(String),
    /// A list-map element, by its canonical key JSON.
    Key(String),
}

pub type FieldPath = Vec<PathElem>;

/// `.status.conditions[type=Ready].status`-like text for conflict messages.
pub fn display(path: &FieldPath) -> String {
    path.iter()
        .map(|e| match e {
            PathElem::Field(name) => format!(".{name}"),
            PathElem::Key(key) => format!("[k:{key}]"),
        })
        .collect()
}

/// Every leaf of `value` with its value. Empty objects and lists count as leaves.
pub fn leaves(value: &Value, rt: &ResourceType) -> BTreeMap<FieldPath, Value> {
    let mut out = BTreeMap::new();
    walk(value, &mut Vec::new(), &mut Vec::new(), rt, &mut out);
    out
}

fn walk(
    value: &Value,
    path: &mut FieldPath,
    names: &mut Vec<String>,
    rt: &ResourceType,
    out: &mut BTreeMap<FieldPath, Value>,
) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                path.push(PathElem::Field(name.clone()));
                names.push(name.clone());
                walk(child, path, names, rt, out);
                names.pop();
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() && keyed_list(items, rt.list_map_at(names)) => {
            let list_map = rt.list_map_at(names).expect("checked by keyed_list");
            for item in items {
                let key = element_key(item, list_map).expect("checked by keyed_list");
                path.push(PathElem::Key(key));
                walk(item, path, names, rt, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone(), value.clone());
        }
    }
}

/// A list is merged by key only when every element carries all the keys.
fn keyed_list(items: &[Value], list_map: Option<&ListMap>) -> bool {
    list_map.is_some_and(|m| items.iter().all(|i| element_key(i, m).is_some()))
}

/// The canonical key of a list-map element, e.g. `{"type":"Ready"}`.
pub fn element_key(item: &Value, list_map: &ListMap) -> Option<String> {
    let object = item.as_object()?;
    let parts: Option<Vec<String>> = list_map
        .keys
        .iter()
        .map(|k| {
            object
                .get(k)
                .map(|v| format!("{}:{}", Value::from(k.as_str()), v))
        })
        .collect();
    Some(format!("{{{}}}", parts?.join(",")))
}

/// The value at `path`, if present.
pub fn get_at<'a>(root: &'a Value, path: &FieldPath, rt: &ResourceType) -> Option<&'a Value> {
    let mut names: Vec<String> = Vec::new();
    let mut current = root;
    for elem in path {
        current = match elem {
            PathElem::Field(name) => {
                names.push(name.clone());
                current.as_object()?.get(name)?
            }
            PathElem::Key(key) => {
                let list_map = rt.list_map_at(&names)?;
                current
                    .as_array()?
                    .iter()
                    .find(|i| element_key(i, list_map).as_deref() == Some(key))?
            }
        };
    }
    Some(current)
}

/// Remove the leaf at `path`; a list-map element left with only its keys goes too.
pub fn remove_at(root: &mut Value, path: &FieldPath, rt: &ResourceType) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut names: Vec<String> = Vec::new();
    let mut current = &mut *root;
    for elem in parent_path {
        let next = match elem {
            PathElem::Field(name) => {
                names.push(name.clone());
                current.as_object_mut().and_then(|m| m.get_mut(name))
            }
            PathElem::Key(key) => {
                let Some(list_map) = rt.list_map_at(&names) else {
                    return;
                };
                let list_map = list_map.clone();
                current.as_array_mut().and_then(|items| {
                    let index = items
                        .iter()
                        .position(|i| element_key(i, &list_map).as_deref() == Some(key))?;
                    items.get_mut(index)
                })
            }
        };
        let Some(next) = next else {
            return;
        };
        current = next;
    }
    match last {
        PathElem::Field(name) => {
            if let Some(map) = current.as_object_mut() {
                map.remove(name);
            }
        }
        PathElem::Key(key) => {
            if let (Some(list_map), Some(items)) = (rt.list_map_at(&names), current.as_array_mut())
            {
                items.retain(|i| element_key(i, list_map).as_deref() != Some(key));
            }
        }
    }
    drop_key_only_element(root, path, rt);
}

/// After removing a field of a list-map element, drop the element if nothing but its keys remain.
fn drop_key_only_element(root: &mut Value, path: &FieldPath, rt: &ResourceType) {
    let Some(key_index) = path.iter().rposition(|e| matches!(e, PathElem::Key(_))) else {
        return;
    };
    let element_path: FieldPath = path[..=key_index].to_vec();
    let Some(element) = get_at(root, &element_path, rt) else {
        return;
    };
    let names: Vec<String> = element_path
        .iter()
        .filter_map(|e| match e {
            PathElem::Field(n) => Some(n.clone()),
            PathElem::Key(_) => None,
        })
        .collect();
    let Some(list_map) = rt.list_map_at(&names) else {
        return;
    };
    let only_keys = element
        .as_object()
        .is_some_and(|m| m.keys().all(|k| list_map.keys.contains(k)));
    if only_keys {
        remove_at(root, &element_path, rt);
    }
}
