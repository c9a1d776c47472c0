//! `edgewatch sim` as a user runs it: what it prints, and how it refuses bad input.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_edgewatch");

#[test]
fn prints_the_connection_string_ca_path_and_fleet_summary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--devices",
            "12",
            "--port",
            "0",
            "--tls",
            "self-signed",
            "--ca-out",
        ])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("utf-8");
    let (conn, ca_line, fleet) = (next(), next(), next());
    child.kill().unwrap();
    child.wait().unwrap();

    let conn = conn.strip_prefix("connection string: ").expect(&conn);
    let parsed = edgewatch::iothub::ConnectionString::parse(conn)
        .expect("a valid service connection string");
    assert!(parsed.host_name().starts_with("localhost:"));
    assert_eq!(parsed.key_name(), "service");
    assert!(ca_line.ends_with(&ca.display().to_string()), "{ca_line}");
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        fleet.starts_with("fleet: hub edgewatch-sim at https://localhost:"),
        "{fleet}"
    );
    assert!(
        fleet.contains("12 edge devices (12 online), 40 module twins"),
        "{fleet}"
    );
}

#[test]
fn a_bad_scenario_file_exits_2_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "devices: [{id: a, colour: red}]\n").unwrap();
    let out = Command::new(BIN)
        .args(["sim", "--port", "0", "--scenario"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.yaml") && err.contains("colour"),
        "{err}"
    );
}

#[test]
fn a_policy_key_that_is_not_base64_is_refused_without_echoing_it() {
    let out = Command::new(BIN)
        .args(["sim", "--port", "0", "--policy-key", "sekret-not-base64!"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("base64 key") && !err.contains("sekret"),
        "{err}"
    );
}

#[test]
fn a_daily_quota_is_announced_and_a_malformed_one_refused() {
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--devices",
            "2",
            "--port",
            "0",
            "--daily-quota",
            "s1:2",
            "--fleet-messages-per-device-day",
            "10",
            "--refuse-projections",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let quota = lines.nth(3).expect("a quota line").expect("utf-8");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        quota,
        "daily quota: 800000 messages per UTC day in 4096-byte chunks (403002 IotHubQuotaExceeded when used up); fleet telemetry: 10 messages per device per day"
    );

    let out = Command::new(BIN)
        .args(["sim", "--port", "0", "--daily-quota", "s9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s9") && err.contains("s1[:UNITS]"), "{err}");
}
