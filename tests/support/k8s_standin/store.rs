//! The object store: every object of every served resource, one global resourceVersion counter, a
//! bounded change history for resuming watches, and server-side-apply field ownership.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::fields;
use super::object::{
    assign_name, check_apply_body, check_name, check_namespace, check_precondition, check_type,
    initialise_metadata, keep_system_metadata, normalise, now, scoped, spec_of,
};
use super::ownership::{
    Owner, owned_view, prune_unapplied, resolve_conflicts, set_apply_owner, transfer_updates,
    update_owner,
};
use super::patch;
use super::registry::{ResourceType, default_resources};
use super::selector::{FieldSelector, LabelSelector};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource: everything but `.status` when a status subresource exists.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

/// The update verbs that are not server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed change, as replayed to watchers.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: ChangeKind,
    pub object: Value,
    /// The state before a MODIFIED change, so selector watches can turn it into ADDED/DELETED.
    pub previous: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ObjectKey {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Stored {
    object: Value,
    owners: Vec<Owner>,
}

/// Where a watch starts: what to replay, and the live feed subscribed under the same lock.
pub struct WatchStart {
    pub backlog: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
}

pub struct Store {
    registry: Vec<ResourceType>,
    rv: u64,
    objects: BTreeMap<ObjectKey, Stored>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches may resume from this resourceVersion or later; older ones get 410 Expired.
    oldest_resumable: u64,
    changes: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Self {
            registry: default_resources(),
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_resumable: 1,
            changes: broadcast::channel(4096).0,
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Notifications of every committed change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    pub fn registry(&self) -> &[ResourceType] {
        &self.registry
    }

    /// Add or replace served resources (for a CRD install).
    pub fn register(&mut self, resources: Vec<ResourceType>) {
        for rt in resources {
            self.registry.retain(|r| {
                !(r.group == rt.group && r.version == rt.version && r.plural == rt.plural)
            });
            self.registry.push(rt);
        }
    }

    pub fn resource(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceType, ApiError> {
        self.registry
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })
    }

    pub fn resource_for_kind(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<ResourceType, ApiError> {
        self.registry
            .iter()
            .find(|r| r.api_version() == api_version && r.kind == kind)
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(format!("no resource serves {api_version} {kind}"))
            })
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, s)| present(&s.object, rt))
            .filter(|o| labels.matches(o) && fields.matches(o))
            .collect();
        (items, self.rv)
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&key(rt, namespace, name))
            .map(|s| present(&s.object, rt))
            .ok_or_else(|| ApiError::not_found(&rt.plural, name))
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        body: Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        let mut object = body;
        check_type(&object, rt)?;
        check_namespace(&object, namespace)?;
        let name = assign_name(&mut object)?;
        let key = key(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&rt.plural, &name));
        }
        if rt.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        initialise_metadata(&mut object, rt, namespace, &name);
        let owners = vec![update_owner(
            manager,
            Scope::Main,
            &Value::Null,
            &object,
            rt,
        )];
        Ok(self.commit_new(rt, key, object, owners))
    }

    /// PUT: replace the object (or its status), honouring the resourceVersion precondition.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        scope: Scope,
        manager: &str,
    ) -> Result<Value, ApiError> {
        check_type(&body, rt)?;
        check_name(&body, name)?;
        let stored = self.stored(rt, namespace, name)?;
        match body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            None | Some("") if rt.custom => {
                return Err(ApiError::invalid(format!(
                    "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    rt.kind
                )));
            }
            _ => check_precondition(&body, &stored.object, rt, name)?,
        }
        self.update_with(rt, namespace, name, stored, scope, manager, |_| Ok(body))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        scope: Scope,
        manager: &str,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Strategic && rt.custom {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json",
            ));
        }
        let stored = self.stored(rt, namespace, name)?;
        if kind != PatchKind::Json {
            check_precondition(body, &stored.object, rt, name)?;
        }
        self.update_with(rt, namespace, name, stored, scope, manager, |current| {
            let mut next = current.clone();
            match kind {
                PatchKind::Merge => patch::merge_patch(&mut next, body),
                PatchKind::Strategic => patch::keyed_merge(&mut next, body, rt),
                PatchKind::Json => patch::json_patch(&mut next, body)?,
            }
            Ok(next)
        })
    }

    /// Server-side apply: conflicts against other managers' fields unless forced, merge with
    /// list-maps by key, prune what this manager applied before and no longer applies.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: &Value,
        scope: Scope,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        check_apply_body(body, rt, name)?;
        let key = key(rt, namespace, name);
        let Some(stored) = self.objects.get(&key).cloned() else {
            if scope == Scope::Status {
                return Err(ApiError::not_found(&rt.plural, name));
            }
            return self.apply_create(rt, namespace, name, body, manager);
        };
        check_precondition(body, &stored.object, rt, name)?;
        let config = scoped(&owned_view(body), &Value::Null, rt, scope);
        let applied = fields::leaves(&config, rt);
        let mut owners = stored.owners.clone();
        resolve_conflicts(
            &mut owners,
            &stored.object,
            &applied,
            rt,
            manager,
            force,
            name,
        )?;

        let mut next = stored.object.clone();
        patch::keyed_merge(&mut next, &config, rt);
        prune_unapplied(&mut next, &owners, &applied, rt, manager, scope);
        set_apply_owner(&mut owners, manager, scope, applied.into_keys().collect());
        let next = scoped(&next, &stored.object, rt, scope);
        Ok(self.commit_update(rt, key, &stored, next, owners))
    }

    fn apply_create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: &Value,
        manager: &str,
    ) -> Result<Value, ApiError> {
        check_namespace(body, namespace)?;
        let mut object = body.clone();
        if rt.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        initialise_metadata(&mut object, rt, namespace, name);
        let applied = fields::leaves(&owned_view(&object), rt);
        let mut owners = Vec::new();
        set_apply_owner(
            &mut owners,
            manager,
            Scope::Main,
            applied.into_keys().collect(),
        );
        Ok(self.commit_new(rt, key(rt, namespace, name), object, owners))
    }

    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let key = key(rt, namespace, name);
        let stored = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, name))?;
        let has_finalizers = stored
            .object
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            return Ok(self.mark_for_deletion(rt, key, stored));
        }
        Ok(self.remove(rt, key))
    }

    /// With finalizers pending, deletion only sets `deletionTimestamp` (once).
    fn mark_for_deletion(&mut self, rt: &ResourceType, key: ObjectKey, stored: Stored) -> Value {
        let mut next = stored.object.clone();
        if next.pointer("/metadata/deletionTimestamp").is_none() {
            next["metadata"]["deletionTimestamp"] = json!(now());
            let rv = self.next_rv();
            next["metadata"]["resourceVersion"] = json!(rv.to_string());
            let owners = stored.owners;
            self.objects.insert(
                key.clone(),
                Stored {
                    object: next.clone(),
                    owners,
                },
            );
            self.record(rv, &key, ChangeKind::Modified, &next, Some(stored.object));
        }
        present(&next, rt)
    }

    /// Test backdoor: create or wholly replace an object, status included, without preconditions.
    pub fn put_direct(&mut self, rt: &ResourceType, mut object: Value) -> Result<Value, ApiError> {
        check_type(&object, rt)?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("metadata.name: Required value"))?
            .to_string();
        let namespace = if rt.namespaced {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let key = key(rt, &namespace, &name);
        match self.objects.get(&key).cloned() {
            None => {
                initialise_metadata(&mut object, rt, &namespace, &name);
                let owners = vec![update_owner(
                    "standin",
                    Scope::Main,
                    &Value::Null,
                    &object,
                    rt,
                )];
                Ok(self.commit_new(rt, key, object, owners))
            }
            Some(stored) => {
                let owners = transfer_updates(
                    &stored.owners,
                    "standin",
                    Scope::Main,
                    &stored.object,
                    &object,
                    rt,
                );
                Ok(self.commit_update(rt, key, &stored, object, owners))
            }
        }
    }

    pub fn delete_direct(&mut self, rt: &ResourceType, namespace: &str, name: &str) -> bool {
        let key = key(rt, namespace, name);
        if self.objects.contains_key(&key) {
            self.remove(rt, key);
            true
        } else {
            false
        }
    }

    /// Start a watch at `since` (`None` = replay the current objects as ADDED first).
    pub fn watch(&self, rt: &ResourceType, since: Option<u64>) -> Result<WatchStart, ApiError> {
        let live = self.changes.subscribe();
        let backlog = match since {
            None => self
                .objects
                .iter()
                .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
                .map(|(k, s)| {
                    Arc::new(Change {
                        rv: self.rv,
                        group: k.group.clone(),
                        plural: k.plural.clone(),
                        namespace: k.namespace.clone(),
                        kind: ChangeKind::Added,
                        object: s.object.clone(),
                        previous: None,
                    })
                })
                .collect(),
            Some(rv) if rv < self.oldest_resumable => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    self.oldest_resumable
                )));
            }
            Some(rv) => self
                .history
                .iter()
                .filter(|c| c.rv > rv && c.group == rt.group && c.plural == rt.plural)
                .cloned()
                .collect(),
        };
        Ok(WatchStart { backlog, live })
    }

    fn stored(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Stored, ApiError> {
        self.objects
            .get(&key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.plural, name))
    }

    #[allow(clippy::too_many_arguments)]
    fn update_with(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        stored: Stored,
        scope: Scope,
        manager: &str,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let candidate = change(&stored.object)?;
        check_type(&candidate, rt)?;
        check_name(&candidate, name)?;
        let next = scoped(&candidate, &stored.object, rt, scope);
        let owners = transfer_updates(&stored.owners, manager, scope, &stored.object, &next, rt);
        Ok(self.commit_update(rt, key(rt, namespace, name), &stored, next, owners))
    }

    fn commit_new(
        &mut self,
        rt: &ResourceType,
        key: ObjectKey,
        mut object: Value,
        owners: Vec<Owner>,
    ) -> Value {
        normalise(&mut object, rt);
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects.insert(
            key.clone(),
            Stored {
                object: object.clone(),
                owners,
            },
        );
        self.record(rv, &key, ChangeKind::Added, &object, None);
        present(&object, rt)
    }

    /// Store `next` over `stored`, keeping system metadata. A no-op write keeps the old
    /// resourceVersion and notifies nobody, like the real server.
    fn commit_update(
        &mut self,
        rt: &ResourceType,
        key: ObjectKey,
        stored: &Stored,
        mut next: Value,
        owners: Vec<Owner>,
    ) -> Value {
        keep_system_metadata(&mut next, &stored.object, rt);
        normalise(&mut next, rt);
        if next == stored.object {
            self.objects.insert(
                key,
                Stored {
                    object: next.clone(),
                    owners,
                },
            );
            return present(&next, rt);
        }
        if rt.tracks_generation && spec_of(&next) != spec_of(&stored.object) {
            let generation = stored
                .object
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            next["metadata"]["generation"] = json!(generation + 1);
        }
        let finished = next.pointer("/metadata/deletionTimestamp").is_some()
            && next
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty());
        self.objects.insert(
            key.clone(),
            Stored {
                object: next.clone(),
                owners,
            },
        );
        if finished {
            return self.remove(rt, key);
        }
        let rv = self.next_rv();
        next["metadata"]["resourceVersion"] = json!(rv.to_string());
        if let Some(s) = self.objects.get_mut(&key) {
            s.object = next.clone();
        }
        self.record(
            rv,
            &key,
            ChangeKind::Modified,
            &next,
            Some(stored.object.clone()),
        );
        present(&next, rt)
    }

    fn remove(&mut self, rt: &ResourceType, key: ObjectKey) -> Value {
        let mut object = self
            .objects
            .remove(&key)
            .map(|s| s.object)
            .unwrap_or(Value::Null);
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(rv, &key, ChangeKind::Deleted, &object, None);
        present(&object, rt)
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        rv: u64,
        key: &ObjectKey,
        kind: ChangeKind,
        object: &Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv,
            group: key.group.clone(),
            plural: key.plural.clone(),
            namespace: key.namespace.clone(),
            kind,
            object: object.clone(),
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_resumable = dropped.rv;
            }
        }
        // Nobody listening is fine.
        let _ = self.changes.send(change);
    }
}

fn key(rt: &ResourceType, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: rt.group.clone(),
        plural: rt.plural.clone(),
        namespace: if rt.namespaced {
            namespace.to_string()
        } else {
            String::new()
        },
        name: name.to_string(),
    }
}

/// The object as served under `rt`'s version (stored objects have no conversion: same fields).
pub fn present(object: &Value, rt: &ResourceType) -> Value {
    let mut out = object.clone();
    out["apiVersion"] = json!(rt.api_version());
    out["kind"] = json!(rt.kind);
    out
}
