//! The reconcile pipeline every caller runs: `edgewatch run` (through
//! [`super::reconcile`]), `check` and `demo` (through [`super::local::LocalWatch`]).
//! Prepare → sweep → decide; only what surrounds it differs: where the credential comes
//! from, and whether the decision is published to Kubernetes or printed.

use jiff::Timestamp;

use crate::api::EdgeDeviceWatch;

use super::decide::{Attempt, Decision, Facts, decide};
use super::key::WatchKey;
use super::prepare::credentials::CredentialSource;
use super::prepare::{Prepared, Ready, prepare};
use super::state::WatchState;
use super::status::build::StatusLimits;
use super::sweep::{PreparedWatch, Sweeper};

/// One pass of the pipeline over one watch.
pub(crate) struct Pass<'a, S, C> {
    /// The watch as last seen (its status is the previous one).
    pub watch: &'a EdgeDeviceWatch,
    pub key: &'a WatchKey,
    pub sweeper: &'a S,
    pub credentials: &'a C,
    /// The instant the pass judges by.
    pub now: Timestamp,
    pub limits: &'a StatusLimits,
}

/// Runs prepare, sweep and decide; `state` is the watch's state before the pass, the
/// decision holds the state after it.
pub(crate) async fn run<S: Sweeper, C: CredentialSource>(
    pass: Pass<'_, S, C>,
    state: WatchState,
) -> Decision {
    let attempt = attempt(&pass, &state).await;
    let facts = Facts {
        generation: pass.watch.metadata.generation,
        host_name: pass.watch.spec.hub.host_name.as_deref(),
        previous: pass.watch.status.as_ref(),
        now: pass.now,
        limits: pass.limits,
    };
    decide(&facts, attempt, state)
}

async fn attempt<S: Sweeper, C: CredentialSource>(
    pass: &Pass<'_, S, C>,
    state: &WatchState,
) -> Attempt {
    let prepared = prepare(pass.watch, pass.key, state, pass.credentials, pass.now).await;
    let ready = match prepared {
        Err(error) => return Attempt::Failed(error.into()),
        Ok(Prepared::Suspended) => return Attempt::Suspended,
        Ok(Prepared::NotDue(remaining)) => return Attempt::NotDue(remaining),
        Ok(Prepared::Due(ready)) => ready,
    };
    let Ready {
        settings,
        credentials,
    } = *ready;
    let watch = PreparedWatch {
        key: pass.key,
        spec: &pass.watch.spec,
        settings: &settings,
        credentials: &credentials,
        now: pass.now,
    };
    match pass.sweeper.sweep(&watch, state).await {
        Ok(observations) => Attempt::Swept {
            observations,
            interval: settings.interval,
        },
        Err(failure) => Attempt::Failed(failure),
    }
}
