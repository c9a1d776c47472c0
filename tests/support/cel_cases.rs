//! The CEL rules' accept/refuse cases, as one table: `tests/api_cel.rs` checks each with
//! kube's client-side `validate_cel`, `tests/kube_crd.rs` sends each to the real API
//! server. A case added here is tested on both sides.
// Each test binary uses part of this module.
#![allow(dead_code, unreachable_pub)]

use edgewatch::api::{
    EdgeDeviceWatchSpec, HubSpec, SecretKeyRef, SelectorSpec, WorkloadIdentitySpec,
};

/// One spec and the answer it must get.
#[derive(Debug, Clone)]
pub struct CelCase {
    pub name: String,
    pub spec: EdgeDeviceWatchSpec,
    /// `None`: accepted. `Some(message)`: refused, with the message of the rule that
    /// refuses it (the text users see from `kubectl apply`).
    pub refusal: Option<&'static str>,
    /// What the real server says instead, when the structural schema (`maxLength`,
    /// `pattern`, ...) refuses the object first: it then skips the CEL rules ("some
    /// validation rules were not checked because the object was invalid"), while
    /// client-side `validate_cel` evaluates only the CEL rules.
    pub schema_refusal: Option<&'static str>,
    /// The field a refusal must name, when its rule's message alone does not say which
    /// (the duration minimum is one rule on several fields).
    pub field: Option<&'static str>,
}

impl CelCase {
    /// The message the real API server's refusal must contain.
    pub fn server_refusal(&self) -> Option<&'static str> {
        self.schema_refusal.or(self.refusal)
    }

    /// Whether a refusal's text names the field this case is about (when it has one).
    pub fn names_its_field(&self, refusal: &str) -> bool {
        self.field.is_none_or(|field| refusal.contains(field))
    }
}

pub const ONE_CREDENTIAL: &str =
    "set exactly one credential source: connectionStringSecretRef or workloadIdentity";
pub const IDENTITY_NEEDS_HOST: &str =
    "workloadIdentity needs hostName (for example my-hub.azure-devices.net)";
pub const HOST_FROM_CONNECTION_STRING: &str =
    "hostName comes from the connection string; do not set both";
pub const SOME_DEVICE: &str = "name at least one device in devices or a selector query";
/// The message of the minimum-duration rule on `spec.interval` and `spec.ping.interval`.
pub const DURATION_MINIMUM: &str = "must be at least 10s";
pub const DEVICE_ID_CHARACTERS: &str =
    "device ids are 1-128 ASCII letters, digits or - . + % _ # * ? ! ( ) , : = @ $ '";

fn sas_hub() -> HubSpec {
    HubSpec {
        connection_string_secret_ref: Some(SecretKeyRef {
            name: "hub".into(),
            key: "connectionString".into(),
        }),
        ..HubSpec::default()
    }
}

fn identity_hub(host_name: Option<&str>) -> HubSpec {
    HubSpec {
        host_name: host_name.map(str::to_owned),
        workload_identity: Some(WorkloadIdentitySpec::default()),
        ..HubSpec::default()
    }
}

/// A spec with the code's defaults for everything but the hub and the devices.
pub fn spec_with(hub: HubSpec, devices: &[&str]) -> EdgeDeviceWatchSpec {
    let mut spec: EdgeDeviceWatchSpec = serde_saphyr::from_str("hub: {}\n").unwrap();
    spec.hub = hub;
    spec.devices = devices.iter().map(|d| d.to_string()).collect();
    spec
}

fn case(name: &str, spec: EdgeDeviceWatchSpec, refusal: Option<&'static str>) -> CelCase {
    CelCase {
        name: name.to_owned(),
        spec,
        refusal,
        schema_refusal: None,
        field: None,
    }
}

/// A case refused by the minimum-duration rule on `field`.
fn too_short(name: &str, spec: EdgeDeviceWatchSpec, field: &'static str) -> CelCase {
    CelCase {
        field: Some(field),
        ..case(name, spec, Some(DURATION_MINIMUM))
    }
}

fn with_interval(interval: &str) -> EdgeDeviceWatchSpec {
    let mut spec = spec_with(sas_hub(), &["gw-1"]);
    spec.interval = interval.to_owned();
    spec
}

/// Every case, named for the failure message of a test that gets another answer.
pub fn cel_cases() -> Vec<CelCase> {
    let mut cases = vec![
        case(
            "a connection string alone",
            spec_with(sas_hub(), &["gw-1"]),
            None,
        ),
        case(
            "workload identity with a host name",
            spec_with(identity_hub(Some("hub.azure-devices.net")), &["gw-1"]),
            None,
        ),
        case(
            "no credential source",
            spec_with(HubSpec::default(), &["gw-1"]),
            Some(ONE_CREDENTIAL),
        ),
        case(
            "two credential sources",
            spec_with(
                HubSpec {
                    host_name: Some("hub.azure-devices.net".into()),
                    workload_identity: Some(WorkloadIdentitySpec::default()),
                    ..sas_hub()
                },
                &["gw-1"],
            ),
            Some(ONE_CREDENTIAL),
        ),
        case(
            "workload identity without a host name",
            spec_with(identity_hub(None), &["gw-1"]),
            Some(IDENTITY_NEEDS_HOST),
        ),
        case(
            "a host name beside a connection string",
            spec_with(
                HubSpec {
                    host_name: Some("hub.azure-devices.net".into()),
                    ..sas_hub()
                },
                &["gw-1"],
            ),
            Some(HOST_FROM_CONNECTION_STRING),
        ),
        case(
            "neither devices nor a selector",
            spec_with(sas_hub(), &[]),
            Some(SOME_DEVICE),
        ),
        case("a selector alone", selector_alone(), None),
        case("interval 10s", with_interval("10s"), None),
        case("interval 1m", with_interval("1m"), None),
        case("interval PT10S (ISO 8601)", with_interval("PT10S"), None),
        case(
            "interval PT1H30M (ISO 8601)",
            with_interval("PT1H30M"),
            None,
        ),
        too_short("interval 9s", with_interval("9s"), "spec.interval"),
        too_short("interval 500ms", with_interval("500ms"), "spec.interval"),
        too_short(
            "interval PT9S (ISO 8601)",
            with_interval("PT9S"),
            "spec.interval",
        ),
        too_short(
            "ping interval 5s",
            ping_interval("5s"),
            "spec.ping.interval",
        ),
        too_short(
            "ping interval PT5S (ISO 8601)",
            ping_interval("PT5S"),
            "spec.ping.interval",
        ),
        case("ping interval 10s", ping_interval("10s"), None),
        case(
            "device ids in IoT Hub's character set",
            spec_with(
                sas_hub(),
                &[
                    "line1-gw",
                    "A.b+c%d_e#f*g?h!i(j)k,l:m=n@o$p'q",
                    &"x".repeat(128),
                ],
            ),
            None,
        ),
    ];
    for bad in ["has space", "slash/inside", "ümlaut", "semi;colon"] {
        cases.push(case(
            &format!("device id {bad:?}"),
            spec_with(sas_hub(), &["ok", bad]),
            Some(DEVICE_ID_CHARACTERS),
        ));
    }
    cases.push(CelCase {
        schema_refusal: Some("spec.devices[1]: Too long: may not be more than 128 bytes"),
        ..case(
            "a device id of 129 characters",
            spec_with(sas_hub(), &["ok", &"x".repeat(129)]),
            Some(DEVICE_ID_CHARACTERS),
        )
    });
    cases
}

fn selector_alone() -> EdgeDeviceWatchSpec {
    let mut spec = spec_with(sas_hub(), &[]);
    spec.selector = Some(SelectorSpec {
        query: "tags.site = 'a'".into(),
    });
    spec
}

fn ping_interval(interval: &str) -> EdgeDeviceWatchSpec {
    let mut spec = spec_with(sas_hub(), &["gw-1"]);
    spec.ping.interval = interval.to_owned();
    spec
}

/// The message of every `x-kubernetes-validations` rule in the generated CRD.
pub fn crd_rule_messages() -> Vec<String> {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(edgewatch::api::EdgeDeviceWatch::crd()).expect("CRD as JSON");
    rule_messages(&crd)
}

/// The message of every `x-kubernetes-validations` rule anywhere in `schema` (a CRD, its
/// spec, or a schema inside it).
pub fn rule_messages(schema: &serde_json::Value) -> Vec<String> {
    let mut messages = Vec::new();
    collect_rule_messages(schema, &mut messages);
    messages
}

fn collect_rule_messages(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                if key == "x-kubernetes-validations" {
                    let rules = child.as_array().into_iter().flatten();
                    out.extend(rules.filter_map(|r| r["message"].as_str().map(str::to_owned)));
                } else {
                    collect_rule_messages(child, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_rule_messages(item, out);
            }
        }
        _ => {}
    }
}
