//! Shared test support. Each integration test compiles this tree with `mod support;` and uses only
//! part of it, so dead-code warnings are expected here and silenced once for the whole tree.
//! Test binaries that need one module only include it by path (`#[path = "support/..."]`).
#![allow(dead_code)]
// Shared by several test binaries, which reach it through `pub`: there is no crate API here.
#![allow(unreachable_pub)]

pub mod cel_cases;
pub mod k8s_standin;
pub mod kube_cluster;
