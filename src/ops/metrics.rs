//! The operator's Prometheus registry: every series listed in `docs/metrics.md`.
//!
//! The controller and the IoT Hub client report what they see through the methods of
//! [`Metrics`]; the ops server renders the registry on `/metrics`. Alert rules in the Helm
//! chart are written against these names, and `tests/chart.rs` checks them against what
//! [`Metrics::encode`] really produces, so a rename here without the chart fails CI.
//!
//! Series of a watch or device that no longer exists are removed ([`Metrics::forget_watch`],
//! [`Metrics::retain_devices`]); otherwise a deleted watch would keep firing "not Ready"
//! alerts forever.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::health::report::ConditionStatus;
use crate::iothub::{Operation, RequestObserver};

/// Condition statuses in the order they are exported; exactly one of them is 1.
const STATUSES: [ConditionStatus; 3] = [
    ConditionStatus::True,
    ConditionStatus::False,
    ConditionStatus::Unknown,
];

/// Labels of per-watch series that need nothing more.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    namespace: String,
    watch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    namespace: String,
    watch: String,
    r#type: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceCountLabels {
    namespace: String,
    watch: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceLabels {
    namespace: String,
    watch: String,
    device: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeviceReadyLabels {
    namespace: String,
    watch: String,
    device: String,
    status: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionReasonLabels {
    namespace: String,
    watch: String,
    r#type: String,
    status: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModuleLabels {
    namespace: String,
    watch: String,
    device: String,
    module: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileErrorLabels {
    namespace: String,
    watch: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HubRequestLabels {
    hub: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HubOperationLabels {
    hub: String,
    operation: String,
}

/// Builds histograms with fixed buckets inside a [`Family`].
#[derive(Clone)]
struct Buckets(Vec<f64>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Reconciles of large watches are bound by the hub's quota and can take minutes:
/// 10 ms up to about 11 minutes.
fn reconcile_buckets() -> Buckets {
    Buckets(exponential_buckets(0.01, 2.0, 17).collect())
}

/// One IoT Hub call, including slow direct methods: 5 ms up to about 20 s.
fn iothub_buckets() -> Buckets {
    Buckets(exponential_buckets(0.005, 2.0, 13).collect())
}

/// Device counts of a watch, as shown in its printer columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchDeviceCounts {
    pub total: u64,
    pub ready: u64,
    pub unreachable: u64,
    pub unhealthy: u64,
    pub drifted: u64,
    pub stale: u64,
}

impl WatchDeviceCounts {
    fn by_state(&self) -> [(&'static str, u64); 6] {
        [
            ("total", self.total),
            ("ready", self.ready),
            ("unreachable", self.unreachable),
            ("unhealthy", self.unhealthy),
            ("drifted", self.drifted),
            ("stale", self.stale),
        ]
    }
}

/// The `Ready` status and reason a device's transition series is published under, and
/// since when that status holds (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReadySince {
    status: ConditionStatus,
    reason: String,
    since: i64,
}

/// What the registry remembers about one watch so its series can be removed later
/// (`prometheus-client` families cannot be filtered by a label). Every method holds the
/// index lock while it touches a watch's series, so index and series always agree.
#[derive(Default)]
struct WatchSeries {
    condition_types: BTreeSet<String>,
    /// condition type → the labels of its transition series.
    condition_reasons: BTreeMap<String, ConditionReasonLabels>,
    error_kinds: BTreeSet<String>,
    has_counts: bool,
    has_interval: bool,
    /// device id → module names with series.
    devices: BTreeMap<String, BTreeSet<String>>,
    /// device id → its `Ready` transition series.
    ready_since: BTreeMap<String, ReadySince>,
}

struct Families {
    watch_condition: Family<ConditionLabels, Gauge>,
    watch_devices: Family<DeviceCountLabels, Gauge>,
    device_reachable: Family<DeviceLabels, Gauge>,
    device_ready: Family<DeviceLabels, Gauge>,
    module_running: Family<ModuleLabels, Gauge>,
    module_restarts: Family<ModuleLabels, Gauge>,
    device_ready_transition: Family<DeviceReadyLabels, Gauge>,
    watch_condition_transition: Family<ConditionReasonLabels, Gauge>,
    watch_interval: Family<WatchLabels, Gauge>,
    reconcile_duration: Family<WatchLabels, Histogram, Buckets>,
    reconcile_errors: Family<ReconcileErrorLabels, Counter>,
    status_writes: Family<WatchLabels, Counter>,
    iothub_requests: Family<HubRequestLabels, Counter>,
    iothub_request_duration: Family<HubOperationLabels, Histogram, Buckets>,
    iothub_throttled: Family<HubOperationLabels, Counter>,
    iothub_retries: Family<HubOperationLabels, Counter>,
    iothub_billed: Family<HubOperationLabels, Counter>,
    leader: Gauge,
    process_start: Gauge,
}

impl Families {
    fn new() -> Self {
        Families {
            watch_condition: Family::default(),
            watch_devices: Family::default(),
            device_reachable: Family::default(),
            device_ready: Family::default(),
            module_running: Family::default(),
            module_restarts: Family::default(),
            device_ready_transition: Family::default(),
            watch_condition_transition: Family::default(),
            watch_interval: Family::default(),
            reconcile_duration: Family::new_with_constructor(reconcile_buckets()),
            reconcile_errors: Family::default(),
            status_writes: Family::default(),
            iothub_requests: Family::default(),
            iothub_request_duration: Family::new_with_constructor(iothub_buckets()),
            iothub_throttled: Family::default(),
            iothub_retries: Family::default(),
            iothub_billed: Family::default(),
            leader: Gauge::default(),
            process_start: Gauge::default(),
        }
    }

    /// Registers every family under the names of `docs/metrics.md`.
    fn register(&self, registry: &mut Registry, module_metrics: bool) {
        registry.register(
            "edgewatch_watch_condition",
            "1 for the watch condition's current status, 0 for the other two",
            self.watch_condition.clone(),
        );
        registry.register(
            "edgewatch_watch_devices",
            "Devices of a watch by state (total, ready, unreachable, unhealthy, drifted, stale)",
            self.watch_devices.clone(),
        );
        registry.register(
            "edgewatch_device_reachable",
            "Whether $edgeAgent answered the ping: 1 True, 0 False, -1 Unknown",
            self.device_reachable.clone(),
        );
        registry.register(
            "edgewatch_device_ready",
            "Whether the device is Ready: 1 True, 0 False, -1 Unknown",
            self.device_ready.clone(),
        );
        registry.register_with_unit(
            "edgewatch_device_ready_last_transition_timestamp",
            "When the device's Ready status last changed (Unix time), labelled with the status and reason it has now",
            Unit::Seconds,
            self.device_ready_transition.clone(),
        );
        registry.register_with_unit(
            "edgewatch_watch_condition_last_transition_timestamp",
            "lastTransitionTime of the watch condition (Unix time), labelled with its status and reason",
            Unit::Seconds,
            self.watch_condition_transition.clone(),
        );
        registry.register_with_unit(
            "edgewatch_watch_interval",
            "spec.interval of the watch: how often its devices are swept",
            Unit::Seconds,
            self.watch_interval.clone(),
        );
        if module_metrics {
            registry.register(
                "edgewatch_module_running",
                "1 when the module is in the state its deployment asks for, else 0",
                self.module_running.clone(),
            );
            registry.register(
                "edgewatch_module_restarts",
                "restartCount of the module as $edgeAgent reports it",
                self.module_restarts.clone(),
            );
        }
        registry.register_with_unit(
            "edgewatch_reconcile_duration",
            "Wall time of one reconcile",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register(
            "edgewatch_reconcile_errors",
            "Reconciles that failed, by error kind",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "edgewatch_status_writes",
            "Status patches sent (an unchanged status is never written)",
            self.status_writes.clone(),
        );
        registry.register(
            "edgewatch_iothub_requests",
            "IoT Hub calls by operation and outcome",
            self.iothub_requests.clone(),
        );
        registry.register_with_unit(
            "edgewatch_iothub_request_duration",
            "Latency of one IoT Hub call attempt",
            Unit::Seconds,
            self.iothub_request_duration.clone(),
        );
        registry.register(
            "edgewatch_iothub_throttled",
            "429 answers received from IoT Hub",
            self.iothub_throttled.clone(),
        );
        registry.register(
            "edgewatch_iothub_retries",
            "IoT Hub call attempts repeated after a transient failure",
            self.iothub_retries.clone(),
        );
        registry.register(
            "edgewatch_iothub_billed_messages",
            "Messages of the IoT hub's daily quota that answered calls cost, by the standard-tier billing rules",
            self.iothub_billed.clone(),
        );
        registry.register(
            "edgewatch_leader",
            "1 while this replica holds the leader Lease",
            self.leader.clone(),
        );
        registry.register_with_unit(
            "edgewatch_process_start_time",
            "When this operator process started (Unix time)",
            Unit::Seconds,
            self.process_start.clone(),
        );
    }
}

struct Inner {
    registry: Registry,
    families: Families,
    module_metrics: bool,
    watches: Mutex<HashMap<WatchLabels, WatchSeries>>,
}

/// The operator's metrics. Cheap to clone; every clone updates the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("module_metrics", &self.inner.module_metrics)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(true)
    }
}

fn watch_labels(namespace: &str, watch: &str) -> WatchLabels {
    WatchLabels {
        namespace: namespace.to_owned(),
        watch: watch.to_owned(),
    }
}

fn device_labels(watch: &WatchLabels, device: &str) -> DeviceLabels {
    DeviceLabels {
        namespace: watch.namespace.clone(),
        watch: watch.watch.clone(),
        device: device.to_owned(),
    }
}

fn module_labels(watch: &WatchLabels, device: &str, module: &str) -> ModuleLabels {
    ModuleLabels {
        namespace: watch.namespace.clone(),
        watch: watch.watch.clone(),
        device: device.to_owned(),
        module: module.to_owned(),
    }
}

fn condition_labels(watch: &WatchLabels, type_: &str, status: ConditionStatus) -> ConditionLabels {
    ConditionLabels {
        namespace: watch.namespace.clone(),
        watch: watch.watch.clone(),
        r#type: type_.to_owned(),
        status: status.as_str().to_owned(),
    }
}

fn hub_operation(hub: &str, operation: &str) -> HubOperationLabels {
    HubOperationLabels {
        hub: hub.to_owned(),
        operation: operation.to_owned(),
    }
}

fn ready_labels(watch: &WatchLabels, device: &str, ready: &ReadySince) -> DeviceReadyLabels {
    DeviceReadyLabels {
        namespace: watch.namespace.clone(),
        watch: watch.watch.clone(),
        device: device.to_owned(),
        status: ready.status.as_str().to_owned(),
        reason: ready.reason.clone(),
    }
}

/// The tri-state gauge value of `docs/metrics.md`: 1 True, 0 False, -1 Unknown.
fn tri_state(status: ConditionStatus) -> i64 {
    match status {
        ConditionStatus::True => 1,
        ConditionStatus::False => 0,
        ConditionStatus::Unknown => -1,
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// A registry with every family registered. With `module_metrics` false the
    /// per-module families are neither registered nor filled (`--no-module-metrics`,
    /// for fleets where devices × modules would be too many series).
    pub fn new(module_metrics: bool) -> Self {
        let families = Families::new();
        families.process_start.set(Timestamp::now().as_second());
        let mut registry = Registry::default();
        families.register(&mut registry, module_metrics);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                module_metrics,
                watches: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The index is only bookkeeping; a panic elsewhere must not stop metrics.
    fn watches(&self) -> MutexGuard<'_, HashMap<WatchLabels, WatchSeries>> {
        self.inner
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn families(&self) -> &Families {
        &self.inner.families
    }

    /// Publishes the watch's conditions: for each `(type, status)` the matching status
    /// series is 1 and the other two are 0. Types published before but missing now (for
    /// example `Stalled` once the watch can progress again) are removed.
    pub fn set_watch_conditions(
        &self,
        namespace: &str,
        watch: &str,
        conditions: &[(&str, ConditionStatus)],
    ) {
        let key = watch_labels(namespace, watch);
        let family = &self.families().watch_condition;
        let mut watches = self.watches();
        let series = watches.entry(key.clone()).or_default();
        let current: BTreeSet<String> = conditions.iter().map(|(t, _)| (*t).to_owned()).collect();
        for gone in series.condition_types.difference(&current) {
            for status in STATUSES {
                family.remove(&condition_labels(&key, gone, status));
            }
        }
        for (type_, status) in conditions {
            for candidate in STATUSES {
                let value = i64::from(candidate == *status);
                family
                    .get_or_create(&condition_labels(&key, type_, candidate))
                    .set(value);
            }
        }
        series.condition_types = current;
    }

    /// Publishes each watch condition's `lastTransitionTime` under its current status and
    /// reason (`edgewatch_watch_condition_last_transition_timestamp_seconds`), one series
    /// per type; a type that is gone, or whose status or reason changed, loses its old
    /// series.
    pub fn set_watch_condition_transitions(
        &self,
        namespace: &str,
        watch: &str,
        conditions: &[(&str, ConditionStatus, &str, Timestamp)],
    ) {
        let key = watch_labels(namespace, watch);
        let family = &self.families().watch_condition_transition;
        let mut watches = self.watches();
        let series = watches.entry(key.clone()).or_default();
        let mut current = BTreeMap::new();
        for (type_, status, reason, at) in conditions {
            let labels = ConditionReasonLabels {
                namespace: key.namespace.clone(),
                watch: key.watch.clone(),
                r#type: (*type_).to_owned(),
                status: status.as_str().to_owned(),
                reason: (*reason).to_owned(),
            };
            family.get_or_create(&labels).set(at.as_second());
            current.insert((*type_).to_owned(), labels);
        }
        for (type_, labels) in &series.condition_reasons {
            if current.get(type_) != Some(labels) {
                family.remove(labels);
            }
        }
        series.condition_reasons = current;
    }

    /// Publishes the watch's `spec.interval` (`edgewatch_watch_interval_seconds`).
    pub fn set_watch_interval(&self, namespace: &str, watch: &str, interval: Duration) {
        let key = watch_labels(namespace, watch);
        let mut watches = self.watches();
        self.families()
            .watch_interval
            .get_or_create(&key)
            .set(saturating_i64(interval.as_secs()));
        watches.entry(key).or_default().has_interval = true;
    }

    /// Publishes the watch's device counts (`edgewatch_watch_devices`).
    pub fn set_watch_device_counts(&self, namespace: &str, watch: &str, counts: WatchDeviceCounts) {
        let key = watch_labels(namespace, watch);
        let mut watches = self.watches();
        for (state, count) in counts.by_state() {
            let labels = DeviceCountLabels {
                namespace: key.namespace.clone(),
                watch: key.watch.clone(),
                state: state.to_owned(),
            };
            self.families()
                .watch_devices
                .get_or_create(&labels)
                .set(saturating_i64(count));
        }
        watches.entry(key).or_default().has_counts = true;
    }

    /// Publishes one device's `Reachable` and `Ready` as 1/0/-1.
    pub fn set_device(
        &self,
        namespace: &str,
        watch: &str,
        device: &str,
        reachable: ConditionStatus,
        ready: ConditionStatus,
    ) {
        let key = watch_labels(namespace, watch);
        let labels = device_labels(&key, device);
        let families = self.families();
        let mut watches = self.watches();
        families
            .device_reachable
            .get_or_create(&labels)
            .set(tri_state(reachable));
        families
            .device_ready
            .get_or_create(&labels)
            .set(tri_state(ready));
        watches
            .entry(key)
            .or_default()
            .devices
            .entry(device.to_owned())
            .or_default();
    }

    /// Publishes since when the device's `Ready` condition has its current status
    /// (`edgewatch_device_ready_last_transition_timestamp_seconds`, labelled with status
    /// and reason): `observed_at` when the status differs from the one published before
    /// (or none was), otherwise the earlier time, kept while only the reason changes.
    /// Devices carry no transition time in the status, so the time is that of the first
    /// observation by this process: after a restart or a change of leader it starts again.
    pub fn set_device_ready_transition(
        &self,
        namespace: &str,
        watch: &str,
        device: &str,
        status: ConditionStatus,
        reason: &str,
        observed_at: Timestamp,
    ) {
        let key = watch_labels(namespace, watch);
        let family = &self.families().device_ready_transition;
        let mut watches = self.watches();
        let known = watches.entry(key.clone()).or_default();
        let since = match known.ready_since.get(device) {
            Some(before) if before.status == status => before.since,
            _ => observed_at.as_second(),
        };
        let now = ReadySince {
            status,
            reason: reason.to_owned(),
            since,
        };
        if let Some(before) = known.ready_since.get(device)
            && *before != now
        {
            family.remove(&ready_labels(&key, device, before));
        }
        family
            .get_or_create(&ready_labels(&key, device, &now))
            .set(since);
        known.ready_since.insert(device.to_owned(), now);
    }

    /// Publishes one module's state; does nothing when per-module metrics are off.
    pub fn set_module(
        &self,
        namespace: &str,
        watch: &str,
        device: &str,
        module: &str,
        running: bool,
        restarts: i64,
    ) {
        if !self.inner.module_metrics {
            return;
        }
        let key = watch_labels(namespace, watch);
        let labels = module_labels(&key, device, module);
        let families = self.families();
        let mut watches = self.watches();
        families
            .module_running
            .get_or_create(&labels)
            .set(i64::from(running));
        families
            .module_restarts
            .get_or_create(&labels)
            .set(restarts);
        watches
            .entry(key)
            .or_default()
            .devices
            .entry(device.to_owned())
            .or_default()
            .insert(module.to_owned());
    }

    /// Removes the series of every device of the watch that is not in `current`, for a
    /// controller that knows the device set but not which devices just left it.
    pub fn retain_devices<'a>(
        &self,
        namespace: &str,
        watch: &str,
        current: impl IntoIterator<Item = &'a str>,
    ) {
        let key = watch_labels(namespace, watch);
        let keep: BTreeSet<&str> = current.into_iter().collect();
        let mut watches = self.watches();
        let Some(series) = watches.get_mut(&key) else {
            return;
        };
        series.devices.retain(|device, modules| {
            let stays = keep.contains(device.as_str());
            if !stays {
                self.remove_device_series(&key, device, modules);
            }
            stays
        });
        let transitions = &self.families().device_ready_transition;
        series.ready_since.retain(|device, ready| {
            let stays = keep.contains(device.as_str());
            if !stays {
                transitions.remove(&ready_labels(&key, device, ready));
            }
            stays
        });
    }

    /// Removes every series of the watch (the `EdgeDeviceWatch` was deleted).
    pub fn forget_watch(&self, namespace: &str, watch: &str) {
        let key = watch_labels(namespace, watch);
        let mut watches = self.watches();
        let Some(series) = watches.remove(&key) else {
            return;
        };
        let families = self.families();
        for type_ in &series.condition_types {
            for status in STATUSES {
                families
                    .watch_condition
                    .remove(&condition_labels(&key, type_, status));
            }
        }
        if series.has_counts {
            for (state, _) in WatchDeviceCounts::default().by_state() {
                families.watch_devices.remove(&DeviceCountLabels {
                    namespace: key.namespace.clone(),
                    watch: key.watch.clone(),
                    state: state.to_owned(),
                });
            }
        }
        for error in &series.error_kinds {
            families.reconcile_errors.remove(&ReconcileErrorLabels {
                namespace: key.namespace.clone(),
                watch: key.watch.clone(),
                error: error.clone(),
            });
        }
        for labels in series.condition_reasons.values() {
            families.watch_condition_transition.remove(labels);
        }
        if series.has_interval {
            families.watch_interval.remove(&key);
        }
        families.reconcile_duration.remove(&key);
        families.status_writes.remove(&key);
        for (device, modules) in &series.devices {
            self.remove_device_series(&key, device, modules);
        }
        for (device, ready) in &series.ready_since {
            families
                .device_ready_transition
                .remove(&ready_labels(&key, device, ready));
        }
    }

    fn remove_device_series(&self, key: &WatchLabels, device: &str, modules: &BTreeSet<String>) {
        let labels = device_labels(key, device);
        self.families().device_reachable.remove(&labels);
        self.families().device_ready.remove(&labels);
        for module in modules {
            self.remove_module_series(key, device, module);
        }
    }

    fn remove_module_series(&self, key: &WatchLabels, device: &str, module: &str) {
        let labels = module_labels(key, device, module);
        self.families().module_running.remove(&labels);
        self.families().module_restarts.remove(&labels);
    }

    /// Records one reconcile: its wall time, and on failure its error kind
    /// (`secret_not_found`, `authentication_failed`, `throttled`, `iothub`, `kubernetes`,
    /// `invalid_spec`).
    pub fn observe_reconcile(
        &self,
        namespace: &str,
        watch: &str,
        duration: Duration,
        outcome: Result<(), &'static str>,
    ) {
        let key = watch_labels(namespace, watch);
        let mut watches = self.watches();
        self.families()
            .reconcile_duration
            .get_or_create(&key)
            .observe(duration.as_secs_f64());
        let series = watches.entry(key.clone()).or_default();
        if let Err(kind) = outcome {
            self.families()
                .reconcile_errors
                .get_or_create(&ReconcileErrorLabels {
                    namespace: key.namespace,
                    watch: key.watch,
                    error: kind.to_owned(),
                })
                .inc();
            series.error_kinds.insert(kind.to_owned());
        }
    }

    /// Counts one status patch sent for the watch.
    pub fn status_written(&self, namespace: &str, watch: &str) {
        let key = watch_labels(namespace, watch);
        let mut watches = self.watches();
        self.families().status_writes.get_or_create(&key).inc();
        watches.entry(key).or_default();
    }

    /// Whether this replica holds the leader Lease.
    pub fn set_leader(&self, leader: bool) {
        self.families().leader.set(i64::from(leader));
    }

    /// Records one IoT Hub call attempt: `outcome` is `ok` or the error kind.
    pub fn iothub_request(&self, hub: &str, operation: &str, outcome: &str, latency: Duration) {
        let families = self.families();
        families
            .iothub_requests
            .get_or_create(&HubRequestLabels {
                hub: hub.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        families
            .iothub_request_duration
            .get_or_create(&hub_operation(hub, operation))
            .observe(latency.as_secs_f64());
    }

    /// Counts one 429 answer from the hub.
    pub fn iothub_throttled(&self, hub: &str, operation: &str) {
        self.families()
            .iothub_throttled
            .get_or_create(&hub_operation(hub, operation))
            .inc();
    }

    /// Counts one attempt repeated after a transient failure.
    pub fn iothub_retried(&self, hub: &str, operation: &str) {
        self.families()
            .iothub_retries
            .get_or_create(&hub_operation(hub, operation))
            .inc();
    }

    /// Counts what one answered IoT Hub call cost of the hub's daily message quota.
    pub fn iothub_billed(&self, hub: &str, operation: &str, messages: u64) {
        self.families()
            .iothub_billed
            .get_or_create(&hub_operation(hub, operation))
            .inc_by(messages);
    }

    /// The registry in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, and no label value can make the encoder fail.
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            tracing::error!("encoding the metrics registry failed");
        }
        out
    }
}

/// The IoT Hub client reports each attempt here, so `edgewatch_iothub_*` needs no glue.
impl RequestObserver for Metrics {
    fn request_finished(&self, hub: &str, operation: Operation, outcome: &str, latency: Duration) {
        self.iothub_request(hub, operation.as_str(), outcome, latency);
    }

    fn throttled(&self, hub: &str, operation: Operation) {
        self.iothub_throttled(hub, operation.as_str());
    }

    fn retried(&self, hub: &str, operation: Operation) {
        self.iothub_retried(hub, operation.as_str());
    }

    fn billed(&self, hub: &str, operation: Operation, messages: u64) {
        self.iothub_billed(hub, operation.as_str(), messages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn value_of(text: &str, series: &str) -> Option<String> {
        sample_lines(text)
            .into_iter()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_owned)
    }

    fn populated() -> Metrics {
        let m = Metrics::new(true);
        m.set_watch_conditions(
            "iot",
            "plant-a",
            &[
                ("Ready", ConditionStatus::False),
                ("Reachable", ConditionStatus::True),
                ("Stalled", ConditionStatus::True),
            ],
        );
        m.set_device(
            "iot",
            "plant-a",
            "gw-1",
            ConditionStatus::Unknown,
            ConditionStatus::False,
        );
        m.set_module("iot", "plant-a", "gw-1", "tempSensor", false, 7);
        m
    }

    #[test]
    fn condition_gauge_is_one_hot_over_the_three_statuses() {
        let text = populated().encode();
        let base =
            r#"edgewatch_watch_condition{namespace="iot",watch="plant-a",type="Ready",status="#;
        assert_eq!(value_of(&text, &format!("{base}\"True\"}}")).unwrap(), "0");
        assert_eq!(value_of(&text, &format!("{base}\"False\"}}")).unwrap(), "1");
        assert_eq!(
            value_of(&text, &format!("{base}\"Unknown\"}}")).unwrap(),
            "0"
        );
    }

    #[test]
    fn condition_type_missing_from_a_later_update_is_removed() {
        let m = populated();
        m.set_watch_conditions("iot", "plant-a", &[("Ready", ConditionStatus::True)]);
        let text = m.encode();
        assert!(!text.contains(r#"type="Stalled""#), "{text}");
        assert!(!text.contains(r#"type="Reachable""#), "{text}");
        assert!(text.contains(
            r#"edgewatch_watch_condition{namespace="iot",watch="plant-a",type="Ready",status="True"} 1"#
        ));
    }

    #[test]
    fn device_gauges_are_tri_state() {
        let text = populated().encode();
        let labels = r#"{namespace="iot",watch="plant-a",device="gw-1"}"#;
        assert_eq!(
            value_of(&text, &format!("edgewatch_device_reachable{labels}")).unwrap(),
            "-1"
        );
        assert_eq!(
            value_of(&text, &format!("edgewatch_device_ready{labels}")).unwrap(),
            "0"
        );
    }

    #[test]
    fn module_series_carry_all_four_labels() {
        let text = populated().encode();
        let labels = r#"{namespace="iot",watch="plant-a",device="gw-1",module="tempSensor"}"#;
        assert_eq!(
            value_of(&text, &format!("edgewatch_module_running{labels}")).unwrap(),
            "0"
        );
        assert_eq!(
            value_of(&text, &format!("edgewatch_module_restarts{labels}")).unwrap(),
            "7"
        );
    }

    #[test]
    fn module_metrics_off_exports_no_module_family() {
        let m = Metrics::new(false);
        m.set_module("iot", "plant-a", "gw-1", "tempSensor", true, 0);
        let text = m.encode();
        assert!(!text.contains("edgewatch_module_"), "{text}");
    }

    #[test]
    fn device_counts_have_one_series_per_state() {
        let m = Metrics::new(true);
        let counts = WatchDeviceCounts {
            total: 10,
            ready: 6,
            unreachable: 1,
            unhealthy: 2,
            drifted: 3,
            stale: 1,
        };
        m.set_watch_device_counts("iot", "plant-a", counts);
        let text = m.encode();
        for (state, value) in counts.by_state() {
            let series = format!(
                r#"edgewatch_watch_devices{{namespace="iot",watch="plant-a",state="{state}"}}"#
            );
            assert_eq!(value_of(&text, &series).unwrap(), value.to_string());
        }
    }

    #[test]
    fn a_device_that_left_loses_its_module_series_too() {
        let m = populated();
        m.set_device(
            "iot",
            "plant-a",
            "gw-2",
            ConditionStatus::True,
            ConditionStatus::True,
        );
        m.retain_devices("iot", "plant-a", ["gw-2"]);
        let text = m.encode();
        assert!(!text.contains(r#"device="gw-1""#), "{text}");
        assert!(!text.contains(r#"module="tempSensor""#), "{text}");
        assert!(text.contains(r#"device="gw-2""#), "{text}");
    }

    #[test]
    fn retain_devices_drops_only_devices_that_left() {
        let m = populated();
        for device in ["gw-2", "gw-3"] {
            m.set_device(
                "iot",
                "plant-a",
                device,
                ConditionStatus::True,
                ConditionStatus::True,
            );
        }
        m.retain_devices("iot", "plant-a", ["gw-2"]);
        let text = m.encode();
        assert!(text.contains(r#"device="gw-2""#));
        assert!(!text.contains(r#"device="gw-1""#), "{text}");
        assert!(!text.contains(r#"device="gw-3""#), "{text}");
    }

    #[test]
    fn forget_watch_removes_every_series_of_that_watch_only() {
        let m = populated();
        m.set_watch_device_counts("iot", "plant-a", WatchDeviceCounts::default());
        m.observe_reconcile(
            "iot",
            "plant-a",
            Duration::from_millis(20),
            Err("throttled"),
        );
        m.status_written("iot", "plant-a");
        m.set_watch_conditions("iot", "plant-b", &[("Ready", ConditionStatus::True)]);
        m.forget_watch("iot", "plant-a");
        let text = m.encode();
        assert!(!text.contains(r#"watch="plant-a""#), "{text}");
        assert!(text.contains(r#"watch="plant-b""#), "{text}");
        // Forgetting an unknown watch is harmless.
        m.forget_watch("iot", "never-seen");
    }

    #[test]
    fn concurrent_updates_and_forgets_leave_no_orphan_series() {
        let m = Metrics::new(true);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let m = m.clone();
                scope.spawn(move || {
                    for i in 0..200 {
                        let device = format!("gw-{t}-{i}");
                        m.set_device(
                            "iot",
                            "w",
                            &device,
                            ConditionStatus::True,
                            ConditionStatus::False,
                        );
                        m.set_module("iot", "w", &device, "m", true, 1);
                        m.set_watch_device_counts("iot", "w", WatchDeviceCounts::default());
                    }
                });
            }
            let m = m.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    m.forget_watch("iot", "w");
                }
            });
        });
        m.forget_watch("iot", "w");
        let text = m.encode();
        assert!(!text.contains(r#"watch="w""#), "{text}");
    }

    #[test]
    fn reconcile_outcomes_feed_histogram_and_error_counter() {
        let m = Metrics::new(true);
        m.observe_reconcile("iot", "w", Duration::from_millis(30), Ok(()));
        m.observe_reconcile("iot", "w", Duration::from_millis(30), Err("iothub"));
        m.observe_reconcile("iot", "w", Duration::from_millis(30), Err("iothub"));
        let text = m.encode();
        assert_eq!(
            value_of(
                &text,
                r#"edgewatch_reconcile_duration_seconds_count{namespace="iot",watch="w"}"#
            )
            .unwrap(),
            "3"
        );
        assert_eq!(
            value_of(
                &text,
                r#"edgewatch_reconcile_errors_total{namespace="iot",watch="w",error="iothub"}"#
            )
            .unwrap(),
            "2"
        );
    }

    #[test]
    fn iothub_calls_are_counted_by_operation_and_outcome() {
        let m = Metrics::new(true);
        let hub = "plant-a.azure-devices.net";
        m.iothub_request(hub, "query", "ok", Duration::from_millis(12));
        m.iothub_request(hub, "query", "throttled", Duration::from_millis(3));
        m.iothub_throttled(hub, "query");
        m.iothub_retried(hub, "query");
        let text = m.encode();
        let op = format!(r#"hub="{hub}",operation="query""#);
        assert_eq!(
            value_of(
                &text,
                &format!(r#"edgewatch_iothub_requests_total{{{op},outcome="ok"}}"#)
            )
            .unwrap(),
            "1"
        );
        assert_eq!(
            value_of(
                &text,
                &format!("edgewatch_iothub_request_duration_seconds_count{{{op}}}")
            )
            .unwrap(),
            "2"
        );
        assert_eq!(
            value_of(&text, &format!("edgewatch_iothub_throttled_total{{{op}}}")).unwrap(),
            "1"
        );
        assert_eq!(
            value_of(&text, &format!("edgewatch_iothub_retries_total{{{op}}}")).unwrap(),
            "1"
        );
    }

    #[test]
    fn iothub_client_observer_feeds_the_same_series() {
        let m = Metrics::new(true);
        let observer: &dyn RequestObserver = &m;
        let hub = "h.azure-devices.net";
        observer.request_finished(hub, Operation::InvokeMethod, "ok", Duration::from_millis(8));
        observer.throttled(hub, Operation::GetModuleTwin);
        observer.retried(hub, Operation::GetModuleTwin);
        let text = m.encode();
        assert!(text.contains(&format!(
            r#"edgewatch_iothub_requests_total{{hub="{hub}",operation="invoke_method",outcome="ok"}} 1"#
        )));
        assert!(text.contains(&format!(
            r#"edgewatch_iothub_throttled_total{{hub="{hub}",operation="get_module_twin"}} 1"#
        )));
        assert!(text.contains(&format!(
            r#"edgewatch_iothub_retries_total{{hub="{hub}",operation="get_module_twin"}} 1"#
        )));
    }

    #[test]
    fn billed_messages_add_up_per_hub_and_operation() {
        let m = Metrics::new(true);
        let observer: &dyn RequestObserver = &m;
        let hub = "h.azure-devices.net";
        observer.billed(hub, Operation::GetModuleTwin, 3);
        observer.billed(hub, Operation::GetModuleTwin, 1);
        observer.billed(hub, Operation::InvokeMethod, 2);
        observer.billed(hub, Operation::ListModules, 0);
        let text = m.encode();
        let series = |op: &str| {
            value_of(
                &text,
                &format!(
                    r#"edgewatch_iothub_billed_messages_total{{hub="{hub}",operation="{op}"}}"#
                ),
            )
        };
        assert_eq!(series("get_module_twin").as_deref(), Some("4"));
        assert_eq!(series("invoke_method").as_deref(), Some("2"));
        assert_eq!(series("list_modules").as_deref(), Some("0"));
        assert_eq!(series("query"), None);
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let mut lines: Vec<&str> = sample_lines(text)
            .into_iter()
            .filter(|l| l.starts_with(name))
            .collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn a_device_ready_transition_is_dated_by_its_status_not_its_reason() {
        let m = Metrics::new(true);
        let name = "edgewatch_device_ready_last_transition_timestamp_seconds";
        let publish = |status, reason, at| {
            m.set_device_ready_transition("iot", "w", "gw", status, reason, at);
            m.encode()
        };
        let series = |status: &str, reason: &str, since: Timestamp| {
            format!(
                r#"{name}{{namespace="iot",watch="w",device="gw",status="{status}",reason="{reason}"}} {}"#,
                since.as_second()
            )
        };
        let noon = at("2026-03-01T12:00:00Z");
        let later = at("2026-03-01T12:10:00Z");
        publish(ConditionStatus::False, "ModuleFailed", noon);
        let text = publish(ConditionStatus::False, "DeviceNotOnline", later);
        assert_eq!(
            lines_of(&text, name),
            [series("False", "DeviceNotOnline", noon)]
        );
        let text = publish(ConditionStatus::Unknown, "PingFailed", later);
        assert_eq!(
            lines_of(&text, name),
            [series("Unknown", "PingFailed", later)]
        );
        m.forget_watch("iot", "w");
        assert!(lines_of(&m.encode(), name).is_empty());
    }

    #[test]
    fn watch_condition_transitions_replace_their_series_when_the_reason_changes() {
        let m = Metrics::new(true);
        let name = "edgewatch_watch_condition_last_transition_timestamp_seconds";
        let noon = at("2026-03-01T12:00:00Z");
        m.set_watch_condition_transitions(
            "iot",
            "w",
            &[
                ("Ready", ConditionStatus::False, "DailyQuotaExceeded", noon),
                ("Stalled", ConditionStatus::True, "DailyQuotaExceeded", noon),
            ],
        );
        assert_eq!(lines_of(&m.encode(), name).len(), 2);
        let later = at("2026-03-02T00:00:10Z");
        m.set_watch_condition_transitions(
            "iot",
            "w",
            &[("Ready", ConditionStatus::True, "Ready", later)],
        );
        let text = m.encode();
        assert_eq!(
            lines_of(&text, name),
            [format!(
                r#"{name}{{namespace="iot",watch="w",type="Ready",status="True",reason="Ready"}} {}"#,
                later.as_second()
            )]
        );
        m.set_watch_interval("iot", "w", Duration::from_secs(120));
        assert_eq!(
            value_of(
                &m.encode(),
                r#"edgewatch_watch_interval_seconds{namespace="iot",watch="w"}"#
            )
            .as_deref(),
            Some("120")
        );
        m.forget_watch("iot", "w");
        let text = m.encode();
        assert!(lines_of(&text, name).is_empty(), "{text}");
        assert!(
            !text.contains("edgewatch_watch_interval_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn the_process_start_time_is_exported() {
        let before = Timestamp::now().as_second();
        let text = Metrics::new(true).encode();
        let start: i64 = value_of(&text, "edgewatch_process_start_time_seconds")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            start >= before && start <= Timestamp::now().as_second(),
            "{start}"
        );
    }

    #[test]
    fn leader_gauge_follows_the_lease_and_output_ends_with_eof() {
        let m = Metrics::default();
        assert_eq!(value_of(&m.encode(), "edgewatch_leader").unwrap(), "0");
        m.set_leader(true);
        let text = m.encode();
        assert_eq!(value_of(&text, "edgewatch_leader").unwrap(), "1");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new(true);
        m.set_device(
            "iot",
            "w",
            "odd\"id\\x",
            ConditionStatus::True,
            ConditionStatus::True,
        );
        let text = m.encode();
        assert!(text.contains(r#"device="odd\"id\\x""#), "{text}");
    }

    #[test]
    fn clones_share_one_registry() {
        let m = Metrics::new(true);
        let clone = m.clone();
        clone.status_written("iot", "w");
        assert_eq!(
            value_of(
                &m.encode(),
                r#"edgewatch_status_writes_total{namespace="iot",watch="w"}"#
            )
            .unwrap(),
            "1"
        );
    }
}
