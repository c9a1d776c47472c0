//! An in-process stand-in for the Kubernetes API server, for tests that cannot reach a real one.
//!
//! It speaks the real wire format for what edgewatch uses (list, watch, get, create, update,
//! delete, merge/strategic/JSON patch, server-side apply, the status subresource, `Status` errors)
//! over plain HTTP on 127.0.0.1, so code tested against it is the code that runs on a cluster.
//! `docs/testing.md` lists what it deliberately does not do.

mod discovery;
mod error;
mod fields;
mod log;
mod object;
mod ownership;
mod patch;
mod prune;
mod registry;
pub mod sample;
mod selector;
mod server;
mod store;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

// Part of the helper API; not every test binary names every type.
#[allow(unused_imports)]
pub use error::ApiError;
#[allow(unused_imports)]
pub use log::{Fault, FaultAction, RecordedRequest};
#[allow(unused_imports)]
pub use registry::{ListMap, ResourceType};

use server::Shared;
use store::Store;

/// Tunables; `Options::default()` suits almost every test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Changes kept for resuming watches; older resourceVersions get 410 Expired.
    pub history_limit: usize,
    /// How often watches that asked for bookmarks receive one.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// A running stand-in. Dropping it stops the server and ends open watches.
pub struct StandIn {
    url: String,
    shared: Arc<Shared>,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The serving task; it drains and ends after `shutdown` fires on drop.
    server: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Start on an ephemeral port of 127.0.0.1 (inside the current tokio runtime).
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("bound address");
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(options.history_limit)),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            bookmark_interval: options.bookmark_interval,
            shutdown: shutdown_rx,
        });
        let app = server::router(shared.clone());
        let mut stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            // Open watches end on the same signal, so the graceful drain finishes promptly.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        });
        Self {
            url: format!("http://{address}"),
            shared,
            shutdown,
            server,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kube client talking to this stand-in, default namespace `default`.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("stand-in URL is a valid URI"));
        kube::Client::try_from(config).expect("kube client for the stand-in")
    }

    /// Write a kubeconfig for this stand-in into `dir` (for tests that run the binary).
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {url}\n\
             users:\n- name: standin\n  user: {{}}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    \
             user: standin\n    namespace: default\ncurrent-context: standin\n",
            url = self.url
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Serve a CRD's resources (replacing a pre-registered one of the same group/version/plural).
    pub fn install_crd(&self, crd: &CustomResourceDefinition) {
        self.store().register(ResourceType::from_crd(crd));
    }

    /// Create or wholly replace an object (status included), bypassing preconditions; watchers
    /// see ADDED/MODIFIED as usual. Returns the stored object.
    pub fn apply_object<K>(&self, object: &K) -> K
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut value = serde_json::to_value(object).expect("serialisable object");
        value["apiVersion"] = K::api_version(&()).as_ref().into();
        value["kind"] = K::kind(&()).as_ref().into();
        let stored = self.apply_json(value);
        serde_json::from_value(stored).expect("stored object deserialises as K")
    }

    /// `apply_object` for raw JSON (must carry apiVersion and kind).
    pub fn apply_json(&self, object: Value) -> Value {
        let mut store = self.store();
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let rt = store
            .resource_for_kind(&api_version, &kind)
            .expect("served kind");
        store.put_direct(&rt, object).expect("valid object")
    }

    /// The stored object, if present.
    pub fn get_object<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let value = self.get_json(&K::api_version(&()), &K::kind(&()), namespace, name)?;
        Some(serde_json::from_value(value).expect("stored object deserialises as K"))
    }

    pub fn get_json(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.store();
        let rt = store.resource_for_kind(api_version, kind).ok()?;
        store.get(&rt, namespace.unwrap_or(""), name).ok()
    }

    /// Delete immediately (finalizers ignored); true when something was deleted.
    pub fn delete_object<K>(&self, namespace: Option<&str>, name: &str) -> bool
    where
        K: Resource<DynamicType = ()>,
    {
        let mut store = self.store();
        let Ok(rt) = store.resource_for_kind(&K::api_version(&()), &K::kind(&())) else {
            return false;
        };
        store.delete_direct(&rt, namespace.unwrap_or(""), name)
    }

    /// Every object of a kind (all namespaces when `namespace` is None).
    pub fn list_json(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = self.store();
        let Ok(rt) = store.resource_for_kind(api_version, kind) else {
            return Vec::new();
        };
        store
            .list(&rt, namespace, &Default::default(), &Default::default())
            .0
    }

    /// `events.k8s.io/v1` Events, oldest first.
    pub fn events(&self, namespace: Option<&str>) -> Vec<k8s_openapi::api::events::v1::Event> {
        let mut events: Vec<k8s_openapi::api::events::v1::Event> = self
            .list_json("events.k8s.io/v1", "Event", namespace)
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("stored Event deserialises"))
            .collect();
        events.sort_by_key(|e| {
            e.metadata
                .resource_version
                .as_deref()
                .and_then(|rv| rv.parse::<u64>().ok())
                .unwrap_or_default()
        });
        events
    }

    /// The latest resourceVersion issued.
    pub fn resource_version(&self) -> u64 {
        self.store().current_rv()
    }

    /// Wait until `predicate` holds, re-checking after every stored change (no polling).
    /// Returns false if `timeout` passes first.
    pub async fn wait_for(&self, timeout: Duration, predicate: impl Fn(&StandIn) -> bool) -> bool {
        let mut changes = self.store().subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if predicate(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.recv()).await {
                Err(_) => return predicate(self),
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return predicate(self);
                }
                Ok(_) => {}
            }
        }
    }

    /// Every request served so far, in completion order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.lock().expect("log lock").clone()
    }

    pub fn count_requests(&self, predicate: impl Fn(&RecordedRequest) -> bool) -> usize {
        self.shared
            .log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|r| predicate(r))
            .count()
    }

    /// PATCHes of `<plural>/<name>/status` in `namespace` (the status writes to count).
    pub fn status_patches(&self, plural: &str, namespace: &str, name: &str) -> usize {
        self.count_requests(|r| r.is_status_patch(plural, namespace, name))
    }

    pub fn clear_requests(&self) {
        self.shared.log.lock().expect("log lock").clear();
    }

    /// Make the next matching requests fail or stall; see `Fault`.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.lock().expect("faults lock").push(fault);
    }

    /// Stop serving: open watches end, new connections are refused. Returns once drained.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.server).await;
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
