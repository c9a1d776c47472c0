//! Client-side evaluation of every CEL rule in the CRD, accepting and rejecting.

use edgewatch::api::{
    EdgeDeviceWatch, EdgeDeviceWatchSpec, HubSpec, SecretKeyRef, SelectorSpec, WorkloadIdentitySpec,
};

fn sas_hub() -> HubSpec {
    HubSpec {
        connection_string_secret_ref: Some(SecretKeyRef {
            name: "hub".into(),
            key: "connectionString".into(),
        }),
        ..HubSpec::default()
    }
}

fn spec_with(hub: HubSpec, devices: &[&str]) -> EdgeDeviceWatchSpec {
    let yaml = "hub: {}\n";
    let mut spec: EdgeDeviceWatchSpec = serde_saphyr::from_str(yaml).unwrap();
    spec.hub = hub;
    spec.devices = devices.iter().map(|d| d.to_string()).collect();
    spec
}

fn watch(spec: EdgeDeviceWatchSpec) -> EdgeDeviceWatch {
    EdgeDeviceWatch::new("w", spec)
}

fn assert_refused(spec: EdgeDeviceWatchSpec, needle: &str) {
    let errors = watch(spec)
        .validate_cel()
        .expect_err("the object should be refused");
    let text = errors.to_string();
    assert!(text.contains(needle), "expected {needle:?} in {text}");
}

fn assert_accepted(spec: EdgeDeviceWatchSpec) {
    if let Err(errors) = watch(spec).validate_cel() {
        panic!("refused a valid object: {errors:?}");
    }
}

#[test]
fn connection_string_alone_is_accepted() {
    assert_accepted(spec_with(sas_hub(), &["gw-1"]));
}

#[test]
fn workload_identity_with_host_name_is_accepted() {
    let hub = HubSpec {
        host_name: Some("hub.azure-devices.net".into()),
        workload_identity: Some(WorkloadIdentitySpec::default()),
        ..HubSpec::default()
    };
    assert_accepted(spec_with(hub, &["gw-1"]));
}

#[test]
fn no_credential_source_is_refused() {
    assert_refused(
        spec_with(HubSpec::default(), &["gw-1"]),
        "exactly one credential source",
    );
}

#[test]
fn two_credential_sources_are_refused() {
    let mut hub = sas_hub();
    hub.workload_identity = Some(WorkloadIdentitySpec::default());
    hub.host_name = Some("hub.azure-devices.net".into());
    assert_refused(spec_with(hub, &["gw-1"]), "exactly one credential source");
}

#[test]
fn workload_identity_without_host_name_is_refused() {
    let hub = HubSpec {
        workload_identity: Some(WorkloadIdentitySpec::default()),
        ..HubSpec::default()
    };
    assert_refused(spec_with(hub, &["gw-1"]), "workloadIdentity needs hostName");
}

#[test]
fn host_name_beside_a_connection_string_is_refused() {
    let mut hub = sas_hub();
    hub.host_name = Some("hub.azure-devices.net".into());
    assert_refused(
        spec_with(hub, &["gw-1"]),
        "hostName comes from the connection string",
    );
}

#[test]
fn neither_devices_nor_selector_is_refused() {
    assert_refused(spec_with(sas_hub(), &[]), "at least one device");
}

#[test]
fn selector_alone_is_accepted() {
    let mut spec = spec_with(sas_hub(), &[]);
    spec.selector = Some(SelectorSpec {
        query: "tags.site = 'a'".into(),
    });
    assert_accepted(spec);
}

#[test]
fn interval_of_ten_seconds_is_accepted_and_below_is_refused() {
    let mut spec = spec_with(sas_hub(), &["gw-1"]);
    spec.interval = "10s".into();
    assert_accepted(spec.clone());
    spec.interval = "1m".into();
    assert_accepted(spec.clone());
    spec.interval = "PT10S".into();
    assert_accepted(spec.clone());
    spec.interval = "9s".into();
    assert_refused(spec.clone(), "spec.interval: must be at least 10s");
    spec.interval = "500ms".into();
    assert_refused(spec.clone(), "spec.interval: must be at least 10s");
    spec.interval = "PT9S".into();
    assert_refused(spec, "spec.interval: must be at least 10s");
}

#[test]
fn ping_interval_below_ten_seconds_is_refused() {
    let mut spec = spec_with(sas_hub(), &["gw-1"]);
    spec.ping.interval = "5s".into();
    assert_refused(spec, "spec.ping.interval: must be at least 10s");
}

#[test]
fn device_ids_in_iot_hubs_character_set_are_accepted() {
    assert_accepted(spec_with(
        sas_hub(),
        &[
            "line1-gw",
            "A.b+c%d_e#f*g?h!i(j)k,l:m=n@o$p'q",
            &"x".repeat(128),
        ],
    ));
}

#[test]
fn device_ids_outside_the_character_set_or_too_long_are_refused() {
    for bad in [
        "has space",
        "slash/inside",
        "ümlaut",
        "semi;colon",
        &"x".repeat(129),
    ] {
        assert_refused(spec_with(sas_hub(), &["ok", bad]), "device ids are 1-128");
    }
}
