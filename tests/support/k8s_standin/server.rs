//! HTTP routing: turns Kubernetes REST paths and verbs into store calls and streams watches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::discovery::{group_list, resource_list, version_info};
use super::error::ApiError;
use super::log::{Fault, FaultAction, RecordedRequest, injected_error, take_fault};
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{PatchKind, Scope, Store};
use super::watch::{WatchRequest, stream_watch};

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

pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) params: HashMap<String, String>,
    pub(super) content_type: Option<String>,
    pub(super) body: Bytes,
    /// The client asked for `PartialObjectMetadata` (kube's `metadata_watcher`, `get_metadata`).
    pub(super) metadata_only: bool,
}

impl Call {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    pub(super) fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }

    /// Apply bodies are YAML (JSON is YAML; kube sends JSON).
    pub(super) fn apply_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).or_else(|_| {
            let text = std::str::from_utf8(&self.body)
                .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|e| {
                ApiError::bad_request(format!("the apply body is not valid YAML: {e}"))
            })
        })
    }

    /// `fieldManager`, or what the real server derives when none is given.
    pub(super) fn manager(&self) -> String {
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
pub(super) struct Target {
    pub(super) rt: ResourceType,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) status: bool,
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

/// What a real server answers for `as=PartialObjectMetadata[List]`: metadata only.
pub(super) fn metadata_view(value: &Value) -> Value {
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
