//! Errors a person can read, from the real binary: invalid watch files as
//! `spec.<field>: <message>` lines, and `edgewatch run` without a cluster saying each
//! cause once, without colour codes when stderr is not a terminal.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_edgewatch");

const ACCEPTED_FORMS: &str = "use 90s, 5m, 1h30m or 500ms (h, m, s, ms, largest first), or ISO 8601 such as PT15M or PT1H30M";

fn check(dir: &Path, spec_tail: &str) -> Output {
    let file = dir.join("watch.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: edgewatch.dev/v1alpha1\nkind: EdgeDeviceWatch\nmetadata: {{name: w, namespace: iot}}\nspec:\n  hub: {{connectionStringSecretRef: {{name: s, key: k}}}}\n{spec_tail}"
        ),
    )
    .unwrap();
    Command::new(BIN)
        .arg("check")
        .arg("-f")
        .arg(&file)
        .env_remove("IOTHUB_CONNECTION_STRING")
        .output()
        .unwrap()
}

/// The lines after `edgewatch check: <file>: invalid spec:`.
fn problems(out: &Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines();
    let head = lines.next().unwrap_or_default();
    assert!(
        head.starts_with("edgewatch check: ") && head.ends_with("watch.yaml: invalid spec:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ValidationError") && !stderr.contains("Error {"),
        "{stderr}"
    );
    lines.map(str::to_owned).collect()
}

#[test]
fn a_duration_that_does_not_parse_names_the_field_and_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), "  devices: [gw]\n  interval: abc\n");
    assert_eq!(
        problems(&out),
        [format!(
            "spec.interval: \"abc\" is not a duration (a unit has no number); {ACCEPTED_FORMS}"
        )]
    );
}

#[test]
fn a_short_interval_is_one_line_with_the_rules_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), "  devices: [gw]\n  interval: 1s\n");
    assert_eq!(problems(&out), ["spec.interval: must be at least 10s"]);
}

#[test]
fn an_empty_device_list_without_selector_says_the_rule_not_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), "  devices: []\n");
    assert_eq!(
        problems(&out),
        ["spec: name at least one device in devices or a selector query"]
    );
}

#[test]
fn several_problems_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(
        dir.path(),
        "  devices: [gw]\n  interval: 5s\n  staleAfter: 15 min\n  ping: {interval: PT5S}\n",
    );
    assert_eq!(
        problems(&out),
        [
            "spec.interval: must be at least 10s".to_owned(),
            "spec.ping.interval: must be at least 10s".to_owned(),
            format!(
                "spec.staleAfter: \"15 min\" is not a duration (unknown unit); {ACCEPTED_FORMS}"
            ),
        ]
    );
}

#[test]
fn run_without_a_cluster_says_each_cause_once_without_colour() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--leader-election", "false"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b'),
        "colour codes off a terminal: {stderr:?}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0];
    assert!(
        line.contains("error=connecting to the Kubernetes API (in-cluster config or KUBECONFIG): "),
        "{line}"
    );
    for cause in [
        "failed to infer config",
        "environment variable not found",
        "No such file or directory",
    ] {
        assert_eq!(line.matches(cause).count(), 1, "{cause:?} in {line}");
    }
    assert!(out.stdout.is_empty(), "logs go to stderr");
}
