//! `Gadget`, a throwaway custom resource for the stand-in's own tests: namespaced, with a status
//! subresource whose `conditions` are a list-map keyed by `type`, like `EdgeDeviceWatch`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[kube(
    group = "example.test",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "GadgetStatus",
    derive = "PartialEq",
    derive = "Default"
)]
pub struct GadgetSpec {
    pub size: i32,
}

#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GadgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// A condition with a fixed transition time (the stand-in does not care about times).
pub fn condition(type_: &str, status: &str, reason: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: format!("{type_} is {status}"),
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().expect("valid timestamp"),
        ),
        observed_generation: None,
    }
}

pub fn gadget(namespace: &str, name: &str, size: i32) -> Gadget {
    let mut gadget = Gadget::new(name, GadgetSpec { size });
    gadget.metadata.namespace = Some(namespace.into());
    gadget
}
