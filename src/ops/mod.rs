//! Process telemetry of `edgewatch run`: the Prometheus registry and the HTTP server that
//! serves it with the liveness and readiness probes. Nothing here decides anything about
//! a watch; the controller reports into it.

pub mod metrics;
pub mod server;
