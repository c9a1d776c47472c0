//! The running controller: kube-runtime's `Controller` on `EdgeDeviceWatch`, re-triggered
//! by changes of the Secrets the watches reference, with bounded concurrency and a
//! graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::api::EdgeDeviceWatch;

use super::context::Context;
use super::key::WatchKey;
use super::reconcile::{error_policy, reconcile};
use super::sweep::Sweeper;

/// Where and how the controller runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Watch one namespace only (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Watches reconciled at the same time (each reconcile also calls IoT Hub).
    pub concurrency: u16,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: 4,
        }
    }
}

fn scoped<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// The watches in `store` that read the Secret `namespace/name`.
pub(crate) fn watches_using_secret(
    store: &Store<EdgeDeviceWatch>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<EdgeDeviceWatch>> {
    store
        .state()
        .iter()
        .filter(|w| w.namespace().as_deref() == Some(namespace))
        .filter(|w| {
            w.spec
                .hub
                .connection_string_secret_ref
                .as_ref()
                .is_some_and(|r| r.name == name)
        })
        .map(|w| ObjectRef::from_obj(w.as_ref()))
        .collect()
}

/// Runs the controller until `shutdown` completes (then finishes in-flight reconciles).
pub async fn run_controller<S: Sweeper>(
    ctx: Arc<Context<S>>,
    options: ControllerOptions,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let namespace = options.namespace.as_deref();
    let watches: Api<EdgeDeviceWatch> = scoped(client.clone(), namespace);
    // Metadata only: the controller needs to know *that* a Secret changed, never its data.
    let secrets: Api<PartialObjectMeta<Secret>> = scoped(client, namespace);
    let controller = Controller::new(watches, watcher::Config::default().any_semantic());
    let store = controller.store();
    let live = store.clone();
    let forget_ctx = ctx.clone();
    controller
        .watches(secrets, watcher::Config::default(), move |secret| {
            let namespace = secret.namespace().unwrap_or_default();
            watches_using_secret(&store, &namespace, &secret.name_any())
        })
        .with_config(controller::Config::default().concurrency(options.concurrency))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(move |result| {
            let live_keys = live.state().iter().map(|w| WatchKey::of(w, "")).collect();
            forget_ctx.retain_watches(&live_keys);
            async move {
                match result {
                    Ok((object, _)) => tracing::debug!(watch = %object, "reconciled"),
                    Err(controller::Error::ObjectNotFound(object)) => {
                        tracing::debug!(watch = %object, "watch deleted before its reconcile")
                    }
                    Err(error) => {
                        tracing::warn!(error = %crate::errors::chain(&error), "controller error");
                    }
                }
            }
        })
        .await;
}
