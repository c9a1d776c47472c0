//! kube-runtime's entry points for the running operator: [`reconcile`] runs the pipeline
//! (prepare → sweep → decide) with the watch's Secret as credential source, publishes the
//! decision and turns it into a requeue; [`error_policy`] backs off Kubernetes API
//! failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;

use crate::api::EdgeDeviceWatch;

use super::context::Context;
use super::decide::{Decision, Outcome, Requeue};
use super::error::ReconcileError;
use super::key::WatchKey;
use super::pipeline::{Pass, run};
use super::prepare::secret::KubernetesSecrets;
use super::publish::Publisher;
use super::sweep::Sweeper;

/// Reconciles one watch. Errors are Kubernetes API failures only; everything else about
/// the watch is in its status.
pub async fn reconcile<S: Sweeper>(
    watch: Arc<EdgeDeviceWatch>,
    ctx: Arc<Context<S>>,
) -> Result<Action, ReconcileError> {
    if !(ctx.is_leader)() {
        return Ok(Action::requeue(ctx.follower_requeue));
    }
    let key = WatchKey::of(&watch, "");
    let started = Instant::now();
    let now = (ctx.clock)();
    let secrets = KubernetesSecrets::new(ctx.client.clone());
    let pass = Pass {
        watch: &watch,
        key: &key,
        sweeper: &ctx.sweeper,
        credentials: &secrets,
        now,
        limits: &ctx.limits,
    };
    let state = ctx.take_state(&key, watch.status.as_ref());
    let mut decision = run(pass, state).await;
    let publisher = Publisher {
        client: &ctx.client,
        recorder: &ctx.recorder,
        metrics: &ctx.metrics,
        now,
    };
    let published = publisher.publish(&watch, &key, &decision).await;
    if published.is_err() {
        decision.state.forget_success();
    }
    let Decision {
        requeue,
        state,
        outcome,
        ..
    } = decision;
    ctx.put_state(key.clone(), state);
    if let Some(observed) = observed(&outcome, published.is_ok()) {
        ctx.metrics
            .observe_reconcile(&key.namespace, &key.name, started.elapsed(), observed);
    }
    published?;
    match outcome {
        Outcome::Failed(error @ ReconcileError::Kubernetes(_)) => return Err(error),
        Outcome::Failed(error) => {
            tracing::warn!(watch = %key, error = %crate::errors::chain(&error), "reconcile failed");
        }
        Outcome::Swept | Outcome::Suspended => ctx.backoff.reset(&key),
        Outcome::NotDue => {}
    }
    Ok(match requeue {
        Requeue::After(delay) => Action::requeue(delay),
        Requeue::AwaitChange => Action::await_change(),
        Requeue::Retry { at_least } => {
            let failures = ctx.backoff.record_failure(&key);
            let delay = retry_delay(&ctx, failures);
            Action::requeue(at_least.map_or(delay, |least| least.max(delay)))
        }
    })
}

/// What the reconcile counts as in `edgewatch_reconcile_*` (a not-due one is none).
fn observed(outcome: &Outcome, published: bool) -> Option<Result<(), &'static str>> {
    match outcome {
        _ if !published => Some(Err("kubernetes")),
        Outcome::NotDue => None,
        Outcome::Failed(error) => Some(Err(error.metric_label())),
        Outcome::Swept | Outcome::Suspended => Some(Ok(())),
    }
}

fn retry_delay<S>(ctx: &Context<S>, failures: u32) -> Duration {
    ctx.backoff_policy
        .delay_with_jitter(failures, rand::random::<f64>())
}

/// kube-runtime's error policy: Kubernetes API failures back off per watch.
pub fn error_policy<S: Sweeper>(
    watch: Arc<EdgeDeviceWatch>,
    error: &ReconcileError,
    ctx: Arc<Context<S>>,
) -> Action {
    let key = WatchKey::of(&watch, "");
    let failures = ctx.backoff.record_failure(&key);
    tracing::warn!(watch = %key, error = %crate::errors::chain(error), failures, "reconcile failed");
    Action::requeue(retry_delay(&ctx, failures).max(error.minimum_delay().unwrap_or_default()))
}
