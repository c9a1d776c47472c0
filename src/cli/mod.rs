//! One module per `edgewatch` subcommand; `main.rs` only parses and dispatches.

pub mod check;
pub mod crd;
pub mod demo;
pub mod evaluate;
pub mod render;
pub mod run;
pub mod sim;
