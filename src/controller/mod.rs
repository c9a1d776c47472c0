//! The operator: glue between the `EdgeDeviceWatch` API, the IoT Hub client and the
//! evaluator. A reconcile runs these steps, in this order:
//!
//! 1. [`prepare`]: the spec parsed into settings, the hub's credential read (Secret or
//!    workload identity), and whether the watch is suspended or not due yet;
//! 2. [`sweep`]: the device set resolved, twins read, `$edgeAgent` pinged, each device
//!    judged by the evaluator;
//! 3. [`decide`]: pure: the previous status and the sweep's outcome (or failure) become
//!    the new status ([`status`] builds it), the Events to announce and the requeue;
//!    [`state`] keeps what a watch remembers between reconciles;
//! 4. [`publish`]: the status written (server-side apply, only when it changed), Events
//!    sent, metrics exported.
//!
//! [`pipeline`] runs steps 1–3 for every caller: [`reconcile`] (kube-runtime's entry
//! point, which then publishes) and [`local`] (`edgewatch check` and `demo`, which print).
//! [`runtime`] runs the `Controller`; [`context`] holds what reconciles share, [`leader`]
//! the Lease, [`backoff`] the per-watch retry delays, [`key`] the watch key.

pub mod backoff;
pub mod context;
pub mod decide;
pub mod error;
pub mod key;
pub mod leader;
pub mod local;
pub mod pipeline;
pub mod prepare;
pub mod publish;
pub mod reconcile;
pub mod runtime;
pub mod state;
pub mod status;
pub mod sweep;

#[cfg(test)]
pub(crate) mod test_reports;
