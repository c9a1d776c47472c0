//! One reconcile of one `EdgeDeviceWatch`: sweep its devices (through a [`Sweeper`]),
//! publish the status if it changed, announce transitions, requeue after the interval.
//!
//! Failures that concern the watch (bad spec, Secret, credentials, hub, throttling) are
//! handled here: they become status and a backed-off requeue. Only Kubernetes API errors
//! reach kube-runtime's `error_policy`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Api, Client, Resource, ResourceExt};

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchSpec, EdgeDeviceWatchStatus};
use crate::health::report::DeviceReport;

use super::backoff::{BackoffBook, BackoffPolicy};
use super::credentials::{HubCredentials, resolve_credentials};
use super::error::ReconcileError;
use super::event_publisher::publish_all;
use super::outcome::{status_after_failure, status_when_suspended};
use super::ping_schedule::age;
use super::settings::{InvalidSpec, WatchSettings};
use super::status_builder::{StatusLimits, Sweep, build_status};
use super::status_writer::write_if_changed;
use super::transitions::plan_events;
use super::watch_state::WatchState;

/// What a sweep needs to know about the watch.
#[derive(Debug, Clone)]
pub struct SweepRequest<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec: &'a EdgeDeviceWatchSpec,
    pub settings: &'a WatchSettings,
    pub credentials: &'a HubCredentials,
    pub now: Timestamp,
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOutput {
    /// The hub's host name.
    pub hub: String,
    /// One verdict per watched device.
    pub reports: Vec<DeviceReport>,
}

/// Reads the devices of a watch and judges them. The production sweeper talks to IoT Hub
/// and runs the evaluator; tests script it.
pub trait Sweeper: Send + Sync + 'static {
    /// Sweeps once, updating the watch's pings and restart history in `state`.
    fn sweep(
        &self,
        request: SweepRequest<'_>,
        state: &mut WatchState,
    ) -> impl Future<Output = Result<SweepOutput, ReconcileError>> + Send;
}

/// Everything reconciles share.
pub struct Context<S> {
    pub client: Client,
    pub recorder: Recorder,
    pub sweeper: S,
    /// Whether this replica may write; followers only requeue.
    pub is_leader: Box<dyn Fn() -> bool + Send + Sync>,
    pub backoff: BackoffBook,
    pub backoff_policy: BackoffPolicy,
    pub limits: StatusLimits,
    /// How soon a follower looks again whether it leads.
    pub follower_requeue: Duration,
    /// The time reconciles judge by (tests drive it).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    states: Mutex<HashMap<String, WatchState>>,
}

impl<S: Sweeper> Context<S> {
    /// A context with default limits and backoff, leading unless `is_leader` says not.
    pub fn new(
        client: Client,
        recorder: Recorder,
        sweeper: S,
        is_leader: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Self {
        Self {
            client,
            recorder,
            sweeper,
            is_leader,
            backoff: BackoffBook::default(),
            backoff_policy: BackoffPolicy::default(),
            limits: StatusLimits::default(),
            follower_requeue: Duration::from_secs(5),
            clock: Arc::new(Timestamp::now),
            states: Mutex::new(HashMap::new()),
        }
    }

    fn take_state(&self, key: &str, status: Option<&EdgeDeviceWatchStatus>) -> WatchState {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .remove(key)
            .unwrap_or_else(|| WatchState::seed(status))
    }

    fn put_state(&self, key: String, state: WatchState) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, state);
    }

    /// Forgets the state of watches that no longer exist (`live`: keys of existing ones).
    pub fn retain_watches(&self, live: &std::collections::HashSet<String>) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = states
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            states.remove(&key);
            self.backoff.reset(&key);
        }
    }

    /// Watches with in-memory state.
    pub fn tracked_watches(&self) -> usize {
        self.states.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// `namespace/name`, the key of per-watch state.
pub fn watch_key(watch: &EdgeDeviceWatch) -> String {
    format!(
        "{}/{}",
        watch.namespace().unwrap_or_default(),
        watch.name_any()
    )
}

enum Attempt {
    Swept(SweepOutput, Duration),
    Suspended,
    /// A sweep succeeded less than an interval ago (this reconcile was triggered by the
    /// watch's own status write): wait out the rest.
    NotDue(Duration),
}

/// Reconciles one watch. Errors are Kubernetes API failures only.
pub async fn reconcile<S: Sweeper>(
    watch: Arc<EdgeDeviceWatch>,
    ctx: Arc<Context<S>>,
) -> Result<Action, ReconcileError> {
    if !(ctx.is_leader)() {
        return Ok(Action::requeue(ctx.follower_requeue));
    }
    let key = watch_key(&watch);
    let now = (ctx.clock)();
    let mut state = ctx.take_state(&key, watch.status.as_ref());
    let result = reconcile_with_state(&watch, &ctx, &mut state, &key, now).await;
    ctx.put_state(key, state);
    result
}

async fn reconcile_with_state<S: Sweeper>(
    watch: &EdgeDeviceWatch,
    ctx: &Context<S>,
    state: &mut WatchState,
    key: &str,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let namespace = watch.namespace().unwrap_or_default();
    let api: Api<EdgeDeviceWatch> = Api::namespaced(ctx.client.clone(), &namespace);
    let previous = watch.status.as_ref();
    let generation = watch.meta().generation;
    match attempt(watch, ctx, state, &namespace, now).await {
        Ok(Attempt::Swept(output, interval)) => {
            let sweep = Sweep {
                generation,
                hub: &output.hub,
                reports: &output.reports,
                memory: state.memory(),
            };
            let status = build_status(&sweep, previous, now, &ctx.limits);
            let events = plan_events(&state.faults, &output.reports);
            write_if_changed(&api, &watch.name_any(), previous, &status).await?;
            state.remember(&output.reports);
            state.last_success = Some((now, generation));
            announce(ctx, watch, &events).await;
            ctx.backoff.reset(key);
            Ok(Action::requeue(interval))
        }
        Ok(Attempt::NotDue(remaining)) => Ok(Action::requeue(remaining)),
        Ok(Attempt::Suspended) => {
            let status = status_when_suspended(previous, generation, now);
            write_if_changed(&api, &watch.name_any(), previous, &status).await?;
            state.last_success = None;
            ctx.backoff.reset(key);
            Ok(Action::await_change())
        }
        Err(ReconcileError::Kubernetes(error)) => Err(ReconcileError::Kubernetes(error)),
        Err(error) => {
            state.last_success = None;
            let failures = ctx.backoff.record_failure(key);
            tracing::warn!(watch = key, %error, failures, "reconcile failed");
            if let Some(status) = status_after_failure(previous, &error, generation, now) {
                write_if_changed(&api, &watch.name_any(), previous, &status).await?;
            }
            Ok(Action::requeue(retry_delay(ctx, failures, &error)))
        }
    }
}

async fn attempt<S: Sweeper>(
    watch: &EdgeDeviceWatch,
    ctx: &Context<S>,
    state: &mut WatchState,
    namespace: &str,
    now: Timestamp,
) -> Result<Attempt, ReconcileError> {
    if watch.namespace().is_none() {
        return Err(InvalidSpec("an EdgeDeviceWatch must be namespaced".into()).into());
    }
    let settings = WatchSettings::from_spec(&watch.spec)?;
    if settings.suspend {
        return Ok(Attempt::Suspended);
    }
    if let Some(remaining) = not_due_for(state, &settings, watch.meta().generation, now) {
        return Ok(Attempt::NotDue(remaining));
    }
    let credentials = resolve_credentials(&ctx.client, namespace, &watch.spec.hub).await?;
    let request = SweepRequest {
        namespace,
        name: &watch.name_any(),
        spec: &watch.spec,
        settings: &settings,
        credentials: &credentials,
        now,
    };
    let output = ctx.sweeper.sweep(request, state).await?;
    Ok(Attempt::Swept(output, settings.interval))
}

/// The rest of the interval when the last sweep of the same generation succeeded less
/// than an interval ago.
fn not_due_for(
    state: &WatchState,
    settings: &WatchSettings,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Duration> {
    let (at, swept_generation) = state.last_success?;
    let elapsed = age(at, now);
    (swept_generation == generation && elapsed < settings.interval)
        .then(|| settings.interval - elapsed)
}

fn retry_delay<S>(ctx: &Context<S>, failures: u32, error: &ReconcileError) -> Duration {
    let backoff = ctx
        .backoff_policy
        .delay_with_jitter(failures, rand::random::<f64>());
    error.minimum_delay().map_or(backoff, |d| d.max(backoff))
}

async fn announce<S>(
    ctx: &Context<S>,
    watch: &EdgeDeviceWatch,
    events: &[super::transitions::PlannedEvent],
) {
    if events.is_empty() {
        return;
    }
    let reference = watch.object_ref(&());
    if let Err(error) = publish_all(&ctx.recorder, &reference, events).await {
        tracing::warn!(watch = %watch_key(watch), %error, "publishing Events failed; the status still shows every transition");
    }
}

/// kube-runtime's error policy: Kubernetes API failures back off per watch.
pub fn error_policy<S: Sweeper>(
    watch: Arc<EdgeDeviceWatch>,
    error: &ReconcileError,
    ctx: Arc<Context<S>>,
) -> Action {
    let key = watch_key(&watch);
    let failures = ctx.backoff.record_failure(&key);
    tracing::warn!(watch = key, %error, failures, "reconcile failed");
    Action::requeue(retry_delay(&ctx, failures, error))
}
