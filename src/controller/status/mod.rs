//! The `EdgeDeviceWatch` status, built from device verdicts or from a failure. Pure.

pub mod build;
pub mod conditions;
pub mod outcome;
