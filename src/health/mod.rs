//! The evaluator: twins + ping outcome + previous observation + now → a device verdict.
//! Pure: no I/O, no clock, no randomness.

pub mod report;
