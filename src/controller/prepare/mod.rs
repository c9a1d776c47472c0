//! Step 1, prepare: the spec parsed into settings, whether the watch is to be swept now,
//! and the hub's credential (read only when it is).

pub(crate) mod credentials;
pub(crate) mod secret;
pub(crate) mod settings;

use std::time::Duration;

use jiff::Timestamp;

use crate::api::EdgeDeviceWatch;

use super::error::ReconcileError;
use super::key::WatchKey;
use super::state::WatchState;
use super::state::pings::age;
use credentials::{CredentialSource, HubCredentials};
use settings::{InvalidSpec, WatchSettings};

/// What the prepare step found.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// `spec.suspend`: IoT Hub is not polled.
    Suspended,
    /// A sweep of this generation succeeded less than an interval ago (this reconcile was
    /// triggered by the watch's own status write): the rest of the interval.
    NotDue(Duration),
    /// Ready to sweep.
    Due(Box<Ready>),
}

/// A watch ready to be swept: its settings and its hub's credential.
#[derive(Debug)]
pub(crate) struct Ready {
    pub settings: WatchSettings,
    pub credentials: HubCredentials,
}

/// Prepares `watch` for a sweep at `now`.
pub(crate) async fn prepare<C: CredentialSource>(
    watch: &EdgeDeviceWatch,
    key: &WatchKey,
    state: &WatchState,
    credentials: &C,
    now: Timestamp,
) -> Result<Prepared, ReconcileError> {
    if key.namespace.is_empty() {
        return Err(InvalidSpec::one(
            "metadata.namespace",
            "an EdgeDeviceWatch must be namespaced",
        )
        .into());
    }
    let settings = WatchSettings::from_spec(&watch.spec)?;
    if settings.suspend {
        return Ok(Prepared::Suspended);
    }
    if let Some(remaining) = not_due_for(state, &settings, watch.metadata.generation, now) {
        return Ok(Prepared::NotDue(remaining));
    }
    let credentials = credentials
        .credentials(&key.namespace, &settings.auth)
        .await?;
    Ok(Prepared::Due(Box::new(Ready {
        settings,
        credentials,
    })))
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
        .then(|| settings.interval.saturating_sub(elapsed))
}
