//! edgewatch: watches Azure IoT Edge devices through the IoT Hub service API and
//! reports their health as Kubernetes status conditions.
//!
//! The layers, from the inside out:
//! - [`twin`] reads twin documents tolerantly into typed views;
//! - [`health`] judges a device from those views (pure, no I/O);
//! - [`iothub`] talks to the IoT Hub service REST API (no Kubernetes types);
//! - [`api`] is the `EdgeDeviceWatch` custom resource;
//! - [`cost`] plans reads within a daily IoT Hub message budget (pure);
//! - [`controller`] glues them into the operator, step by step;
//! - [`ops`] is the operator's process telemetry (metrics, probes);
//! - [`sim`] is an IoT Hub simulator for tests, the demo and benchmarks;
//! - [`cli`] holds one module per subcommand of the `edgewatch` binary.

pub mod api;
pub mod cli;
pub mod controller;
pub mod cost;
pub mod errors;
pub mod health;
pub mod iothub;
pub mod ops;
pub mod sim;
pub mod twin;
