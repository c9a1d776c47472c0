//! HTTP routing: turns Kubernetes REST paths and verbs into store calls and streams watches.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::ApiError;
use super::log::{Fault, FaultAction, RecordedRequest, injected_error, take_fault};
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{Change, PatchKind, Scope, Store};

/// Largest request body accepted, like kube-apiserver's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// State shared by the handler and the test-facing `StandIn`.
pub struct Shared {
    pub store: Mutex<Store>,
    pub log: Mutex<Vec<RecordedRequest>>,
    pub faults: Mutex<Vec<Fault>>,
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub type SharedState = Arc<Shared>;

pub fn router(shared: SharedState) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

async fn handle(State(shared): State<SharedState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let metadata_only = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=PartialObjectMetadata"));
    let bytes = axum::body::to_bytes(body, MAX_BODY).await;
    let mut record = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
        status: 0,
    };
    let response = match bytes {
        Err(_) => {
            ApiError::new(413, "RequestEntityTooLarge", "request body too large").into_response()
        }
        Ok(bytes) => {
            let call = Call {
                method,
                path,
                params: url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect(),
                content_type,
                body: bytes,
                metadata_only,
            };
            serve_with_faults(&shared, call).await
        }
    };
    record.status = response.status().as_u16();
    shared.log.lock().expect("log lock").push(record);
    response
}

struct Call {
    method: Method,
    path: String,
    params: HashMap<String, String>,
    content_type: Option<String>,
    body: Bytes,
    /// The client asked for `PartialObjectMetadata` (kube's `metadata_watcher`, `get_metadata`).
    metadata_only: bool,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }

    /// Apply bodies are YAML (JSON is YAML; kube sends JSON).
    fn apply_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).or_else(|_| {
            let text = std::str::from_utf8(&self.body)
                .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| {
                ApiError::bad_request(format!("the apply body is not valid YAML: {e}"))
            })
        })
    }

    /// `fieldManager`, or what the real server derives when none is given.
    fn manager(&self) -> String {
        self.param("fieldManager").unwrap_or("unknown").to_string()
    }
}

async fn serve_with_faults(shared: &SharedState, call: Call) -> Response {
    let fault = take_fault(
        &mut shared.faults.lock().expect("faults lock"),
        call.method.as_str(),
        &call.path,
    );
    match fault {
        Some(FaultAction::Fail { code, retry_after }) => {
            return injected_error(code, retry_after).into_response();
        }
        Some(FaultAction::Delay(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    match serve(shared, &call) {
        Ok(Reply::Json(code, value)) if call.metadata_only => {
            (code, axum::Json(metadata_view(&value))).into_response()
        }
        Ok(Reply::Json(code, value)) => (code, axum::Json(value)).into_response(),
        Ok(Reply::Watch(watch)) => stream_watch(shared, *watch),
        Err(error) => error.into_response(),
    }
}

enum Reply {
    Json(StatusCode, Value),
    Watch(Box<WatchRequest>),
}

/// Where a resource URL points: the type, an optional namespace, and an optional name/subresource.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn serve(shared: &SharedState, call: &Call) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = call
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let store = shared.store.lock().expect("store lock");
    match segments.as_slice() {
        ["version"] => Ok(ok(version_info())),
        ["api"] => Ok(ok(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        )),
        ["apis"] => Ok(ok(group_list(store.registry()))),
        ["api", "v1"] => Ok(ok(resource_list(store.registry(), "", "v1"))),
        ["apis", group, version] => {
            let list = resource_list(store.registry(), group, version);
            if list["resources"].as_array().is_some_and(|r| r.is_empty()) {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
            Ok(ok(list))
        }
        ["api", "v1", rest @ ..] => {
            let target = resolve(&store, "", "v1", rest)?;
            drop(store);
            dispatch(shared, call, target)
        }
        ["apis", group, version, rest @ ..] => {
            let target = resolve(&store, group, version, rest)?;
            drop(store);
            dispatch(shared, call, target)
        }
        _ => Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

fn ok(value: Value) -> Reply {
    Reply::Json(StatusCode::OK, value)
}

fn resolve(store: &Store, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        other => (None, other),
    };
    let (plural, name, sub) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    let rt = store.resource(group, version, plural)?;
    let status = match sub {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(_) => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    };
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    if !rt.namespaced && namespace.is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    Ok(Target {
        rt,
        namespace,
        name,
        status,
    })
}

fn dispatch(shared: &SharedState, call: &Call, target: Target) -> Result<Reply, ApiError> {
    if call.param("dryRun").is_some() {
        return Err(ApiError::bad_request(
            "the stand-in does not implement dryRun",
        ));
    }
    let ns = target.namespace.clone().unwrap_or_default();
    let rt = &target.rt;
    let scope = if target.status {
        Scope::Status
    } else {
        Scope::Main
    };
    let Some(name) = target.name.as_deref() else {
        return collection(shared, call, &target);
    };
    let mut store = shared.store.lock().expect("store lock");
    let object = match call.method {
        Method::GET => store.get(rt, &ns, name)?,
        Method::PUT => store.replace(rt, &ns, name, call.json_body()?, scope, &call.manager())?,
        Method::DELETE if !target.status => store.delete(rt, &ns, name)?,
        Method::PATCH => return patch(&mut store, call, rt, &ns, name, scope),
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported here",
                call.method
            )));
        }
    };
    Ok(ok(object))
}

fn patch(
    store: &mut Store,
    call: &Call,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    scope: Scope,
) -> Result<Reply, ApiError> {
    let content_type = call.content_type.as_deref().unwrap_or("");
    let kind = match content_type {
        "application/apply-patch+yaml" => {
            let manager = call
                .param("fieldManager")
                .filter(|m| !m.is_empty())
                .ok_or_else(|| ApiError::bad_request("PATCH with apply requires a fieldManager"))?;
            let existed = store.get(rt, ns, name).is_ok();
            let body = call.apply_body()?;
            let object = store.apply(rt, ns, name, &body, scope, manager, call.flag("force"))?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            return Ok(Reply::Json(code, object));
        }
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::Strategic,
        "application/json-patch+json" => PatchKind::Json,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if call.param("force").is_some() {
        return Err(ApiError::bad_request(
            "force is only allowed for apply patches",
        ));
    }
    let object = store.patch(
        rt,
        ns,
        name,
        kind,
        &call.json_body()?,
        scope,
        &call.manager(),
    )?;
    Ok(ok(object))
}

fn collection(shared: &SharedState, call: &Call, target: &Target) -> Result<Reply, ApiError> {
    let rt = &target.rt;
    match call.method {
        Method::GET if call.flag("watch") => {
            Ok(Reply::Watch(Box::new(WatchRequest::parse(call, target)?)))
        }
        Method::GET => {
            let labels = LabelSelector::parse(call.param("labelSelector").unwrap_or(""))?;
            let fields = FieldSelector::parse(call.param("fieldSelector").unwrap_or(""), rt)?;
            let store = shared.store.lock().expect("store lock");
            let (items, rv) = store.list(rt, target.namespace.as_deref(), &labels, &fields);
            Ok(ok(json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            })))
        }
        Method::POST if rt.namespaced && target.namespace.is_none() => Err(
            ApiError::method_not_allowed("create a namespaced object under /namespaces/<ns>/"),
        ),
        Method::POST => {
            let ns = target.namespace.clone().unwrap_or_default();
            let mut store = shared.store.lock().expect("store lock");
            let object = store.create(rt, &ns, call.json_body()?, &call.manager())?;
            Ok(Reply::Json(StatusCode::CREATED, object))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{} on a collection is not supported by the stand-in",
            call.method
        ))),
    }
}

struct WatchRequest {
    rt: ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    since: Option<u64>,
    bookmarks: bool,
    timeout: Option<Duration>,
    initial_events_end: bool,
    metadata_only: bool,
}

impl WatchRequest {
    fn parse(call: &Call, target: &Target) -> Result<Self, ApiError> {
        let since =
            match call.param("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        let timeout = call
            .param("timeoutSeconds")
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))
            })
            .transpose()?
            .map(Duration::from_secs);
        let send_initial = call.flag("sendInitialEvents");
        Ok(Self {
            rt: target.rt.clone(),
            namespace: target.namespace.clone(),
            labels: LabelSelector::parse(call.param("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(call.param("fieldSelector").unwrap_or(""), &target.rt)?,
            since: if send_initial { None } else { since },
            bookmarks: call.flag("allowWatchBookmarks"),
            timeout,
            initial_events_end: send_initial,
            metadata_only: call.metadata_only,
        })
    }

    fn wants(&self, change: &Change) -> bool {
        change.group == self.rt.group
            && change.plural == self.rt.plural
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| change.namespace == ns)
            && self.labels.matches(&change.object)
            && self.fields.matches(&change.object)
    }

    fn event_line(&self, change: &Change) -> Bytes {
        let mut object = super::store::present(&change.object, &self.rt);
        if self.metadata_only {
            object = metadata_view(&object);
        }
        line(&json!({"type": change.kind.as_str(), "object": object}))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata},
        }))
    }
}

/// What a real server answers for `as=PartialObjectMetadata[List]`: metadata only.
fn metadata_view(value: &Value) -> Value {
    let partial = |object: &Value| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]});
    match value.get("items").and_then(Value::as_array) {
        Some(items) => json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": value["metadata"],
            "items": items.iter().map(partial).collect::<Vec<_>>(),
        }),
        None if value["kind"] == "Status" => value.clone(),
        None => partial(value),
    }
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Answer 200 and stream newline-delimited watch events until timeout, shutdown or disconnect.
/// A resourceVersion older than the kept history yields one `ERROR` event carrying 410 Expired,
/// which is how the real server reports it on a watch.
fn stream_watch(shared: &SharedState, watch: WatchRequest) -> Response {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(64);
    let started = {
        let store = shared.store.lock().expect("store lock");
        store
            .watch(&watch.rt, watch.since)
            .map(|start| (start, store.current_rv()))
    };
    let mut shutdown = shared.shutdown.clone();
    let bookmark_interval = shared.bookmark_interval;
    let store_for_bookmarks = shared.clone();
    tokio::spawn(async move {
        let (start, rv_at_start) = match started {
            Ok(started) => started,
            Err(error) => {
                let _ = tx
                    .send(Ok(line(
                        &json!({"type": "ERROR", "object": error.to_status()}),
                    )))
                    .await;
                return;
            }
        };
        let mut live = start.live;
        for change in start.backlog.iter().filter(|c| watch.wants(c)) {
            if tx.send(Ok(watch.event_line(change))).await.is_err() {
                return;
            }
        }
        if watch.initial_events_end
            && tx
                .send(Ok(watch.bookmark(rv_at_start, true)))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(watch.timeout.unwrap_or(Duration::from_secs(1800)));
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            let outgoing = tokio::select! {
                received = live.recv() => match received {
                    Ok(change) if watch.wants(&change) => watch.event_line(&change),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => line(&json!({"type": "ERROR", "object": ApiError::expired("watch fell behind").to_status()})),
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick(), if watch.bookmarks => {
                    let rv = store_for_bookmarks.store.lock().expect("store lock").current_rv();
                    watch.bookmark(rv, false)
                }
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
            };
            if tx.send(Ok(outgoing)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(rx))
        .expect("static response parts")
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-standin", "gitCommit": "", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64",
    })
}

fn group_list(registry: &[ResourceType]) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for rt in registry.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == rt.group) {
            Some((_, versions)) if !versions.contains(&rt.version) => {
                versions.push(rt.version.clone())
            }
            Some(_) => {}
            None => groups.push((rt.group.clone(), vec![rt.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(registry: &[ResourceType], group: &str, version: &str) -> Value {
    let verbs = json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]);
    let mut resources = Vec::new();
    for rt in registry
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": rt.plural, "singularName": rt.kind.to_lowercase(), "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": verbs,
        }));
        if rt.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}
