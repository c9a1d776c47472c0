//! The operator: glue between the `EdgeDeviceWatch` API, the IoT Hub client and the
//! evaluator. Pure decision logic lives in small modules tested without any server; the
//! runtime modules do the I/O. `metrics` and `ops_server` are the operations endpoint
//! (Prometheus metrics and the probes).

pub mod backoff;
pub mod conditions;
pub mod credentials;
pub mod device_set;
pub mod error;
pub mod event_publisher;
pub mod hub_clients;
pub mod hub_errors;
pub mod hub_reader;
pub mod hub_sweeper;
pub mod leader;
pub mod metrics;
pub mod ops_server;
pub mod outcome;
pub mod ping_schedule;
pub mod read_plan;
pub mod reconcile;
pub mod restart_memory;
pub mod runtime;
pub mod secret_source;
pub mod settings;
pub mod status_builder;
pub mod status_metrics;
pub mod status_writer;
pub mod transitions;
pub mod watch_state;

#[cfg(test)]
pub(crate) mod test_reports;
