//! What every reconcile of the running operator shares: the Kubernetes client, the
//! Event recorder, the sweeper, leadership, backoff, limits, the clock, the metrics and
//! the in-memory state of each watch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kube::Client;
use kube::runtime::events::Recorder;

use crate::api::EdgeDeviceWatchStatus;
use crate::ops::metrics::Metrics;

use super::backoff::{BackoffBook, BackoffPolicy};
use super::key::WatchKey;
use super::state::WatchState;
use super::status::build::StatusLimits;
use super::sweep::Sweeper;

/// Everything reconciles share.
pub struct Context<S> {
    pub client: Client,
    pub recorder: Recorder,
    pub sweeper: S,
    /// Whether this replica may write; followers only requeue.
    pub is_leader: Box<dyn Fn() -> bool + Send + Sync>,
    pub(crate) backoff: BackoffBook,
    pub(crate) backoff_policy: BackoffPolicy,
    pub limits: StatusLimits,
    /// How soon a follower looks again whether it leads.
    pub follower_requeue: Duration,
    /// The time reconciles judge by (tests drive it).
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Where conditions, device gauges and reconcile outcomes are exported.
    pub metrics: Metrics,
    states: Mutex<HashMap<WatchKey, WatchState>>,
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
            metrics: Metrics::default(),
            states: Mutex::new(HashMap::new()),
        }
    }

    /// The state of a watch, taken out for one reconcile (seeded from its status the
    /// first time this process sees it).
    pub(crate) fn take_state(
        &self,
        key: &WatchKey,
        status: Option<&EdgeDeviceWatchStatus>,
    ) -> WatchState {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states
            .remove(key)
            .unwrap_or_else(|| WatchState::seed(status))
    }

    /// Puts a watch's state back after its reconcile.
    pub(crate) fn put_state(&self, key: WatchKey, state: WatchState) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, state);
    }

    /// Failed reconciles of `key` in a row (reset by the first success).
    pub fn consecutive_failures(&self, key: &WatchKey) -> u32 {
        self.backoff.failures(key)
    }

    /// Forgets the state of watches that no longer exist (`live`: keys of existing ones).
    pub fn retain_watches(&self, live: &HashSet<WatchKey>) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<WatchKey> = states
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            states.remove(&key);
            self.backoff.reset(&key);
            self.metrics.forget_watch(&key.namespace, &key.name);
        }
        drop(states);
        self.sweeper.retain_watches(live);
    }
}
