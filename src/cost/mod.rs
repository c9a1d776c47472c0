//! What monitoring costs a hub, and how to stay within a daily message budget.
//!
//! IoT Hub bills service-side reads against the hub's daily message quota (twin reads
//! and query pages per 4 KB of response, a direct method per 4 KB of request and of
//! response; see `iothub::billing`). A hub whose quota runs out refuses billable work,
//! the fleet's own telemetry included, until 00:00 UTC. So edgewatch gives each watch a
//! daily budget and plans its cadences to fit it. Pure: no I/O, no clock.
//!
//! - [`DailyLedger`] counts what was billed today (UTC) and in the last sweep;
//! - [`share_budget`] splits a hub's budget between the watches that read it;
//! - [`RunningCost`] learns what one run of a recurring read costs;
//! - [`plan`] turns a budget and those costs into cadences, a forecast and a verdict.

mod estimate;
mod ledger;
mod planner;
mod share;

pub use estimate::RunningCost;
pub use ledger::DailyLedger;
pub use planner::{
    Background, BackgroundKind, Fit, Heartbeat, LONGEST_INTERVAL, PLANNING_SHARE, Plan, PlanInput,
    plan,
};
pub use share::{WatchDemand, share_budget};

/// The default budget of one hub across all its watches: 10% of one S1 unit's daily
/// quota (400,000 messages), so monitoring never crowds out the fleet it watches.
pub const DEFAULT_HUB_DAILY_BUDGET: u64 = 40_000;

/// Seconds in a (UTC) day, the period every budget is counted over.
pub(crate) const SECONDS_PER_DAY: f64 = 86_400.0;
