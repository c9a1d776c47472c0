//! The twin views on the real documents: what they keep, what they tolerate, what they refuse.

mod common;

use common::*;
use edgewatch::twin::{
    DeviceTwin, EdgeAgentTwin, EdgeHubTwin, ModuleTwin, RuntimeStatus, TwinError, TwinTime,
};
use serde_json::json;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

#[test]
fn full_agent_twin_keeps_identity_versions_and_modules() {
    let twin = EdgeAgentTwin::from_slice(&bytes(FULL_AGENT)).unwrap();
    assert_eq!(twin.identity.device_id.as_deref(), Some("linux2"));
    assert_eq!(twin.identity.module_id.as_deref(), Some("$edgeAgent"));
    assert_eq!(twin.identity.etag.as_deref(), Some("AAAAAAAAAAI="));
    assert_eq!(twin.identity.version, Some(34));
    assert_eq!(twin.desired.version, Some(2));
    assert_eq!(twin.reported.version, Some(32));
    assert_eq!(
        twin.reported.last_updated,
        Some(TwinTime::At(ts("2021-06-28T21:48:59.8705097Z")))
    );
    assert_eq!(twin.last_desired_version, Some(2));
    let status = twin.last_desired_status.as_ref().unwrap();
    assert_eq!(status.code, Some(406));
    assert_eq!(status.description.as_deref(), Some("Agent is not running"));

    let desired: Vec<&str> = twin
        .desired_modules
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(desired, ["edgeAgent", "edgeHub", "simtemp"]);
    let simtemp = twin.desired_module("simtemp").unwrap();
    assert_eq!(simtemp.status.as_deref(), Some("running"));
    assert_eq!(simtemp.restart_policy.as_deref(), Some("always"));
    assert_eq!(simtemp.version.as_deref(), Some("1.0"));
    assert!(!simtemp.system);
    assert!(twin.desired_module("edgeHub").unwrap().system);

    let hub = twin.reported_module("edgeHub").unwrap();
    assert_eq!(hub.runtime_status, Some(RuntimeStatus::Unknown));
    assert_eq!(hub.exit_code, Some(139));
    assert_eq!(hub.restart_count, Some(9));
    assert_eq!(hub.status_description.as_deref(), Some("exited"));
    // Naive and Zulu timestamps in the same module entry, 7 fractional digits.
    assert_eq!(
        hub.last_start_time,
        Some(TwinTime::At(ts("2021-06-28T21:46:40.4869405Z")))
    );
    assert_eq!(
        hub.last_restart_time,
        Some(TwinTime::At(ts("2021-06-28T21:46:40.1029053Z")))
    );
    let agent = twin.reported_module("edgeAgent").unwrap();
    assert_eq!(agent.last_exit_time, Some(TwinTime::Never));
    assert_eq!(agent.restart_count, None);
    let simtemp = twin.reported_module("simtemp").unwrap();
    assert_eq!(
        simtemp.image.as_deref(),
        Some("mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:latest")
    );
}

#[test]
fn fragments_without_module_id_are_accepted() {
    let desired =
        EdgeAgentTwin::from_value(&fixture("edgeAgent-desired_iotedge-doc.json")).unwrap();
    assert_eq!(desired.desired.version, Some(11));
    assert!(!desired.reported.present);
    assert_eq!(desired.reported_modules, None);
    let reported =
        EdgeAgentTwin::from_value(&fixture("edgeAgent-reported_iotedge-doc.json")).unwrap();
    assert_eq!(reported.last_desired_version, Some(11));
    assert_eq!(reported.desired_modules, None);
    assert_eq!(reported.reported_modules.as_ref().unwrap().len(), 3);
    // Reported `lastRestartTimeUtc` here is naive, unlike the full twin.
    assert_eq!(
        reported.reported_module("m1").unwrap().last_restart_time,
        Some(TwinTime::At(ts("2021-06-12T00:26:29.1405344Z")))
    );
}

#[test]
fn collapsed_twins_parse_with_empty_sections() {
    let agent = EdgeAgentTwin::from_value(&fixture(
        "edgeAgent-module-twin-collapsed_Windows109_docs.json",
    ))
    .unwrap();
    assert!(agent.desired.present && !agent.desired.has_content);
    assert_eq!(agent.reported.last_updated, None);
    assert_eq!(agent.last_desired_status.as_ref().unwrap().code, None);
    let module = agent.reported_module("SimulatedTemperatureSensor").unwrap();
    assert_eq!(module.runtime_status, None);

    let hub = EdgeHubTwin::from_value(&fixture(
        "edgeHub-module-twin-collapsed_Windows109_docs.json",
    ))
    .unwrap();
    assert_eq!(hub.last_desired_version, Some(5));
    assert_eq!(hub.clients.len(), 1);
    assert_eq!(hub.clients[0].id, "Windows109/SimulatedTemperatureSensor");
    assert!(hub.clients[0].is_disconnected());
    assert_eq!(
        hub.clients[0].last_connected,
        Some(TwinTime::At(ts("2020-04-08T21:42:42.1743956Z")))
    );
}

#[test]
fn hub_twin_without_reported_section_parses() {
    let hub = EdgeHubTwin::from_value(&fixture(
        "edgeHub-module-twin-desired-partial_iotedge-issue59.json",
    ))
    .unwrap();
    assert!(!hub.reported.present);
    assert!(hub.clients.is_empty());
    assert_eq!(
        hub.desired.last_updated,
        Some(TwinTime::At(ts("2018-07-23T16:38:18.5823398Z")))
    );
}

#[test]
fn module_twin_keeps_properties_with_their_own_last_updated() {
    let twin = ModuleTwin::from_slice(&bytes(TEMP_SENSOR)).unwrap();
    assert_eq!(twin.name(), "tempSensor");
    let keys: Vec<&str> = twin.desired_properties.keys().collect();
    assert_eq!(keys, ["SendData", "SendInterval"]);
    let interval = twin.desired_properties.get("SendInterval").unwrap();
    assert_eq!(interval.value, json!(30));
    assert_eq!(
        interval.last_updated,
        Some(TwinTime::At(ts("2018-06-06T07:50:36.6522808Z")))
    );
    assert!(twin.reported_properties.0.is_empty());
    assert_eq!(twin.reported.last_updated, Some(TwinTime::Never));
    assert_eq!(twin.reported.version, Some(1));
}

#[test]
fn device_twin_reads_tags_and_edge_capability() {
    let twin =
        DeviceTwin::from_slice(&bytes("device-twin_Device-385_with-configurations.json")).unwrap();
    assert!(twin.identity.device_id.is_some());
    assert!(twin.identity.module_id.is_none());
    assert!(twin.iot_edge.is_some());
    let err = DeviceTwin::from_slice(&bytes(FULL_AGENT)).unwrap_err();
    assert!(matches!(err, TwinError::WrongModule { .. }));
}

#[test]
fn wrong_module_is_refused_with_both_names() {
    let hub_doc = fixture("edgeHub-module-twin-collapsed_Windows109_docs.json");
    let err = EdgeAgentTwin::from_value(&hub_doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected the twin of $edgeAgent but this is the twin of module \"$edgeHub\""
    );
    assert!(EdgeHubTwin::from_value(&fixture(FULL_AGENT)).is_err());
    for system in [fixture(FULL_AGENT), hub_doc] {
        assert!(matches!(
            ModuleTwin::from_value(&system),
            Err(TwinError::WrongModule { .. })
        ));
    }
    assert!(EdgeAgentTwin::from_value(&fixture(TEMP_SENSOR)).is_err());
}

#[test]
fn non_objects_and_non_json_are_refused() {
    let page = fixture("device-twins-query-page_weathersense-subset.json");
    assert!(page.is_array());
    let err = EdgeAgentTwin::from_value(&page).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a twin (a JSON object) but found a JSON array"
    );
    assert!(matches!(
        EdgeAgentTwin::from_slice(b"not json"),
        Err(TwinError::NotJson(_))
    ));
    assert!(matches!(
        EdgeHubTwin::from_slice(b"42"),
        Err(TwinError::NotAnObject { .. })
    ));
    assert!(matches!(
        ModuleTwin::from_slice(b""),
        Err(TwinError::NotJson(_))
    ));
}

#[test]
fn wrongly_typed_fields_read_as_absent() {
    let doc = json!({
        "moduleId": "$edgeAgent",
        "version": "many",
        "properties": {
            "desired": {"$version": "x", "modules": {"a": {"status": 5, "settings": "oops"}, "b": 7}},
            "reported": {
                "lastDesiredVersion": 2.0,
                "lastDesiredStatus": "fine",
                "modules": {"a": {"runtimeStatus": ["running"], "exitCode": "1", "lastStartTimeUtc": 12}},
                "$metadata": {"$lastUpdated": {}}
            }
        }
    });
    let twin = EdgeAgentTwin::from_value(&doc).unwrap();
    assert_eq!(twin.identity.version, None);
    assert_eq!(twin.desired.version, None);
    assert_eq!(twin.desired_modules.as_ref().unwrap().len(), 1);
    assert_eq!(twin.desired_module("a").unwrap().image, None);
    assert_eq!(twin.last_desired_version, Some(2));
    assert_eq!(twin.last_desired_status, None);
    let a = twin.reported_module("a").unwrap();
    assert_eq!((a.runtime_status.clone(), a.exit_code), (None, None));
    assert_eq!(a.last_start_time, Some(TwinTime::Unparseable));
    assert_eq!(twin.reported.last_updated, Some(TwinTime::Unparseable));
}

#[test]
fn same_twin_from_str_slice_and_value() {
    let text = std::fs::read_to_string(fixture_path(FULL_AGENT)).unwrap();
    let a: EdgeAgentTwin = text.parse().unwrap();
    let b = EdgeAgentTwin::from_slice(text.as_bytes()).unwrap();
    let c = EdgeAgentTwin::from_value(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
}

#[test]
fn bytes_and_values_give_the_same_views_for_every_fixture() {
    // `from_slice` skips the `$metadata` nodes no rule reads; nothing read may change.
    let mut names: Vec<String> = Vec::new();
    for dir in ["", "variants/"] {
        for entry in std::fs::read_dir(fixture_path(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if std::path::Path::new(&name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            {
                names.push(format!("{dir}{name}"));
            }
        }
    }
    assert!(names.len() >= 18, "{names:?}");
    for name in names {
        let raw = bytes(&name);
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            EdgeAgentTwin::from_slice(&raw).ok(),
            EdgeAgentTwin::from_value(&value).ok(),
            "{name}"
        );
        assert_eq!(
            EdgeHubTwin::from_slice(&raw).ok(),
            EdgeHubTwin::from_value(&value).ok(),
            "{name}"
        );
        assert_eq!(
            ModuleTwin::from_slice(&raw).ok(),
            ModuleTwin::from_value(&value).ok(),
            "{name}"
        );
        assert_eq!(
            DeviceTwin::from_slice(&raw).ok(),
            DeviceTwin::from_value(&value).ok(),
            "{name}"
        );
    }
}
