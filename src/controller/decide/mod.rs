//! Step 3, decide: what a sweep's outcome means for the status and the Events.

pub mod events;
