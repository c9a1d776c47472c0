//! Step 1, prepare: the spec parsed into settings and the hub's credential resolved.

pub mod credentials;
pub mod secret;
pub mod settings;
