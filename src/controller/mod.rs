//! The operator: reconcile loop, status writes, Events, leader election, and the
//! operations endpoint (metrics and probes).

pub mod metrics;
pub mod ops_server;
