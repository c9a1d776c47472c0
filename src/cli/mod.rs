//! One module per `edgewatch` subcommand; `main.rs` only parses and dispatches.

pub mod crd;
pub mod evaluate;
pub mod run;
pub mod sim;
