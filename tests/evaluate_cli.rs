//! `edgewatch evaluate` as users run it: the built binary, real files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgewatch::health::report::{ConditionStatus, ConditionType, DeviceReport, Reason};

const NOW: &str = "2021-06-28T21:55:00Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn evaluate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewatch"))
        .arg("evaluate")
        .args(args)
        .output()
        .expect("binary runs")
}

fn agent_args(name: &str) -> Vec<String> {
    vec!["--edge-agent".into(), fixture(name).display().to_string()]
}

fn run(args: Vec<String>) -> Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    evaluate(&refs)
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| (*s).to_owned()));
    base
}

fn json_report(output: &Output) -> DeviceReport {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is the JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ready(report: &DeviceReport) -> (ConditionStatus, Reason) {
    let c = report.condition(ConditionType::Ready).unwrap();
    (c.status, c.reason)
}

#[test]
fn healthy_variant_exits_0() {
    let out = run(with(
        agent_args("variants/edgeAgent-healthy_linux2.json"),
        &["--now", NOW, "--ping", "ok", "-o", "json"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_report(&out);
    assert_eq!(ready(&report), (ConditionStatus::True, Reason::Ready));
    assert_eq!(report.device_id, "linux2");
    assert_eq!(report.conditions.len(), 5);
}

#[test]
fn failing_variant_exits_1_with_the_module_named() {
    let out = run(with(
        agent_args("variants/edgeAgent-module-failed_linux2.json"),
        &["--now", NOW, "-o", "json"],
    ));
    assert_eq!(out.status.code(), Some(1));
    let report = json_report(&out);
    assert_eq!(
        ready(&report),
        (ConditionStatus::False, Reason::ModuleFailed)
    );
    assert!(
        report
            .condition(ConditionType::Ready)
            .unwrap()
            .message
            .contains("simtemp")
    );
}

#[test]
fn real_twin_after_shutdown_exits_1_agent_not_running() {
    let out = run(with(
        agent_args("edgeAgent-module-twin-full_linux2_iotedge.json"),
        &["--now", NOW, "--ping", "ok", "-o", "json"],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        ready(&json_report(&out)),
        (ConditionStatus::Unknown, Reason::AgentNotRunning)
    );
}

#[test]
fn all_twin_kinds_together() {
    let out = run(with(
        agent_args("variants/edgeAgent-healthy_linux2.json"),
        &[
            "--edge-hub",
            fixture("variants/edgeHub-healthy_linux2.json")
                .to_str()
                .unwrap(),
            "--module-twin",
            fixture("variants/module-twin-tempSensor-drifted_linux2.json")
                .to_str()
                .unwrap(),
            "--now",
            NOW,
            "-o",
            "json",
        ],
    ));
    assert_eq!(out.status.code(), Some(1));
    let report = json_report(&out);
    assert_eq!(
        ready(&report),
        (ConditionStatus::False, Reason::PropertyDrift)
    );
    assert_eq!(report.drift[0].property.as_deref(), Some("SendInterval"));
    assert_eq!(report.disconnected_clients.len(), 1);
}

#[test]
fn stale_after_and_ping_change_the_verdict() {
    let later = "2021-06-28T22:30:00Z";
    let base = agent_args("variants/edgeAgent-healthy_linux2.json");
    let stale = run(with(base.clone(), &["--now", later, "-o", "json"]));
    assert_eq!(stale.status.code(), Some(1));
    assert_eq!(ready(&json_report(&stale)).1, Reason::ReportedStateStale);
    let relaxed = run(with(
        base.clone(),
        &["--now", later, "--stale-after", "1h30m"],
    ));
    assert_eq!(relaxed.status.code(), Some(0));
    let answered = run(with(base.clone(), &["--now", later, "--ping", "ok"]));
    assert_eq!(answered.status.code(), Some(0));
    let offline = run(with(
        base,
        &["--now", NOW, "--ping", "not-online", "-o", "json"],
    ));
    assert_eq!(ready(&json_report(&offline)).1, Reason::DeviceNotOnline);
}

#[test]
fn yaml_output_round_trips_and_table_is_the_default() {
    let base = with(
        agent_args("variants/edgeAgent-healthy_linux2.json"),
        &["--now", NOW],
    );
    let yaml = run(with(base.clone(), &["-o", "yaml"]));
    let text = String::from_utf8(yaml.stdout).unwrap();
    let report: DeviceReport = serde_saphyr::from_str(&text).expect("YAML report");
    assert_eq!(ready(&report), (ConditionStatus::True, Reason::Ready));
    let table = String::from_utf8(run(base).stdout).unwrap();
    assert!(table.starts_with("Device: linux2\n"), "{table}");
    assert!(table.contains("CONDITION       STATUS"), "{table}");
    assert!(table.contains("simtemp"), "{table}");
}

fn temp_file(contents: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, contents).unwrap();
    file
}

fn assert_bad_input(out: &Output, path: &Path, problem: &str) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let message = stderr(out);
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );
    assert!(message.contains(problem), "says {problem:?}: {message}");
    assert!(out.stdout.is_empty());
}

#[test]
fn non_json_file_exits_2_naming_the_file() {
    let file = temp_file(b"DeviceId: linux2\n");
    let out = evaluate(&["--edge-agent", file.path().to_str().unwrap()]);
    assert_bad_input(&out, file.path(), "not valid JSON");
}

#[test]
fn json_array_exits_2() {
    let page = fixture("device-twins-query-page_weathersense-subset.json");
    let out = evaluate(&["--edge-agent", page.to_str().unwrap()]);
    assert_bad_input(&out, &page, "found a JSON array");
}

#[test]
fn hub_twin_given_as_agent_exits_2() {
    let hub = fixture("edgeHub-module-twin-collapsed_Windows109_docs.json");
    let out = evaluate(&["--edge-agent", hub.to_str().unwrap()]);
    assert_bad_input(&out, &hub, "expected the twin of $edgeAgent");
    assert!(stderr(&out).contains("--edge-agent"));
}

#[test]
fn agent_twin_given_as_module_twin_exits_2() {
    let agent = fixture("variants/edgeAgent-healthy_linux2.json");
    let out = evaluate(&[
        "--edge-agent",
        agent.to_str().unwrap(),
        "--module-twin",
        agent.to_str().unwrap(),
    ]);
    assert_bad_input(&out, &agent, "expected the twin of a custom module");
}

#[test]
fn twins_of_different_devices_exit_2() {
    let agent = fixture("variants/edgeAgent-healthy_linux2.json");
    let module = fixture("custom-module-twin_tempSensor_azcli.json");
    let out = evaluate(&[
        "--edge-agent",
        agent.to_str().unwrap(),
        "--module-twin",
        module.to_str().unwrap(),
    ]);
    assert_bad_input(&out, &module, "hebh-IoT-Edge-Rpi3B");
}

#[test]
fn unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("agent.json");
    let out = evaluate(&["--edge-agent", missing.to_str().unwrap()]);
    assert_bad_input(&out, &missing, "cannot read the file");
    // A directory is not a readable twin file either.
    let out = evaluate(&["--edge-agent", dir.path().to_str().unwrap()]);
    assert_bad_input(&out, dir.path(), "cannot read the file");
}

#[test]
fn bad_flags_exit_2() {
    let agent = fixture("variants/edgeAgent-healthy_linux2.json");
    let agent = agent.to_str().unwrap();
    for args in [
        vec!["--edge-agent", agent, "--now", "yesterday"],
        vec!["--edge-agent", agent, "--stale-after", "soon"],
        vec!["--edge-agent", agent, "--deployment-grace", "-5m"],
        vec!["--edge-agent", agent, "--ping", "maybe"],
        vec!["--edge-agent", agent, "-o", "xml"],
        vec![],
    ] {
        let out = evaluate(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn documented_json_example_is_what_the_binary_prints() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/evaluate.md"))
            .expect("docs/evaluate.md");
    let section = doc
        .split("## Example: the real")
        .nth(1)
        .expect("example section");
    let block = section.split("```json\n").nth(1).expect("json block");
    let documented: serde_json::Value =
        serde_json::from_str(block.split("\n```").next().unwrap()).expect("example is JSON");
    let out = run(with(
        agent_args("edgeAgent-module-twin-full_linux2_iotedge.json"),
        &["--now", NOW, "-o", "json"],
    ));
    assert_eq!(out.status.code(), Some(1));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed, documented,
        "regenerate the example in docs/evaluate.md"
    );
}
