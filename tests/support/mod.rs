//! Shared test support. Each integration test compiles this tree with `mod support;` and uses only
//! part of it, so unused-item warnings are expected here and silenced once for the whole tree.
#![allow(dead_code, unused_imports)]

pub mod k8s_standin;
