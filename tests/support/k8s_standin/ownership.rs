//! Server-side-apply field ownership: who owns which leaf, what an apply may overwrite (conflicts),
//! and what it removes when a manager stops applying a field (pruning).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::error::ApiError;
use super::fields::{self, FieldPath};
use super::registry::ResourceType;
use super::store::Scope;

#[derive(Debug, Clone)]
pub(super) struct Owner {
    manager: String,
    /// `Apply` entries are the ones apply prunes and conflicts are reported against by name.
    apply: bool,
    /// Like the real server, ownership is recorded per subresource.
    scope: Scope,
    fields: BTreeSet<FieldPath>,
}

/// The part of an object whose fields managers own: no type fields, metadata only labels/annotations.
pub(super) fn owned_view(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(m) = out.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        let metadata: serde_json::Map<String, Value> = object
            .get("metadata")
            .and_then(Value::as_object)
            .map(|md| {
                md.iter()
                    .filter(|(k, _)| matches!(k.as_str(), "labels" | "annotations"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if metadata.is_empty() {
            m.remove("metadata");
        } else {
            m.insert("metadata".into(), Value::Object(metadata));
        }
    }
    out
}

pub(super) fn update_owner(
    manager: &str,
    scope: Scope,
    old: &Value,
    new: &Value,
    rt: &ResourceType,
) -> Owner {
    let before = fields::leaves(&owned_view(old), rt);
    let changed = fields::leaves(&owned_view(new), rt)
        .into_iter()
        .filter(|(p, v)| before.get(p) != Some(v))
        .map(|(p, _)| p)
        .collect();
    Owner {
        manager: manager.to_string(),
        apply: false,
        scope,
        fields: changed,
    }
}

/// A non-apply write: the writer takes the fields it changed; removed fields are owned by nobody.
pub(super) fn transfer_updates(
    owners: &[Owner],
    manager: &str,
    scope: Scope,
    old: &Value,
    new: &Value,
    rt: &ResourceType,
) -> Vec<Owner> {
    let taken = update_owner(manager, scope, old, new, rt);
    let remaining = fields::leaves(&owned_view(new), rt);
    let mut out: Vec<Owner> = owners
        .iter()
        .cloned()
        .map(|mut o| {
            o.fields
                .retain(|p| remaining.contains_key(p) && !taken.fields.contains(p));
            o
        })
        .collect();
    match out
        .iter_mut()
        .find(|o| o.manager == manager && !o.apply && o.scope == scope)
    {
        Some(existing) => existing.fields.extend(taken.fields),
        None if !taken.fields.is_empty() => out.push(taken),
        None => {}
    }
    out.retain(|o| !o.fields.is_empty());
    out
}

pub(super) fn resolve_conflicts(
    owners: &mut [Owner],
    object: &Value,
    applied: &BTreeMap<FieldPath, Value>,
    rt: &ResourceType,
    manager: &str,
    force: bool,
    name: &str,
) -> Result<(), ApiError> {
    let mut conflicts = Vec::new();
    for (path, value) in applied {
        let current = fields::get_at(object, path, rt);
        if current == Some(value) {
            continue;
        }
        for owner in owners
            .iter()
            .filter(|o| o.manager != manager && o.fields.contains(path))
        {
            conflicts.push(format!(
                "conflict with \"{}\": {}",
                owner.manager,
                fields::display(path)
            ));
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    if !force {
        let count = conflicts.len();
        let noun = if count == 1 { "conflict" } else { "conflicts" };
        return Err(ApiError::conflict(
            &rt.plural,
            name,
            &format!("Apply failed with {count} {noun}: {}", conflicts.join("; ")),
        ));
    }
    for owner in owners.iter_mut().filter(|o| o.manager != manager) {
        owner.fields.retain(|p| {
            !applied.contains_key(p) || fields::get_at(object, p, rt) == applied.get(p)
        });
    }
    Ok(())
}

pub(super) fn prune_unapplied(
    next: &mut Value,
    owners: &[Owner],
    applied: &BTreeMap<FieldPath, Value>,
    rt: &ResourceType,
    manager: &str,
    scope: Scope,
) {
    let Some(previous) = owners
        .iter()
        .find(|o| o.manager == manager && o.apply && o.scope == scope)
    else {
        return;
    };
    for path in previous.fields.iter().filter(|p| !applied.contains_key(*p)) {
        let shared = owners.iter().any(|o| {
            !(o.manager == manager && o.apply && o.scope == scope) && o.fields.contains(path)
        });
        if !shared {
            fields::remove_at(next, path, rt);
        }
    }
}

pub(super) fn set_apply_owner(
    owners: &mut Vec<Owner>,
    manager: &str,
    scope: Scope,
    applied: BTreeSet<FieldPath>,
) {
    owners.retain(|o| !(o.manager == manager && o.apply && o.scope == scope));
    owners.push(Owner {
        manager: manager.to_string(),
        apply: true,
        scope,
        fields: applied,
    });
}
