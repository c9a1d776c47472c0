//! The `EdgeDeviceWatch` status, built from device verdicts or from a failure. Pure.

pub(crate) mod build;
pub(crate) mod conditions;
pub(crate) mod outcome;

#[cfg(test)]
mod printer_columns;
