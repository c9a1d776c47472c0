//! Step 3, decide: pure. The previous status, the outcome of prepare and sweep (or the
//! failure that stopped them), the watch's state and the time become the new status, the
//! Events to announce, when to look again and the next state. It is the one place the
//! watch's state changes. `edgewatch run`, `check` and `demo` all decide here, so what
//! they show cannot drift apart.

pub(crate) mod events;

#[cfg(test)]
mod tests;

use std::time::Duration;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatchStatus;
use crate::health::report::{DeviceReport, Reason};

use super::error::ReconcileError;
use super::state::WatchState;
use super::status::build::{StatusLimits, Sweep, build_status};
use super::status::conditions::{STALLED, append_to_ready, truncate};
use super::status::outcome::{status_after_failure, status_when_suspended};
use super::sweep::{Observations, SweepFailure, Verdict};
use events::{EventSeverity, MAX_NOTE_CHARS, PlannedEvent, plan_events};

/// How far a reconcile got before deciding.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// `spec.suspend`: nothing was polled.
    Suspended,
    /// Swept less than an interval ago: the rest of the interval.
    NotDue(Duration),
    /// A sweep completed, under the watch's `interval`.
    Swept {
        observations: Observations,
        interval: Duration,
    },
    /// Prepare or sweep failed.
    Failed(SweepFailure),
}

/// What decide knows about the watch besides the attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.hub.hostName`: the hub shown when a stalled watch never swept.
    pub host_name: Option<&'a str>,
    /// The status as it is now.
    pub previous: Option<&'a EdgeDeviceWatchStatus>,
    pub now: Timestamp,
    pub limits: &'a StatusLimits,
}

/// When to look at the watch again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requeue {
    /// After this long (the interval, what is left of it, or until just after the hub's
    /// daily quota resets).
    After(Duration),
    /// Only when the watch changes (suspended).
    AwaitChange,
    /// After a backoff for a failure, at least this long when the failure asks for it.
    Retry { at_least: Option<Duration> },
}

/// What the attempt amounted to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Swept,
    Suspended,
    NotDue,
    Failed(ReconcileError),
}

/// Everything decided.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The status to publish; `None` leaves the current one (not due, transient failure).
    pub status: Option<EdgeDeviceWatchStatus>,
    /// Transitions to announce as Events.
    pub events: Vec<PlannedEvent>,
    pub requeue: Requeue,
    /// The watch's state after this reconcile.
    pub state: WatchState,
    pub outcome: Outcome,
}

/// Decides what `attempt` means for the watch.
pub(crate) fn decide(facts: &Facts<'_>, attempt: Attempt, state: WatchState) -> Decision {
    match attempt {
        Attempt::Swept {
            observations,
            interval,
        } => swept(facts, observations, interval, state),
        Attempt::Suspended => suspended(facts, state),
        Attempt::NotDue(remaining) => Decision {
            status: None,
            events: Vec::new(),
            requeue: Requeue::After(remaining),
            state,
            outcome: Outcome::NotDue,
        },
        Attempt::Failed(failure) => failed(facts, failure, state),
    }
}

fn swept(
    facts: &Facts<'_>,
    observations: Observations,
    interval: Duration,
    mut state: WatchState,
) -> Decision {
    let Observations {
        hub,
        devices,
        pings,
        verdicts,
        cost,
    } = observations;
    state.retain_devices(&devices);
    state.record_pings(pings);
    let reports: Vec<DeviceReport> = verdicts
        .into_iter()
        .map(|Verdict { report, memory }| {
            if let Some(memory) = memory {
                state.restarts.insert(report.device_id.clone(), memory);
            }
            report
        })
        .collect();
    let sweep = Sweep {
        generation: facts.generation,
        hub: &hub,
        reports: &reports,
        memory: state.memory(),
    };
    let mut status = build_status(&sweep, facts.previous, facts.now, facts.limits);
    if cost.quota_time > interval {
        append_to_ready(
            &mut status.conditions,
            &interval_too_short(interval, cost.quota_time, reports.len()),
        );
    }
    let events = plan_events(&state.faults, &reports);
    state.remember(&reports);
    state.last_success = Some((facts.now, facts.generation));
    Decision {
        status: Some(status),
        events,
        requeue: Requeue::After(interval),
        state,
        outcome: Outcome::Swept,
    }
}

fn suspended(facts: &Facts<'_>, mut state: WatchState) -> Decision {
    state.last_success = None;
    Decision {
        status: Some(status_when_suspended(
            facts.previous,
            facts.generation,
            facts.now,
        )),
        events: Vec::new(),
        requeue: Requeue::AwaitChange,
        state,
        outcome: Outcome::Suspended,
    }
}

fn failed(facts: &Facts<'_>, failure: SweepFailure, mut state: WatchState) -> Decision {
    let SweepFailure { error, pings } = failure;
    state.record_pings(pings);
    state.last_success = None;
    let status = status_after_failure(facts.previous, &error, facts.generation, facts.now).map(
        |mut status| {
            if status.hub.is_none() {
                status.hub = facts.host_name.map(str::to_owned);
            }
            status
        },
    );
    let events = error
        .stall_reason()
        .and_then(|reason| stall_event(facts.previous, status.as_ref(), reason))
        .into_iter()
        .collect();
    Decision {
        status,
        events,
        requeue: requeue_after(&error),
        state,
        outcome: Outcome::Failed(error),
    }
}

/// How long after the hub's 00:00 UTC reset a watch stalled on the daily quota looks
/// again: a clock a little ahead of the hub's must not ask before the hub has reset, or
/// the refusal would block billable calls for another day.
pub(crate) const QUOTA_RESET_MARGIN: Duration = Duration::from_secs(10);

/// A used-up daily quota waits for its reset, not for a backoff that would be either a
/// tight loop of refusals or a late start; every other failure backs off.
fn requeue_after(error: &ReconcileError) -> Requeue {
    match error.quota_resets_in() {
        Some(wait) => Requeue::After(wait + QUOTA_RESET_MARGIN),
        None => Requeue::Retry {
            at_least: error.minimum_delay(),
        },
    }
}

/// A Warning when the watch becomes stalled, or stalled for another reason. A stall that
/// persists is announced once, even when its message changes (IoT Hub's tracking id does
/// on every attempt).
fn stall_event(
    previous: Option<&EdgeDeviceWatchStatus>,
    status: Option<&EdgeDeviceWatchStatus>,
    reason: Reason,
) -> Option<PlannedEvent> {
    let now = status?.condition(STALLED)?;
    let before = previous.and_then(|p| p.condition(STALLED));
    if before.is_some_and(|b| b.reason == now.reason) {
        return None;
    }
    Some(PlannedEvent {
        severity: EventSeverity::Warning,
        reason,
        action: "Stalled",
        note: truncate(&now.message, MAX_NOTE_CHARS),
        device: None,
        module: None,
    })
}

/// Says that the interval asks for more than the hub's quota allows.
fn interval_too_short(interval: Duration, quota_time: Duration, devices: usize) -> String {
    format!(
        "interval {}s is shorter than the ~{}s of IoT Hub read quota one sweep of {devices} devices needs; sweeps run late",
        interval.as_secs(),
        quota_time.as_secs().max(1),
    )
}
