//! `edgewatch demo` as a user runs it: the built binary, its output read as text.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .arg("demo")
        .args(args)
        .output()
        .expect("run edgewatch demo");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The row of `device` in a describe view's device table, split into columns.
fn device_row<'a>(snapshot: &'a str, device: &str) -> Vec<&'a str> {
    let rows: Vec<Vec<&str>> = snapshot
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 6 && cols[0] == device)
        .collect();
    assert_eq!(rows.len(), 1, "one row for {device} in\n{snapshot}");
    rows.into_iter().next().unwrap()
}

/// DEVICE READY REACHABLE MODULES IN-SYNC FRESH PING
fn ready_of<'a>(snapshot: &'a str, device: &str) -> &'a str {
    device_row(snapshot, device)[1]
}

#[test]
fn the_snapshot_shows_every_scenario_on_its_device() {
    let snapshot = demo(&["--once"]);
    let expected = [
        ("plant-a-gw1", "True"),
        ("plant-a-gw2", "False/RestartLoop"),
        ("plant-a-gw3", "False/ModuleFailed"),
        // Stopped on purpose with exit code 143: healthy.
        ("plant-a-gw4", "True"),
        ("plant-a-gw5", "False/DeviceNotOnline"),
        // Unhealthy from 15s, recovered at 45s.
        ("plant-a-gw6", "True"),
        ("plant-b-gw1", "True"),
        ("plant-b-gw2", "False/DeploymentPending"),
        ("plant-b-gw3", "False/DeploymentRejected"),
        ("plant-b-gw4", "False/ImageDrift"),
        ("plant-b-gw5", "False/PropertyDrift"),
        ("plant-b-gw6", "False/ModuleStopped"),
    ];
    for (device, ready) in expected {
        assert_eq!(
            ready_of(&snapshot, device),
            ready,
            "{device} in\n{snapshot}"
        );
    }
    // The aspects behind the verdicts.
    let offline = device_row(&snapshot, "plant-a-gw5");
    assert_eq!(offline[2], "False/DeviceNotOnline");
    assert_eq!(offline[5], "False/ReportedStateStale");
    assert_eq!(device_row(&snapshot, "plant-a-gw4")[3], "True");
    // Findings name the values a fleet operator acts on.
    for needle in [
        "plant-a-gw2: module SimulatedTemperatureSensor RestartLoop runtimeStatus=backoff exitCode=139",
        "plant-a-gw3: module worker ModuleFailed runtimeStatus=failed exitCode=1",
        "plant-b-gw3: drift DeploymentRejected desired=3 reported=412",
        "plant-b-gw5: drift PropertyDrift module=SimulatedTemperatureSensor property=SendInterval desired=10 reported=5",
        "plant-b-gw6: $edgeHub client plant-b-gw6/filtermodule Disconnected",
        "plant-a-gw4: $edgeHub client plant-a-gw4/SimulatedTemperatureSensor Disconnected",
    ] {
        assert!(
            snapshot.contains(needle),
            "missing {needle:?} in\n{snapshot}"
        );
    }
    // `kubectl get edw`: one row per site with the counts and the Ready reason.
    let plant_a: Vec<&str> = snapshot
        .lines()
        .find(|l| l.starts_with("plant-a "))
        .expect("get row of plant-a")
        .split_whitespace()
        .collect();
    assert_eq!(&plant_a[2..8], ["6", "3", "1", "2", "0", "DeviceNotOnline"]);
    let plant_b: Vec<&str> = snapshot
        .lines()
        .find(|l| l.starts_with("plant-b "))
        .expect("get row of plant-b")
        .split_whitespace()
        .collect();
    assert_eq!(
        &plant_b[2..8],
        ["6", "1", "0", "1", "4", "DeploymentPending"]
    );
    assert!(!snapshot.contains('\x1b'), "control codes in plain output");
}

#[test]
fn something_fails_and_recovers_within_the_first_minute() {
    let early = demo(&["--once", "--at", "30s"]);
    assert_eq!(ready_of(&early, "plant-a-gw6"), "False/ModuleUnhealthy");
    // Within the grace period a new deployment is in progress, not pending.
    assert_eq!(
        ready_of(&early, "plant-b-gw2"),
        "Unknown/DeploymentInProgress"
    );
    let late = demo(&["--once", "--at", "60s"]);
    assert_eq!(ready_of(&late, "plant-a-gw6"), "True");
}

#[test]
fn a_bad_snapshot_time_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .args(["demo", "--once", "--at", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--at"));
}

#[test]
fn the_live_view_on_a_pipe_is_plain_text_frames() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .args(["demo", "--speed", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut frames = Vec::new();
    while frames.len() < 2 && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        assert!(!line.contains('\x1b'), "control code in {line:?}");
        if line.starts_with("edgewatch demo: simulated IoT Hub") {
            frames.push(line);
        }
    }
    // Ctrl-C ends the demo cleanly, whenever it arrives.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "Ctrl-C did not end the demo"
    );
    assert_eq!(frames.len(), 2, "two frames expected, got {frames:?}");
    assert!(frames[0].ends_with("t+0s"), "{}", frames[0]);
    assert!(frames[1].ends_with("t+10s"), "{}", frames[1]);
}
