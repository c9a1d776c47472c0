//! edgewatch: watches Azure IoT Edge devices through the IoT Hub service API and
//! reports their health as Kubernetes status conditions.
//!
//! The layers, from the inside out:
//! - [`twin`] reads twin documents tolerantly into typed views;
//! - [`health`] judges a device from those views (pure, no I/O);
//! - [`iothub`] talks to the IoT Hub service REST API (no Kubernetes types);
//! - [`api`] is the `EdgeDeviceWatch` custom resource;
//! - [`controller`] glues them into the operator;
//! - [`cost`] plans reads within a daily IoT Hub message budget (pure);
//! - [`sim`] is an IoT Hub simulator for tests, the demo and benchmarks;
//! - [`cli`] holds one module per subcommand of the `edgewatch` binary.

pub mod api;
pub mod cli;
pub mod controller;
pub mod cost;
pub mod health;
pub mod iothub;
pub mod sim;
pub mod twin;
