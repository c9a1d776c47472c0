//! Fleet behaviour over time, driven by a manual clock: crashes and the agent's back-off
//! schedule, deliberate stops, offline devices, deployments, drift and agent shutdown.
//! Every twin is read over HTTP, as a client would.

mod sim_support;

use std::collections::BTreeMap;

use edgewatch::sim::{Action, DeployOutcome, Scenario};
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sim_support::*;

const SENSOR: &str = "SimulatedTemperatureSensor";

const TWO_DEVICES: &str = r#"
devices:
  - id: gw-1
    tags: {site: plant-a}
  - id: gw-2
    modules:
      - name: oneshot
        image: example/oneshot:1.0
        restartPolicy: never
"#;

fn naive(offset_secs: i64) -> String {
    edgewatch::sim::timefmt::agent_naive(t0() + SignedDuration::from_secs(offset_secs))
}

fn zulu(offset_secs: i64) -> String {
    edgewatch::sim::timefmt::with_z(t0() + SignedDuration::from_secs(offset_secs))
}

fn crash_loop(run_for_secs: i64) -> Action {
    Action::CrashLoop {
        module: SENSOR.into(),
        exit_code: 139,
        run_for: SignedDuration::from_secs(run_for_secs),
    }
}

#[tokio::test]
async fn a_crash_enters_backoff_and_restarts_after_the_cool_off() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply(
        "gw-1",
        Action::Crash {
            module: SENSOR.into(),
            exit_code: 1,
        },
    )
    .unwrap();
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["runtimeStatus"], "backoff");
    assert_eq!(m["exitCode"], 1);
    assert_eq!(m["lastExitTimeUtc"], naive(0));
    assert_eq!(m["statusDescription"], "exited");
    let hub = c.module_twin("gw-1", "$edgeHub").await;
    assert_eq!(
        hub["properties"]["reported"]["clients"][format!("gw-1/{SENSOR}")]["status"],
        "Disconnected"
    );

    advance(&h, 9);
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["runtimeStatus"],
        "backoff"
    );
    advance(&h, 1);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["runtimeStatus"], "running");
    assert_eq!(m["restartCount"], 1);
    assert_eq!(
        m["lastRestartTimeUtc"],
        zulu(10),
        "restart time carries a Z"
    );
    assert_eq!(m["lastStartTimeUtc"], naive(10), "start time does not");
    assert_eq!(m["exitCode"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_crash_loop_follows_the_exponential_schedule_even_across_one_big_jump() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply("gw-1", crash_loop(5)).unwrap();
    // crash 0 → restart 10 (+10), crash 15 → 35 (+20), crash 40 → 80 (+40), crash 85 → 165 (+80),
    // crash 170 → 330 (+160), crash 335 → 635 (+300, the cap), crash 640 → 940 (+300).
    advance(&h, 700);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["restartCount"], 6);
    assert_eq!(m["lastRestartTimeUtc"], zulu(635));
    assert_eq!(m["lastExitTimeUtc"], naive(640));
    assert_eq!(m["runtimeStatus"], "backoff");
    assert_eq!(m["exitCode"], 139);
    advance(&h, 240);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(
        (m["restartCount"].as_i64(), m["runtimeStatus"].as_str()),
        (Some(7), Some("running"))
    );
    assert_eq!(m["lastRestartTimeUtc"], zulu(940));
    h.shutdown().await;
}

#[tokio::test]
async fn the_agent_gives_up_after_twenty_restarts() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply("gw-1", crash_loop(1)).unwrap();
    advance(&h, 2 * 3600);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["runtimeStatus"], "failed");
    assert_eq!(m["restartCount"], 20);
    advance(&h, 3600);
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["restartCount"],
        20,
        "no more restarts"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn restart_counters_clear_after_ten_minutes_of_running() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply(
        "gw-1",
        Action::Crash {
            module: SENSOR.into(),
            exit_code: 1,
        },
    )
    .unwrap();
    advance(&h, 10 + 599);
    assert_eq!(c.agent_module("gw-1", SENSOR).await["restartCount"], 1);
    advance(&h, 1);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["restartCount"], 0);
    assert_eq!(
        m["lastRestartTimeUtc"],
        zulu(10),
        "the last restart time stays"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn restart_policy_never_leaves_the_module_failed() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply(
        "gw-2",
        Action::Crash {
            module: "oneshot".into(),
            exit_code: 2,
        },
    )
    .unwrap();
    advance(&h, 3600);
    let m = c.agent_module("gw-2", "oneshot").await;
    assert_eq!(m["runtimeStatus"], "failed");
    assert_eq!(m["exitCode"], 2);
    assert_eq!(m["restartCount"], 0);
    assert_eq!(m["restartPolicy"], "never");
    h.shutdown().await;
}

#[tokio::test]
async fn a_clean_exit_is_restarted_only_under_restart_policy_always() {
    let h = start_scenario(
        r#"
devices:
  - id: gw-1
    modules:
      - {name: batch, image: "example/batch:1", restartPolicy: on-failure}
      - {name: daemon, image: "example/daemon:1", restartPolicy: always}
"#,
    )
    .await;
    let c = HubClient::new(&h);
    for module in ["batch", "daemon"] {
        h.apply(
            "gw-1",
            Action::Crash {
                module: module.into(),
                exit_code: 0,
            },
        )
        .unwrap();
    }
    advance(&h, 10);
    let batch = c.agent_module("gw-1", "batch").await;
    assert_eq!(
        (batch["runtimeStatus"].as_str(), batch["exitCode"].as_i64()),
        (Some("stopped"), Some(0))
    );
    let daemon = c.agent_module("gw-1", "daemon").await;
    assert_eq!(
        (
            daemon["runtimeStatus"].as_str(),
            daemon["restartCount"].as_i64()
        ),
        (Some("running"), Some(1))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_unhealthy_module_recovers_on_demand() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply(
        "gw-1",
        Action::Unhealthy {
            module: SENSOR.into(),
        },
    )
    .unwrap();
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["runtimeStatus"],
        "unhealthy"
    );
    h.apply(
        "gw-1",
        Action::Recover {
            module: SENSOR.into(),
        },
    )
    .unwrap();
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["runtimeStatus"],
        "running"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_deliberate_stop_is_a_deployment_and_exits_137_or_143() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    let before = c.module_twin("gw-1", "$edgeAgent").await;
    let v0 = before["properties"]["desired"]["$version"]
        .as_i64()
        .unwrap();
    advance(&h, 5);
    h.apply(
        "gw-1",
        Action::StopModule {
            module: SENSOR.into(),
            exit_code: 143,
        },
    )
    .unwrap();
    let twin = c.module_twin("gw-1", "$edgeAgent").await;
    let desired = &twin["properties"]["desired"];
    assert_eq!(desired["$version"], v0 + 1);
    assert_eq!(desired["modules"][SENSOR]["status"], "stopped");
    assert_eq!(
        desired["$metadata"]["modules"][SENSOR]["status"]["$lastUpdated"],
        zulu(5)
    );
    let reported = &twin["properties"]["reported"];
    assert_eq!(reported["lastDesiredVersion"], v0 + 1);
    let m = &reported["modules"][SENSOR];
    assert_eq!(
        (
            m["runtimeStatus"].as_str(),
            m["exitCode"].as_i64(),
            m["status"].as_str()
        ),
        (Some("stopped"), Some(143), Some("stopped"))
    );
    advance(&h, 3600);
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["runtimeStatus"],
        "stopped",
        "never restarted"
    );
    assert!(
        h.apply(
            "gw-1",
            Action::StopModule {
                module: SENSOR.into(),
                exit_code: 1
            }
        )
        .is_err()
    );
    h.apply(
        "gw-1",
        Action::StartModule {
            module: SENSOR.into(),
        },
    )
    .unwrap();
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(
        (m["runtimeStatus"].as_str(), m["status"].as_str()),
        (Some("running"), Some("running"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn reported_metadata_moves_only_when_reported_properties_change() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    let before = c.module_twin("gw-1", "$edgeAgent").await;
    advance(&h, 3600);
    let after = c.module_twin("gw-1", "$edgeAgent").await;
    assert_eq!(
        before, after,
        "an hour without change leaves the twin byte-identical"
    );
    h.apply(
        "gw-1",
        Action::Crash {
            module: SENSOR.into(),
            exit_code: 1,
        },
    )
    .unwrap();
    let crashed = c.module_twin("gw-1", "$edgeAgent").await;
    let r0 = &before["properties"]["reported"];
    let r1 = &crashed["properties"]["reported"];
    assert_eq!(r1["$version"], r0["$version"].as_i64().unwrap() + 1);
    assert_eq!(crashed["version"], before["version"].as_i64().unwrap() + 1);
    assert_ne!(crashed["etag"], before["etag"]);
    assert_eq!(r1["$metadata"]["$lastUpdated"], zulu(3600));
    let meta = &r1["$metadata"]["modules"][SENSOR];
    assert_eq!(meta["exitCode"]["$lastUpdated"], zulu(3600));
    assert_eq!(
        meta["settings"], r0["$metadata"]["modules"][SENSOR]["settings"],
        "unchanged leaves keep their time"
    );
    assert_eq!(
        r1["$metadata"]["systemModules"],
        r0["$metadata"]["systemModules"]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_offline_device_freezes_its_reports_and_catches_up_when_back() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply("gw-1", Action::Offline {}).unwrap();
    let frozen = c.agent_reported("gw-1").await;
    h.apply(
        "gw-1",
        Action::Crash {
            module: SENSOR.into(),
            exit_code: 1,
        },
    )
    .unwrap();
    advance(&h, 300);
    assert_eq!(
        c.agent_reported("gw-1").await,
        frozen,
        "nothing reaches the hub while offline"
    );
    let (status, _, body) = c.invoke("gw-1", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "404103".to_string())
    );
    let (_, _, device) = c.get(&format!("/twins/gw-1?{API}")).await;
    assert_eq!(device["connectionState"], "Disconnected");

    h.apply("gw-1", Action::Online {}).unwrap();
    let now = c.agent_reported("gw-1").await;
    assert_eq!(now["$metadata"]["$lastUpdated"], zulu(300));
    let m = &now["modules"][SENSOR];
    assert_eq!(
        m["restartCount"], 1,
        "the restart that happened offline shows up"
    );
    assert_eq!(m["lastExitTimeUtc"], naive(0));
    let (status, _, _) = c.invoke("gw-1", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    h.shutdown().await;
}

async fn desired_and_reported_versions(c: &HubClient, device: &str) -> (i64, i64, i64) {
    let t = c.module_twin(device, "$edgeAgent").await;
    let p = &t["properties"];
    (
        p["desired"]["$version"].as_i64().unwrap(),
        p["reported"]["lastDesiredVersion"].as_i64().unwrap(),
        p["reported"]["lastDesiredStatus"]["code"].as_i64().unwrap(),
    )
}

fn deploy(image: &str, outcome: DeployOutcome, delay_secs: i64) -> Action {
    Action::Deploy {
        images: BTreeMap::from([(SENSOR.to_string(), image.to_string())]),
        outcome,
        delay: SignedDuration::from_secs(delay_secs),
    }
}

#[tokio::test]
async fn a_deployment_is_pending_until_the_agent_applies_it() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    let (v0, applied0, _) = desired_and_reported_versions(&c, "gw-1").await;
    assert_eq!(v0, applied0);
    h.apply(
        "gw-1",
        deploy("example/sensor:2.0", DeployOutcome::Applied, 30),
    )
    .unwrap();
    assert_eq!(
        desired_and_reported_versions(&c, "gw-1").await,
        (v0 + 1, v0, 200)
    );
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["settings"]["image"],
        "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5"
    );
    advance(&h, 29);
    assert_eq!(desired_and_reported_versions(&c, "gw-1").await.1, v0);
    advance(&h, 1);
    assert_eq!(
        desired_and_reported_versions(&c, "gw-1").await,
        (v0 + 1, v0 + 1, 200)
    );
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(m["settings"]["image"], "example/sensor:2.0");
    assert_eq!(
        m["lastStartTimeUtc"],
        naive(30),
        "the new image starts when applied"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn deployments_can_be_rejected_fail_or_never_arrive() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    let (v0, _, _) = desired_and_reported_versions(&c, "gw-1").await;
    for (n, (outcome, code)) in [
        (DeployOutcome::Rejected, 400),
        (DeployOutcome::SchemaRejected, 412),
        (DeployOutcome::Failed, 500),
    ]
    .into_iter()
    .enumerate()
    {
        h.apply("gw-1", deploy(&format!("example/sensor:{n}"), outcome, 5))
            .unwrap();
        advance(&h, 5);
        let v = v0 + 1 + n as i64;
        assert_eq!(
            desired_and_reported_versions(&c, "gw-1").await,
            (v, v, code),
            "{outcome:?}"
        );
        let r = c.agent_reported("gw-1").await;
        assert!(
            !r["lastDesiredStatus"]["description"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            r["modules"][SENSOR]["settings"]["image"],
            "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5",
            "a refused deployment leaves the old image running"
        );
    }
    h.apply(
        "gw-1",
        deploy("example/sensor:9", DeployOutcome::NeverApplied, 0),
    )
    .unwrap();
    advance(&h, 6 * 3600);
    let (desired, applied, _) = desired_and_reported_versions(&c, "gw-1").await;
    assert_eq!(desired, applied + 1, "still behind after six hours");

    for bad in [
        Action::Deploy {
            images: BTreeMap::new(),
            outcome: DeployOutcome::Applied,
            delay: SignedDuration::ZERO,
        },
        Action::Deploy {
            images: BTreeMap::from([("ghost".to_string(), "x".to_string())]),
            outcome: DeployOutcome::Applied,
            delay: SignedDuration::ZERO,
        },
    ] {
        assert!(h.apply("gw-1", bad).is_err());
    }
    h.shutdown().await;
}

#[tokio::test]
async fn image_drift_shows_a_different_image_under_a_successful_deployment() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply(
        "gw-1",
        Action::ImageDrift {
            module: SENSOR.into(),
            image: "example/hand-pulled:latest".into(),
        },
    )
    .unwrap();
    let t = c.module_twin("gw-1", "$edgeAgent").await;
    let p = &t["properties"];
    assert_eq!(
        p["desired"]["$version"],
        p["reported"]["lastDesiredVersion"]
    );
    assert_eq!(p["reported"]["lastDesiredStatus"]["code"], 200);
    assert_ne!(
        p["desired"]["modules"][SENSOR]["settings"]["image"],
        p["reported"]["modules"][SENSOR]["settings"]["image"]
    );
    assert_eq!(
        p["reported"]["modules"][SENSOR]["settings"]["image"],
        "example/hand-pulled:latest"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_lagging_module_leaves_its_desired_properties_unapplied() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    advance(&h, 60);
    h.apply(
        "gw-1",
        Action::SetDesiredProperty {
            module: SENSOR.into(),
            property: "SendInterval".into(),
            value: json!(10),
            lag: true,
        },
    )
    .unwrap();
    let t = c.module_twin("gw-1", SENSOR).await;
    assert_eq!(t["properties"]["desired"]["SendInterval"], 10);
    assert_eq!(t["properties"]["reported"]["SendInterval"], 5);
    assert_eq!(
        t["properties"]["desired"]["$metadata"]["SendInterval"]["$lastUpdated"],
        zulu(60)
    );
    h.apply(
        "gw-1",
        Action::Recover {
            module: SENSOR.into(),
        },
    )
    .unwrap();
    let t = c.module_twin("gw-1", SENSOR).await;
    assert_eq!(t["properties"]["reported"]["SendInterval"], 10);
    h.apply(
        "gw-1",
        Action::SetDesiredProperty {
            module: SENSOR.into(),
            property: "SendInterval".into(),
            value: json!(20),
            lag: false,
        },
    )
    .unwrap();
    assert_eq!(
        c.module_twin("gw-1", SENSOR).await["properties"]["reported"]["SendInterval"],
        20
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_agent_shutdown_reports_406_and_unknown_everywhere() {
    let h = start_scenario(TWO_DEVICES).await;
    let c = HubClient::new(&h);
    h.apply("gw-1", Action::AgentShutdown {}).unwrap();
    let r = c.agent_reported("gw-1").await;
    assert_eq!(
        r["lastDesiredStatus"],
        json!({"code": 406, "description": "Agent is not running"})
    );
    assert_eq!(r["systemModules"]["edgeAgent"]["runtimeStatus"], "unknown");
    assert_eq!(r["systemModules"]["edgeHub"]["runtimeStatus"], "unknown");
    assert_eq!(r["modules"][SENSOR]["runtimeStatus"], "unknown");
    let (status, _, _) = c.invoke("gw-1", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    advance(&h, 120);
    h.apply("gw-1", Action::AgentStart {}).unwrap();
    let r = c.agent_reported("gw-1").await;
    assert_eq!(r["lastDesiredStatus"]["code"], 200);
    assert_eq!(r["systemModules"]["edgeAgent"]["runtimeStatus"], "running");
    assert_eq!(
        r["systemModules"]["edgeAgent"]["lastStartTimeUtc"],
        naive(120)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn scripted_events_fire_at_their_time() {
    let h = start_scenario(
        r#"
devices:
  - id: gw-1
events:
  - at: 30s
    device: gw-1
    crash: {module: SimulatedTemperatureSensor, exitCode: 3}
  - at: 2m
    device: gw-1
    offline: {}
"#,
    )
    .await;
    let c = HubClient::new(&h);
    advance(&h, 29);
    assert_eq!(
        c.agent_module("gw-1", SENSOR).await["runtimeStatus"],
        "running"
    );
    assert_eq!(h.fleet_summary().scheduled_events, 2);
    advance(&h, 1);
    let m = c.agent_module("gw-1", SENSOR).await;
    assert_eq!(
        (m["exitCode"].as_i64(), m["lastExitTimeUtc"].as_str()),
        (Some(3), Some(naive(30).as_str()))
    );
    advance(&h, 90);
    assert_eq!(h.fleet_summary().online, 0);
    let (status, _, _) = c.invoke("gw-1", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.shutdown().await;
}

#[test]
fn every_example_scenario_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2, "examples exist");
    let missing = Scenario::from_file(&dir.join("missing.yaml")).unwrap_err();
    assert!(missing.to_string().contains("missing.yaml"));
}

#[tokio::test]
async fn twins_of_a_generated_fleet_are_reproducible_from_the_seed() {
    let a = start_generated(5).await;
    let b = start_generated(5).await;
    let (ca, cb) = (HubClient::new(&a), HubClient::new(&b));
    for id in a.device_ids() {
        let (_, _, ta) = ca.get(&format!("/twins/{id}?{API}")).await;
        let (_, _, tb) = cb.get(&format!("/twins/{id}?{API}")).await;
        assert_eq!(ta, tb);
        assert_eq!(ca.agent_reported(&id).await, cb.agent_reported(&id).await);
    }
    let _: Value = Value::Null;
    a.shutdown().await;
    b.shutdown().await;
}

fn connection_scenario() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scenarios/connection-state.yaml"
    ))
    .unwrap()
}

async fn device_twin(c: &HubClient, device: &str) -> Value {
    let (status, _, twin) = c.get(&format!("/twins/{device}?{API}")).await;
    assert_eq!(status, StatusCode::OK);
    twin
}

/// Seconds after t0 at which the device twin first reads `state`, polling every 5 s up
/// to `until` seconds.
async fn first_seen(
    h: &edgewatch::sim::SimHandle,
    c: &HubClient,
    device: &str,
    state: &str,
    until: i64,
) -> Option<i64> {
    let start = h.clock().now().duration_since(t0()).as_secs();
    let mut at = start;
    while at <= until {
        if device_twin(c, device).await["connectionState"] == state {
            return Some(at);
        }
        advance(h, 5);
        at += 5;
    }
    None
}

#[tokio::test]
async fn connection_state_follows_the_device_late_by_a_seeded_delay() {
    let h = start_scenario(&connection_scenario()).await;
    let c = HubClient::new(&h);
    assert_eq!(
        device_twin(&c, "offline").await["connectionState"],
        "Connected"
    );
    advance(&h, 60);
    assert_eq!(
        device_twin(&c, "instant").await["connectionState"],
        "Disconnected",
        "without a lag the hub notices at once"
    );
    let fleet = h.fleet_summary();
    assert_eq!(
        (fleet.online, fleet.connected),
        (1, 3),
        "three devices dropped; the hub has noticed only the one without a lag"
    );
    let went = first_seen(&h, &c, "offline", "Disconnected", 360)
        .await
        .expect("the hub notices within the 5 minute lag");
    assert!(went > 60, "the hub noticed late (at {went}s), not at once");
    let twin = device_twin(&c, "offline").await;
    assert_eq!(
        twin["lastActivityTime"],
        zulu(60),
        "last heard of when it dropped"
    );
    let edge_hub = c.module_twin("offline", "$edgeHub").await;
    assert_eq!(edge_hub["connectionState"], "Disconnected");
    let agent = c.module_twin("hung", "$edgeAgent").await;
    assert_eq!(
        agent["connectionState"], "Disconnected",
        "the agent's twin never says Connected"
    );

    // The same scenario and seed notice at the same moment.
    let again = start_scenario(&connection_scenario()).await;
    let c2 = HubClient::new(&again);
    advance(&again, 60);
    assert_eq!(
        first_seen(&again, &c2, "offline", "Disconnected", 360).await,
        Some(went)
    );
    again.shutdown().await;

    h.apply("offline", Action::Online {}).unwrap();
    let back_at = h.clock().now().duration_since(t0()).as_secs();
    let back = first_seen(&h, &c, "offline", "Connected", back_at + 300)
        .await
        .expect("the hub notices the reconnection within the lag");
    assert!(back >= back_at);
    assert_eq!(
        device_twin(&c, "offline").await["lastActivityTime"],
        zulu(back_at)
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_blip_shorter_than_the_lag_is_never_seen() {
    let h = start_scenario(&connection_scenario()).await;
    let c = HubClient::new(&h);
    for _ in 0..(600 / 10) {
        assert_eq!(
            device_twin(&c, "blip").await["connectionState"],
            "Connected"
        );
        advance(&h, 10);
    }
    let (status, _, _) = c.invoke("blip", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test]
async fn a_hung_agent_times_out_while_the_hub_still_reports_connected() {
    let h = start_scenario(&connection_scenario()).await;
    let c = HubClient::new(&h);
    let before = c.agent_reported("hung").await;
    advance(&h, 600);
    let (status, _, body) = c.invoke("hung", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "504101".to_string())
    );
    assert_eq!(
        device_twin(&c, "hung").await["connectionState"],
        "Connected"
    );
    assert_eq!(
        c.module_twin("hung", "$edgeHub").await["connectionState"],
        "Connected"
    );
    assert_eq!(
        c.agent_reported("hung").await,
        before,
        "the crash at 90s never reached the agent's reported properties"
    );

    h.apply("hung", Action::Responsive {}).unwrap();
    let (status, _, _) = c.invoke("hung", "$edgeAgent", "ping", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let sensor = c.agent_module("hung", SENSOR).await;
    assert_eq!(sensor["lastExitTimeUtc"], naive(90), "the agent catches up");
    h.shutdown().await;
}
