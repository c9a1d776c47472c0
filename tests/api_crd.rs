//! The generated CRD is the checked-in one, names follow the API, and the examples are
//! valid objects of it.

use std::path::Path;

use edgewatch::api::{EdgeDeviceWatch, crd_yaml, parse_duration};
use k8s_openapi::api::core::v1::Secret;
use kube::CustomResourceExt;

const CRD_FILE: &str = "crds/edgewatch.dev_edgedevicewatches.yaml";

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

fn example_watch(file: &str) -> EdgeDeviceWatch {
    serde_saphyr::from_str(&read(&format!("examples/{file}")))
        .unwrap_or_else(|e| panic!("examples/{file} is not an EdgeDeviceWatch: {e}"))
}

#[test]
fn checked_in_crd_is_current() {
    let generated = crd_yaml().expect("CRD serialises");
    assert!(
        read(CRD_FILE) == generated,
        "{CRD_FILE} is stale: regenerate it with `cargo run -q -- crd > {CRD_FILE}`"
    );
}

#[test]
fn crd_names_scope_and_subresource_follow_the_design() {
    let crd = EdgeDeviceWatch::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("edgedevicewatches.edgewatch.dev")
    );
    assert_eq!(crd.spec.group, "edgewatch.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    let names = &crd.spec.names;
    assert_eq!(names.kind, "EdgeDeviceWatch");
    assert_eq!(names.plural, "edgedevicewatches");
    assert_eq!(names.short_names.as_deref(), Some(&["edw".to_owned()][..]));
    assert!(
        names
            .categories
            .as_ref()
            .is_some_and(|c| c.contains(&"edgewatch".to_owned()))
    );
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.to_uppercase())
        .collect();
    assert_eq!(
        columns,
        [
            "HUB",
            "DEVICES",
            "READY",
            "UNREACHABLE",
            "UNHEALTHY",
            "DRIFTED",
            "STATUS",
            "AGE"
        ]
    );
}

#[test]
fn conditions_are_a_list_map_keyed_by_type() {
    let crd = serde_json::to_value(EdgeDeviceWatch::crd()).unwrap();
    let conditions = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/conditions")
        .expect("status.conditions in the schema");
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
}

#[test]
fn every_spec_field_is_described() {
    let crd = serde_json::to_value(EdgeDeviceWatch::crd()).unwrap();
    let spec = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties")
        .and_then(|p| p.as_object())
        .expect("spec properties");
    for (name, schema) in spec {
        assert!(
            schema.get("description").is_some(),
            "spec.{name} has no description"
        );
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (inner, s) in props {
                assert!(
                    s.get("description").is_some(),
                    "spec.{name}.{inner} has no description"
                );
            }
        }
    }
}

#[test]
fn examples_are_valid_watches() {
    for file in [
        "watch-minimal.yaml",
        "watch-selector.yaml",
        "watch-workload-identity.yaml",
    ] {
        let watch = example_watch(file);
        if let Err(errors) = watch.validate_cel() {
            panic!("examples/{file} breaks a CEL rule: {errors:?}");
        }
        for d in [
            &watch.spec.interval,
            &watch.spec.stale_after,
            &watch.spec.ping.interval,
        ] {
            parse_duration(d).unwrap_or_else(|e| panic!("examples/{file}: {e}"));
        }
    }
}

#[test]
fn minimal_example_gets_the_documented_defaults() {
    let watch = example_watch("watch-minimal.yaml");
    assert_eq!(watch.spec.interval, "60s");
    assert!(watch.spec.ping.enabled);
    assert_eq!(watch.spec.ping.interval, "5m");
    assert_eq!(watch.spec.ping.timeout_seconds, 10);
    assert_eq!(watch.spec.stale_after, "15m");
    assert_eq!(watch.spec.deployment_grace_period, "10m");
    assert_eq!(watch.spec.restart_loop.restarts, 3);
    assert_eq!(watch.spec.restart_loop.window, "30m");
    assert!(!watch.spec.suspend);
}

#[test]
fn example_secret_matches_what_the_watches_reference() {
    let secret: Secret = serde_saphyr::from_str(&read("examples/iothub-secret.yaml")).unwrap();
    let watch = example_watch("watch-minimal.yaml");
    let reference = watch
        .spec
        .hub
        .connection_string_secret_ref
        .expect("SAS watch");
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some(reference.name.as_str())
    );
    assert_eq!(secret.metadata.namespace, watch.metadata.namespace);
    let data = secret.string_data.expect("stringData");
    assert!(
        data.get(&reference.key)
            .is_some_and(|v| v.starts_with("HostName="))
    );
}

#[test]
fn unknown_spec_fields_are_refused_by_the_typed_client() {
    // serde ignores unknown fields by default; the API server prunes them. What matters
    // here is that a malformed value is a clear error, not a panic.
    let bad = "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {name: x}\nspec:\n  hub: {}\n  devices: notalist\n";
    let error = serde_saphyr::from_str::<EdgeDeviceWatch>(bad)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("devices") || error.contains("sequence"),
        "{error}"
    );
}
