//! Step 4, publish: the status written, Events sent, metrics exported.

pub mod events;
pub mod metrics;
pub mod status;
