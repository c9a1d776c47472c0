//! The operator: glue between the `EdgeDeviceWatch` API, the IoT Hub client and the
//! evaluator. A reconcile runs these steps, in this order:
//!
//! 1. `prepare`: the spec parsed into settings, the hub's credential read (Secret or
//!    workload identity), and whether the watch is suspended or not due yet;
//! 2. `sweep`: the device set resolved, twins read, `$edgeAgent` pinged, each device
//!    judged by the evaluator;
//! 3. `decide`: pure: the previous status and the sweep's outcome (or failure) become
//!    the new status (`status` builds it), the Events to announce and the requeue;
//!    `state` keeps what a watch remembers between reconciles;
//! 4. `publish`: the status written (server-side apply, only when it changed), Events
//!    sent, metrics exported.
//!
//! `pipeline` runs steps 1–3 for every caller: `reconcile` (kube-runtime's entry
//! point, which then publishes) and `local` (`edgewatch check` and `demo`, which print).
//! `runtime` runs the `Controller`; `context` holds what reconciles share, `leader`
//! the Lease, `backoff` the per-watch retry delays, `key` the watch key.

pub(crate) mod backoff;
pub(crate) mod context;
pub(crate) mod decide;
pub(crate) mod error;
pub(crate) mod key;
pub(crate) mod leader;
pub(crate) mod local;
pub(crate) mod pipeline;
pub(crate) mod prepare;
pub(crate) mod publish;
pub(crate) mod reconcile;
pub(crate) mod runtime;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod sweep;

#[cfg(test)]
mod test_reports;

// What the binary and embedders (tests, a sweeper of another source) use: running the
// operator, the sweep seam, the local runner of check and demo, and their types.
pub use context::Context;
pub use error::{ConnectionStringProblem, ReconcileError};
pub use key::WatchKey;
pub use leader::{Leadership, LeaseSettings};
pub use local::LocalWatch;
pub use prepare::credentials::{CredentialSource, GivenConnectionString, HubAuth, HubCredentials};
pub use prepare::settings::{FieldError, InvalidSpec, WatchSettings};
pub use reconcile::{error_policy, reconcile};
pub use runtime::{ControllerOptions, run_controller};
pub use state::WatchState;
pub use state::pings::PingRecord;
pub use status::build::StatusLimits;
pub use sweep::hub_clients::HubClientTemplate;
pub use sweep::hub_sweeper::HubSweeper;
pub use sweep::read_plan::QuotaBudget;
pub use sweep::{Observations, PreparedWatch, SweepCost, SweepFailure, Sweeper, Verdict};
