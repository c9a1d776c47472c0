//! One reconcile of one `EdgeDeviceWatch` in the running operator: kube-runtime's entry
//! point. It sweeps the watch's devices (through a [`Sweeper`]), publishes the status if
//! it changed, announces transitions and requeues after the interval.
//!
//! Failures that concern the watch (bad spec, Secret, credentials, hub, throttling) are
//! handled here: they become status and a backed-off requeue. Only Kubernetes API errors
//! reach kube-runtime's `error_policy`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};

use crate::api::{EdgeDeviceWatch, EdgeDeviceWatchStatus};

use crate::controller::context::Context;
use crate::controller::decide::events::plan_events;
use crate::controller::error::ReconcileError;
use crate::controller::key::WatchKey;
use crate::controller::prepare::credentials::resolve_credentials;
use crate::controller::prepare::settings::{InvalidSpec, WatchSettings};
use crate::controller::publish::events::publish_all;
use crate::controller::publish::metrics::{export_devices, export_status};
use crate::controller::publish::status::write_if_changed;
use crate::controller::state::WatchState;
use crate::controller::state::pings::age;
use crate::controller::status::build::{Sweep, build_status};
use crate::controller::status::conditions::append_to_ready;
use crate::controller::status::outcome::{status_after_failure, status_when_suspended};
use crate::controller::sweep::{SweepOutput, SweepRequest, Sweeper};

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
    let key = WatchKey::of(&watch, "");
    let now = (ctx.clock)();
    let mut state = ctx.take_state(&key, watch.status.as_ref());
    let started = Instant::now();
    let result = reconcile_with_state(&watch, &ctx, &mut state, &key, now).await;
    if let Err(error) = &result {
        let namespace = watch.namespace().unwrap_or_default();
        ctx.metrics.observe_reconcile(
            &namespace,
            &watch.name_any(),
            started.elapsed(),
            Err(error.metric_label()),
        );
    }
    ctx.put_state(key, state);
    result
}

async fn reconcile_with_state<S: Sweeper>(
    watch: &EdgeDeviceWatch,
    ctx: &Context<S>,
    state: &mut WatchState,
    key: &WatchKey,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let namespace = watch.namespace().unwrap_or_default();
    let api: Api<EdgeDeviceWatch> = Api::namespaced(ctx.client.clone(), &namespace);
    let previous = watch.status.as_ref();
    let generation = watch.meta().generation;
    match attempt(watch, ctx, state, key, now).await {
        Ok(Attempt::Swept(output, interval)) => {
            let sweep = Sweep {
                generation,
                hub: &output.hub,
                reports: &output.reports,
                memory: state.memory(),
            };
            let mut status = build_status(&sweep, previous, now, &ctx.limits);
            if output.quota_time > interval {
                append_to_ready(
                    &mut status.conditions,
                    &interval_too_short(&output, interval),
                );
            }
            let events = plan_events(&state.faults, &output.reports);
            publish(ctx, &api, watch, previous, &status).await?;
            export_devices(&ctx.metrics, &namespace, &watch.name_any(), &output.reports);
            state.remember(&output.reports);
            state.last_success = Some((now, generation));
            announce(ctx, watch, &events).await;
            ctx.backoff.reset(key);
            observe(ctx, watch, started, Ok(()));
            Ok(Action::requeue(interval))
        }
        Ok(Attempt::NotDue(remaining)) => Ok(Action::requeue(remaining)),
        Ok(Attempt::Suspended) => {
            let status = status_when_suspended(previous, generation, now);
            publish(ctx, &api, watch, previous, &status).await?;
            state.last_success = None;
            ctx.backoff.reset(key);
            observe(ctx, watch, started, Ok(()));
            Ok(Action::await_change())
        }
        Err(ReconcileError::Kubernetes(error)) => Err(ReconcileError::Kubernetes(error)),
        Err(error) => {
            state.last_success = None;
            let failures = ctx.backoff.record_failure(key);
            tracing::warn!(watch = %key, %error, failures, "reconcile failed");
            if let Some(mut status) = status_after_failure(previous, &error, generation, now) {
                if status.hub.is_none() {
                    status.hub.clone_from(&watch.spec.hub.host_name);
                }
                publish(ctx, &api, watch, previous, &status).await?;
            }
            observe(ctx, watch, started, Err(error.metric_label()));
            Ok(Action::requeue(retry_delay(ctx, failures, &error)))
        }
    }
}

async fn attempt<S: Sweeper>(
    watch: &EdgeDeviceWatch,
    ctx: &Context<S>,
    state: &mut WatchState,
    key: &WatchKey,
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
    let credentials = resolve_credentials(&ctx.client, &key.namespace, &watch.spec.hub).await?;
    let request = SweepRequest {
        key,
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

/// Writes the status when it changed meaningfully, and mirrors it into the metrics.
async fn publish<S>(
    ctx: &Context<S>,
    api: &Api<EdgeDeviceWatch>,
    watch: &EdgeDeviceWatch,
    previous: Option<&EdgeDeviceWatchStatus>,
    status: &EdgeDeviceWatchStatus,
) -> Result<(), ReconcileError> {
    let namespace = watch.namespace().unwrap_or_default();
    let name = watch.name_any();
    if write_if_changed(api, &name, previous, status).await? {
        ctx.metrics.status_written(&namespace, &name);
    }
    export_status(&ctx.metrics, &namespace, &name, status);
    Ok(())
}

fn observe<S>(
    ctx: &Context<S>,
    watch: &EdgeDeviceWatch,
    started: Instant,
    outcome: Result<(), &'static str>,
) {
    let namespace = watch.namespace().unwrap_or_default();
    ctx.metrics
        .observe_reconcile(&namespace, &watch.name_any(), started.elapsed(), outcome);
}

/// Says that the interval asks for more than the hub's quota allows.
fn interval_too_short(output: &SweepOutput, interval: Duration) -> String {
    format!(
        "interval {}s is shorter than the ~{}s of IoT Hub read quota one sweep of {} devices needs; sweeps run late",
        interval.as_secs(),
        output.quota_time.as_secs().max(1),
        output.reports.len()
    )
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
    events: &[crate::controller::decide::events::PlannedEvent],
) {
    if events.is_empty() {
        return;
    }
    let reference = watch.object_ref(&());
    if let Err(error) = publish_all(&ctx.recorder, &reference, events).await {
        tracing::warn!(watch = %WatchKey::of(watch, ""), %error, "publishing Events failed; the status still shows every transition");
    }
}

/// kube-runtime's error policy: Kubernetes API failures back off per watch.
pub fn error_policy<S: Sweeper>(
    watch: Arc<EdgeDeviceWatch>,
    error: &ReconcileError,
    ctx: Arc<Context<S>>,
) -> Action {
    let key = WatchKey::of(&watch, "");
    let failures = ctx.backoff.record_failure(&key);
    tracing::warn!(watch = %key, %error, failures, "reconcile failed");
    Action::requeue(retry_delay(&ctx, failures, error))
}
